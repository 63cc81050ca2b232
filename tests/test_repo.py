"""The repository's promises: README quick start and .ci/run agree; shipped data is complete."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_readme_manifest_example_loads_and_protects_what_it_says(tmp_path: Path) -> None:
    from tfgate.model import Change, ChangeClass
    from tfgate.policy.manifest import load_manifest

    readme = (REPO / "README.md").read_text()
    block = (
        readme.split("## The protected-resource manifest", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    )
    (tmp_path / "tfgate.yaml").write_text(block)
    manifest = load_manifest(tmp_path / "tfgate.yaml")

    def protecting(address: str, rtype: str, **extra) -> list[str]:
        change = Change(address=address, mode="managed", type=rtype, name=address.rsplit(".", 1)[-1],
                        module_address=extra.pop("module", None), index=None, provider=extra.pop("provider", None),
                        actions=("delete",), change_class=ChangeClass.DELETE, **extra)  # fmt: skip
        return [r.name for r in manifest.protecting(change)]

    prod = (("tags", {"Environment": "production"}),)
    assert protecting("aws_db_instance.orders", "aws_db_instance", prior=prod) == ["prod-databases"]
    assert protecting("aws_db_instance.orders", "aws_db_instance") == []  # not tagged production
    assert protecting(
        'module.payments["eu"].aws_s3_bucket.ledger', "aws_s3_bucket", module='module.payments["eu"]',
        catalog_classes=("data-bearing",),
    ) == ["payments-module"]  # fmt: skip
    assert protecting(
        "module.db.aws_s3_bucket.x", "aws_s3_bucket", module="module.db",
        provider="registry.terraform.io/hashicorp/aws",
    ) == ["named-resources"]  # fmt: skip
