"""`tfgate comment`: the Markdown report as one pull/merge-request comment per root (or one combined
comment for many roots), kept up to date, plus commit statuses `tfgate/<workspace or root>` that branch
protection can require. A comment is this root's by the identity in its marker; another root's report for
the same status is a clash: every status this run sets is a failure and the run exits 2. Works the same on
every `Forge` (GitHub, GitLab)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tfgate.errors import TfgateError
from tfgate.forge.base import Claim, Forge, ForgeError, ReportClash, claim_of, place
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


def root_identity(workdir: Path) -> str:
    """A root's identity in its report's marker: a short hash of its directory relative to the CI checkout
    ($GITHUB_WORKSPACE, $CI_PROJECT_DIR), else to the git work tree it is in, else of its real path. The
    same across runs on other runners or checkout paths; a Terragrunt cache directory counts as its unit."""
    return _digest("root", _checkout_path(workdir))


def roots_identity(base: Path, names: Iterable[str]) -> str:
    """A combined report's identity: a short hash of the run's directory (as `root_identity` places it)
    and the set of its root names (the names are relative to that directory)."""
    return _digest("roots", _checkout_path(base), *sorted(names))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def _checkout_path(directory: Path) -> str:
    from tfgate.roots import TERRAGRUNT_CACHE

    real = Path(os.path.realpath(directory))
    if TERRAGRUNT_CACHE in real.parts:
        real = Path(*real.parts[: real.parts.index(TERRAGRUNT_CACHE)])
    tops = [
        Path(os.path.realpath(t)) for t in map(os.environ.get, ("GITHUB_WORKSPACE", "CI_PROJECT_DIR")) if t
    ]
    tops += [p for p in (real, *real.parents) if (p / ".git").exists()][:1]
    for top in tops:
        if top == real or top in real.parents:
            return real.relative_to(top).as_posix()
    return str(real)


@dataclass(frozen=True)
class _Report:
    """What one run posts: its comment (for a note: empty, or the clash note) and its statuses."""

    claim: Claim
    body: Callable[[str], str]
    statuses: tuple[tuple[str, bool, str], ...]  # (context, success, description)
    shared: str  # the status context another root's report shares: "tfgate/<workspace>" or "tfgate"
    clash: str  # what the statuses say on a clash
    advice: str


def _publish(report: _Report, target: Target, forge: Forge, contexts: str) -> tuple[str, str]:
    """Comment, set the statuses, look again; returns (the account line, the commit) or raises ReportClash
    (exit 2)."""
    placed = place(forge.comments(), report.claim)
    clash = bool(placed.others)
    note = _note(report, placed.others)
    if placed.ours is None:
        action, comment_id = "created", forge.create_comment(report.body(note if clash else ""))
    else:
        action, comment_id = "updated", placed.ours
        forge.update_comment(comment_id, report.body(note if clash else ""))
    line = f"{action} comment {comment_id} on {forge.where}"
    sha = _need_sha(line, target, contexts)
    _statuses(forge, sha, target, report, clash)
    # Jobs run in parallel: another root's report may have appeared, or taken over the one adopted, after
    # the first look. The statuses were set before this second one, so a clash seen now is set after them.
    now = forge.comments()
    others = tuple(cid for cid, body in now if cid != comment_id and _rival(claim_of(body), report.claim))
    if not any(cid == comment_id and claim_of(body) == report.claim for cid, body in now):
        others = (comment_id, *others)  # this root's comment was overwritten: post it again
        comment_id = forge.create_comment(report.body(_note(report, others)))
        line = f"{line}, taken over by another root: created comment {comment_id}"
    elif others and not clash:
        forge.update_comment(comment_id, report.body(_note(report, others)))
    if not (others or clash):
        return line, sha
    if others:  # seen on the second look: set (again) after whatever the other job set before it
        _statuses(forge, sha, target, report, True)
    shown = ", ".join(str(c) for c in sorted(set(others or placed.others)))
    raise ReportClash(
        f"{line}; {report.clash} on {forge.where} (this run's comment {comment_id} and comment {shown}), "
        f"so {contexts} is set to failure: no root may pass for another. {report.advice}"
    )


def _claim(mark: str) -> Claim:
    """What this run's own marker claims (it must parse as a marker: else nothing would find it again)."""
    found = claim_of(mark)
    if found is None or found.identity is None:
        raise TfgateError(f"internal error: the report marker {mark!r} does not parse")
    return found


