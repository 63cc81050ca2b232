"""The lean `tfgate check` path (tfgate.cli_check) runs exactly what the typer command would: the same
keyword arguments for every plain command line, and typer's own answer for everything else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tfgate.cli_check as lean

PLAIN = [
    ["plan.json"],
    ["-", "--format", "json"],
    ["p.json", "-m", "m.yaml", "--manifest=other.yaml", "-f", "json", "--no-state-checks"],
    ["a=x/p.json", "b=y/p.json", "-a", "one", "--approvals", "two", "--approvals=three", "-w", "ws"],
    ["-C", "dir", "p", "--terraform", "embedded", "--input-format", "show-json", "--new-workspace"],
    ["p", "--report-md", "r.md", "--report-html=r.html", "--report-json", "r.json", "--report-gitlab", "g"],
    ["p", "--audit-log", "a.jsonl", "--chdir=d", "--workspace=w"],
]
NOT_PLAIN = [
    [],
    ["--help"],
    ["p", "-h"],
    ["p", "--"],
    ["p", "--", "x"],
    ["p", "--manifest"],
    ["p", "--manifest", "-x"],
    ["p", "--manifest="],
    ["p", "-mfile"],
    ["p", "--manif", "m"],
    ["p", "--no-state-checks=1"],
    ["p", "--unknown"],
    ["--format", "json"],
]


def typer_kwargs(args: list[str], monkeypatch: pytest.MonkeyPatch) -> dict:
    """What the typer command passes to check_body for ARGS."""
    from tfgate.cli import app

    seen: dict = {}

    def record(plans: list[str], **kw: object) -> int:
        seen.update(kw, plans=list(plans))
        return 0

    monkeypatch.setattr(lean, "check_body", record)
    import typer.main

    with pytest.raises(SystemExit) as exit_:
        typer.main.get_command(app)(["check", *args], prog_name="tfgate")
    assert exit_.value.code == 0
    return seen


@pytest.mark.parametrize("args", PLAIN, ids=" ".join)
def test_plain_command_lines_get_what_typer_gives(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    mine = lean.parse_plain(args)
    assert mine is not None
    theirs = typer_kwargs(args, monkeypatch)
    defaults = {k: v for k, v in theirs.items() if k not in mine}
    assert all(v in (None, False) for v in defaults.values()), defaults
    assert {k: theirs[k] for k in mine} == mine


@pytest.mark.parametrize("args", NOT_PLAIN, ids=" ".join)
def test_anything_else_goes_to_typer(args: list[str]) -> None:
    assert lean.parse_plain(args) is None


def test_help_and_usage_errors_read_as_before(tmp_path: Path) -> None:
    """Through `python -m tfgate`: help, a missing plan and an unknown option are typer's answers (exit 0,
    2, 2); an input error on the lean path is the same one-line error, exit 2."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tfgate", "check", *args], capture_output=True, text=True, cwd=tmp_path
        )

    assert run("--help").returncode == 0 and "Usage: tfgate check" in run("--help").stdout
    missing = run()
    assert missing.returncode == 2 and "Missing argument" in missing.stderr
    unknown = run("p.json", "--bogus")
    assert unknown.returncode == 2 and "No such option" in unknown.stderr
    absent = run("absent.json", "--no-state-checks")
    assert absent.returncode == 2
    assert absent.stderr == f"tfgate: error: plan file not found: {Path('absent.json')}\n"
    (tmp_path / "bad.json").write_text('{"format_version": "1.2", "a": 1, "a": 2')
    bad = run("bad.json", "--no-state-checks", "--format", "json")
    assert bad.returncode == 2 and bad.stderr.startswith(
        "tfgate: error: bad.json: malformed or truncated JSON"
    )
