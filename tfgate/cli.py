"""tfgate command line (thin: parses options, calls the pipeline, renders, exits).

Exit codes: 0 allowed, 1 blocked by policy, 2 usage or input error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer

from tfgate import __version__
from tfgate.errors import TfgateError
from tfgate.render import emit

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
ReportGitlabOpt = Annotated[
    Path | None,
    typer.Option("--report-gitlab", help="Also write GitLab's artifacts:reports:terraform JSON here."),
]
ChdirOpt = Annotated[
    Path, typer.Option("--chdir", "-C", help="Terraform working directory (state, backend, binary plans).")
]
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
    except TfgateError as exc:
        fail(str(exc), exc.exit_code)
    except (typer.Exit, typer.Abort, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # fail closed: an internal error is never a pass
        fail(f"internal error ({type(exc).__name__}): {exc}")


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
    report_gitlab: ReportGitlabOpt = None,
    chdir: ChdirOpt = Path("."),
    no_state_checks: Annotated[
        bool, typer.Option("--no-state-checks", help="Skip state-integrity checks (not recommended).")
    ] = False,
    audit_log: AuditLogOpt = None,
    new_workspace: NewWorkspaceOpt = False,
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
                new_workspace=new_workspace,
            )
        )
        from tfgate.audit import record_check

        record_check(result, command=sys.argv, log=audit_log, cwd=chdir)
        emit(
            result,
            fmt,
            {"markdown": report_md, "html": report_html, "json": report_json, "gitlab": report_gitlab},
        )
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


_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}
AutoApproveOpt = Annotated[bool, typer.Option("--auto-approve", help="Skip the confirmation.")]
OutDirOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Output folder (default: .tfgate/plans/<time>/ in DIR).")
]


def _gate_options(positional: list[str] | None, *, allowed: int, **kw: object) -> tuple[list[str], object]:
    """Split `[POSITIONAL] [-- TERRAFORM_ARGS]` (click drops the `--`; sys.argv still has it)."""
    from tfgate.enforce.gated import GateOptions

    args = list(positional or [])
    tf_args: list[str] = []
    if "--" in sys.argv:
        after = len(sys.argv) - sys.argv.index("--") - 1
        args, tf_args = args[: len(args) - after], args[len(args) - after :]
    if len(args) > allowed:
        raise TfgateError(f"unexpected argument {args[allowed]!r}; put Terraform arguments after --")
    return args, GateOptions(tf_args=tuple(tf_args), command=tuple(sys.argv), **kw)  # type: ignore[arg-type]


def _gate_emit(fmt: str | None) -> Callable[[object], None]:
    return lambda result: emit(result, fmt, {})


@app.command(context_settings=_PASSTHROUGH)
def plan(
    args: Annotated[
        list[str] | None, typer.Argument(help="[DIR] [-- TERRAFORM_ARGS]", show_default=False)
    ] = None,
    manifest: ManifestOpt = None,
    approvals: ApprovalsOpt = None,
    workspace: WorkspaceOpt = None,
    terraform: TerraformOpt = None,
    fmt: FormatOpt = None,
    out: OutDirOpt = None,
    audit_log: AuditLogOpt = None,
    new_workspace: NewWorkspaceOpt = False,
) -> None:
    """`terraform plan -out -input=false` in DIR, then the check; writes plan.bin and report.json/md/html to
    the output folder. Exit: the gate's code (0 allowed, 1 blocked), or Terraform's when it fails."""
    from tfgate.enforce.gated import run_plan

    def body() -> int:
        rest, _ = _gate_options(args, allowed=1)
        workdir = Path(rest[0]) if rest else Path(".")
        _, opts = _gate_options(
            args, allowed=1, workdir=workdir, terraform=terraform, manifest=manifest,
            approvals=tuple(approvals or ()), workspace=workspace, out_dir=out, audit_log=audit_log,
            tf_stdout_to_stderr=(fmt or "text") != "text", new_workspace=new_workspace,
        )  # fmt: skip
        return run_plan(opts, _gate_emit(fmt))  # type: ignore[arg-type]

    raise typer.Exit(guarded(body))


def _apply_command(args: list[str] | None, *, destroy: bool, chdir: Path, **kw: object) -> int:
    from tfgate.enforce.gated import run_apply

    fmt = kw.pop("fmt")
    rest, opts = _gate_options(
        args, allowed=0 if destroy else 1, workdir=chdir, tf_stdout_to_stderr=(fmt or "text") != "text", **kw
    )
    plan_file = Path(rest[0]) if rest else None
    return run_apply(opts, _gate_emit(fmt), plan_file, destroy=destroy)  # type: ignore[arg-type]


def _apply_like(*, destroy: bool, positional_help: str, doc: str) -> Callable[..., None]:
    """`tfgate apply` and `tfgate destroy` share options and flow; they differ in the plan they make."""

    def command(
        args: list[str] | None = None,  # annotated below: the help text differs per command
        manifest: ManifestOpt = None,
        approvals: ApprovalsOpt = None,
        workspace: WorkspaceOpt = None,
        terraform: TerraformOpt = None,
        fmt: FormatOpt = None,
        chdir: ChdirOpt = Path("."),
        out: OutDirOpt = None,
        audit_log: AuditLogOpt = None,
        new_workspace: NewWorkspaceOpt = False,
        auto_approve: AutoApproveOpt = False,
    ) -> None:
        kw = {"manifest": manifest, "approvals": tuple(approvals or ()), "workspace": workspace,
              "terraform": terraform, "fmt": fmt, "out_dir": out, "audit_log": audit_log,
              "new_workspace": new_workspace, "auto_approve": auto_approve}  # fmt: skip
        raise typer.Exit(guarded(lambda: _apply_command(args, destroy=destroy, chdir=chdir, **kw)))

    command.__doc__ = doc
    command.__annotations__["args"] = Annotated[
        list[str] | None, typer.Argument(help=positional_help, show_default=False)
    ]
    return command


app.command("apply", context_settings=_PASSTHROUGH)(
    _apply_like(
        destroy=False,
        positional_help="[PLANFILE] [-- TERRAFORM_ARGS]",
        doc="""Check PLANFILE, apply exactly those bytes (one sealed copy); without it: plan, check, ask (or
    --auto-approve), apply. Exit 0 applied, 1 blocked or not confirmed, 2 error, else Terraform's code.""",
    )
)
app.command("destroy", context_settings=_PASSTHROUGH)(
    _apply_like(
        destroy=True,
        positional_help="[-- TERRAFORM_ARGS]",
        doc="`terraform plan -destroy`, then the same gate and apply as `tfgate apply`.",
    )
)


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
    from tfgate.agents.hook import main as guard_main

    raise typer.Exit(guard_main(command or [], print_config=print_config, audit_log=audit_log))


