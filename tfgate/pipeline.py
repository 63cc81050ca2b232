"""The check pipeline shared by every gating command: load -> state evidence -> approvals judge -> evaluate."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tfgate.model import Result, Verdict
from tfgate.policy.manifest import load_manifest


@dataclass(frozen=True)
class CheckOptions:
    plan: str
    input_format: str | None = None
    terraform: str | None = None
    manifest: Path | None = None
    approvals: tuple[Path, ...] = ()
    workspace: str | None = None
    workdir: Path = field(default_factory=lambda: Path("."))
    state_checks: bool = True
    #: A human confirms the workspace is new: protected creates on an empty state do not block.
    new_workspace: bool = False
    now: datetime | None = None
    #: The plan file the way out names, when the check reads a copy (tfgate apply); default: ``plan``.
    shown_plan: str | None = None
    #: What runs the plan once it is approved, in the way out: "check" or "apply".
    then: str = "check"
    #: "check" when a user asked for exactly this check; "approve" for what approvals are made against.
    purpose: str = "check"


def resolve_workspace(workdir: Path, explicit: str | None) -> str:
    """--workspace, then TF_WORKSPACE, then .terraform/environment, then "default"."""
    if explicit:
        return explicit
    env = os.environ.get("TF_WORKSPACE")
    if env:
        return env
    try:
        name = (workdir / ".terraform" / "environment").read_text().strip()
    except OSError:
        name = ""
    return name or "default"


def run_check(opts: CheckOptions) -> Result:
    """Load the manifest and plan, gather state evidence, evaluate. Raises TfgateError (exit 2)."""
    from tfgate.plan.loader import load_plan
    from tfgate.policy.catalog import load_catalog
    from tfgate.policy.evaluate import assess, evaluate

    now = opts.now or datetime.now(timezone.utc)
    workdir = opts.workdir
    from tfgate import sysconfig

    # The system pin: pinned manifest, allowed_signers and Terraform; overrides refused for non-root users
    # (skipping state checks is an override only when the user asked for it, not for `approve`).
    manifest, pinned = sysconfig.gate_manifest(
        opts.manifest,
        workdir,
        terraform=opts.terraform,
        state_checks=opts.state_checks or opts.purpose != "check",
    )
    opts = dataclasses.replace(opts, terraform=pinned.terraform)
    plan = load_plan(
        opts.plan,
        input_format=opts.input_format,
        terraform=opts.terraform,
        cwd=workdir,
        catalog=load_catalog(),
    )
    from tfgate.plan.configuration import read_provisioners

    plan = dataclasses.replace(plan, provisioners=read_provisioners(plan, workdir))
    workspace = resolve_workspace(workdir, opts.workspace)
    findings: tuple = ()
    protection = None
    if opts.state_checks:
        from tfgate import state

        findings, protection = state.gather_state(
            workdir=workdir, plan=plan, manifest=manifest, workspace=workspace, now=now,
            new_workspace=opts.new_workspace,
        )  # fmt: skip
    if pinned.pin is not None and pinned.pin.protected is not None:
        from tfgate.policy.provisioners import file_read_findings

        findings = (*findings, *file_read_findings(plan))
    assessed = assess(plan, manifest, protection)
    counted = binding = None
    if opts.approvals or assessed[1] or _destroys(plan):  # violations: provisioner commands, -target plans
        from tfgate.state.binding import state_binding

        binding = state_binding(workdir, plan, workspace)
    if opts.approvals:
        from tfgate.approvals.judge import judge

        assert binding is not None
        counted = judge(
            opts.approvals, assessed[1], manifest, digest=plan.info.digest, workspace=workspace, now=now,
            binding=binding,
        )  # fmt: skip
    result = evaluate(
        plan, manifest, findings=findings, counted=counted, assessed=assessed, workspace=workspace
    )
    if binding is not None:
        result = dataclasses.replace(result, binding=binding)
    if result.verdict is Verdict.BLOCK:
        from tfgate.policy.way_out import Invocation, with_way_out

        result = with_way_out(
            result,
            manifest,
            Invocation(
                plan=opts.shown_plan or opts.plan, workdir=workdir, cwd=Path.cwd(), manifest=opts.manifest,
                workspace=opts.workspace, terraform=opts.terraform, input_format=opts.input_format,
                approvals=opts.approvals, then=opts.then,
            ),
        )  # fmt: skip
    # The ledger is the state owner's: a protected root's agent user only reads it.
    if opts.state_checks and result.verdict is Verdict.ALLOW and not sysconfig.is_agent_of(pinned.pin):
        from tfgate import state

        state.record_ledger(workdir=workdir, plan=plan, manifest=manifest, workspace=workspace, result=result)
    return result


def _destroys(plan: object) -> bool:
    """Anything an approval could be asked for: a managed delete, replace, forget or safety-net removal."""
    from tfgate.approvals.statement import statement_class

    return any(statement_class(c) for c in plan.changes)  # type: ignore[attr-defined]


def record_applied(
    workdir: Path, manifest_path: Path | None, result: Result, audit_log: str | Path | None = None
) -> None:
    """After `terraform apply` of an allowed plan: the ledger learns the state it produced (the check
    before it recorded the state as it was), so the next run can tell that state being put back, and the
    audit log's head, so a log cut short or rebuilt is caught (tfgate.anchor)."""
    from tfgate.anchor import anchor_in_ledger

    anchor_in_ledger(workdir, load_manifest(manifest_path, cwd=workdir), result, audit_log)


def run_state_check(workdir: Path, *, manifest_path: Path | None, workspace: str | None) -> Result:
    """`tfgate state check`: the state-integrity checks alone, as a Result with no plan changes."""
    import hashlib

    from tfgate.errors import TfgateError

    if not workdir.is_dir():
        raise TfgateError(f"{workdir}: no such working directory: there is no state to check here")

    from tfgate import state, sysconfig
    from tfgate.model import PlanInfo
    from tfgate.plan.loader import LoadedPlan
    from tfgate.policy.evaluate import evaluate

    now = datetime.now(timezone.utc)
    manifest, _ = sysconfig.gate_manifest(manifest_path, workdir)
    ws = resolve_workspace(workdir, workspace)
    info = PlanInfo(
        source=f"{workdir} (no plan)",
        input_format="none",
        format_version=None,
        terraform_version=None,
        digest="sha256:" + hashlib.sha256(b"").hexdigest(),
    )
    empty = LoadedPlan(info=info, changes=(), prior_state_empty=None, path=None)
    findings = state.check_state(workdir=workdir, plan=empty, manifest=manifest, workspace=ws, now=now)
    return evaluate(empty, manifest, findings=findings, workspace=ws)
