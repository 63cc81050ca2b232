"""`tfgate comment`: the Markdown report as one pull-request comment per workspace, kept up to date,
plus a commit status `tfgate/<workspace>` that branch protection can require."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tfgate.errors import TfgateError
from tfgate.forge.github import DEFAULT_API, GitHub, GitHubError
from tfgate.model import Result, Verdict


@dataclass(frozen=True)
class Target:
    repo: str
    pr: int
    sha: str | None
    api_url: str
    run_url: str | None


def resolve_target(repo: str | None, pr: int | None, sha: str | None, api_url: str | None) -> Target:
    """Explicit options first, then GitHub Actions' standard environment."""
    event: dict = {}
    event_path = os.environ.get("GITHUB_EVENT_PATH")
    if event_path and Path(event_path).is_file():
        try:
            event = json.loads(Path(event_path).read_text())
        except ValueError:
            raise TfgateError(f"GITHUB_EVENT_PATH {event_path} is not JSON") from None
    pull = event.get("pull_request") or {}
    repo = repo or os.environ.get("GITHUB_REPOSITORY")
    number = pr or pull.get("number") or (event.get("issue") or {}).get("number")
    # On an issue_comment event GITHUB_SHA is the default branch's head, not the planned commit.
    fallback = None if "issue" in event else os.environ.get("GITHUB_SHA")
    sha = sha or (pull.get("head") or {}).get("sha") or fallback
    if not repo:
        raise TfgateError("no repository: pass --repo OWNER/NAME or set GITHUB_REPOSITORY")
    if not number:
        raise TfgateError("no pull request: pass --pr N or run on a pull_request event (GITHUB_EVENT_PATH)")
    server, run_id = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_RUN_ID")
    run_url = f"{server}/{repo}/actions/runs/{run_id}" if server and run_id else None
    return Target(repo, int(number), sha, api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API, run_url)


def upsert_comment(gh: GitHub, pr: int, body: str, marker: str) -> tuple[str, int]:
    """Update the comment that carries `marker` (the workspace's report), or create it."""
    for comment in gh.issue_comments(pr):
        if marker in (comment.get("body") or ""):
            gh.update_comment(comment["id"], body)
            return "updated", int(comment["id"])
    created = gh.create_comment(pr, body)
    return "created", int(created["id"])


def status_description(result: Result) -> str:
    s = result.summary
    head = "blocked" if result.verdict is Verdict.BLOCK else "allowed"
    blocked = len(result.blocked_violations)
    text = f"{head}: {blocked} protected change(s) without approval; {s.delete} delete, {s.replace} replace"
    return text[:140]


def post(result: Result, target: Target, token: str) -> str:
    """Comment and set the status; returns a one-line account. Raises GitHubError on failure."""
    from tfgate.render.markdown import marker, render

    gh = GitHub(repo=target.repo, token=token, api_url=target.api_url)
    action, comment_id = upsert_comment(gh, target.pr, render(result), marker(result.workspace))
    line = f"{action} comment {comment_id} on {target.repo}#{target.pr}"
    # The status goes on the commit that was planned (--sha, the event's head, GITHUB_SHA). The pull
    # request's head now may be a later push this plan never saw: no guessing.
    sha = target.sha
    if not sha:
        raise GitHubError(
            f"{line}, but no commit to set the status tfgate/{result.workspace} on: give --sha (the commit "
            "that was planned); in GitHub Actions it comes from the event"
        )
    gh.set_status(
        sha,
        state="success" if result.verdict is Verdict.ALLOW else "failure",
        context=f"tfgate/{result.workspace}",
        description=status_description(result),
        target_url=target.run_url,
    )
    line += f"; status tfgate/{result.workspace} on {sha[:12]}"
    return line
