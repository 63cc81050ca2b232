"""Gated `tfgate plan`, `tfgate apply` and `tfgate destroy`: Terraform runs only behind the check.

`plan` runs ``terraform plan -out=FILE -input=false`` into an output folder (``.tfgate/plans/<time>/``),
checks the saved plan and writes the reports beside it. `apply` copies the saved plan into a private
temporary directory, checks that copy, re-hashes the copy and the original immediately before applying,
and applies exactly that copy (``terraform apply -input=false COPY``), so the file cannot be swapped
between check and apply. Without a plan file it plans first. `destroy` plans with ``-destroy`` and then
does the same. Blocked, error, or a plan file changed after the check: nothing is applied.

Terraform streams its output live (to stderr when tfgate's own output is machine-readable); SIGINT and
SIGTERM are forwarded to Terraform exactly once each (it runs in its own process group, so a terminal's
Ctrl-C does not reach it twice), so it stops cleanly and releases its state lock; tfgate then exits with
Terraform's code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tfgate.errors import TfgateError
from tfgate.plan.terraform import clean_env

PLANS_DIR = Path(".tfgate") / "plans"
REPORT_FORMATS = {"json": "report.json", "markdown": "report.md", "html": "report.html"}


class PlanChangedError(TfgateError):
    """The saved plan file changed between the check and the apply."""


@dataclass(frozen=True)
class GateOptions:
    """What the gated commands share (the CLI fills it in)."""

    workdir: Path = field(default_factory=lambda: Path("."))
    terraform: str | None = None
    manifest: Path | None = None
    approvals: tuple[Path, ...] = ()
    workspace: str | None = None
    #: Output folder for the plan file and reports (default: WORKDIR/.tfgate/plans/<time>/).
    out_dir: Path | None = None
    #: Extra Terraform arguments (for plan when tfgate plans, for apply with a given plan file).
    tf_args: tuple[str, ...] = ()
    audit_log: str | None = None
    #: Where Terraform's stdout goes: inherit tfgate's stdout, or stderr when stdout carries JSON etc.
    tf_stdout_to_stderr: bool = False
    command: tuple[str, ...] = ()
    #: A human confirms the workspace is new (see tfgate.state: protected creates on an empty state).
    new_workspace: bool = False
    #: `--auto-approve`: apply/destroy without a plan file do not ask "Do you want to perform these actions?".
    auto_approve: bool = False
    #: TF_CLI_ARGS* are already merged into the command (the shim): Terraform runs without them.
    cli_args_merged: bool = False
    #: Forward one signal in all to Terraform (the privileged side: sudo relays the caller's signals, and a
    #: second interrupt makes Terraform exit at once, without saving the state of what it changed).
    one_signal: bool = False


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_streamed(
    argv: Sequence[str],
    *,
    cwd: Path,
    stdout_to_stderr: bool = False,
    env: dict[str, str] | None = None,
    one_signal: bool = False,
) -> int:
    """Run Terraform with live output; forward SIGINT/SIGTERM to it once each (ONE_SIGNAL: the first signal
    only); return its exit code."""
    stdout = sys.stderr.fileno() if stdout_to_stderr else None
    sys.stdout.flush()
    sys.stderr.flush()
    forwarded: list[int] = []
    procs: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: object) -> None:
        if one_signal and forwarded:
            return
        forwarded.append(signum)
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            previous[sig] = signal.signal(sig, forward)
    try:
        try:
            proc = subprocess.Popen(
                list(argv), cwd=cwd, stdout=stdout, stdin=subprocess.DEVNULL, start_new_session=True, env=env
            )
        except OSError as exc:
            raise TfgateError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
        procs.append(proc)
        for signum in forwarded:  # arrived while starting
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code < 0:
        return 128 - code
    if forwarded and code == 0:
        return 128 + forwarded[0]  # interrupted: never report success for a cut-short run
    return code


def _terraform(opts: GateOptions) -> list[str]:
    from tfgate.plan.terraform import find_terraform

    return find_terraform(opts.terraform)


def _out_dir(opts: GateOptions) -> Path:
    from tfgate.render import report_dir

    if opts.out_dir is not None:
        out = opts.out_dir if opts.out_dir.is_absolute() else opts.workdir.resolve() / opts.out_dir
    else:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        out = opts.workdir.resolve() / PLANS_DIR / stamp
    return report_dir(out)


@dataclass(frozen=True)
class PlanRun:
    plan_file: Path
    out_dir: Path
    exit_code: int  # Terraform's exit code (0 ok)


def terraform_plan(opts: GateOptions, *, destroy: bool = False) -> PlanRun:
    """`terraform plan -out=OUT/plan.bin -input=false [-destroy] TF_ARGS`, output streamed."""
    tf = _terraform(opts)
    out = _out_dir(opts)
    plan_file = out / "plan.bin"
    args = [
        *tf,
        "plan",
        f"-out={plan_file}",
        "-input=false",
        *(["-destroy"] if destroy else []),
        *(["-lock=false"] if _agent_of_protected(opts) else []),  # the state is not theirs to lock
        *opts.tf_args,
    ]
    code = run_streamed(
        args, cwd=opts.workdir, stdout_to_stderr=opts.tf_stdout_to_stderr,
        env=clean_env() if opts.cli_args_merged else None,
    )  # fmt: skip
    if code == 2 and "-detailed-exitcode" in opts.tf_args:
        code = 0
    return PlanRun(plan_file, out, code)


def check(opts: GateOptions, plan_file: Path, shown: Path | None = None):
    """The gate itself: tfgate.pipeline.run_check on a saved binary plan (SHOWN: the file the way out names
    when PLAN_FILE is a private copy of it)."""
    from tfgate.pipeline import CheckOptions, run_check

    return run_check(
        CheckOptions(
            plan=str(plan_file),
            input_format="binary",
            terraform=opts.terraform,
            manifest=opts.manifest,
            approvals=opts.approvals,
            workspace=opts.workspace,
            workdir=opts.workdir,
            new_workspace=opts.new_workspace,
            shown_plan=str(shown or plan_file),
            then="apply",
        )
    )


def write_reports(result: object, out_dir: Path) -> list[Path]:
    """report.json / report.md / report.html beside the plan (formats not available yet are skipped)."""
    from tfgate.render import render, write_report

    written = []
    for fmt, name in REPORT_FORMATS.items():
        try:
            text = render(result, fmt)  # type: ignore[arg-type]
        except Exception:
            if fmt == "json":
                raise
            continue
        written.append(write_report(out_dir / name, text))
    return written


def _say(message: str) -> None:
    sys.stderr.write(f"tfgate: {message}\n")
    sys.stderr.flush()


Emit = Callable[[object], None]


def _warm_up(opts: GateOptions | None = None) -> None:
    """Import and compile what the check and the reports need (modules, catalog, manifest, templates) while
    Terraform plans: the interpreter is otherwise idle in waitpid, so this hides most of tfgate's own cost.
    Errors are left for the check itself to raise, with its messages."""
    import contextlib

    from tfgate import audit, pipeline, state  # noqa: F401 - imported to warm up
    from tfgate.plan import loader  # noqa: F401
    from tfgate.policy import evaluate  # noqa: F401
    from tfgate.policy.catalog import load_catalog
    from tfgate.render import json as json_render  # noqa: F401
    from tfgate.render.html import _template as html_template
    from tfgate.render.markdown import _template as md_template

    load_catalog()
    md_template()
    html_template()
    if opts is not None:
        from tfgate.policy.manifest import load_manifest
        from tfgate.state.backend import configured_backend

        with contextlib.suppress(Exception):
            load_manifest(opts.manifest, cwd=opts.workdir)  # parsed once per process: the check reuses it
        with contextlib.suppress(Exception):
            configured_backend(opts.workdir)  # loads python-hcl2 if the backend block needs it


def pinned(opts: GateOptions) -> GateOptions:
    """OPTS under the system pin (/etc/tfgate/config.yaml): its manifest, Terraform and audit log; a non-root
    user's overrides of them refused (TfgateError)."""
    from tfgate import sysconfig

    r = sysconfig.resolve(
        opts.workdir, manifest=opts.manifest, terraform=opts.terraform, audit_log=opts.audit_log
    )
    return dataclasses.replace(opts, manifest=r.manifest, terraform=r.terraform, audit_log=r.audit_log)


