"""Terminal report: verdict first, then what blocks, other destroys, findings, approvals, counts.

Colour only when asked (the CLI asks on a TTY without NO_COLOR); plain and stable when piped.
"""

from __future__ import annotations

from tfgate.model import Change, CombinedResult, Result, Severity, Verdict
from tfgate.render.common import (
    approval_state,
    destructive_unprotected,
    roots_tally,
    shown_address,
    summary_line,
    way_out_lines,
    why,
)

_RED, _GREEN, _YELLOW, _BOLD, _DIM, _RESET = (
    "\033[31m",
    "\033[32m",
    "\033[33m",
    "\033[1m",
    "\033[2m",
    "\033[0m",
)


def render(result: Result, *, color: bool = False) -> str:
    def c(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    out: list[str] = []
    blocked = result.verdict is Verdict.BLOCK
    head = "BLOCKED" if blocked else "ALLOWED"
    out.append(
        c(_BOLD + (_RED if blocked else _GREEN), f"tfgate: {head}")
        + (
            f" (workspace {result.workspace}, state checks only)"
            if result.plan.input_format == "none"
            else f" (workspace {result.workspace}, plan {result.plan.digest[:19]}, {result.plan.input_format})"
        )
    )
    unapproved = [v for v in result.violations if not v.approved]
    if unapproved:
        out.append("")
        out.append(c(_BOLD, f"Blocked changes ({len(unapproved)}):"))
        for v in unapproved:
            out.append(f"  {c(_RED, v.kind.upper()):<8} {shown_address(v)}")
            counted = f", {approval_state(v)}" if v.counted_by else ""
            out.append(f"      {v.reason}; needs {v.approvals_required} signed approval(s){counted}")
    approved = [v for v in result.violations if v.approved]
    if approved:
        out.append("")
        out.append(c(_BOLD, f"Approved protected changes ({len(approved)}):"))
        for v in approved:
            out.append(
                f"  {v.kind.upper():<8} {shown_address(v)}  (rule {v.rule}; by {', '.join(v.approved_by)})"
            )
    others = destructive_unprotected(result)
    if others:
        out.append("")
        out.append(c(_BOLD, f"Other destructive changes ({len(others)}):"))
        for ch in others:
            out.append(
                f"  {_action(ch):<8} {shown_address(ch)}  [{ch.risk.value} risk{'; ' + why(ch) if why(ch) else ''}]"
            )
    if result.findings:
        out.append("")
        out.append(c(_BOLD, "Findings:"))
        for f in result.findings:
            colour = {Severity.BLOCK: _RED, Severity.WARN: _YELLOW}.get(f.severity, _DIM)
            out.append(f"  {c(colour, f.severity.value.upper()):<5} {f.code}: {f.message}")
            for key, value in f.evidence:
                out.append(f"        {key}: {value}")
    if result.approvals:
        out.append("")
        out.append(c(_BOLD, "Approvals:"))
        for a in result.approvals:
            mark = c(_GREEN, "counted") if a.counted else c(_RED, "refused")
            out.append(f"  {mark} {a.source} ({a.signer or 'unknown signer'}): {a.reason}")
    out.append("")
    out.append(summary_line(result))
    if result.way_out is not None:
        out.append("")
        out.append(c(_BOLD, "The way out:"))
        out.extend(f"  {line}" for line in way_out_lines(result.way_out))
    return "\n".join(out) + "\n"


def _action(change: Change) -> str:
    if change.safety_nets and not change.destroys:
        return "UNSAFE"
    return change.change_class.value.upper()


def render_roots(combined: CombinedResult, *, color: bool = False) -> str:
    """The summary table of every root, then each root's report (allowed roots without changes only in
    the table) and each input error."""

    def c(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    blocked = combined.verdict is Verdict.BLOCK
    head = c(_BOLD + (_RED if blocked else _GREEN), f"tfgate: {'BLOCKED' if blocked else 'ALLOWED'}")
    out = [f"{head} ({roots_tally(combined)})", ""]
    width = max([4, *(len(r.name) for r in combined.roots)])
    out.append(f"  {'root':<{width}}  verdict  destroys  blocked  approvals still needed")
    for r in combined.roots:
        out.append(
            f"  {r.name:<{width}}  {r.status.upper():<7}  {r.destroys:>8}  {r.blocked:>7}  {r.approvals_needed:>22}"
        )
    for r in combined.roots:
        if r.result is None:
            out += ["", c(_BOLD, f"== {r.name} =="), c(_RED, f"tfgate: error: {r.error}")]
        elif r.status != "allow" or r.changed:
            out += ["", c(_BOLD, f"== {r.name} =="), render(r.result, color=color).rstrip("\n")]
    return "\n".join(out) + "\n"
