"""Selections and wording shared by the renderers (they present; they decide nothing)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from tfgate.model import Change, ChangeClass, CombinedResult, NeededApproval, Result, Risk, Violation, WayOut

_RISK_ORDER = {Risk.HIGH: 0, Risk.MEDIUM: 1, Risk.LOW: 2, Risk.NONE: 3}


def destructive_unprotected(result: Result) -> list[Change]:
    """Destroys, forgets and safety-net removals no rule protects, most risky first."""
    picked = [
        c
        for c in result.changes
        if c.mode == "managed"
        and not c.protected_by
        and (c.destroys or c.change_class is ChangeClass.FORGET or c.safety_nets)
    ]
    return sorted(picked, key=lambda c: (_RISK_ORDER[c.risk], c.address))


def summary_line(result: Result) -> str:
    s = result.summary
    parts = [
        f"{s.create} to create",
        f"{s.update} to update",
        f"{s.delete} to delete",
        f"{s.replace} to replace",
        f"{s.forget} to forget",
        f"{s.read} to read",
    ]
    if s.move:
        parts.append(f"{s.move} moved")
    if s.import_:
        parts.append(f"{s.import_} imported")
    return "Plan: " + ", ".join(parts) + f"; {len(result.blocked_violations)} blocked."


def shown_address(item: Change | Violation) -> str:
    """The address, and the one the plan moves the object from ("x (moved from y)")."""
    previous = item.previous_address
    if previous and previous != item.address:
        return f"{item.address} (moved from {previous})"
    return item.address


def action_label(change: Change) -> str:
    if change.change_class is ChangeClass.REPLACE and change.replace_order == "create_first":
        return "replace (create first)"
    if change.safety_nets and not change.destroys:
        return "update (removes safety net)"
    return change.change_class.value.replace("_", "-")


def why(change: Change) -> str:
    """What makes a change risky: its catalog kind, removed safety nets, Terraform's reason."""
    parts = []
    if change.catalog_kind:
        parts.append(change.catalog_kind)
    parts += [n.description for n in change.safety_nets]
    if change.action_reason:
        parts.append(change.action_reason)
    return ", ".join(parts)


def approval_state(violation: Violation) -> str:
    """How far a protected change is from approved: "approved by a, b", "1 of 2 (alice)", "2 needed, none
    valid" (the signers counted for this violation, under its own rule)."""
    if violation.approved:
        return "approved by " + ", ".join(violation.approved_by)
    have = sorted(violation.counted_by)
    if have:
        return f"{len(have)} of {violation.approvals_required} ({', '.join(have)})"
    return f"{violation.approvals_required} needed, none valid"


def needed_line(n: NeededApproval) -> str:
    """ "rule R: 1 more signed approval from *@x (a, b)"."""
    who = f" from {', '.join(n.approvers)}" if n.approvers else " from a signer in allowed_signers"
    return f"rule {n.rule}: {n.still_needed} more signed approval(s){who} ({', '.join(n.addresses)})"


def way_out_lines(w: WayOut) -> list[str]:
    """The way out as plain lines (the text report; Markdown and HTML lay out the same fields)."""
    lines = [needed_line(n) for n in w.needed]
    if w.approve:
        lines.append("each approver signs (SIGNER: their principal in allowed_signers, KEY: their SSH key):")
        lines.append(f"  {w.approve}")
        lines.append(f"approvals go in {w.approvals_dir} (FILE and FILE.sig); then:")
        lines.append(f"  {w.then}")
    lines += [f"approvals do not lift {f}; fix it and plan again" for f in w.not_approvable]
    return lines


@lru_cache(maxsize=4)
def template(name: str, *, autoescape: bool) -> Any:
    """A packaged jinja2 template (jinja2 is imported only when a Markdown or HTML report is made)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tfgate", "templates"),
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["action"] = action_label
    env.globals["why"] = why
    env.globals["approval_state"] = approval_state
    env.globals["needed_line"] = needed_line
    env.globals["shown"] = shown_address
    return env


def roots_tally(combined: CombinedResult) -> str:
    """ "3 roots: 1 blocked, 1 input error, 1 allowed" (only the kinds present)."""
    counts = {k: sum(r.status == k for r in combined.roots) for k in ("block", "error", "allow")}
    words = {"block": "blocked", "error": "input error", "allow": "allowed"}
    tally = ", ".join(f"{n} {words[k]}" for k, n in counts.items() if n)
    n = len(combined.roots)
    return f"{n} root{'' if n == 1 else 's'}: {tally}"
