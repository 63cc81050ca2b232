"""What a reviewer approves: a plan's Target (digest, workspace, destructive and protected changes), from the
plan itself (through the check pipeline) or from the JSON report a CI job published."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from tfgate.approvals.statement import _DIGEST, ApprovedChange, destructive, statement_class, violation_class
from tfgate.errors import TfgateError
from tfgate.model import Change, ChangeClass, PlanInfo, SafetyNetRemoval, StateBinding, Violation
from tfgate.policy.manifest import RESERVED_RULES

# --- what a reviewer approves ----------------------------------------------------------------------------

_UNDETERMINED = StateBinding(None, None, None, "plan", "the plan's state binding was not determined")
_NO_BINDING = (
    "the report names no root and prior state (`binding`): make it with this tfgate's `check --format json`"
)


@dataclass(frozen=True)
class Target:
    """A plan as far as approving it goes: digest, workspace, destructive changes, protected ones."""

    source: str
    digest: str
    workspace: str
    changes: tuple[ApprovedChange, ...]
    violations: tuple[Violation, ...]
    blocking_findings: tuple[str, ...] = ()
    #: The root and prior state approvals of this plan are bound to.
    binding: StateBinding = _UNDETERMINED


def is_report(head: bytes) -> bool:
    """Does this look like `tfgate check --format json` output (not a Terraform plan)?"""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"{") and b'"schema_version"' in text[:300] and b'"tfgate"' in text[:600]


class _ReportNet(msgspec.Struct):
    attribute: str
    description: str
    before: Any = None
    after: Any = None


class _ReportChange(msgspec.Struct):
    """What a report says about one change (risk and catalog are re-derived, not read)."""

    address: str
    mode: str
    type: str
    actions: list[str]
    class_: ChangeClass = msgspec.field(name="class")
    protected_by: list[str] = []
    module_address: str | None = None
    action_reason: str | None = None
    replace_order: str | None = None
    deposed: str | None = None
    previous_address: str | None = None
    safety_nets: list[_ReportNet] = []
    prior: dict[str, Any] = {}
    hidden_tags: list[str] = []
    provider: str | None = None


class _ReportViolation(msgspec.Struct):
    address: str
    rule: str
    class_: Literal["create", "delete", "replace", "forget", "update", "safety_net", "plan_incomplete"] = (
        msgspec.field(name="class")
    )
    approvals_required: Annotated[int, msgspec.Meta(ge=1)]
    reason: str = ""
    deposed: str | None = None
    commands: Annotated[str, msgspec.Meta(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None


class _ReportFinding(msgspec.Struct):
    code: str
    severity: str


class _ReportPlan(msgspec.Struct):
    digest: str
    input_format: str
    format_version: str | None = None
    terraform_version: str | None = None
    errored: bool = False
    complete: bool = True
    has_values: bool = True
    targeted: bool = False


class _ReportTool(msgspec.Struct):
    name: Literal["tfgate"]


class _ReportBinding(msgspec.Struct):
    root: str | None
    lineage: str | None
    serial: Annotated[int, msgspec.Meta(ge=0)] | None
    source: str
    problem: str | None = None


class _Report(msgspec.Struct):
    tool: _ReportTool
    workspace: str
    plan: _ReportPlan
    changes: list[_ReportChange]
    violations: list[_ReportViolation]
    findings: list[_ReportFinding] = []
    binding: _ReportBinding | None = None


def _report_class(v: _ReportViolation) -> str:
    if v.rule in RESERVED_RULES:
        return "provisioner"
    return "safety_net" if v.class_ == "update" else v.class_


def _key(address: str, rule: str, klass: str, deposed: str | None) -> tuple[str, str, str, str]:
    return (address, rule, klass, deposed or "")


def _report_change(c: _ReportChange, catalog: Any) -> Change:
    """A model Change from a report entry; its catalog entry is looked up again, not read."""
    entry = catalog.lookup(c.type) if c.mode == "managed" else None
    return Change(
        address=c.address, mode=c.mode, type=c.type, name="", module_address=c.module_address, index=None,
        provider=c.provider, actions=tuple(c.actions), change_class=c.class_, action_reason=c.action_reason,
        replace_order=c.replace_order, deposed=c.deposed, previous_address=c.previous_address,
        prior=tuple(c.prior.items()), hidden_tags=tuple(c.hidden_tags),
        safety_nets=tuple(SafetyNetRemoval(n.attribute, n.before, n.after, n.description) for n in c.safety_nets),
        catalog_classes=entry.classes if entry else (), catalog_kind=entry.kind if entry else None,
        protected_by=tuple(c.protected_by),
    )  # fmt: skip


def target_from_report(data: bytes, source: str, manifest: Any) -> Target:
    """A Target from the JSON report a CI job published. The report is unsigned: it is trusted for its digest,
    workspace and the changes it lists, nothing more. The protected changes are re-derived by applying the
    manifest to those changes (the report's own violations can only add to them); a report whose violations
    do not agree with its changes, or that lacks a fact a rule needs, is refused (TfgateError)."""
    from tfgate.plan.loader import LoadedPlan
    from tfgate.policy.catalog import load_catalog
    from tfgate.policy.evaluate import evaluate

    try:
        doc = msgspec.json.decode(data.decode("utf-8-sig"), type=_Report)
    except (UnicodeDecodeError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise TfgateError(f"{source}: not a tfgate JSON report ({exc})") from None
    if not _DIGEST.match(doc.plan.digest):
        raise TfgateError(f"{source}: not a tfgate JSON report (plan.digest is not sha256:<64 hex digits>)")
    by_provider = [r.name for r in manifest.rules if r.match.get("provider") is not None]
    if by_provider and any(c.provider is None and c.mode == "managed" for c in doc.changes):
        raise TfgateError(
            f"{source}: rule {by_provider[0]!r} matches on provider, which this report does not carry for "
            "every change; give the plan itself"
        )
    catalog = load_catalog()
    changes = [_report_change(c, catalog) for c in doc.changes]
    marked = {
        _key(c.address, rule, k, c.deposed)
        for c in changes
        if (k := statement_class(c))
        for rule in c.protected_by
    }
    claimed = {
        _key(v.address, v.rule, _report_class(v), v.deposed): v
        for v in doc.violations
        if v.class_ != "plan_incomplete"  # plan-level: derived again from plan.targeted below
    }
    targeted = doc.plan.targeted or any(v.class_ == "plan_incomplete" for v in doc.violations)
    own = {k for k in claimed if k[2] == "provisioner"}  # tfgate's own rule: not marked on the change
    for keys, what in (
        (marked - claimed.keys(), "marks it protected but lists no violation for it"),
        (claimed.keys() - marked - own, "lists a violation but not a protected change"),
    ):
        if keys:
            address, rule, klass, _ = min(keys)
            raise TfgateError(
                f"{source}: the report does not hold together (edited?): for the {klass} of {address} "
                f"under rule {rule!r} it {what}"
            )
    p = doc.plan
    info = PlanInfo(
        source=source, input_format=p.input_format, format_version=p.format_version,
        terraform_version=p.terraform_version, digest=p.digest, errored=p.errored, complete=p.complete,
        has_values=p.has_values and p.input_format != "stream", targeted=targeted,
    )  # fmt: skip
    loaded = LoadedPlan(info=info, changes=tuple(changes), prior_state_empty=None)
    derived = target_from_result(evaluate(loaded, manifest, workspace=doc.workspace))
    violations = {_key(v.address, v.rule, violation_class(v), v.deposed): v for v in derived.violations}
    for key, v in claimed.items():  # the report's own violations can only ask for more
        have = violations.get(key)
        if have is None:
            violations[key] = Violation(
                address=v.address,
                rule=v.rule,
                change_class=ChangeClass.UPDATE if key[2] == "safety_net" else ChangeClass(v.class_),
                reason=v.reason,
                approvals_required=v.approvals_required,
                deposed=v.deposed,
                subject=v.commands,
            )
        elif have.approvals_required < v.approvals_required:
            violations[key] = dataclasses.replace(have, approvals_required=v.approvals_required)
    blocking = (*derived.blocking_findings, *(f.code for f in doc.findings if f.severity == "block"))
    b = doc.binding
    binding = (
        StateBinding(b.root, b.lineage, b.serial, "report", b.problem)
        if b is not None
        else StateBinding(None, None, None, "report", _NO_BINDING)
    )
    extra = provisioner_changes(tuple(violations.values()))  # approved by name like destructive changes
    return dataclasses.replace(
        derived, changes=tuple(dict.fromkeys((*derived.changes, *extra))),
        violations=tuple(violations.values()), blocking_findings=tuple(dict.fromkeys(blocking)),
        binding=binding,
    )  # fmt: skip


def provisioner_changes(violations: Sequence[Violation]) -> tuple[ApprovedChange, ...]:
    """What approves the provisioner commands the plan runs (class provisioner, by address)."""
    return tuple(
        ApprovedChange(v.address, "provisioner", v.deposed, v.subject)
        for v in violations
        if violation_class(v) == "provisioner"
    )


def target_from_result(result: Any) -> Target:
    return Target(
        source=result.plan.source,
        digest=result.plan.digest,
        workspace=result.workspace,
        changes=(
            *(ApprovedChange(v.address, v.finding) for v in result.violations if v.finding),
            *destructive(result.changes),
            *provisioner_changes(result.violations),
        ),
        violations=tuple(result.violations),
        blocking_findings=tuple(f.code for f in result.findings if f.blocks and not f.approvable),
        **({"binding": result.binding} if result.binding is not None else {}),
    )


@dataclass(frozen=True)
class PlanOptions:
    """How to read the PLAN argument of `approve` and `approvals verify`."""

    plan: str
    manifest: Path | None = None
    workspace: str | None = None
    terraform: str | None = None
    input_format: str | None = None
    workdir: Path = Path(".")


def _read_head(plan: str) -> bytes:
    if plan == "-":
        return b""
    try:
        with open(plan, "rb") as fh:
            return fh.read(1024)
    except OSError:
        return b""


def load_target(opts: PlanOptions, manifest: Any, approvals: Sequence[Path] = ()) -> tuple[Target, Any]:
    """The Target of a plan (any form the core reads) or of a JSON report (judged with MANIFEST); also the
    check Result or None."""
    if opts.input_format is None and is_report(_read_head(opts.plan)):
        target = target_from_report(Path(opts.plan).read_bytes(), opts.plan, manifest)
        if opts.workspace and opts.workspace != target.workspace:
            raise TfgateError(
                f"{opts.plan}: the report is for workspace {target.workspace!r}, not {opts.workspace!r}"
            )
        return target, None
    from tfgate.pipeline import CheckOptions, run_check

    result = run_check(
        CheckOptions(
            plan=opts.plan,
            input_format=opts.input_format,
            terraform=opts.terraform,
            manifest=opts.manifest,
            approvals=tuple(approvals),
            workspace=opts.workspace,
            workdir=opts.workdir,
            state_checks=False,
            purpose="approve",
        )
    )
    return target_from_result(result), result


# --- creating and signing ----------------------------------------------------------------------------------
