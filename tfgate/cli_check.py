"""`tfgate check` without typer: the check's body (shared with the typer command) and a lean path for its
plain command lines.

Importing typer and building its command is about a third of a check on a small plan, so ``tfgate check
PLAN [options]`` is parsed here when every word is a plain check option (``--opt VALUE``, ``--opt=VALUE``,
a flag, or a plan). Anything else (``--help``, an unknown or abbreviated option, ``--``, a missing or
dash-leading value, no plan) goes to the typer CLI, which answers it as always; the lean path only ever runs
what typer would have run with the same options.

Also here, typer-free: the fail-closed wrapper's message and exit code for an exception (``failure``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfgate.errors import TfgateError

# check's options: name -> (parameter, kind). "path"/"str": one value (the last one given counts, as in
# click), "paths": repeatable, "flag": no value.
_OPTIONS: dict[str, tuple[str, str]] = {}
for _names, _param, _kind in (
    (("--manifest", "-m"), "manifest", "path"),
    (("--approvals", "-a"), "approvals", "paths"),
    (("--workspace", "-w"), "workspace", "str"),
    (("--terraform",), "terraform", "str"),
    (("--input-format",), "input_format", "str"),
    (("--format", "-f"), "fmt", "str"),
    (("--report-md",), "report_md", "path"),
    (("--report-html",), "report_html", "path"),
    (("--report-json",), "report_json", "path"),
    (("--report-gitlab",), "report_gitlab", "path"),
    (("--chdir", "-C"), "chdir", "path"),
    (("--audit-log",), "audit_log", "str"),
    (("--no-state-checks",), "no_state_checks", "flag"),
    (("--new-workspace",), "new_workspace", "flag"),
):
    for _name in _names:
        _OPTIONS[_name] = (_param, _kind)


def parse_plain(args: list[str]) -> dict[str, Any] | None:
    """check's keyword arguments for a plain command line (the words after ``check``), as typer would pass
    them; None when typer must parse it."""
    kw: dict[str, Any] = {"plans": []}
    words = iter(args)
    for word in words:
        if word == "-" or not word.startswith("-"):
            kw["plans"].append(word)
            continue
        name, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        option = _OPTIONS.get(name)
        if option is None:
            return None
        param, kind = option
        if kind == "flag":
            if eq:
                return None
            kw[param] = True
            continue
        if not eq:
            value = next(words, "")
        if not value or value.startswith("-"):
            return None
        if kind == "paths":
            kw.setdefault(param, []).append(Path(value))
        else:
            kw[param] = Path(value) if kind == "path" else value
    return kw if kw["plans"] else None


def check_body(
    plans: list[str],
    *,
    manifest: Path | None = None,
    approvals: list[Path] | None = None,
    workspace: str | None = None,
    terraform: str | None = None,
    input_format: str | None = None,
    fmt: str | None = None,
    report_md: Path | None = None,
    report_html: Path | None = None,
    report_json: Path | None = None,
    report_gitlab: Path | None = None,
    chdir: Path | None = None,
    no_state_checks: bool = False,
    audit_log: str | None = None,
    new_workspace: bool = False,
) -> int:
    """Run the check of PLANS and print the result; the exit code."""
    from tfgate.paths import at, working_dir
    from tfgate.pipeline import CheckOptions
    from tfgate.render import emit
    from tfgate.roots import run_gate

    root = working_dir(chdir)
    opts = CheckOptions(
        plan=plans[0], input_format=input_format, terraform=terraform, manifest=at(root, manifest),
        approvals=tuple(at(root, a) for a in approvals or ()), workspace=workspace, workdir=root,
        state_checks=not no_state_checks, new_workspace=new_workspace,
    )  # fmt: skip
    outcome = run_gate(plans, opts, audit_log=audit_log)
    reports = {"markdown": report_md, "html": report_html, "json": report_json, "gitlab": report_gitlab}
    emit(outcome, fmt, {kind: at(root, path) for kind, path in reports.items()})
    return outcome.exit_code


def failure(exc: Exception) -> tuple[str, int]:
    """The error message and exit code a command body that raised EXC exits with (fail closed: anything
    unexpected is exit 2, never a pass)."""
    if isinstance(exc, TfgateError):
        return str(exc), exc.exit_code
    if isinstance(exc, OSError):  # a bad path the command did not name itself: still a clear input error
        return (f"{exc.strerror or exc}: {exc.filename}" if exc.filename else f"{exc.strerror or exc}"), 2
    return f"internal error ({type(exc).__name__}): {exc}", 2


def run_lean(args: list[str]) -> bool:
    """Run ``tfgate check ARGS`` here and exit, when it is a plain command line; False when it is not."""
    kw = parse_plain(args)
    if kw is None:
        return False
    sys.exit(_guarded(lambda: check_body(**kw)))


def _guarded(fn: Callable[[], int]) -> int:
    try:
        return fn()
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        message, code = failure(exc)
        sys.stdout.flush()
        sys.stderr.write(f"tfgate: error: {message}\n")
        return code
