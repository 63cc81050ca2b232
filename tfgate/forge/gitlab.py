"""A small GitLab REST (v4) client: merge-request notes and commit statuses, and the `Forge` an MR is.

Authentication: a project, group or personal access token (GITLAB_TOKEN, sent as PRIVATE-TOKEN; needs the
`api` scope, Reporter to write notes and Developer to set statuses), else the job's CI_JOB_TOKEN (sent as
JOB-TOKEN). GitLab's job-token documentation lists the endpoints a job token may call, and neither MR notes
nor `POST /projects/:id/statuses/:sha` is among them: with only CI_JOB_TOKEN the calls are made and a 401/403
says to set GITLAB_TOKEN. Retries like the GitHub client (`tfgate.forge.http`); the token lives only in its
header and is never printed, logged or put in an exception.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tfgate.forge.base import redact
from tfgate.forge.http import Call, ForgeError, Retry, next_link, send

DEFAULT_API = "https://gitlab.com/api/v4"
PER_PAGE = 100
MAX_PAGES = 1000  # 100,000 notes: a loop that does not end is a server bug, not a reason to hang


class GitLabError(ForgeError):
    """A GitLab API call failed (exit 2 unless the caller tolerates it)."""


@dataclass
class GitLab:
    project: str  # numeric id or full path (group/project); URL-encoded here
    token: str = field(repr=False)
    api_url: str = DEFAULT_API
    job_token: bool = False  # True: `token` is CI_JOB_TOKEN (JOB-TOKEN header)
    retry: Retry = field(default_factory=Retry)
    sleep: Callable[[float], None] = time.sleep
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.project:
            raise GitLabError("no GitLab project: pass --repo ID-OR-PATH or set CI_PROJECT_ID")
        if not self.token:
            raise GitLabError(
                "no GitLab token: set GITLAB_TOKEN to a project access token with the api scope "
                "(Developer role: notes and commit statuses)"
            )
        self.api_url = self.api_url.rstrip("/")

    @property
    def _base(self) -> str:
        return f"/projects/{urllib.parse.quote(self.project, safe='')}"

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, str]]:
        """JSON in, JSON out; returns (data, headers). Retries transient failures, then raises GitLabError."""
        url = path if path.startswith("http") else f"{self.api_url}{path}"
        headers = {"JOB-TOKEN" if self.job_token else "PRIVATE-TOKEN": self.token}
        shown = urllib.parse.urlsplit(url).path
        return send(
            Call(method, url, headers, body),
            retry=self.retry,
            sleep=self.sleep,
            timeout=self.timeout,
            explain=lambda status, detail: GitLabError(
                self._explain(status, method, shown, redact(detail, self.token))
            ),
            unreachable=lambda reason: GitLabError(
                f"cannot reach the GitLab API at {self.api_url}: {redact(str(reason), self.token)}"
            ),
        )

    def notes(self, iid: int) -> Iterator[dict[str, Any]]:
        """Every note of a merge request, oldest first, following `Link: rel="next"` or `x-next-page`."""
        path = f"{self._base}/merge_requests/{iid}/notes"
        url: str | None = f"{path}?per_page={PER_PAGE}&sort=asc&order_by=created_at"
        for _ in range(MAX_PAGES):
            if url is None:
                return
            page, headers = self.request("GET", url)
            if not isinstance(page, list):
                raise GitLabError(f"GitLab API GET {path}: expected a list of notes")
            yield from page
            url = next_link(headers.get("link", ""))
            following = headers.get("x-next-page", "").strip()
            if url is None and following:
                if not following.isdigit():
                    raise GitLabError(f"GitLab API GET {path}: bad x-next-page {following[:20]!r}")
                url = f"{path}?per_page={PER_PAGE}&sort=asc&order_by=created_at&page={following}"
        raise GitLabError(f"GitLab API GET {path}: more than {MAX_PAGES} pages of notes")

    def create_note(self, iid: int, body: str) -> dict[str, Any]:
        return self.request("POST", f"{self._base}/merge_requests/{iid}/notes", {"body": body})[0]

    def update_note(self, iid: int, note_id: int, body: str) -> dict[str, Any]:
        return self.request("PUT", f"{self._base}/merge_requests/{iid}/notes/{note_id}", {"body": body})[0]

    def set_status(
        self,
        sha: str,
        *,
        state: str,
        name: str,
        description: str,
        target_url: str | None,
        pipeline_id: int | None = None,
    ) -> None:
        body: dict[str, Any] = {"state": state, "name": name, "description": description[:140]}
        if target_url:
            body["target_url"] = target_url
        if pipeline_id:
            body["pipeline_id"] = pipeline_id
        self.request("POST", f"{self._base}/statuses/{sha}", body)

    def _explain(self, status: int, method: str, path: str, detail: str) -> str:
        what = f"GitLab API {method} {path} failed ({status}{': ' + detail if detail else ''})"
        job = (
            " (CI_JOB_TOKEN cannot write MR notes or commit statuses: set GITLAB_TOKEN)"
            if self.job_token
            else ""
        )
        hint = {
            401: "the token is missing, expired or invalid: check GITLAB_TOKEN" + job,
            403: "the token lacks permission: it needs the api scope and the Developer role" + job,
            404: f"project {self.project}, the merge request or the commit was not found, or the token "
            "cannot see it",
            422: "GitLab rejected the request: check the commit SHA and the note size",
        }.get(status)
        return f"{what}; {hint}" if hint else what


@dataclass(frozen=True)
class MergeRequest:
    """A GitLab merge request as a `Forge`; statuses go into `pipeline_id` when given (CI_PIPELINE_ID)."""

    gl: GitLab
    iid: int
    pipeline_id: int | None = None

    @property
    def where(self) -> str:
        return f"{self.gl.project}!{self.iid}"

    def comments(self) -> list[tuple[int, str]]:
        return [(int(n["id"]), n.get("body") or "") for n in self.gl.notes(self.iid) if not n.get("system")]

    def create_comment(self, body: str) -> int:
        return int(self.gl.create_note(self.iid, body)["id"])

    def update_comment(self, comment_id: int, body: str) -> None:
        self.gl.update_note(self.iid, comment_id, body)

    def set_status(
        self, sha: str, *, context: str, success: bool, description: str, target_url: str | None
    ) -> None:
        self.gl.set_status(
            sha,
            state="success" if success else "failed",
            name=context,
            description=description,
            target_url=target_url,
            pipeline_id=self.pipeline_id,
        )
