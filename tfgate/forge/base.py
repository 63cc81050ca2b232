"""The one interface every forge (GitHub, GitLab) offers `tfgate comment`: find the report comment by its
hidden marker, create or update it, set a commit status. What is posted is decided elsewhere."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from tfgate.forge.http import ForgeError


class Forge(Protocol):
    """A pull or merge request on a forge, as `tfgate comment` uses it."""

    @property
    def where(self) -> str:
        """Where the comment goes, for messages: `acme/infra#7`, `group/project!7`."""
        ...

    def find_comment(self, marker: str) -> int | None:
        """The id of the first comment whose body carries `marker`, searching every page; None if none."""
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


def first_with_marker(comments: Iterable[tuple[int, str]], marker: str) -> int | None:
    """The id of the first (id, body) pair whose body carries the marker."""
    return next((cid for cid, body in comments if marker in body), None)


def upsert(forge: Forge, body: str, marker: str) -> tuple[str, int]:
    """Update the comment that carries `marker`, or create it; returns ("updated"|"created", id)."""
    found = forge.find_comment(marker)
    if found is not None:
        forge.update_comment(found, body)
        return "updated", found
    return "created", forge.create_comment(body)


def redact(text: str, *secrets: str) -> str:
    """Text with every secret replaced (an error body a server echoes must not carry the token)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


__all__ = ["Forge", "ForgeError", "first_with_marker", "redact", "upsert"]