shim_app = typer.Typer(
    no_args_is_help=True, help="The `terraform`/`tofu` shim that routes apply through tfgate."
)
app.add_typer(shim_app, name="shim")


@shim_app.command("install")
def shim_install(
    directory: Annotated[Path, typer.Argument(help="Directory to put first on PATH.")],
    terraform: Annotated[
        str | None,
        typer.Option(
            "--terraform", help="The real Terraform/OpenTofu (default: PATH without DIR, then embedded)."
        ),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            "-m",
            help="Pin this manifest: the shims always use it, whatever tfgate.yaml a directory holds.",
        ),
    ] = None,
) -> None:
    """Write `terraform` and `tofu` executables into DIR: read-only commands run the real binary, apply and
    destroy go through the gate, state-mutating commands are refused unless approved (TFGATE_APPROVALS)."""
    from tfgate.enforce.shim import install

    def body() -> int:
        for path, real in install(directory, terraform, manifest):
            typer.echo(f"{path} -> {real}")
        typer.echo(f'put it first on PATH: export PATH="{directory.resolve()}:$PATH"')
        return 0

    raise typer.Exit(guarded(body))


@app.command("shim-exec", hidden=True, context_settings=_PASSTHROUGH)
def shim_exec(
    args: Annotated[list[str] | None, typer.Argument()] = None,
    real: Annotated[str, typer.Option("--real")] = "",
    name: Annotated[str, typer.Option("--name")] = "terraform",
    manifest: Annotated[str, typer.Option("--manifest")] = "",
) -> None:
    """What an installed shim runs (`python -m tfgate.enforce.shim` is the same without the CLI start-up)."""
    from tfgate.enforce.shim import main as shim_main

    pinned = ["--manifest", manifest] if manifest else []
    raise typer.Exit(shim_main(["--real", real, "--name", name, *pinned, "--", *(args or [])]))


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
    line (or when the log is empty), 2 when the log is missing or cannot be read."""
    from tfgate.audit import main_verify

    raise typer.Exit(guarded(lambda: main_verify(log, head=head, manifest=manifest)))


PlanForApprovalArg = Annotated[
    str,
    typer.Argument(
        help="The plan (saved binary, show-json, plan -json stream, - for stdin) or the JSON report of "
        "`tfgate check --format json`."
    ),
]
InputFormatOpt = Annotated[
    str | None, typer.Option("--input-format", help="Force the plan form: binary, show-json or stream.")
]


@app.command()
def approve(
    plan: PlanForApprovalArg,
    signer: Annotated[str, typer.Option("--signer", "-s", help="Your principal in allowed_signers.")],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key", "-k", help="SSH private key, or its .pub to sign through ssh-agent (ssh-keygen -Y sign)."
        ),
    ] = None,
    ttl: Annotated[str, typer.Option("--ttl", help="How long the approval stays valid: 30m, 4h, 2d.")] = "4h",
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why (required; prompted for on a terminal).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Statement file (default: approval-<digest>-<signer>.json)."),
    ] = None,
    statement_only: Annotated[
        bool, typer.Option("--statement-only", help="Write the statement only; sign it by hand.")
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Approve only addresses matching this glob (repeatable)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing statement file.")] = False,
    manifest: ManifestOpt = None,
    workspace: WorkspaceOpt = None,
    terraform: TerraformOpt = None,
    input_format: InputFormatOpt = None,
    chdir: ChdirOpt = Path("."),
    audit_log: AuditLogOpt = None,
) -> None:
    """Sign an approval of a plan's destructive changes: writes FILE (the statement) and FILE.sig (an SSH
    signature, namespace tfgate, made by `ssh-keygen -Y sign`). Shows what is approved and asks first
    unless --yes. Exit 0 written, 1 declined, 2 error."""
    from tfgate.approvals.commands import ApproveOptions, run_approve
    from tfgate.approvals.target import PlanOptions

    interactive = sys.stdin.isatty()
    opts = ApproveOptions(
        plan=PlanOptions(plan, manifest, workspace, terraform, input_format, chdir),
        signer=signer, key=key, ttl=ttl, reason=reason, output=output, statement_only=statement_only,
        yes=yes, force=force, only=tuple(only or ()), audit_log=audit_log, command=tuple(sys.argv),
    )  # fmt: skip
    raise typer.Exit(
        guarded(
            lambda: run_approve(
                opts,
                echo=lambda text: typer.echo(text, err=True),
                confirm=lambda text: typer.confirm(text, default=False, err=True),
                prompt_reason=lambda: typer.prompt("Reason (goes into the statement and the audit log)"),
                interactive=interactive,
            )
        )
    )


approvals_app = typer.Typer(no_args_is_help=True, help="Signed approvals.")
app.add_typer(approvals_app, name="approvals")


@approvals_app.command("verify")
def approvals_verify(
    paths: Annotated[list[Path], typer.Argument(help="Approval statement files or directories.")],
    plan: Annotated[
        str, typer.Option("--plan", "-p", help="The plan (any form `tfgate check` reads) or a JSON report.")
    ],
    manifest: ManifestOpt = None,
    workspace: WorkspaceOpt = None,
    terraform: TerraformOpt = None,
    input_format: InputFormatOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    chdir: ChdirOpt = Path("."),
) -> None:
    """Explain, approval by approval, what counts and why not. Exit 0 when the approvals make the plan's
    protected changes pass (and nothing else in the plan blocks), 1 otherwise, 2 on an input error.
    State-integrity checks are not run here: `tfgate check` remains the gate."""
    from tfgate.approvals.commands import run_verify
    from tfgate.approvals.target import PlanOptions

    def body() -> int:
        if fmt not in ("text", "json"):
            raise TfgateError(f"unknown --format {fmt!r}; expected text or json")
        text, code = run_verify(
            paths, PlanOptions(plan, manifest, workspace, terraform, input_format, chdir), fmt=fmt
        )
        sys.stdout.write(text)
        return code

    raise typer.Exit(guarded(body))


state_app = typer.Typer(help="State integrity checks.", no_args_is_help=True)
app.add_typer(state_app, name="state")


@state_app.command("check")
def state_check(
    directory: Annotated[Path, typer.Argument(help="Terraform working directory.")] = Path("."),
    manifest: ManifestOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Check the working directory's state alone (missing, stale, swapped, unversioned, unlocked).
    Exit 0 healthy, 1 a blocking finding, 2 an input error."""
    from tfgate.pipeline import run_state_check

    def body() -> int:
        result = run_state_check(directory, manifest_path=manifest, workspace=workspace)
        emit(result, fmt, {})
        return result.exit_code

    raise typer.Exit(guarded(body))


