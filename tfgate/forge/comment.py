"""`tfgate comment`: the Markdown report as one pull/merge-request comment per workspace (or one combined
comment for many roots), kept up to date, plus commit statuses `tfgate/<workspace or root>` that branch
protection can require. Works the same on every `Forge` (GitHub, GitLab)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tfgate.errors import TfgateError
from tfgate.forge.base import Forge, ForgeError, upsert
from tfgate.model import CombinedResult, Result, RootResult, Verdict

FORGES = ("github", "gitlab")


@dataclass(frozen=True)
class Target:
    repo: str  # GitHub OWNER/NAME; GitLab project id or path
    pr: int  # pull request number; merge request iid
    sha: str | None
    api_url: str
    run_url: str | None
    forge: str = "github"
    pipeline_id: int | None = None  # GitLab: the pipeline the statuses join (CI_PIPELINE_ID)


def choose_forge(explicit: str | None) -> str:
    """--forge, else gitlab when GITLAB_CI is set (GitLab CI/CD sets it in every job), else github."""
    forge = explicit or ("gitlab" if os.environ.get("GITLAB_CI") else "github")
    if forge not in FORGES:
        raise TfgateError(f"unknown --forge {forge!r}; expected one of {', '.join(FORGES)}")
    return forge


def resolve_target(
    repo: str | None, pr: int | None, sha: str | None, api_url: str | None, forge: str = "github"
) -> Target:
    """Explicit options first, then the CI system's standard environment."""
    if forge == "gitlab":
        return _gitlab_target(repo, pr, sha, api_url)
    from tfgate.forge.github import DEFAULT_API

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


def _gitlab_target(repo: str | None, pr: int | None, sha: str | None, api_url: str | None) -> Target:
    from tfgate.forge.gitlab import DEFAULT_API

    env = os.environ.get
    project = repo or env("CI_PROJECT_ID") or env("CI_PROJECT_PATH")
    iid = pr or env("CI_MERGE_REQUEST_IID")
    if not project:
        raise TfgateError("no GitLab project: pass --repo ID-OR-PATH or set CI_PROJECT_ID")
    if not iid or not str(iid).isdigit():
        raise TfgateError(
            "no merge request: pass --pr IID or run in a merge request pipeline (CI_MERGE_REQUEST_IID; "
            "`rules: - if: $CI_PIPELINE_SOURCE == 'merge_request_event'`)"
        )
    # The planned commit is this pipeline's CI_COMMIT_SHA (in a merged-results pipeline, the merge result);
    # the statuses join this pipeline so the merge request shows them. An explicit --sha joins no pipeline.
    pipeline = env("CI_PIPELINE_ID") if not sha else None
    return Target(
        repo=project,
        pr=int(iid),
        sha=sha or env("CI_COMMIT_SHA"),
        api_url=api_url or env("CI_API_V4_URL") or DEFAULT_API,
        run_url=env("CI_JOB_URL"),
        forge="gitlab",
        pipeline_id=int(pipeline) if pipeline and pipeline.isdigit() else None,
    )


def open_forge(target: Target) -> Forge:
    """The target's pull or merge request, authenticated from the environment (tokens are never shown)."""
    if target.forge == "gitlab":
        from tfgate.forge.gitlab import GitLab, MergeRequest

        token, job = os.environ.get("GITLAB_TOKEN", ""), False
        if not token and os.environ.get("CI_JOB_TOKEN"):
            token, job = os.environ["CI_JOB_TOKEN"], True
        gl = GitLab(project=target.repo, token=token, api_url=target.api_url, job_token=job)
        return MergeRequest(gl, target.pr, target.pipeline_id)
    from tfgate.forge.github import GitHub, PullRequest

    gh = GitHub(repo=target.repo, token=os.environ.get("GITHUB_TOKEN", ""), api_url=target.api_url)
    return PullRequest(gh, target.pr)


def status_description(result: Result) -> str:
    s = result.summary
    head = "blocked" if result.verdict is Verdict.BLOCK else "allowed"
    blocked = len(result.blocked_violations)
    text = f"{head}: {blocked} protected change(s) without approval; {s.delete} delete, {s.replace} replace"
    return text[:140]


def _need_sha(line: str, target: Target, contexts: str) -> str:
    # The status goes on the commit that was planned (--sha, the event's head, GITHUB_SHA, CI_COMMIT_SHA).
    # The request's head now may be a later push this plan never saw: no guessing.
    if not target.sha:
        hint = "CI_COMMIT_SHA" if target.forge == "gitlab" else "the event"
        raise ForgeError(
            f"{line}, but no commit to set the status {contexts} on: give --sha (the commit that was "
            f"planned); in CI it comes from {hint}"
        )
    return target.sha


def post(result: Result, target: Target, forge: Forge) -> str:
    """Comment and set the status; returns a one-line account. Raises ForgeError on failure."""
    from tfgate.render.markdown import marker, render

    action, comment_id = upsert(forge, render(result), marker(result.workspace))
    line = f"{action} comment {comment_id} on {forge.where}"
    context = f"tfgate/{result.workspace}"
    sha = _need_sha(line, target, context)
    forge.set_status(
        sha,
        context=context,
        success=result.verdict is Verdict.ALLOW,
        description=status_description(result),
        target_url=target.run_url,
    )
    return f"{line}; status {context} on {sha[:12]}"


def root_status(root: RootResult) -> tuple[bool, str]:
    """(success, description) of a root's status; an input error is a failure that says so."""
    if root.result is None:
        return False, f"input error: {root.error}"[:140]
    return root.result.verdict is Verdict.ALLOW, status_description(root.result)


def post_roots(combined: CombinedResult, target: Target, forge: Forge) -> str:
    """One combined comment, a status `tfgate/<root>` per root and `tfgate` overall (success only when
    every root is allowed). Returns a one-line account; raises ForgeError on failure."""
    from tfgate.render.common import roots_tally
    from tfgate.render.markdown import ROOTS_MARKER, render_roots

    action, comment_id = upsert(forge, render_roots(combined), ROOTS_MARKER)
    line = f"{action} comment {comment_id} on {forge.where}"
    sha = _need_sha(line, target, "tfgate/<root>")
    for root in combined.roots:
        success, description = root_status(root)
        forge.set_status(
            sha, context=f"tfgate/{root.name}", success=success, description=description,
            target_url=target.run_url,
        )  # fmt: skip
    ok = combined.exit_code == 0
    forge.set_status(
        sha, context="tfgate", success=ok, description=f"{'allowed' if ok else 'blocked'}: {roots_tally(combined)}",
        target_url=target.run_url,
    )  # fmt: skip
    return f"{line}; statuses tfgate/<root> for {len(combined.roots)} roots and tfgate on {sha[:12]}"


def publish(
    outcome: Result | CombinedResult, target: Target, *, tolerate: bool, echo: Callable[[str], None]
) -> None:
    """Post one result or a combined one; a forge failure raises unless tolerated (then it is reported)."""
    try:
        if isinstance(outcome, CombinedResult):
            echo(f"tfgate: {post_roots(outcome, target, open_forge(target))}")
        else:
            echo(f"tfgate: {post(outcome, target, open_forge(target))}")
    except ForgeError as exc:
        if not tolerate:
            raise
        echo(f"tfgate: warning: could not comment (tolerated): {exc}")
