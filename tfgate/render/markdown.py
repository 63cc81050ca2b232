"""GitHub-flavoured Markdown for a pull-request comment, never longer than GitHub's comment limit.

Everything from the plan is untrusted text and is escaped. When the report is too long, the least
important sections are cut first (the list of other changes, then other destructive changes, then
evidence), and every blocked change is always listed (as compact rows if need be).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tfgate.model import ChangeClass, CombinedResult, Result, RootResult, Verdict
from tfgate.render.common import destructive_unprotected, roots_tally, summary_line, template

LIMIT = 65536
MARKER = "<!-- tfgate:report workspace={workspace}{root} -->"
_SPECIAL = re.compile(r"([\\`*_\[\]|~#!])")


def marker(workspace: str, root: str | None = None) -> str:
    """The hidden comment that identifies a workspace's report (the comment bot finds it by this), with the
    root's identity when given (`tfgate comment` gives it; a report file carries none)."""
    name = re.sub(r"[^A-Za-z0-9_.\-/]", "_", workspace)
    return MARKER.format(workspace=name, root=f" root={root}" if root else "")


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


# Cut least important first: the rest, then other destructive rows, then evidence, then approvals, then
# compact the blocked table. Every blocked change stays listed.
STEPS: tuple[dict[str, Any], ...] = (
    {},
    {"rest": 200},
    {"rest": 0},
    {"rest": 0, "other": 200},
    {"rest": 0, "other": 20, "evidence": False},
    {"rest": 0, "other": 0, "evidence": False, "approvals": False},
    {"rest": 0, "other": 0, "evidence": False, "approvals": False, "compact": True, "approved": False},
)


@dataclass(frozen=True)
class _Parts:
    """What a report lists, selected once and rendered at each cutting step."""

    result: Result
    blocked: list
    approved: list
    others: list
    rest: list


def _parts(result: Result) -> _Parts:
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
    approved = [v for v in result.violations if v.approved]
    return _Parts(result, list(result.blocked_violations), approved, others, rest)


def _at_step(parts: _Parts, step: dict[str, Any], *, nested: bool = False, mark: str | None = None) -> str:
    """The report at one cutting step; `nested`: a root's section of a combined comment (no marker, no
    title, smaller headings)."""
    result, rest, others, approved = parts.result, parts.rest, parts.others, parts.approved
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
        nested=nested,
        h="####" if nested else "###",
        marker=mark or marker(result.workspace),
        blocked=result.verdict is Verdict.BLOCK,
        workspace=result.workspace,
        summary=summary_line(result),
        plan_note="" if result.plan.has_values else "plan -json stream: no attribute values",
        blocked_rows=parts.blocked,
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
    text = re.sub(r"\n(?=#{3,4} |<details>|<sub>|> Left out|Each approver|Approvals go)", "\n\n", text)
    return re.sub(r"\n{3,}", "\n\n", text)


def render(result: Result, *, limit: int = LIMIT, mark: str | None = None) -> str:
    """The report within `limit` characters; `mark`: the marker line to open with (default `marker()`)."""
    parts = _parts(result)
    text = ""
    for step in STEPS:
        text = _at_step(parts, step, mark=mark)
        if len(text) <= limit:
            return text
    return keep_blocked_rows(text, limit)


def keep_blocked_rows(text: str, limit: int) -> str:
    """Even compact rows for every blocked change do not fit (thousands of them): list as many as fit."""
    lines = text.splitlines(keepends=True)
    rows = [i for i, line in enumerate(lines) if line.startswith("- ")]
    keep = len(rows)
    while keep > 0:
        note = f"- …and {len(rows) - keep} more blocked changes not listed (see the JSON/HTML report)\n"
        cut = "".join(lines[: rows[keep - 1] + 1]) + note + "".join(lines[rows[-1] + 1 :])
        if len(cut) <= limit:
            return cut
        keep = keep * 9 // 10
    return (
        text[: limit - 80]
        + "\n\n> Report truncated at the comment limit (65,536 characters, GitHub's; the same for GitLab).\n"
    )


