"""tfgate command line (thin: parses options, calls the pipeline, renders, exits).

Exit codes: 0 allowed, 1 blocked by policy, 2 usage or input error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer

from tfgate import __version__
from tfgate.errors import TfgateError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Terraform plan gatekeeper: blocks destroys of protected resources without a signed approval.",
    pretty_exceptions_enable=False,
)

T = TypeVar("T")

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
        "--terraform", help="Terraform/OpenTofu binary, or 'embedded' (default: TFGATE_TERRAFORM, PATH)."
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", "-f", help="Output format: text, json, markdown or html (default: text)."),
]
ReportMdOpt = Annotated[Path | None, typer.Option("--report-md", help="Also write the Markdown report here.")]
ReportHtmlOpt = Annotated[Path | None, typer.Option("--report-html", help="Also write the HTML report here.")]
ReportJsonOpt = Annotated[Path | None, typer.Option("--report-json", help="Also write the JSON report here.")]
ChdirOpt = Annotated[
    Path, typer.Option("--chdir", "-C", help="Terraform working directory (state, backend, binary plans).")
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
    except TfgateError as exc:
        fail(str(exc), exc.exit_code)
    except (typer.Exit, typer.Abort, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # fail closed: an internal error is never a pass
        fail(f"internal error ({type(exc).__name__}): {exc}")


def use_color(stream: object = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def emit(result: object, fmt: str | None, reports: dict[str, Path | None]) -> None:
    """Print the result in the chosen format and write any extra report files."""
    from tfgate.render import render

    for kind, path in reports.items():
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(result, kind), encoding="utf-8")  # type: ignore[arg-type]
    chosen = fmt or "text"
    sys.stdout.write(render(result, chosen, color=chosen == "text" and use_color()))  # type: ignore[arg-type]
    sys.stdout.flush()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tfgate {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """tfgate: a hard check between anyone (a person, a CI job, an AI agent) and `terraform apply`."""


@app.command()
def check(
    plan: Annotated[
        str,
        typer.Argument(
            help="Saved binary plan, `terraform show -json` output, "
            "`terraform plan -json` stream, or - for stdin."
        ),
    ],
    manifest: ManifestOpt = None,
    approvals: ApprovalsOpt = None,
    workspace: WorkspaceOpt = None,
    terraform: TerraformOpt = None,
    input_format: Annotated[
        str | None, typer.Option("--input-format", help="Force the plan form: binary, show-json or stream.")
    ] = None,
    fmt: FormatOpt = None,
    report_md: ReportMdOpt = None,
    report_html: ReportHtmlOpt = None,
    report_json: ReportJsonOpt = None,
    chdir: ChdirOpt = Path("."),
    no_state_checks: Annotated[
        bool, typer.Option("--no-state-checks", help="Skip state-integrity checks (not recommended).")
    ] = False,
    audit_log: AuditLogOpt = None,
) -> None:
    """Check a plan: exit 0 if allowed, 1 if blocked by policy, 2 on a usage or input error."""
    from tfgate.pipeline import CheckOptions, run_check

    def body() -> int:
        result = run_check(
            CheckOptions(
                plan=plan,
                input_format=input_format,
                terraform=terraform,
                manifest=manifest,
                approvals=tuple(approvals or ()),
                workspace=workspace,
                workdir=chdir,
                state_checks=not no_state_checks,
            )
        )
        from tfgate.audit import record_check

        record_check(result, command=sys.argv, log=audit_log, cwd=chdir)
        emit(result, fmt, {"markdown": report_md, "html": report_html, "json": report_json})
        return result.exit_code

    raise typer.Exit(guarded(body))


@app.command()
def demo(
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Build the demo in this directory and keep it.")
    ] = None,
    terraform: TerraformOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Run the whole story on a bundled example: production state, a plan that silently destroys the
    protected database, and the gate blocking it. Exits with the gate's code (1: blocked)."""
    from tfgate.demo import run_demo

    raise typer.Exit(guarded(lambda: run_demo(keep=keep, terraform=terraform, fmt=fmt)))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def guard(
    command: Annotated[
        list[str] | None, typer.Argument(help="Generic form: the command line to judge (after --).")
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the .claude/settings.json hook snippet.")
    ] = False,
    audit_log: AuditLogOpt = None,
) -> None:
    """AI-agent guard. As a Claude Code PreToolUse hook it reads the hook JSON on stdin; `tfgate guard --
    COMMAND...` judges a command line. Exit 0: allowed; 2: blocked (Terraform apply, destroy or
    state-mutating commands that bypass tfgate, or input it cannot understand)."""
    from tfgate.guard import main as guard_main

    raise typer.Exit(guard_main(command or [], print_config=print_config, audit_log=audit_log))


audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    log: Annotated[Path | None, typer.Argument(help="Audit log (default: the configured log).")] = None,
    head: Annotated[
        str | None, typer.Option("--head", help="A head hash recorded earlier that must still be in the log.")
    ] = None,
    manifest: ManifestOpt = None,
) -> None:
    """Verify the hash chain: exit 0 when intact, 1 naming every edited, deleted, inserted or reordered
    line, 2 when the log cannot be read."""
    from tfgate.audit import main_verify

    raise typer.Exit(guarded(lambda: main_verify(log, head=head, manifest=manifest)))


def main() -> None:
    app()
