"""A small GitHub REST client: pull-request comments and commit statuses, and the `Forge` a pull request is.

Retries 5xx and rate limits (429, or 403 with Retry-After / x-ratelimit-remaining: 0) within a bounded
budget (`tfgate.forge.http`); turns 401/403/404/422 into errors that say what to fix. The token lives only in
the Authorization header: it is never printed, logged or put in an exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tfgate.forge.base import redact
from tfgate.forge.http import Call, ForgeError, Retry, next_link, send

DEFAULT_API = "https://api.github.com"

__all__ = ["DEFAULT_API", "GitHub", "GitHubError", "PullRequest", "Retry"]


class GitHubError(ForgeError):
    """A GitHub API call failed (exit 2 unless the caller tolerates it)."""


@dataclass
class GitHub:
    repo: str
    token: str = field(repr=False)
    api_url: str = DEFAULT_API
    retry: Retry = field(default_factory=Retry)
    sleep: Callable[[float], None] = time.sleep
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if "/" not in self.repo or self.repo.count("/") != 1:
            raise GitHubError(f"repository must be OWNER/NAME, not {self.repo!r}")
        if not self.token:
            raise GitHubError(
                "no GitHub token: set GITHUB_TOKEN (needs pull-requests: write, statuses: write)"
            )
        self.api_url = self.api_url.rstrip("/")

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, str]]:
        """JSON in, JSON out; returns (data, headers). Retries transient failures, then raises GitHubError."""
        url = path if path.startswith("http") else f"{self.api_url}{path}"
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        return send(
            Call(method, url, headers, body),
            retry=self.retry,
            sleep=self.sleep,
            timeout=self.timeout,
            explain=lambda status, detail: GitHubError(
                _explain(status, method, path, redact(detail, self.token), self.repo)
            ),
            unreachable=lambda reason: GitHubError(
                f"cannot reach the GitHub API at {self.api_url}: {redact(str(reason), self.token)}"
            ),
        )

    def issue_comments(self, number: int) -> Iterator[dict[str, Any]]:
        """Every comment of an issue or pull request, following `Link: rel="next"` pages."""
        url: str | None = f"/repos/{self.repo}/issues/{number}/comments?per_page=100"
        while url:
            page, headers = self.request("GET", url)
            yield from page or []
            url = next_link(headers.get("link", ""))

    def create_comment(self, number: int, body: str) -> dict[str, Any]:
        return self.request("POST", f"/repos/{self.repo}/issues/{number}/comments", {"body": body})[0]

    def update_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        return self.request("PATCH", f"/repos/{self.repo}/issues/comments/{comment_id}", {"body": body})[0]

    def set_status(
        self, sha: str, *, state: str, context: str, description: str, target_url: str | None
    ) -> None:
        body = {"state": state, "context": context, "description": description[:140]}
        if target_url:
            body["target_url"] = target_url
        self.request("POST", f"/repos/{self.repo}/statuses/{sha}", body)


@dataclass(frozen=True)
class PullRequest:
    """A GitHub pull request as a `Forge`."""

    gh: GitHub
    number: int

    @property
    def where(self) -> str:
        return f"{self.gh.repo}#{self.number}"

    def comments(self) -> list[tuple[int, str]]:
        return [(int(c["id"]), c.get("body") or "") for c in self.gh.issue_comments(self.number)]

    def create_comment(self, body: str) -> int:
        return int(self.gh.create_comment(self.number, body)["id"])

    def update_comment(self, comment_id: int, body: str) -> None:
        self.gh.update_comment(comment_id, body)

    def set_status(
        self, sha: str, *, context: str, success: bool, description: str, target_url: str | None
    ) -> None:
        self.gh.set_status(
            sha,
            state="success" if success else "failure",
            context=context,
            description=description,
            target_url=target_url,
        )


def _explain(status: int, method: str, path: str, detail: str, repo: str) -> str:
    what = f"GitHub API {method} {path.split('?')[0]} failed ({status}{': ' + detail if detail else ''})"
    hint = {
        401: "the token is missing, expired or invalid: check GITHUB_TOKEN",
        403: "the token lacks permission: the workflow needs `permissions: pull-requests: write, statuses: write`",
        404: f"repository {repo}, the pull request or the commit was not found, or the token cannot see it",
        422: "GitHub rejected the request: check the commit SHA and the comment size",
    }.get(status)
    return f"{what}; {hint}" if hint else what
