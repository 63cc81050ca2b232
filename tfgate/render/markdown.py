"""GitHub-flavoured Markdown for a pull-request comment, never longer than GitHub's comment limit.

Everything from the plan is untrusted text and is escaped. When the report is too long, the least
important sections are cut first (the list of other changes, then other destructive changes, then
evidence), and every blocked change is always listed (as compact rows if need be).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from tfgate.model import ChangeClass, Result, Verdict
from tfgate.render.common import destructive_unprotected, summary_line, template

LIMIT = 65536
MARKER = "<!-- tfgate:report workspace={workspace} -->"
_SPECIAL = re.compile(r"([\\`*_\[\]|~#!])")


def marker(workspace: str) -> str:
    """The hidden comment that identifies a workspace's report (the comment bot finds it by this)."""
    return MARKER.format(workspace=re.sub(r"[^A-Za-z0-9_.\-/]", "_", workspace))


def escape(value: object) -> str:
    """Text safe inside a GFM table cell or paragraph: no markup, no HTML, no line breaks."""
    text = str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _SPECIAL.sub(r"\\\1", text)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def _code(value: object) -> str:
    return str(value).replace("`", "'").replace("\n", " ")


@lru_cache(maxsize=1)
def _template() -> Any:
    env = template("report.md.j2", autoescape=False)  # Markdown: every value goes through `md` instead
    env.filters["md"] = escape
    env.filters["code"] = _code
    return env.get_template("report.md.j2")


def render(result: Result, *, limit: int = LIMIT) -> str:
    blocked = list(result.blocked_violations)
    approved = [v for v in result.violations if v.approved]
    others = destructive_unprotected(result)
    shown_other = {c.key for c in others}
    protected = {(v.address, v.deposed) for v in result.violations}
    rest = [
        c
        for c in result.changes
        if c.key not in shown_other
        and c.key not in protected
        and (c.change_class is not ChangeClass.NO_OP or c.moved or c.importing)
    ]
    plan_note = "" if result.plan.has_values else "plan -json stream: no attribute values"
    # Cut least important first: the rest, then other destructive rows, then evidence, then approvals,
    # then compact the blocked table. Every blocked change stays listed.
    steps: list[dict[str, Any]] = [
        {},
        {"rest": 200},
        {"rest": 0},
        {"rest": 0, "other": 200},
        {"rest": 0, "other": 20, "evidence": False},
        {"rest": 0, "other": 0, "evidence": False, "approvals": False},
        {"rest": 0, "other": 0, "evidence": False, "approvals": False, "compact": True, "approved": False},
    ]
    text = ""
    for step in steps:
        omitted = []
        rest_rows = rest[: step.get("rest", len(rest))]
        other_rows = others[: step.get("other", len(others))]
        if len(rest_rows) < len(rest):
            omitted.append(f"{len(rest) - len(rest_rows)} other changes")
        if len(other_rows) < len(others):
            omitted.append(f"{len(others) - len(other_rows)} unprotected destructive changes")
        if step.get("evidence") is False and any(f.evidence for f in result.findings):
            omitted.append("finding evidence")
        if step.get("approvals") is False and result.approvals:
            omitted.append(f"{len(result.approvals)} approval outcomes")
        if step.get("approved") is False and approved:
            omitted.append(f"{len(approved)} approved changes")
        text = _template().render(
            marker=marker(result.workspace),
            blocked=result.verdict is Verdict.BLOCK,
            workspace=result.workspace,
            summary=summary_line(result),
            plan_note=plan_note,
            blocked_rows=blocked,
            compact_blocked=step.get("compact", False),
            approved_rows=approved if step.get("approved", True) else [],
            other_rows=other_rows,
            other_total=len(others),
            findings=result.findings,
            show_evidence=step.get("evidence", True),
            approvals=result.approvals if step.get("approvals", True) else (),
            rest_rows=rest_rows,
            rest_total=len(rest),
            omitted=omitted,
            version=result.tool_version,
            digest=result.plan.digest,
            way_out=result.way_out,
        )
        text = re.sub(r"\n(?=### |<details>|<sub>|> Left out|Each approver|Approvals go)", "\n\n", text)
        text = re.sub(r"\n{3,}", "\n\n", text)
        if len(text) <= limit:
            return text
    # Even compact rows for every blocked change do not fit (thousands of them): list as many as fit.
    lines = text.splitlines(keepends=True)
    rows = [i for i, line in enumerate(lines) if line.startswith("- ")]
    keep = len(rows)
    while keep > 0:
        note = f"- …and {len(rows) - keep} more blocked changes not listed (see the JSON/HTML report)\n"
        cut = "".join(lines[: rows[keep - 1] + 1]) + note + "".join(lines[rows[-1] + 1 :])
        if len(cut) <= limit:
            return cut
        keep = keep * 9 // 10
    return text[: limit - 80] + "\n\n> Report truncated at GitHub's comment limit.\n"
