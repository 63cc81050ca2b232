"""Terminal output (minimal first version; the reports module owner extends it)."""

from __future__ import annotations

from tfgate.model import Result, Verdict


def render(result: Result, *, color: bool = False) -> str:
    lines = []
    verdict = "BLOCKED" if result.verdict is Verdict.BLOCK else "ALLOWED"
    lines.append(f"tfgate: {verdict} (workspace {result.workspace}, plan {result.plan.digest[:19]})")
    for v in result.violations:
        state = "approved" if v.approved else "BLOCKED"
        lines.append(f"  {state}: {v.address} [{v.change_class.value}] {v.reason}")
    for f in result.findings:
        lines.append(f"  {f.severity.value}: {f.code}: {f.message}")
    s = result.summary
    lines.append(
        f"{s.create} to create, {s.update} to update, {s.delete} to delete, {s.replace} to replace, "
        f"{s.forget} to forget, {s.read} to read"
    )
    return "\n".join(lines) + "\n"
