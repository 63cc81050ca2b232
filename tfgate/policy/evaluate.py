"""Evaluate a loaded plan against the manifest: protected changes become violations, the verdict follows.

Pure: takes loaded inputs, returns an immutable Result carrying every reason. Renderers and the CLI
only present it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from tfgate import __version__
from tfgate.model import (
    PLAN_ADDRESS,
    Change,
    ChangeClass,
    Counted,
    Finding,
    Protection,
    Result,
    Risk,
    Severity,
    Summary,
    Verdict,
    Violation,
    replace_change,
)
from tfgate.plan.loader import LoadedPlan
from tfgate.policy.manifest import RESERVED_RULES, Manifest, Rule

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
    # (A -target plan's plan_incomplete is approvable: targeted_finding, once the approvals are counted.)
    if not info.complete and not info.errored and not info.targeted:
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
    elif not manifest.rules:
        out.append(
            Finding(
                "no_rules",
                Severity.WARN,
                f"the manifest {manifest.path} has an empty `protect:` list: no resource is protected by it",
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


_CANDIDATE = frozenset({ChangeClass.DELETE, ChangeClass.REPLACE, ChangeClass.FORGET})


def assess(
    plan: LoadedPlan, manifest: Manifest, protection: Protection | None = None
) -> tuple[tuple[Change, ...], tuple[Violation, ...]]:
    """The plan's changes marked with the rules protecting them, and one Violation per protected change and
    rule (none approved yet). With ``protection`` (the ledger and the state), an object the ledger knows as
    protected stays protected under its rule whatever its address, and with its rule removed."""
    tags_known = plan.info.has_values
    known = protection.known if protection else {}
    in_state = protection.state if protection else {}
    by_name = {r.name: r for r in manifest.rules}
    changes: list[Change] = []
    violations: list[Violation] = []
    for change in plan.changes:
        destroys = change.change_class in _CANDIDATE
        if change.mode != "managed" or not (destroys or change.safety_nets):
            changes.append(change)
            continue
        if in_state and not change.prior:
            change = _with_state_prior(change, in_state)
        rules = manifest.protecting(change, tags_known=tags_known) if manifest.rules else ()
        found = [(r.name, r.approvals, _reason(change, r), None) for r in rules]
        if known and destroys:
            found += _by_identity(change, known, by_name, {r.name for r in rules}, in_state)
        if found:
            change = replace_change(
                change, protected_by=tuple(dict.fromkeys(name for name, *_ in found)), risk=Risk.HIGH
            )
            violations.extend(
                Violation(
                    address=change.address,
                    rule=name,
                    change_class=_violation_class(change),
                    reason=reason,
                    approvals_required=approvals,
                    deposed=change.deposed,
                    previous_address=change.previous_address if change.moved else None,
                    approvers=approvers,
                )
                for name, approvals, reason, approvers in found
            )
        changes.append(change)
    from tfgate.policy.provisioners import provider_violations, provisioner_violations

    violations.extend(provisioner_violations(plan, manifest))
    violations.extend(provider_violations(plan, manifest))
    return tuple(changes), (*_plan_violations(plan), *violations)


def _state_entry(
    change: Change, in_state: Mapping[Any, Any]
) -> tuple[tuple[Any, ...], tuple[str, ...]] | None:
    """The working directory's state object a change acts on (by its address before any move). A stream's
    stand-in deposed key (``stream-N``) stands for every deposed object at that address."""
    address = change.previous_address or change.address
    if change.deposed and change.deposed.startswith("stream-"):
        hits = [v for (a, d), v in in_state.items() if a == address and d]
        if not hits:
            return None
        return hits[0][0], tuple(k for _, keys in hits for k in keys)
    return in_state.get((address, change.deposed))


def _with_state_prior(change: Change, in_state: Mapping[Any, Any]) -> Change:
    """A change from a plan without values gets its object's key attributes (id, tags...) from the state."""
    entry = _state_entry(change, in_state)
    return replace_change(change, prior=entry[0]) if entry and entry[0] else change