def run_plan(opts: GateOptions, emit: Emit, *, destroy: bool = False) -> int:
    """`tfgate plan`: plan, check, reports; exits with the gate's code (or Terraform's when it failed)."""
    import threading

    from tfgate.audit import record_check

    opts = pinned(opts)
    warm = threading.Thread(target=_warm_up, args=(opts,), daemon=True)
    warm.start()
    run = terraform_plan(opts, destroy=destroy)
    warm.join()
    if run.exit_code != 0:
        _say(f"terraform plan failed (exit {run.exit_code}); nothing checked")
        return run.exit_code
    result = check(opts, run.plan_file)
    record_check(
        result,
        command=opts.command,
        log=opts.audit_log,
        cwd=opts.workdir,
        extra={"plan_file": str(run.plan_file)},
    )
    write_reports(result, run.out_dir)
    emit(result)
    _say(f"saved plan: {run.plan_file} (reports beside it: {', '.join(REPORT_FORMATS.values())})")
    if result.exit_code == 0:
        _say(f"apply exactly this plan with: tfgate apply {run.plan_file}")
    return result.exit_code


#: `terraform apply` switches that take no value; every other flag must be given as -name=value.
_APPLY_SWITCHES = frozenset(
    {"auto-approve", "compact-warnings", "destroy", "refresh-only", "json", "no-color", "input", "lock",
     "refresh", "concise", "allow-deferral"}
)  # fmt: skip
#: Flags after `--` that plan and apply both take: without a plan file, tfgate plans with them and applies
#: with them (the rest are plan-only: -var, -target, -replace, -refresh, ...).
_PLAN_AND_APPLY = frozenset(
    {"parallelism", "lock", "lock-timeout", "no-color", "compact-warnings", "concise"}
)
#: Legacy flags that write state somewhere else than the backend: never passed with a checked plan.
_STATE_PATH_FLAGS = frozenset({"state", "state-out", "backup"})


