"""tfgate command line (thin: parses options, calls the pipeline, renders, exits).

Exit codes: 0 allowed, 1 blocked by policy, 2 usage or input error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from tfgate import __version__, cli_approvals
from tfgate.cli_common import (
    DEMO_KEEP_HELP,
    DEMO_TERRAFORM_HELP,
    ApprovalsOpt,
    AuditLogOpt,
    ChdirOpt,
    FormatOpt,
    ManifestOpt,
    NewWorkspaceOpt,
    ReportGitlabOpt,
    ReportHtmlOpt,
    ReportJsonOpt,
    ReportMdOpt,
    TerraformOpt,
    WorkspaceOpt,
    gate_emit,
    gate_options,
    guarded,
    tidy_help,
)
from tfgate.cli_protect import make_protect_app
from tfgate.errors import TfgateError
from tfgate.paths import at, working_dir
from tfgate.render import emit

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Terraform plan gatekeeper: blocks destroys of protected resources without a signed approval.",
    pretty_exceptions_enable=False,
)


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


PlansArg = Annotated[
    list[str],
    typer.Argument(
        metavar="PLAN...",
        help="Saved binary plan, `terraform show -json` output, `terraform plan -json` stream, or - for "
        "stdin. Several plans (or NAME=PATH): one combined result, a verdict per root (its directory).",
        show_default=False,
    ),
]


@app.command()
def check(
    plans: PlansArg,
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
    chdir: ChdirOpt = None,
    no_state_checks: Annotated[
        bool, typer.Option("--no-state-checks", help="Skip state-integrity checks (not recommended).")
    ] = False,
    audit_log: AuditLogOpt = None,
    new_workspace: NewWorkspaceOpt = False,
) -> None:
    """Check a plan: exit 0 if allowed, 1 if blocked by policy, 2 on a usage or input error. With several
    plans: a verdict per root and the worst exit code overall (an input error in one root is exit 2, the
    others still reported)."""
    from tfgate.cli_check import check_body

    kw = {"manifest": manifest, "approvals": approvals, "workspace": workspace, "terraform": terraform,
          "input_format": input_format, "fmt": fmt, "report_md": report_md, "report_html": report_html,
          "report_json": report_json, "report_gitlab": report_gitlab, "chdir": chdir,
          "no_state_checks": no_state_checks, "audit_log": audit_log, "new_workspace": new_workspace}  # fmt: skip
    raise typer.Exit(guarded(lambda: check_body(plans, **kw)))


@app.command()
def demo(
    keep: Annotated[Path | None, typer.Option("--keep", metavar="DIR", help=DEMO_KEEP_HELP)] = None,
    terraform: Annotated[str | None, typer.Option("--terraform", help=DEMO_TERRAFORM_HELP)] = None,
    fmt: FormatOpt = None,
) -> None:
    """The whole story on a bundled example, offline: production state, a plan that silently destroys the
    protected database, the gate blocking it, a throwaway SSH key signing an approval, and `tfgate apply`
    applying exactly that plan. Exit 0 when the story ran as told."""
    from tfgate.demo import run_demo

    raise typer.Exit(guarded(lambda: run_demo(keep=keep, terraform=terraform, fmt=fmt)))


@app.command()
def init(
    directory: Annotated[
        Path | None, typer.Argument(metavar="[DIR]", help="The Terraform root (as -C DIR).")
    ] = None,
    workspace: WorkspaceOpt = None,
    chdir: ChdirOpt = None,
) -> None:
    """Start here: write DIR/tfgate.yaml (protecting what the current state holds of the catalog's
    data-bearing types, listed by address for you to edit), DIR/allowed_signers (an example line, the
    namespaces tfgate needs) and DIR/approvals/, then print the next steps. Never overwrites: an existing
    file is exit 2 and nothing is written."""
    from tfgate.pipeline import resolve_workspace
    from tfgate.scaffold import init as scaffold

    def body() -> int:
        if directory is not None and chdir is not None:
            raise TfgateError(
                f"give the directory once: `tfgate init {directory}` or `tfgate init -C {chdir}`"
            )
        root = working_dir(directory if directory is not None else chdir)
        return scaffold(root, workspace=resolve_workspace(root, workspace), echo=typer.echo)

    raise typer.Exit(guarded(body))


_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}
AutoApproveOpt = Annotated[bool, typer.Option("--auto-approve", help="Skip the confirmation.")]
OutDirOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Output folder (default: .tfgate/plans/<time>/ in DIR).")
]


@app.command(context_settings=_PASSTHROUGH)
def plan(
    args: Annotated[
        list[str] | None,
        typer.Argument(metavar="[DIR] [-- TERRAFORM_ARGS]", help="DIR: as -C DIR.", show_default=False),
    ] = None,
    manifest: ManifestOpt = None,
    approvals: ApprovalsOpt = None,
    workspace: WorkspaceOpt = None,
    terraform: TerraformOpt = None,
    fmt: FormatOpt = None,
    out: OutDirOpt = None,
    audit_log: AuditLogOpt = None,
    new_workspace: NewWorkspaceOpt = False,
    chdir: ChdirOpt = None,
) -> None:
    """`terraform plan -out -input=false` in DIR, then the check; writes plan.bin and report.json/md/html to
    the output folder. Exit: the gate's code (0 allowed, 1 blocked), or Terraform's when it fails."""
    from tfgate.enforce.gated import run_plan

    def body() -> int:
        kw = {"terraform": terraform, "manifest": manifest, "approvals": approvals, "workspace": workspace,
              "out_dir": out, "audit_log": audit_log, "new_workspace": new_workspace, "fmt": fmt}  # fmt: skip
        rest, _ = gate_options(args, allowed=1, chdir=chdir, **kw)
        if rest and chdir is not None:
            raise TfgateError(f"give the directory once: `tfgate plan {rest[0]}` or `tfgate plan -C {chdir}`")
        _, opts = gate_options(args, allowed=1, chdir=Path(rest[0]) if rest else chdir, **kw)
        return run_plan(opts, gate_emit(fmt))  # type: ignore[arg-type]

    raise typer.Exit(guarded(body))


def _apply_command(args: list[str] | None, *, destroy: bool, chdir: Path | None, **kw: object) -> int:
    from tfgate.enforce.gated import run_apply

    rest, opts = gate_options(args, allowed=0 if destroy else 1, chdir=chdir, **kw)  # type: ignore[arg-type]
    plan_file = at(opts.workdir, Path(rest[0])) if rest else None  # type: ignore[attr-defined]
    return run_apply(opts, gate_emit(kw["fmt"]), plan_file, destroy=destroy)  # type: ignore[arg-type]


def _apply_like(*, destroy: bool, positional_help: str, doc: str) -> Callable[..., None]:
    """`tfgate apply` and `tfgate destroy` share options and flow; they differ in the plan they make."""

    def command(
        args: list[str] | None = None,  # annotated below: the help text differs per command
        manifest: ManifestOpt = None,
        approvals: ApprovalsOpt = None,
        workspace: WorkspaceOpt = None,
        terraform: TerraformOpt = None,
        fmt: FormatOpt = None,
        chdir: ChdirOpt = None,
        out: OutDirOpt = None,
        audit_log: AuditLogOpt = None,
        new_workspace: NewWorkspaceOpt = False,
        auto_approve: AutoApproveOpt = False,
    ) -> None:
        kw = {"manifest": manifest, "approvals": approvals, "workspace": workspace,
              "terraform": terraform, "fmt": fmt, "out_dir": out, "audit_log": audit_log,
              "new_workspace": new_workspace, "auto_approve": auto_approve}  # fmt: skip
        raise typer.Exit(guarded(lambda: _apply_command(args, destroy=destroy, chdir=chdir, **kw)))

    command.__doc__ = doc
    command.__annotations__["args"] = Annotated[
        list[str] | None, typer.Argument(metavar=positional_help, show_default=False)
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
    command: Annotated[list[str] | None, typer.Argument(help="`-- COMMAND...` to judge, or `install`.")] = None,
    agent: Annotated[str, typer.Option("--agent", help="claude codex gemini cursor copilot windsurf cline kiro")] = "claude",
    scope: Annotated[str, typer.Option("--scope", help="install into: project or user")] = "project",
    print_config: Annotated[bool, typer.Option("--print-config", help="Print the Claude Code hook.")] = False,
    audit_log: AuditLogOpt = None,
) -> None:  # fmt: skip
    """AI-agent guard: an agent's tool hook (its JSON on stdin, answered in its terms; hooks run the lean
    `tfgate-guard`), `-- COMMAND...` judged, or `install --agent NAME --scope project|user`. Exit 0 allowed,
    2 blocked (Copilot's and Cline's hooks: exit 0 with a deny answer, as those agents need)."""
    from tfgate.agents.hook import cli_guard

    raise typer.Exit(cli_guard(command or [], agent, scope, print_config, audit_log, "--" in sys.argv))


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


shim_app.command("approve", context_settings=_PASSTHROUGH)(cli_approvals.shim_approve)


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
app.add_typer(make_protect_app(guarded), name="protect")


audit_app.command("verify")(cli_approvals.audit_verify)
audit_app.command("checkpoint")(cli_approvals.audit_checkpoint)


PlanForApprovalArg = Annotated[
    str,
    typer.Argument(
        metavar="PLAN",
        help="The plan (saved binary, show-json, plan -json stream, - for stdin) or the JSON report of "
        "`tfgate check --format json`.",
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
            "--key",
            "-k",
            show_default=False,
            help="SSH private key, or its .pub to sign through ssh-agent (ssh-keygen -Y sign). "
            "Required unless --statement-only.",
        ),
    ] = None,
    ttl: Annotated[str, typer.Option("--ttl", help="How long the approval stays valid: 30m, 4h, 2d.")] = "4h",
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why (required; prompted for on a terminal).")
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE|DIR/",
            help="Statement file, or a directory to write approval-<digest>-<signer>.json into (an existing "
            "one, or a path ending in /; default: DIR/approvals/ when it exists, else DIR).",
        ),
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
    chdir: ChdirOpt = None,
    audit_log: AuditLogOpt = None,
) -> None:
    """Sign an approval of a plan's destructive changes: writes FILE (the statement) and FILE.sig (an SSH
    signature, namespace tfgate, made by `ssh-keygen -Y sign`). Shows what is approved and asks first
    unless --yes. Exit 0 written, 1 declined, 2 error."""
    from tfgate.approvals.commands import ApproveOptions, run_approve
    from tfgate.approvals.target import PlanOptions

    interactive = sys.stdin.isatty()

    def body() -> int:
        root = working_dir(chdir)
        opts = ApproveOptions(
            plan=PlanOptions(at(root, plan), at(root, manifest), workspace, terraform, input_format, root),
            signer=signer, key=at(root, key), ttl=ttl, reason=reason,
            output=at(root, Path(output)) if output else None, statement_only=statement_only, yes=yes,
            force=force, only=tuple(only or ()), audit_log=audit_log, command=tuple(sys.argv),
            output_is_dir=bool(output and output.endswith("/")),
        )  # fmt: skip
        return run_approve(
            opts,
            echo=lambda text: typer.echo(text, err=True),
            confirm=lambda text: typer.confirm(text, default=False, err=True),
            prompt_reason=lambda: typer.prompt("Reason (goes into the statement and the audit log)"),
            interactive=interactive,
        )

    raise typer.Exit(guarded(body))


approvals_app = typer.Typer(no_args_is_help=True, help="Signed approvals.")
app.add_typer(approvals_app, name="approvals")


@approvals_app.command("verify")
def approvals_verify(
    paths: Annotated[
        list[Path], typer.Argument(metavar="APPROVAL...", help="Approval statement files or directories.")
    ],
    plan: Annotated[
        str,
        typer.Option(
            "--plan", "-p", metavar="PLAN", help="The plan (any form `tfgate check` reads) or a JSON report."
        ),
    ],
    manifest: ManifestOpt = None,
    workspace: WorkspaceOpt = None,
    terraform: TerraformOpt = None,
    input_format: InputFormatOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    chdir: ChdirOpt = None,
) -> None:
    """Explain, approval by approval, what counts and why not. Exit 0 when the approvals make the plan's
    protected changes pass (and nothing else in the plan blocks), 1 otherwise, 2 on an input error.
    State-integrity checks are not run here: `tfgate check` remains the gate."""
    from tfgate.approvals.commands import run_verify
    from tfgate.approvals.target import PlanOptions

    def body() -> int:
        if fmt not in ("text", "json"):
            raise TfgateError(f"unknown --format {fmt!r}; expected text or json")
        root = working_dir(chdir)
        text, code = run_verify(
            [at(root, p) for p in paths],
            PlanOptions(at(root, plan), at(root, manifest), workspace, terraform, input_format, root),
            fmt=fmt,
        )
        sys.stdout.write(text)
        return code

    raise typer.Exit(guarded(body))


state_app = typer.Typer(help="State integrity checks.", no_args_is_help=True)
app.add_typer(state_app, name="state")


@state_app.command("check")
def state_check(
    directory: Annotated[
        Path | None, typer.Argument(metavar="[DIR]", help="Terraform working directory (as -C DIR).")
    ] = None,
    manifest: ManifestOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = None,
    chdir: ChdirOpt = None,
) -> None:
    """Check the working directory's state alone (missing, stale, swapped, unversioned, unlocked).
    Exit 0 healthy, 1 a blocking finding, 2 an input error."""
    from tfgate.pipeline import run_state_check

    def body() -> int:
        if directory is not None and chdir is not None:
            raise TfgateError(
                f"give the directory once: `state check {directory}` or `state check -C {chdir}`"
            )
        root = working_dir(directory if directory is not None else chdir)
        result = run_state_check(root, manifest_path=at(root, manifest), workspace=workspace)
        emit(result, fmt, {})
        return result.exit_code

    raise typer.Exit(guarded(body))


@app.command()
def comment(
    plans: Annotated[
        list[str],
        typer.Argument(
            metavar="PLAN...",
            help="The plan, in any form `tfgate check` reads; several plans (or NAME=PATH): one combined "
            "comment and a status per root.",
            show_default=False,
        ),
    ],
    repo: Annotated[
        str | None, typer.Option("--repo", help="OWNER/NAME, or GitLab project (default: from CI).")
    ] = None,
    pr: Annotated[
        int | None, typer.Option("--pr", help="Pull/merge request number (default: from CI).")
    ] = None,
    sha: Annotated[str | None, typer.Option("--sha", help="The planned commit (default: from CI).")] = None,
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="API URL (default: GITHUB_API_URL, CI_API_V4_URL).")
    ] = None,
    forge: Annotated[
        str | None, typer.Option("--forge", help="github or gitlab (default: gitlab when GITLAB_CI is set).")
    ] = None,
    report_md: ReportMdOpt = None,
    report_html: ReportHtmlOpt = None,
    report_json: ReportJsonOpt = None,
    report_gitlab: ReportGitlabOpt = None,
    allow_comment_failure: Annotated[
        bool,
        typer.Option("--allow-comment-failure", help="Report a failure to comment but do not fail on it."),
    ] = False,
    manifest: ManifestOpt = None,
    approvals: ApprovalsOpt = None,
    workspace: WorkspaceOpt = None,
    terraform: TerraformOpt = None,
    chdir: ChdirOpt = None,
    fmt: FormatOpt = None,
    audit_log: AuditLogOpt = None,
) -> None:
    """Check PLAN, post the Markdown report as the pull or merge request's comment for this workspace
    (updated in place on later runs) and set the commit status tfgate/<workspace>. Several plans: one
    comment with a table of roots, statuses tfgate/<root> and tfgate overall. Token: GITHUB_TOKEN; GitLab:
    GITLAB_TOKEN (else CI_JOB_TOKEN). Exit 1 when blocked; 2 when commenting fails (unless
    --allow-comment-failure) or on any input error."""
    from tfgate.forge.comment import choose_forge, publish, resolve_target
    from tfgate.pipeline import CheckOptions
    from tfgate.roots import run_gate

    def body() -> int:
        root = working_dir(chdir)
        target = resolve_target(repo, pr, sha, api_url, choose_forge(forge))
        opts = CheckOptions(plan=plans[0], terraform=terraform, manifest=at(root, manifest),
                            approvals=tuple(at(root, a) for a in approvals or ()), workspace=workspace,
                            workdir=root)  # fmt: skip
        outcome = run_gate(plans, opts, audit_log=audit_log)
        reports = {"markdown": report_md, "html": report_html, "json": report_json, "gitlab": report_gitlab}
        emit(outcome, fmt, {kind: at(root, path) for kind, path in reports.items()})
        publish(outcome, target, tolerate=allow_comment_failure, echo=lambda line: typer.echo(line, err=True),
                workdir=root)  # fmt: skip
        return outcome.exit_code

    raise typer.Exit(guarded(body))


def main() -> None:
    """The `tfgate` command. A short-lived process: the cyclic garbage collector stays off, so a large plan's
    100,000 change objects are not traversed again and again while the report is built (nothing tfgate
    makes is cyclic garbage worth collecting before exit)."""
    import gc

    gc.disable()
    command = typer.main.get_command(_running(app))
    tidy_help(command)
    command(prog_name="tfgate")


def _running(app: typer.Typer) -> typer.Typer:
    """The app with only the command this process runs, when a plain command is named first: typer
    inspects every registered command's signature on each start, most of `tfgate check`'s start-up work
    (help, errors and usage read the same; anything else gets the whole app)."""
    import copy

    name = sys.argv[1] if len(sys.argv) > 1 else None
    for info in app.registered_commands:
        if info.callback and (info.name or typer.main.get_command_name(info.callback.__name__)) == name:
            view = copy.copy(app)
            view.registered_commands = [info]
            view.registered_groups = []
            return view
    return app
