"""Selections and wording shared by the renderers (they present; they decide nothing)."""

from __future__ import annotations

from tfgate.model import Change, ChangeClass, Result, Risk

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


def action_label(change: Change) -> str:
    if change.change_class is ChangeClass.REPLACE and change.replace_order == "create_first":
        return "replace (create first)"
    if change.safety_nets and not change.destroys:
        return "update (removes safety net)"
    return change.change_class.value.replace("_", "-")
