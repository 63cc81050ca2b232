"""GitLab's `artifacts:reports:terraform` report, which the merge-request widget shows: one JSON object
`{"create": N, "update": N, "delete": N}`, counted as GitLab's own jq recipe counts them (every action of
every resource change: a replace is one create and one delete; read, no-op and forget count nothing).

GitLab keeps one such report per job (its parser keys the report by the job's id), so for many roots in one
job the report is the sum over the roots that could be read; one job per root (`parallel:matrix`) gives the
widget one line per root."""

from __future__ import annotations

import json

from tfgate.model import CombinedResult, Result

KEYS = ("create", "update", "delete")


def counts(result: Result) -> dict[str, int]:
    """The recipe: `[.resource_changes[]?.change.actions?] | flatten`, then how often each key occurs."""
    out = dict.fromkeys(KEYS, 0)
    for change in result.changes:
        for action in change.actions:
            if action in out:
                out[action] += 1
    return out


def render(result: Result) -> str:
    return json.dumps(counts(result)) + "\n"


def render_roots(combined: CombinedResult) -> str:
    total = dict.fromkeys(KEYS, 0)
    for root in combined.roots:
        if root.result is not None:
            for key, n in counts(root.result).items():
                total[key] += n
    return json.dumps(total) + "\n"