def check_apply_args(args: Sequence[str]) -> None:
    """Arguments passed on to `terraform apply CHECKED_PLAN` must not be able to take the plan file's place
    (a positional argument, or a value flag without `=` that would swallow the plan path and make Terraform
    plan and apply afresh) or move state elsewhere. TfgateError (exit 2) otherwise."""
    for arg in args:
        name, eq, _ = arg.lstrip("-").partition("=")
        if not arg.startswith("-") or arg in ("-", "--"):
            raise TfgateError(
                f"`{arg}`: only flags can be passed to `terraform apply` with a checked plan file "
                "(an argument would take the plan's place)"
            )
        if name in _STATE_PATH_FLAGS:
            raise TfgateError(
                f"`{arg}`: -state, -state-out and -backup are not passed to `terraform apply` with a checked plan"
            )
        if not eq and name not in _APPLY_SWITCHES:
            raise TfgateError(
                f"`{arg}`: give it as {arg}=VALUE (passed to `terraform apply`, a separate value could "
                "swallow the checked plan file)"
            )


def run_apply(
    opts: GateOptions,
    emit: Emit,
    plan_file: Path | None = None,
    *,
    destroy: bool = False,
    confirm: Callable[[], bool] | None = None,
) -> int:
    """`tfgate apply [PLANFILE]` / `tfgate destroy`: check, then apply exactly the checked plan (in a protected
    root: handed to the privileged side through sudo, which checks and applies)."""
    opts = pinned(opts)
    apply_args = opts.tf_args
    if plan_file is None:  # tfgate plans: the flags apply takes too go to both
        apply_args = tuple(
            a for a in apply_args if a.startswith("-") and a.lstrip("-").partition("=")[0] in _PLAN_AND_APPLY
        )
    check_apply_args(apply_args)
    out_dir = None
    if plan_file is None and confirm is None and not opts.auto_approve:
        confirm = terminal_confirmation("destroy" if destroy else "apply")
    if plan_file is None:
        run = terraform_plan(opts, destroy=destroy)
        if run.exit_code != 0:
            _say(f"terraform plan failed (exit {run.exit_code}); nothing applied")
            return run.exit_code
        plan_file, out_dir = run.plan_file, run.out_dir
    original = plan_file if plan_file.is_absolute() else Path.cwd() / plan_file
    from tfgate.enforce.sealed import read_once, seal

    protected = _protected_handoff(opts)
    if protected is not None:
        return protected(opts, emit, original, confirm, check=check, _say=_say)
    with seal(read_once(original)) as sealed:
        return apply_checked(opts, sealed, emit=emit, label=str(original), original=original,
                             apply_args=apply_args, confirm=confirm, out_dir=out_dir)  # fmt: skip


