"""JSON output: the result object, as documented by tfgate/schemas/result.schema.json."""

from __future__ import annotations

from typing import Any

import msgspec

from tfgate.model import Change, ChangeClass, CombinedResult, Finding, Result, Risk, WayOut

_NO_OP = ChangeClass.NO_OP

SCHEMA_VERSION = 1


class _ChangeOut(msgspec.Struct, omit_defaults=True, gc=False):
    """One entry of `changes` (a struct: 66,000 of them encode several times faster than dicts)."""

    address: str
    mode: str
    type: str
    actions: tuple[str, ...]
    class_: ChangeClass = msgspec.field(name="class")
    protected_by: tuple[str, ...]
    risk: Risk
    module_address: str | None = None
    action_reason: str | None = None
    replace_order: str | None = None
    deposed: str | None = None
    previous_address: str | None = None
    importing: dict[str, Any] | None = None
    catalog: dict[str, Any] | None = None
    safety_nets: list[dict[str, Any]] | None = None
    prior: dict[str, Any] | None = None
    hidden_tags: tuple[str, ...] | None = None
    provider: str | None = None


_catalog_out: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}


def _catalog(kind: str, classes: tuple[str, ...]) -> dict[str, Any]:
    key = (kind, classes)
    out = _catalog_out.get(key)
    if out is None:
        out = _catalog_out[key] = {"kind": kind, "classes": list(classes)}
    return out


def _change(c: Change) -> _ChangeOut:
    return _ChangeOut(
        c.address,
        c.mode,
        c.type,
        c.actions,
        c.change_class,
        c.protected_by,
        c.risk,
        c.module_address or None,
        c.action_reason or None,
        c.replace_order,
        c.deposed or None,
        c.previous_address,
        {"id": c.import_id} if c.importing else None,
        _catalog(c.catalog_kind, c.catalog_classes) if c.catalog_kind else None,
        [
            {"attribute": n.attribute, "before": n.before, "after": n.after, "description": n.description}
            for n in c.safety_nets
        ]
        if c.safety_nets
        else None,
        dict(c.prior) if c.prior else None,
        c.hidden_tags or None,
        c.provider,
    )


def _finding(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {"code": f.code, "severity": f.severity.value, "message": f.message}
    if f.address:
        out["address"] = f.address
    if f.evidence:
        out["evidence"] = dict(f.evidence)
    if f.approvable:
        out["approvable"] = True
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
            "targeted": p.targeted,
        },
        "summary": result.summary.as_dict(),
        "reasons": list(result.reasons),
        "violations": [
            {
                "address": v.address,
                "rule": v.rule,
                "class": v.kind,
                "reason": v.reason,
                "approvals_required": v.approvals_required,
                "approved": v.approved,
                "approved_by": list(v.approved_by),
                **({"deposed": v.deposed} if v.deposed else {}),
                **({"previous_address": v.previous_address} if v.previous_address else {}),
                **({"commands": v.subject} if v.subject else {}),
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
            _change(c) for c in result.changes if c.change_class is not _NO_OP or c.moved or c.importing
        ],
        "binding": result.binding.as_dict() if result.binding is not None else None,
        "way_out": _way_out(result.way_out),
    }


def _way_out(w: WayOut | None) -> dict[str, Any] | None:
    if w is None:
        return None
    return {
        "approve": w.approve,
        "approvals_dir": w.approvals_dir,
        "then": w.then,
        "needed": [
            {"rule": n.rule, "still_needed": n.still_needed, "approvers": list(n.approvers),
             "addresses": list(n.addresses)}
            for n in w.needed
        ],
        "not_approvable": list(w.not_approvable),
    }  # fmt: skip


def render(result: Result) -> str:
    """Pretty-printed for small results; one compact line past 2,000 changes (pretty-printing a 30 MB
    document costs more than the whole gate decision)."""
    return render_bytes(result).decode()


def render_bytes(result: Result) -> bytes:
    """``render(result)``, UTF-8 encoded (what emit writes: a large plan's report is not decoded and encoded
    again on its way out)."""
    data = msgspec.json.encode(result_to_dict(result))
    if len(result.changes) <= 2000:
        data = msgspec.json.format(data, indent=2)
    return data + b"\n"


def roots_to_dict(combined: CombinedResult) -> dict[str, Any]:
    """A combined run: the overall verdict and exit code, and under `roots` each root's summary with its
    full single-plan result (or its input error)."""
    roots = []
    for r in combined.roots:
        entry: dict[str, Any] = {
            "name": r.name,
            "source": r.source,
            "verdict": r.status,
            "exit_code": r.exit_code,
            "destroys": r.destroys,
            "blocked": r.blocked,
            "approvals_needed": r.approvals_needed,
        }
        if r.result is None:
            entry["error"] = r.error
        else:
            entry["result"] = result_to_dict(r.result)
        roots.append(entry)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "tfgate", "version": combined.tool_version},
        "verdict": combined.verdict.value,
        "exit_code": combined.exit_code,
        "roots": roots,
    }


def render_roots(combined: CombinedResult) -> str:
    data = msgspec.json.encode(roots_to_dict(combined))
    if sum(len(r.result.changes) for r in combined.roots if r.result) <= 2000:
        data = msgspec.json.format(data, indent=2)
    return data.decode() + "\n"