@app.command()
def comment(
    plan: Annotated[str, typer.Argument(help="The plan, in any form `tfgate check` reads.")],
    repo: Annotated[
        str | None,
        typer.Option(
            "--repo",
            help="GitHub OWNER/NAME (default GITHUB_REPOSITORY); GitLab project id or path "
            "(default CI_PROJECT_ID).",
        ),
    ] = None,
    pr: Annotated[
        int | None,
        typer.Option(
            "--pr",
            help="Pull request number, or merge request IID (default: the event, CI_MERGE_REQUEST_IID).",
        ),
    ] = None,
    sha: Annotated[
        str | None,
        typer.Option(
            "--sha",
            help="The planned commit, for the status (default: the event's head, GITHUB_SHA, CI_COMMIT_SHA).",
        ),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url", help="API URL (GitHub Enterprise: default GITHUB_API_URL; GitLab: CI_API_V4_URL)."
        ),
    ] = None,
    forge: Annotated[
        str | None,
        typer.Option(
            "--forge", help="github or gitlab (default: gitlab when GITLAB_CI is set, else github)."
        ),
    ] = None,
    report_gitlab: ReportGitlabOpt = None,
    allow_comment_failure: Annotated[
        bool,
        typer.Option("--allow-comment-failure", help="Report a failure to comment but do not fail on it."),
    ] = False,
    manifest: ManifestOpt = None,
    approvals: ApprovalsOpt = None,
    workspace: WorkspaceOpt = None,
    terraform: TerraformOpt = None,
    chdir: ChdirOpt = Path("."),
    fmt: FormatOpt = None,
    audit_log: AuditLogOpt = None,
) -> None:
    """Check PLAN, post the Markdown report as the pull or merge request's comment for this workspace
    (updated in place on later runs) and set the commit status tfgate/<workspace>. Token: GITHUB_TOKEN;
    GitLab: GITLAB_TOKEN (else CI_JOB_TOKEN). Exit 1 when blocked; 2 when commenting fails (unless
    --allow-comment-failure) or on any input error."""
    from tfgate.forge.comment import choose_forge, open_forge, post, resolve_target
    from tfgate.forge.http import ForgeError
    from tfgate.pipeline import CheckOptions, run_check

    def body() -> int:
        target = resolve_target(repo, pr, sha, api_url, choose_forge(forge))
        result = run_check(
            CheckOptions(plan=plan, terraform=terraform, manifest=manifest, approvals=tuple(approvals or ()),
                         workspace=workspace, workdir=chdir)
        )  # fmt: skip
        from tfgate.audit import record_check

        record_check(result, command=sys.argv, log=audit_log, cwd=chdir)
        emit(result, fmt, {"gitlab": report_gitlab})
        try:
            typer.echo(f"tfgate: {post(result, target, open_forge(target))}", err=True)
        except ForgeError as exc:
            if not allow_comment_failure:
                raise
            typer.echo(f"tfgate: warning: could not comment (tolerated): {exc}", err=True)
        return result.exit_code

    raise typer.Exit(guarded(body))


def main() -> None:
    """The `tfgate` command. A short-lived process: the cyclic garbage collector stays off, so a large plan's
    100,000 change objects are not traversed again and again while the report is built (nothing tfgate
    makes is cyclic garbage worth collecting before exit)."""
    import gc

    gc.disable()
    app()
