"""A standalone HTML report: inline CSS only (no scripts, fonts, images or network), responsive,
printable, with the full change list filterable by CSS alone. Every value is autoescaped."""

from __future__ import annotations

from typing import Any

from tfgate.model import ChangeClass, Result, Verdict
from tfgate.render.common import destructive_unprotected, summary_line, template

_CLASSES = ("delete", "replace", "forget", "update", "create", "read", "no_op")


def _template() -> Any:
    return template("report.html.j2", autoescape=True).get_template("report.html.j2")


def render(result: Result) -> str:
    by_key = {c.key: c for c in result.changes}
    blocked = [(v, by_key.get((v.address, v.deposed))) for v in result.blocked_violations]
    s = result.summary
    counts = [
        ("create", s.create),
        ("update", s.update),
        ("delete", s.delete),
        ("replace", s.replace),
        ("forget", s.forget),
        ("read", s.read),
    ]
    order = {k: i for i, k in enumerate(_CLASSES)}
    all_rows = sorted(
        (c for c in result.changes if c.change_class is not ChangeClass.NO_OP or c.moved or c.importing),
        key=lambda c: (order[c.change_class.value], c.address),
    )
    return _template().render(
        blocked=result.verdict is Verdict.BLOCK,
        workspace=result.workspace,
        exit_code=result.exit_code,
        digest=result.plan.digest,
        plan=result.plan,
        manifest=result.manifest,
        version=result.tool_version,
        summary=summary_line(result),
        counts=counts,
        total=max(1, sum(n for _, n in counts)),
        reasons=result.reasons,
        way_out=result.way_out,
        blocked_rows=blocked,
        approved_rows=[(v, by_key.get((v.address, v.deposed))) for v in result.violations if v.approved],
        other_rows=destructive_unprotected(result),
        findings=result.findings,
        approvals=result.approvals,
        classes=_CLASSES,
        all_rows=all_rows,
    )