def _rival(found: Claim | None, ours: Claim) -> bool:
    return found is not None and found.key == ours.key and found != ours


def _note(report: _Report, others: Iterable[int]) -> str:
    shown = ", ".join(str(c) for c in sorted(set(others)))
    return f"> ⚠️ **{report.clash}** (comment {shown}): its status is set to failure. {report.advice}\n\n"


def _statuses(forge: Forge, sha: str, target: Target, report: _Report, clash: bool) -> None:
    for context, success, description in report.statuses:
        forge.set_status(
            sha, context=context, success=success and not clash,
            description=report.clash[:140] if clash else description, target_url=target.run_url,
        )  # fmt: skip


def _with_note(text: str, note: str) -> str:
    """The report with the clash note after its marker line."""
    if not note:
        return text
    marker, _, rest = text.partition("\n")
    return f"{marker}\n{note}{rest}"


def post(result: Result, target: Target, forge: Forge, workdir: Path = Path(".")) -> str:
    """Comment and set the status; returns a one-line account. Raises ForgeError on failure, ReportClash
    when another root reports for the same status."""
    from tfgate.render.markdown import LIMIT, marker, render

    mark = marker(result.workspace, root_identity(workdir))
    context = f"tfgate/{result.workspace}"
    report = _Report(
        claim=_claim(mark),
        body=lambda note: _with_note(render(result, limit=LIMIT - len(note), mark=mark), note),
        statuses=((context, result.verdict is Verdict.ALLOW, status_description(result)),),
        shared=context,
        clash=f"two roots report as {context}: check them in one tfgate comment run, or one workspace each",
        advice="Check the roots in one `tfgate comment` run with several plans (one combined comment, a "
        "status tfgate/<root> per root), or give each root its own Terraform workspace (the status is "
        "tfgate/<workspace>).",
    )
    line, sha = _publish(report, target, forge, context)
    return f"{line}; status {context} on {sha[:12]}"


def root_status(root: RootResult) -> tuple[bool, str]:
    """(success, description) of a root's status; an input error is a failure that says so."""
    if root.result is None:
        return False, f"input error: {root.error}"[:140]
    return root.result.verdict is Verdict.ALLOW, status_description(root.result)


def post_roots(combined: CombinedResult, target: Target, forge: Forge, workdir: Path = Path(".")) -> str:
    """One combined comment, a status `tfgate/<root>` per root and `tfgate` overall (success only when
    every root is allowed). Returns a one-line account; raises ForgeError on failure, ReportClash when
    another set of roots reports as `tfgate`."""
    from tfgate.render.common import roots_tally
    from tfgate.render.markdown import LIMIT, render_roots, roots_marker

    mark = roots_marker(roots_identity(workdir, (r.name for r in combined.roots)))
    ok = combined.exit_code == 0
    statuses = tuple((f"tfgate/{r.name}", *root_status(r)) for r in combined.roots)
    overall = ("tfgate", ok, f"{'allowed' if ok else 'blocked'}: {roots_tally(combined)}")
    report = _Report(
        claim=_claim(mark),
        body=lambda note: _with_note(render_roots(combined, limit=LIMIT - len(note), mark=mark), note),
        statuses=(*statuses, overall),
        shared="tfgate",
        clash="two sets of roots report as tfgate: check every root in one tfgate comment run",
        advice="Check every root in one `tfgate comment` run with several plans: two combined runs share "
        "the overall status tfgate (and any root name they have in common).",
    )
    line, sha = _publish(report, target, forge, "tfgate/<root> and tfgate")
    return f"{line}; statuses tfgate/<root> for {len(combined.roots)} roots and tfgate on {sha[:12]}"


def publish(
    outcome: Result | CombinedResult,
    target: Target,
    *,
    tolerate: bool,
    echo: Callable[[str], None],
    workdir: Path = Path("."),
) -> None:
    """Post one result or a combined one (`workdir`: the root's, or the base of the roots' names); a forge
    failure raises unless tolerated (then it is reported); a clash with another root's report always
    raises (exit 2: the statuses are failures and the CI configuration must change)."""
    try:
        if isinstance(outcome, CombinedResult):
            echo(f"tfgate: {post_roots(outcome, target, open_forge(target), workdir)}")
        else:
            echo(f"tfgate: {post(outcome, target, open_forge(target), workdir)}")
    except ForgeError as exc:
        if not tolerate:
            raise
        echo(f"tfgate: warning: could not comment (tolerated): {exc}")