def _by_identity(
    change: Change,
    known: Mapping[str, Mapping[str, Any]],
    by_name: Mapping[str, Rule],
    already: set[str],
    in_state: Mapping[Any, Any],
) -> list[tuple[str, int, str, tuple[str, ...] | None]]:
    """(rule, approvals, reason, approvers) for each rule the ledger knows this object protected by, beyond
    ``already``; approvers (the ledger's record) only where the manifest no longer has the rule."""
    from tfgate.state.objects import identity_keys

    keys = identity_keys(change.type, change.prior_dict(), change.identity)
    entry = _state_entry(change, in_state) if in_state else None
    if entry:
        keys = (*keys, *entry[1])
    action = change.change_class.value
    out: list[tuple[str, int, str, tuple[str, ...] | None]] = []
    for key in dict.fromkeys(keys):
        seen = known.get(key)
        if seen is None or action not in seen.get("actions", ()) or seen["rule"] in already:
            continue
        name = seen["rule"]
        already.add(name)
        rule = by_name.get(name)
        verb = _VERB.get(change.change_class, action)
        text = (
            f"plan {verb} this resource; tfgate's ledger knows this object ({key}) as {seen.get('address')}, "
            f"protected by rule '{name}'"
        )
        if rule is None:
            text += f"; protection_removed: rule '{name}' is no longer in the manifest"
        if rule is not None:
            out.append((name, rule.approvals, text, None))
        else:
            out.append((name, _count(seen.get("approvals")), text, _approvers(seen.get("approvers"))))
    return out


def _approvers(value: Any) -> tuple[str, ...] | None:
    """The approvers a ledger entry recorded (None: an entry from before they were recorded)."""
    if isinstance(value, list) and all(isinstance(a, str) and a for a in value):
        return tuple(value)
    return None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10 else 1


def _plan_violations(plan: LoadedPlan) -> tuple[Violation, ...]:
    """Plan-level conditions a human may approve: a -target plan (incomplete, but nothing failed or deferred)."""
    info = plan.info
    if not info.targeted or info.errored:
        return ()
    return (
        Violation(
            address=PLAN_ADDRESS,
            rule="plan_incomplete",
            change_class=ChangeClass.NO_OP,
            reason="the plan was made with -target: it leaves out changes the configuration asks for",
            finding="plan_incomplete",
        ),
    )


def targeted_finding(plan: LoadedPlan, violations: Sequence[Violation]) -> tuple[Finding, ...]:
    """``plan_incomplete`` for a -target plan: it blocks until a signed approval of this plan counts."""
    v = next((v for v in violations if v.finding == "plan_incomplete"), None)
    if v is None:
        return ()
    how = (
        f"approved by {', '.join(v.approved_by)}"
        if v.approved
        else "plan without -target, or let this exact plan through with a signed approval: "
        f"tfgate approve {plan.info.source} --signer YOU --key KEY --reason WHY, then check it with "
        "--approvals (the approval names the change "
        f'{{"address": "{PLAN_ADDRESS}", "class": "plan_incomplete"}})'
    )
    return (
        Finding(
            "plan_incomplete",
            Severity.WARN if v.approved else Severity.BLOCK,
            "the plan was made with -target: it leaves out changes the configuration asks for, and the state "
            f"it leaves behind was not checked; {how}",
            (("complete", False), ("targeted", True), ("approved", v.approved)),
            approvable=True,
        ),
    )


def removed_protection(violations: Sequence[Violation], manifest: Manifest) -> tuple[Finding, ...]:
    """``protection_removed`` for each violation whose rule the manifest no longer has (the ledger's): it
    blocks until a signed approval of this plan counts for it, like the violation itself."""
    names = {r.name for r in manifest.rules}
    out = []
    for v in violations:
        if v.rule in names or v.finding or v.rule in RESERVED_RULES:
            continue
        where = "is no longer in the manifest" if manifest.path else "is gone with the manifest"
        out.append(
            Finding(
                "protection_removed",
                Severity.WARN if v.approved else Severity.BLOCK,
                f"{v.address}: the rule '{v.rule}' that protected this object {where}; the ledger still knows "
                f"it as protected"
                + (" (approved)" if v.approved else ": approve this plan to let it through")
                + (f" (approvers the ledger recorded: {', '.join(v.approvers)})" if v.approvers else ""),
                (("rule", v.rule), ("class", v.change_class.value), ("approved", v.approved)),
                address=v.address,
                approvable=True,
            )
        )
    return tuple(out)


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
        *targeted_finding(plan, violations),
        *removed_protection(violations, manifest),
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
