"""A standalone HTML report: inline CSS only (no scripts, fonts, images or network), responsive,
printable, with the full change list filterable by CSS alone. Every value is autoescaped."""

from __future__ import annotations

import html
import re
from typing import Any

from tfgate.model import ChangeClass, CombinedResult, Result, Verdict
from tfgate.render.common import destructive_unprotected, roots_tally, summary_line, template

_CLASSES = ("delete", "replace", "forget", "update", "create", "read", "no_op")


def _template() -> Any:
    return template("report.html.j2", autoescape=True).get_template("report.html.j2")


def render(result: Result, *, pid: str = "") -> str:
    """The standalone page; `pid` prefixes its element ids (several reports on one page)."""
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
        pid=pid,
    )


_BARE_HEAD = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy" '
    "content=\"default-src 'none'; style-src 'unsafe-inline'\">\n<title></title>\n</head>\n<body>\n"
)
_ROOTS_CSS = (
    "<style>details.root { margin: 18px 0; border-top: 1px solid var(--line); } "
    "details.root > summary { font-size: 1.2em; padding: 8px 0; cursor: pointer; } "
    ".err { color: var(--red); font-weight: 600; }</style>\n"
)


def render_roots(combined: CombinedResult) -> str:
    """One page for many roots: the summary table, then each root's report in a collapsible section
    (allowed roots without changes folded), element ids prefixed per root."""
    pages = {i: render(r.result, pid=f"r{i}-") for i, r in enumerate(combined.roots) if r.result is not None}
    blocked = combined.verdict is Verdict.BLOCK
    word = "BLOCKED" if blocked else "ALLOWED"
    some = next(iter(pages.values()), None)
    head = some.split("<main>", 1)[0] if some else _BARE_HEAD
    head = re.sub(r"<title>.*?</title>", f"<title>tfgate: {word} ({len(combined.roots)} roots)</title>", head)
    head = head.replace("</head>", _ROOTS_CSS + "</head>", 1)
    rows = []
    for i, r in enumerate(combined.roots):
        name = html.escape(r.name)
        rows.append(
            f'<tr><td data-label="root" class="addr"><a href="#root-{i}">{name}</a></td>'
            f'<td data-label="verdict">{r.status}</td><td data-label="destroys">{r.destroys}</td>'
            f'<td data-label="blocked">{r.blocked}</td><td data-label="approvals still needed">'
            f"{r.approvals_needed}</td></tr>"
        )
    sections = []
    for i, r in enumerate(combined.roots):
        folded = r.status == "allow" and not r.changed
        label = (
            "no changes"
            if folded
            else {"allow": "allowed", "block": "BLOCKED", "error": "input error"}[r.status]
        )
        inner = (
            pages[i].split("<main>", 1)[1].rsplit("</main>", 1)[0]
            if i in pages
            else f'<p class="err">tfgate: error: {html.escape(r.error or "")}</p>'
        )
        sections.append(
            f'<details class="root" id="root-{i}"{"" if folded else " open"}><summary>'
            f"{html.escape(r.name)}: {label}</summary>{inner}</details>"
        )
    return (
        f"{head}<main>\n"
        f'<section class="verdict {"block" if blocked else "allow"}"><h1>tfgate: {word}</h1>'
        f"<p>{html.escape(roots_tally(combined))} · exit code {combined.exit_code}</p></section>\n"
        '<table class="stack"><thead><tr><th>root</th><th>verdict</th><th>destroys</th><th>blocked</th>'
        f"<th>approvals still needed</th></tr></thead><tbody>{''.join(rows)}</tbody></table>\n"
        + "\n".join(sections)
        + f'\n<p class="meta">tfgate {html.escape(combined.tool_version)}</p>\n</main>\n</body>\n</html>\n'
    )