ROOTS_MARKER = "<!-- tfgate:report roots -->"


def roots_marker(identity: str | None = None) -> str:
    """The hidden comment that identifies a combined report, with the set of roots' identity when given."""
    return f"<!-- tfgate:report roots set={identity} -->" if identity else ROOTS_MARKER


_ICON = {"allow": "✅", "block": "⛔", "error": "❗"}


def _root_head(root: RootResult) -> str:
    label = {"allow": "allowed", "block": "blocked", "error": "input error"}[root.status]
    if root.status == "allow" and not root.changed:
        label = "no changes"
    return f"{_ICON[root.status]} <b>{html.escape(root.name)}</b>: {label}"


def _root_section(root: RootResult, body: str | None) -> str:
    folded = root.status == "allow" and not root.changed
    opening = "<details>" if folded else "<details open>"
    if root.result is None:
        body = f"> {escape(root.error or 'unknown error')}\n"
    elif body is None:
        body = "Left out to fit the comment limit: see the JSON/HTML report.\n"
    return f"{opening}<summary>{_root_head(root)}</summary>\n\n{body.strip()}\n\n</details>\n"


def _roots_head(combined: CombinedResult, mark: str) -> str:
    blocked = combined.verdict is Verdict.BLOCK
    title = "**BLOCKED**" if blocked else "allowed"
    rows = "".join(
        f"| `{_code(r.name)}` | {_ICON[r.status]} {r.status} | {r.destroys} | {r.blocked} | {r.approvals_needed} |\n"
        for r in combined.roots
    )
    return (
        f"{mark}\n## {'⛔' if blocked else '✅'} tfgate: {title} — {roots_tally(combined)}\n\n"
        "| root | verdict | destroys | blocked | approvals still needed |\n| --- | --- | --- | --- | --- |\n"
        f"{rows}\n"
    )


def render_roots(combined: CombinedResult, *, limit: int = LIMIT, mark: str = ROOTS_MARKER) -> str:
    """One comment for many roots: the summary table, then a collapsible section per root (roots without
    changes folded away). Cut as one report: every root at the same step, folded roots' bodies first,
    then, if need be, the blocked rows of every root shortened alike (each root keeps its first rows).
    `mark`: the marker line to open with."""
    head = _roots_head(combined, mark)
    foot = f"<sub>tfgate {combined.tool_version}</sub>\n"
    parts = [(r, _parts(r.result) if r.result is not None else None) for r in combined.roots]
    text = ""
    for i, step in enumerate(STEPS):
        sections = []
        for root, p in parts:
            drop = i > 0 and root.status == "allow" and not root.changed
            sections.append(
                _root_section(root, None if p is None or drop else _at_step(p, step, nested=True))
            )
        text = head + "\n".join(sections) + "\n" + foot
        if len(text) <= limit:
            return text
    return _shorten_blocked(head, foot, parts, limit) or text[: limit - 80] + "\n\n> Report truncated.\n"


def _shorten_blocked(head: str, foot: str, parts: list, limit: int) -> str | None:
    last = STEPS[-1]
    bodies = {r.name: _at_step(p, last, nested=True) for r, p in parts if p is not None and r.blocked}
    most = max((r.blocked for r, _ in parts), default=0)
    keep = most
    while keep > 0:
        sections = []
        for root, _ in parts:
            body = bodies.get(root.name)
            if body is not None:
                lines = body.splitlines(keepends=True)
                rows = [j for j, line in enumerate(lines) if line.startswith("- ")]
                if len(rows) > keep:
                    note = f"- …and {len(rows) - keep} more blocked changes not listed (see the JSON/HTML report)\n"
                    body = "".join(lines[: rows[keep - 1] + 1]) + note + "".join(lines[rows[-1] + 1 :])
            sections.append(_root_section(root, body))
        text = head + "\n".join(sections) + "\n" + foot
        if len(text) <= limit:
            return text
        keep = keep * 9 // 10
    return None