def apply_checked(
    opts: GateOptions,
    sealed,
    *,
    emit: Emit,
    label: str,
    original: Path | None = None,
    apply_args: Sequence[str] = (),
    confirm: Callable[[], bool] | None = None,
    out_dir: Path | None = None,
) -> int:
    """Check the SEALED plan; when allowed (ORIGINAL, if given, unchanged too) and confirmed, apply exactly it."""
    from tfgate.audit import record_check, record_event

    checked_sha = sealed.sha256
    result = check(opts, sealed.path, shown=original)
    result = dataclasses.replace(result, plan=dataclasses.replace(result.plan, source=label))
    event_fields = {"plan_file": label, "plan_sha256": checked_sha}
    record_check(result, command=opts.command, log=opts.audit_log, cwd=opts.workdir, extra=event_fields)
    emit(result)
    if result.exit_code != 0:
        record_event(
            "refusal", command=opts.command, log=opts.audit_log, cwd=opts.workdir,
            manifest_log=_manifest_log(opts), reason="blocked by the gate", verdict="block",
            plan_digest=result.plan.digest, **event_fields,
        )  # fmt: skip
        if out_dir is not None:
            write_reports(result, out_dir)
            _say(f"blocked: nothing applied; the plan is {label}, its reports beside it")
        else:
            _say(f"blocked: nothing applied; the plan is {label}")
        return result.exit_code
    problems = []
    if result.plan.file_sha256 not in (None, checked_sha):
        problems.append("the checked copy does not match what was read")
    now_copy = sealed.current_sha256()
    now_original = checked_sha if original is None else _sha_or_missing(original)
    if now_copy != checked_sha:
        problems.append(f"the private copy changed (sha256 {checked_sha} -> {now_copy})")
    if now_original != checked_sha:
        problems.append(f"{label} changed after the check (sha256 {checked_sha} -> {now_original})")
    planned, checked = _plan_workspace(sealed.path), _workspace(opts)
    if planned != checked:
        problems.append(
            f"the plan was made in workspace {planned!r}, the check read workspace {checked!r}'s state (Terraform "
            f"applies a saved plan to the selected workspace): select {planned!r} or plan again"
        )
    if problems:
        reason = "; ".join(problems)
        record_event(
            "refusal", command=opts.command, log=opts.audit_log, cwd=opts.workdir,
            manifest_log=_manifest_log(opts), reason=reason, verdict="block",
            plan_digest=result.plan.digest, **event_fields,
        )  # fmt: skip
        raise PlanChangedError(f"{reason}; nothing applied")
    if confirm is not None and not confirm():
        record_event(
            "refusal", command=opts.command, log=opts.audit_log, cwd=opts.workdir,
            manifest_log=_manifest_log(opts), reason="not confirmed", verdict="allow",
            plan_digest=result.plan.digest, **event_fields,
        )  # fmt: skip
        _say("not confirmed: nothing applied")
        return 1
    return _apply_sealed(opts, result, sealed.path, apply_args, event_fields)


