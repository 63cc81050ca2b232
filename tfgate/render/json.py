"""JSON output: the result object, as documented by tfgate/schemas/result.schema.json."""

from __future__ import annotations

from typing import Any

import msgspec

from tfgate.model import Change, ChangeClass, Finding, Result

_NO_OP = ChangeClass.NO_OP

SCHEMA_VERSION = 1


def _change(c: Change) -> dict[str, Any]:
    out: dict[str, Any] = {
        "address": c.address,
        "mode": c.mode,
        "type": c.type,
        "actions": list(c.actions),
        "class": c.change_class,  # str enums: msgspec writes their values
        "protected_by": list(c.protected_by),
        "risk": c.risk,
    }
    if c.module_address:
        out["module_address"] = c.module_address
    if c.action_reason:
        out["action_reason"] = c.action_reason
    if c.replace_order:
        out["replace_order"] = c.replace_order
    if c.deposed:
        out["deposed"] = c.deposed
    if c.previous_address:
        out["previous_address"] = c.previous_address
    if c.importing:
        out["importing"] = {"id": c.import_id}
    if c.catalog_kind:
        out["catalog"] = {"kind": c.catalog_kind, "classes": list(c.catalog_classes)}
    if c.safety_nets:
        out["safety_nets"] = [
            {"attribute": n.attribute, "before": n.before, "after": n.after, "description": n.description}
            for n in c.safety_nets
        ]
    if c.prior:
        out["prior"] = dict(c.prior)
    return out


def _finding(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {"code": f.code, "severity": f.severity.value, "message": f.message}
    if f.address:
        out["address"] = f.address
    if f.evidence:
        out["evidence"] = dict(f.evidence)
    return out


def result_to_dict(result: Result) -> dict[str, Any]:
    p = result.plan
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "tfgate", "version": result.tool_version},
        "verdict": result.verdict.value,
        "exit_code": result.exit_code,
        "workspace": result.workspace,
        "manifest": result.manifest,
        "plan": {
            "source": p.source,
            "input_format": p.input_format,
            "format_version": p.format_version,
            "terraform_version": p.terraform_version,
            "digest": p.digest,
            "file_sha256": p.file_sha256,
            "errored": p.errored,
            "complete": p.complete,
            "applyable": p.applyable,
            "timestamp": p.timestamp,
            "has_values": p.has_values,
        },
        "summary": result.summary.as_dict(),
        "reasons": list(result.reasons),
        "violations": [
            {
                "address": v.address,
                "rule": v.rule,
                "class": v.change_class.value,
                "reason": v.reason,
                "approvals_required": v.approvals_required,
                "approved": v.approved,
                "approved_by": list(v.approved_by),
                **({"deposed": v.deposed} if v.deposed else {}),
            }
            for v in result.violations
        ],
        "findings": [_finding(f) for f in result.findings],
        "approvals": [
            {
                "source": a.source,
                "signer": a.signer,
                "counted": a.counted,
                "reason": a.reason,
                "addresses": list(a.addresses),
            }
            for a in result.approvals
        ],
        "changes": [
            _change(c) for c in result.changes if c.change_class.value != "no_op" or c.moved or c.importing
        ],
    }


def render(result: Result) -> str:
    """Pretty-printed for small results; one compact line past 2,000 changes (pretty-printing a 30 MB
    document costs more than the whole gate decision)."""
    data = msgspec.json.encode(result_to_dict(result))
    if len(result.changes) <= 2000:
        data = msgspec.json.format(data, indent=2)
    return data.decode() + "\n"
