"""Evaluate a loaded plan against the manifest: protected changes become violations, the verdict follows.

Pure: takes loaded inputs, returns an immutable Result carrying every reason. Renderers and the CLI
only present it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from tfgate import __version__
from tfgate.model import (
    Change,
    ChangeClass,
    Counted,
    Finding,
    Result,
    Risk,
    Severity,
    Summary,
    Verdict,
    Violation,
)
from tfgate.plan.loader import LoadedPlan
from tfgate.policy.manifest import Manifest, Rule

_VERB = {
    ChangeClass.DELETE: "destroys",
    ChangeClass.REPLACE: "destroys and re-creates",
    ChangeClass.FORGET: "stops managing (forgets)",
}


def plan_findings(plan: LoadedPlan, manifest: Manifest) -> tuple[Finding, ...]:
    """Findings about the plan document itself."""
    out: list[Finding] = []
    info = plan.info
    if info.errored:
        out.append(
            Finding(
                "plan_errored",
                Severity.BLOCK,
                "Terraform reported errors while planning: the plan is partial and must not be applied",
                (("errored", True),),
            )
        )
    if not info.complete and not info.errored:
        out.append(
            Finding(
                "plan_incomplete",
                Severity.BLOCK,
                "the plan is incomplete (complete: false or deferred changes): more changes would follow",
                (("complete", False),),
            )
        )
    if manifest.path is None:
        out.append(
            Finding(
                "no_manifest",
                Severity.WARN,
                "no protected-resource manifest (tfgate.yaml or --manifest): no resource is protected; "
                "destroys are only ranked by the built-in catalog",
            )
        )
    if not info.has_values and manifest.uses_tags:
        out.append(
            Finding(
                "values_unavailable",
                Severity.INFO,
                "a plan -json stream carries no attribute values: tag rules were assumed to match "
                "and safety-net updates could not be checked",
                (("input_format", info.input_format),),
            )
        )
    return tuple(out)


def _reason(change: Change, rule: Rule) -> str:
    if change.safety_nets and change.change_class is ChangeClass.UPDATE:
        what = "; ".join(n.description for n in change.safety_nets)
        text = f"update removes a safety net ({what})"
    else:
        text = f"plan {_VERB.get(change.change_class, change.change_class.value)} this resource"
        if change.change_class is ChangeClass.REPLACE and change.replace_order == "create_first":
            text += " (create before destroy)"
    if change.action_reason:
        text += f" [{change.action_reason}]"
    if change.deposed:
        text += f" [deposed object {change.deposed}]"
    text += f"; protected by rule '{rule.name}'"
    assumed = rule.assumed_tags(change)
    if assumed:
        text += f" (tag {', '.join(assumed)} not readable in the plan: assumed to match)"
    return text


def _violation_class(change: Change) -> ChangeClass:
    return change.change_class


def summarize(changes: Sequence[Change]) -> Summary:
    counts = dict.fromkeys(ChangeClass, 0)
    moves = imports = 0
    read = ChangeClass.READ
    for c in changes:
        if c.mode == "managed":
            counts[c.change_class] += 1
        elif c.change_class is read:
            counts[read] += 1
        moves += c.previous_address is not None and c.previous_address != c.address
        imports += c.importing
    return Summary(**{cls.value: n for cls, n in counts.items()}, move=moves, import_=imports)


def assess(plan: LoadedPlan, manifest: Manifest) -> tuple[tuple[Change, ...], tuple[Violation, ...]]:
    """The plan's changes marked with the rules protecting them, and one Violation per protected change and
    rule (none approved yet)."""
    tags_known = plan.info.has_values
    changes: list[Change] = []
    violations: list[Violation] = []
    candidate = {ChangeClass.DELETE, ChangeClass.REPLACE, ChangeClass.FORGET}
    for change in plan.changes:
        if (
            manifest.rules
            and change.mode == "managed"
            and (change.change_class in candidate or change.safety_nets)
        ):
            rules = manifest.protecting(change, tags_known=tags_known)
            if rules:
                change = dataclasses.replace(
                    change, protected_by=tuple(r.name for r in rules), risk=Risk.HIGH
                )
                violations.extend(
                    Violation(
                        address=change.address,
                        rule=r.name,
                        change_class=_violation_class(change),
                        reason=_reason(change, r),
                        approvals_required=r.approvals,
                        deposed=change.deposed,
                    )
                    for r in rules
                )
        changes.append(change)
    from tfgate.policy.provisioners import provider_violations, provisioner_violations

    violations.extend(provisioner_violations(plan, manifest))
    violations.extend(provider_violations(plan, manifest))
    return tuple(changes), tuple(violations)


def apply_counts(violations: Sequence[Violation], counted: Counted) -> tuple[Violation, ...]:
    """Each violation with what the judge counted toward it: approved once enough distinct principals count."""
    out = []
    for v in violations:
        principals = tuple(counted.principals.get(v.key, ()))
        approved = len(principals) >= v.approvals_required
        out.append(
            dataclasses.replace(
                v, approved=approved, approved_by=principals if approved else (), counted_by=principals
            )
        )
    return tuple(out)


def evaluate(
    plan: LoadedPlan,
    manifest: Manifest,
    *,
    findings: Sequence[Finding] = (),
    counted: Counted | None = None,
    assessed: tuple[tuple[Change, ...], tuple[Violation, ...]] | None = None,
    workspace: str = "default",
) -> Result:
    """Apply the manifest to the plan and decide, given the state findings and what the approvals judge
    counted (``assessed`` is ``assess(plan, manifest)`` when the caller already has it)."""
    changes, violations = assessed if assessed is not None else assess(plan, manifest)
    counted = counted or Counted()
    violations = apply_counts(violations, counted)
    outcomes = counted.outcomes

    from tfgate.policy.provisioners import provider_findings, provisioner_findings

    all_findings = (
        *plan_findings(plan, manifest),
        *provisioner_findings(plan, manifest, violations),
        *provider_findings(plan, manifest, violations),
        *findings,
    )
    reasons: list[str] = [
        f"{v.address}: {v.reason}; {'approved' if v.approved else 'no valid approval'}"
        for v in violations
        if not v.approved
    ]
    reasons += [f"{f.code}: {f.message}" for f in all_findings if f.blocks]
    verdict = Verdict.BLOCK if reasons else Verdict.ALLOW
    return Result(
        verdict=verdict,
        plan=plan.info,
        summary=summarize(changes),
        changes=tuple(changes),
        violations=tuple(violations),
        findings=tuple(all_findings),
        workspace=workspace,
        manifest=str(manifest.path) if manifest.path else None,
        approvals=tuple(outcomes),
        tool_version=__version__,
        reasons=tuple(reasons),
    )
