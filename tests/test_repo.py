"""The repository's promises: README quick start and .ci/run agree; shipped data is complete."""

from __future__ import annotations

import re

from .conftest import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", quick, re.DOTALL)


def test_quick_start_is_two_commands() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    assert "tfgate demo" in commands[0] and "pip install" in commands[0]
    assert "pytest" in commands[1] and "pip install" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _readme_commands()[1].split("&&")[-1].strip()
    ci = (REPO / ".ci" / "run").read_text()
    assert test_command in ci.splitlines(), f"{test_command!r} must be a line of .ci/run"


def test_wheel_ships_rules_and_demo() -> None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    forced = cfg["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert forced == {"rules": "tfgate/_data/rules", "fixtures/demo": "tfgate/_data/fixtures/demo"}