def _workspace(opts: GateOptions) -> str:
    from tfgate.pipeline import resolve_workspace

    return resolve_workspace(opts.workdir, opts.workspace)


def _plan_workspace(path: Path) -> str:
    from tfgate.plan.backend_record import plan_backend

    return plan_backend(path)[2]


def _agent_of_protected(opts: GateOptions) -> bool:
    from tfgate import sysconfig

    return sysconfig.is_agent_of(sysconfig.resolve(opts.workdir).pin)


def _protected_handoff(opts: GateOptions) -> Callable[..., int] | None:
    """In a protected root, for its agent user: the handoff to the privileged side; else None."""
    if not _agent_of_protected(opts):
        return None
    from tfgate.enforce.handoff import handoff

    return handoff


def terminal_confirmation(what: str, stdin=None) -> Callable[[], bool]:
    """As `terraform apply` does without a saved plan: after the check, only `yes` typed on a terminal goes
    on. Without a terminal there is nobody to ask: TfgateError (exit 2) before anything runs."""
    stdin = stdin or sys.stdin
    if not stdin.isatty():
        raise TfgateError(
            f"`tfgate {what}` without a saved plan asks for confirmation, and there is no terminal to ask on: "
            f"run it on a terminal, pass --auto-approve, or `tfgate plan{' -- -destroy' if what == 'destroy' else ''}`"
            " and then `tfgate apply PLANFILE`"
        )

    def confirm() -> bool:
        sys.stderr.write(
            f"\nDo you want to {'destroy these resources' if what == 'destroy' else 'perform these actions'}?\n"
            "  tfgate will apply exactly the plan checked above. Only 'yes' will be accepted.\n\n  Enter a value: "
        )
        sys.stderr.flush()
        return stdin.readline().strip() == "yes"

    return confirm


def _sha_or_missing(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError:
        return "(missing)"


def _apply_sealed(
    opts: GateOptions, result, copy: Path, apply_args: Sequence[str], event_fields: dict
) -> int:
    """`terraform apply -input=false ARGS COPY` of the checked, sealed plan; audit events around it."""
    from tfgate.audit import record_event

    tf = _terraform(opts)
    record_event(
        "apply", command=opts.command, log=opts.audit_log, cwd=opts.workdir,
        manifest_log=_manifest_log(opts), status="started", verdict="allow",
        plan_digest=result.plan.digest, approvals=_approvals_used(result), **event_fields,
    )  # fmt: skip
    code = run_streamed(
        [*tf, "apply", "-input=false", *apply_args, str(copy)],
        cwd=opts.workdir,
        stdout_to_stderr=opts.tf_stdout_to_stderr,
        # exactly the checked plan: no TF_CLI_ARGS* added behind tfgate's back, in the workspace checked
        env={**clean_env(), "TF_WORKSPACE": _workspace(opts)},
        one_signal=opts.one_signal,
    )
    record_event(
        "apply", command=opts.command, log=opts.audit_log, cwd=opts.workdir,
        manifest_log=_manifest_log(opts), status="applied" if code == 0 else "failed", exit_code=code,
        plan_digest=result.plan.digest, **event_fields,
    )  # fmt: skip
    if code != 0:
        _say(f"terraform apply failed (exit {code})")
    else:
        from tfgate.pipeline import record_applied

        # The apply is done: a ledger that cannot record it is a warning, not a failure.
        try:
            record_applied(opts.workdir, opts.manifest, result, opts.audit_log)
        except Exception as exc:
            _say(f"warning: applied, but the ledger could not record the new state: {exc}")
    return code


def _approvals_used(result: object) -> list[dict[str, object]]:
    return [
        {"source": a.source, "signer": a.signer}
        for a in getattr(result, "approvals", ())
        if getattr(a, "counted", False)
    ]


def _manifest_log(opts: GateOptions) -> Path | None:
    if opts.audit_log or os.environ.get("TFGATE_AUDIT_LOG"):
        return None
    from tfgate.policy.manifest import load_manifest

    return load_manifest(opts.manifest, cwd=opts.workdir).audit_log
