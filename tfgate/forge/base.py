"""The one interface every forge (GitHub, GitLab) offers `tfgate comment` (list the comments, create or
update one, set a commit status), and what a report comment's hidden marker claims: which status context
it reports for (its key) and which root it is (its identity). Which comment is this root's and whether
another root reports for the same status is decided here, the same on every forge."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from tfgate.errors import TfgateError
from tfgate.forge.http import ForgeError


class Forge(Protocol):
    """A pull or merge request on a forge, as `tfgate comment` uses it."""

    @property
    def where(self) -> str:
        """Where the comment goes, for messages: `acme/infra#7`, `group/project!7`."""
        ...

    def comments(self) -> list[tuple[int, str]]:
        """Every comment as (id, body), oldest first, from every page (GitLab: not system notes)."""
        ...

    def create_comment(self, body: str) -> int:
        """Post a new comment; returns its id."""
        ...

    def update_comment(self, comment_id: int, body: str) -> None:
        """Replace a comment's body."""
        ...

    def set_status(
        self, sha: str, *, context: str, success: bool, description: str, target_url: str | None
    ) -> None:
        """Set the commit status `context` on `sha` (success, or failure/failed)."""
        ...


#: A report's hidden marker: `workspace=W` (one root; `root=ID` since identities) or `roots` (combined;
#: `set=ID`). Without an identity it is a legacy marker, written by tfgate before identities.
_MARKER = re.compile(
    r"<!-- tfgate:report (?:workspace=([A-Za-z0-9_.\-/]+)(?: root=([0-9a-f]{12}))?|roots(?: set=([0-9a-f]{12}))?) -->"
)


@dataclass(frozen=True)
class Claim:
    """What a report comment's marker says: the status it reports for and the root (or set) it is."""

    key: str  # "workspace=NAME" or "roots"
    identity: str | None  # None: a legacy marker (no identity)


def claim_of(body: str) -> Claim | None:
    """The claim of the first report marker in a comment body; None for a comment that is no report."""
    m = _MARKER.search(body)
    if m is None:
        return None
    if m.group(1) is not None:
        return Claim(f"workspace={m.group(1)}", m.group(2))
    return Claim("roots", m.group(3))


@dataclass(frozen=True)
class Placement:
    """Where this root's report goes among the request's comments."""

    ours: int | None  # the comment to update: this root's, else a legacy one adopted; None: create one
    others: tuple[int, ...]  # other roots' reports for the same status (another identity, or legacy)


def place(comments: Iterable[tuple[int, str]], claim: Claim) -> Placement:
    """This root's comment (the first with its identity; else the first legacy marker of the same key,
    adopted once) and every other report for the same key: those are other roots sharing the status."""
    ours: int | None = None
    legacy: list[int] = []
    others: list[int] = []
    for cid, body in comments:
        found = claim_of(body)
        if found is None or found.key != claim.key:
            continue
        if found == claim:
            ours = cid if ours is None else ours
        elif found.identity is None:
            legacy.append(cid)
        else:
            others.append(cid)
    if ours is None and legacy:
        ours = legacy.pop(0)
    return Placement(ours, tuple(sorted(others + legacy)))


class ReportClash(TfgateError):
    """Another root's report on the request sets the same status: exit 2 (never tolerated as a failure to
    comment: the statuses were set to failure and the CI configuration must change)."""


def redact(text: str, *secrets: str) -> str:
    """Text with every secret replaced (an error body a server echoes must not carry the token)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


__all__ = ["Claim", "Forge", "ForgeError", "Placement", "ReportClash", "claim_of", "place", "redact"]
