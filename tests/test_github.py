"""`tfgate comment` against a real HTTP server on 127.0.0.1 that implements the GitHub endpoints used."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tfgate.forge.github import GitHub, GitHubError, Retry

TOKEN = "ghp_TESTTOKEN_must_never_be_printed_0123456789"
REPO = "acme/infra"
PROTECT = "version: 1\nprotect:\n  - name: prod-db\n    match: {address: ['terraform_data.db']}\n"


class FakeGitHub:
    """Issue comments (paginated), create, update, statuses; optional injected failures."""

    def __init__(self, server: HTTPServer, page_size: int = 2) -> None:
        self.server = server
        self.comments: dict[int, dict] = {}
        self.statuses: list[dict] = []
        self.failures: list[tuple[int, dict]] = []  # (status, headers) answered before real handling
        self.calls: list[str] = []
        self.page_size = page_size
        self.next_id = 1000
        server.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    def add(self, body: str) -> int:
        self.next_id += 1
        self.comments[self.next_id] = {"id": self.next_id, "body": body, "user": {"login": "someone"}}
        return self.next_id

    def handle(self, request: Request) -> Response:
        self.calls.append(f"{request.method} {request.path}")
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Response(json.dumps({"message": "Bad credentials"}), 401, content_type="application/json")
        if self.failures:
            status, headers = self.failures.pop(0)
            return Response(json.dumps({"message": "failure"}), status, headers=headers,
                            content_type="application/json")  # fmt: skip
        m = re.fullmatch(rf"/repos/{REPO}/issues/(\d+)/comments", request.path)
        if m and request.method == "GET":
            page = int(request.args.get("page", "1"))
            items = sorted(self.comments.values(), key=lambda c: c["id"])
            chunk = items[(page - 1) * self.page_size : page * self.page_size]
            headers = {}
            if page * self.page_size < len(items):
                base = f"{self.server.url_for(request.path)}?per_page=100&page={page + 1}"
                headers["Link"] = f'<{base}>; rel="next", <{base}>; rel="last"'
            return Response(json.dumps(chunk), 200, headers=headers, content_type="application/json")
        if m and request.method == "POST":
            cid = self.add(request.get_json()["body"])
            return Response(json.dumps(self.comments[cid]), 201, content_type="application/json")
        m = re.fullmatch(rf"/repos/{REPO}/issues/comments/(\d+)", request.path)
        if m and request.method == "PATCH":
            cid = int(m.group(1))
            self.comments[cid]["body"] = request.get_json()["body"]
            return Response(json.dumps(self.comments[cid]), 200, content_type="application/json")
        m = re.fullmatch(rf"/repos/{REPO}/statuses/([0-9a-f]+)", request.path)
        if m and request.method == "POST":
            self.statuses.append({"sha": m.group(1), **request.get_json()})
            return Response(json.dumps({"id": 1}), 201, content_type="application/json")
        return Response(json.dumps({"message": "Not Found"}), 404, content_type="application/json")


@pytest.fixture
def github(httpserver: HTTPServer) -> FakeGitHub:
    return FakeGitHub(httpserver)


@pytest.fixture
def blocked_plan(scenario) -> Path:
    tf, plan = scenario("deleted_block")
    (tf.dir / "tfgate.yaml").write_text(PROTECT)
    return plan


def comment(plan: Path, server: HTTPServer, *args: str, event: dict | None = None, token: str = TOKEN):
    env_extra = {
        "GITHUB_TOKEN": token,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": server.url_for("").rstrip("/"),
    }
    if event is not None:
        path = plan.parent / "event.json"
        path.write_text(json.dumps(event))
        env_extra["GITHUB_EVENT_PATH"] = str(path)
    import os

    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "tfgate", "comment", str(plan.name), *args], cwd=plan.parent,
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip


EVENT = {"pull_request": {"number": 7, "head": {"sha": "abc123def456"}}}


def test_first_run_creates_second_updates_the_same_comment(
    blocked_plan: Path, github: FakeGitHub, httpserver
) -> None:
    github.add("an unrelated comment")
    first = comment(blocked_plan, httpserver, event=EVENT)
    assert first.returncode == 1, first.stderr  # blocked verdict still exits 1
    assert len(github.comments) == 2
    ours = [c for c in github.comments.values() if "tfgate:report workspace=default" in c["body"]]
    assert len(ours) == 1 and "terraform\\_data.db" in ours[0]["body"]
    assert github.statuses[-1] == {
        "sha": "abc123def456", "state": "failure", "context": "tfgate/default",
        "description": github.statuses[-1]["description"],
    }  # fmt: skip
    assert github.statuses[-1]["description"].startswith("blocked: 1 protected change")
    ours[0]["body"] = "<!-- tfgate:report workspace=default -->\nstale"
    second = comment(blocked_plan, httpserver, event=EVENT)
    assert second.returncode == 1
    assert len(github.comments) == 2  # updated in place, not added
    assert "stale" not in github.comments[ours[0]["id"]]["body"]
    assert "terraform\\_data.db" in github.comments[ours[0]["id"]]["body"]
    assert "updated comment" in second.stderr
    for proc in (first, second):
        assert TOKEN not in proc.stdout + proc.stderr


def test_two_workspaces_keep_two_comments(blocked_plan: Path, github: FakeGitHub, httpserver) -> None:
    assert comment(blocked_plan, httpserver, "--workspace", "staging", event=EVENT).returncode == 1
    assert comment(blocked_plan, httpserver, "--workspace", "prod", event=EVENT).returncode == 1
    assert comment(blocked_plan, httpserver, "--workspace", "prod", event=EVENT).returncode == 1
    bodies = [c["body"] for c in github.comments.values()]
    assert len(bodies) == 2
    heads = {re.sub(r" root=[0-9a-f]{12} ", " ", b.splitlines()[0]) for b in bodies}  # one root: one identity
    assert heads == {"<!-- tfgate:report workspace=staging -->", "<!-- tfgate:report workspace=prod -->"}
    assert {s["context"] for s in github.statuses} == {"tfgate/staging", "tfgate/prod"}


def test_marker_found_on_a_later_page(blocked_plan: Path, github: FakeGitHub, httpserver) -> None:
    for i in range(3):
        github.add(f"chatter {i}")
    ours = github.add("<!-- tfgate:report workspace=default -->\nold report")
    github.add("more chatter")  # 5 comments, 2 per page: ours is on page 2 of 3
    assert comment(blocked_plan, httpserver, "--repo", REPO, "--pr", "7", "--sha", "abc123").returncode == 1
    assert len(github.comments) == 5
    assert "old report" not in github.comments[ours]["body"]
    assert github.calls.count(f"GET /repos/{REPO}/issues/7/comments") >= 2


def test_allowed_plan_sets_success(scenario, github: FakeGitHub, httpserver) -> None:
    _, plan = scenario("no_op")
    assert comment(plan, httpserver, event=EVENT).returncode == 0
    assert github.statuses[-1]["state"] == "success"


def test_401_fails_clearly_without_the_token(blocked_plan: Path, github: FakeGitHub, httpserver) -> None:
    proc = comment(blocked_plan, httpserver, event=EVENT, token="ghp_wrong_token_value_xyz")
    assert proc.returncode == 2
    assert "401" in proc.stderr and "GITHUB_TOKEN" in proc.stderr
    assert "ghp_wrong_token_value_xyz" not in proc.stdout + proc.stderr


def test_allow_comment_failure_keeps_the_gate_exit_code(
    blocked_plan: Path, github: FakeGitHub, httpserver
) -> None:
    github.failures = [(404, {})]
    proc = comment(blocked_plan, httpserver, "--allow-comment-failure", event=EVENT)
    assert proc.returncode == 1 and "could not comment (tolerated)" in proc.stderr
    github.failures = [(404, {})]
    assert comment(blocked_plan, httpserver, event=EVENT).returncode == 2  # not tolerated: fails


def test_502_then_success_is_retried(github: FakeGitHub, httpserver) -> None:
    github.failures = [(502, {}), (502, {})]
    slept: list[float] = []
    gh = GitHub(
        REPO, TOKEN, httpserver.url_for("").rstrip("/"), retry=Retry(backoff=0.01), sleep=slept.append
    )
    assert gh.create_comment(7, "hello")["body"] == "hello"
    assert len(slept) == 2 and github.calls.count(f"POST /repos/{REPO}/issues/7/comments") == 3


def test_403_with_retry_after_waits(github: FakeGitHub, httpserver) -> None:
    github.failures = [(403, {"Retry-After": "1"})]
    gh = GitHub(REPO, TOKEN, httpserver.url_for("").rstrip("/"))
    start = time.monotonic()
    gh.create_comment(7, "hello")
    assert time.monotonic() - start >= 0.95


def test_rate_limit_reset_and_bounded_budget(github: FakeGitHub, httpserver) -> None:
    github.failures = [(429, {})] * 10
    slept: list[float] = []
    gh = GitHub(
        REPO,
        TOKEN,
        httpserver.url_for("").rstrip("/"),
        retry=Retry(attempts=3, backoff=0.01),
        sleep=slept.append,
    )
    with pytest.raises(GitHubError, match="429"):
        gh.create_comment(7, "x")
    assert len(slept) == 2  # three attempts, then a clear error
    github.failures = [
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 3600)})
    ]
    with pytest.raises(GitHubError, match="403"):  # an hour's wait exceeds the budget: fail, don't hang
        GitHub(
            REPO, TOKEN, httpserver.url_for("").rstrip("/"), retry=Retry(max_wait=5), sleep=slept.append
        ).create_comment(7, "x")


def test_token_never_in_repr() -> None:
    assert TOKEN not in repr(GitHub(REPO, TOKEN))


def test_missing_context_is_a_usage_error(blocked_plan: Path, httpserver, monkeypatch) -> None:
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    proc = subprocess.run([sys.executable, "-m", "tfgate", "comment", "plan.bin"], cwd=blocked_plan.parent,
                          capture_output=True, text=True, env={k: v for k, v in __import__("os").environ.items()
                                                               if not k.startswith("GITHUB_")})  # fmt: skip
    assert proc.returncode == 2 and "--repo" in proc.stderr


def test_no_commit_for_the_status_is_a_reported_failure(
    blocked_plan: Path, github: FakeGitHub, httpserver, monkeypatch
) -> None:
    """--repo/--pr without --sha, GITHUB_SHA or an event: the comment is posted, but the status is not
    guessed onto the pull request's current head (a later push the plan never saw); that is a failure."""
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    proc = comment(blocked_plan, httpserver, "--repo", REPO, "--pr", "7")
    assert proc.returncode == 2 and "give --sha" in proc.stderr, proc.stderr
    assert len(github.comments) == 1 and github.statuses == []
    proc = comment(blocked_plan, httpserver, "--repo", REPO, "--pr", "7", "--allow-comment-failure")
    assert proc.returncode == 1 and "give --sha" in proc.stderr  # the gate's verdict still decides


def test_comment_records_its_check_in_the_audit_log(
    blocked_plan: Path, github: FakeGitHub, httpserver, _audit_log_env: Path
) -> None:
    proc = comment(blocked_plan, httpserver, event=EVENT)
    assert proc.returncode == 1, proc.stderr
    events = [json.loads(line) for line in _audit_log_env.read_text().splitlines()]
    assert [(e["event"], e["verdict"]) for e in events] == [("check", "block")]


def test_issue_comment_events_do_not_take_the_default_branch_head(monkeypatch, tmp_path: Path) -> None:
    from tfgate.forge.comment import resolve_target

    event = tmp_path / "event.json"
    event.write_text(json.dumps({"issue": {"number": 7, "pull_request": {"url": "x"}}}))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    monkeypatch.setenv("GITHUB_SHA", "mainheadsha000")
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    assert resolve_target(None, None, None, None).sha is None  # -> the status is a reported failure
    assert resolve_target(None, None, "abc123", None).sha == "abc123"
