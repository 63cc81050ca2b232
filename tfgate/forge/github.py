"""A small GitHub REST client (standard library only): pull-request comments and commit statuses.

Retries 5xx and rate limits (429, or 403 with Retry-After / x-ratelimit-remaining: 0) within a bounded
budget; turns 401/403/404/422 into errors that say what to fix. The token lives only in the
Authorization header: it is never printed, logged or put in an exception.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tfgate.errors import TfgateError

DEFAULT_API = "https://api.github.com"


class GitHubError(TfgateError):
    """A GitHub API call failed (exit 2 unless the caller tolerates it)."""


@dataclass(frozen=True)
class Retry:
    attempts: int = 5
    max_wait: float = 60.0  # seconds of waiting in total, across retries
    backoff: float = 1.0


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

    # --- transport ---------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, str]]:
        """JSON in, JSON out; returns (data, headers). Retries transient failures, then raises GitHubError."""
        url = path if path.startswith("http") else f"{self.api_url}{path}"
        data = json.dumps(body).encode() if body is not None else None
        waited = 0.0
        for attempt in range(1, self.retry.attempts + 1):
            req = urllib.request.Request(url, data=data, method=method)
            req.add_header("Authorization", f"Bearer {self.token}")
            req.add_header("Accept", "application/vnd.github+json")
            req.add_header("X-GitHub-Api-Version", "2022-11-28")
            req.add_header("User-Agent", "tfgate")
            if data is not None:
                req.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    raw = resp.read()
                    headers = {k.lower(): v for k, v in resp.headers.items()}
                    return (json.loads(raw) if raw else None), headers
            except urllib.error.HTTPError as exc:
                headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
                status = exc.code
                detail = _message(exc.read())
                wait = self._retry_after(status, headers, attempt)
                if (
                    wait is not None
                    and attempt < self.retry.attempts
                    and waited + wait <= self.retry.max_wait
                ):
                    self.sleep(wait)
                    waited += wait
                    continue
                raise GitHubError(_explain(status, method, path, detail, self.repo)) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                wait = self.retry.backoff * attempt
                if attempt < self.retry.attempts and waited + wait <= self.retry.max_wait:
                    self.sleep(wait)
                    waited += wait
                    continue
                raise GitHubError(f"cannot reach the GitHub API at {self.api_url}: {reason}") from None
        raise GitHubError(
            f"{method} {path}: gave up after {self.retry.attempts} attempts"
        )  # pragma: no cover

    def _retry_after(self, status: int, headers: dict[str, str], attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when the failure is not transient."""
        if "retry-after" in headers and status in (403, 429, 500, 502, 503, 504):
            try:
                return max(0.0, float(headers["retry-after"]))
            except ValueError:
                return self.retry.backoff * attempt
        if status in (403, 429) and headers.get("x-ratelimit-remaining") == "0":
            try:
                return max(0.0, float(headers.get("x-ratelimit-reset", "0")) - time.time()) + 1
            except ValueError:
                return None
        if status == 429 or status >= 500:
            return self.retry.backoff * attempt
        return None

    # --- endpoints ---------------------------------------------------------------------------------

    def issue_comments(self, number: int) -> Iterator[dict[str, Any]]:
        """Every comment of an issue or pull request, following `Link: rel="next"` pages."""
        url: str | None = f"/repos/{self.repo}/issues/{number}/comments?per_page=100"
        while url:
            page, headers = self.request("GET", url)
            yield from page or []
            url = _next_link(headers.get("link", ""))

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


def _next_link(link: str) -> str | None:
    for part in link.split(","):
        section = part.split(";")
        if len(section) >= 2 and 'rel="next"' in section[1]:
            return section[0].strip().strip("<>")
    return None


def _message(raw: bytes) -> str:
    try:
        return str(json.loads(raw).get("message", ""))[:200]
    except (ValueError, AttributeError):
        return raw[:200].decode("utf-8", "replace")


def _explain(status: int, method: str, path: str, detail: str, repo: str) -> str:
    what = f"GitHub API {method} {path.split('?')[0]} failed ({status}{': ' + detail if detail else ''})"
    hint = {
        401: "the token is missing, expired or invalid: check GITHUB_TOKEN",
        403: "the token lacks permission: the workflow needs `permissions: pull-requests: write, statuses: write`",
        404: f"repository {repo}, the pull request or the commit was not found, or the token cannot see it",
        422: "GitHub rejected the request: check the commit SHA and the comment size",
    }.get(status)
    return f"{what}; {hint}" if hint else what
