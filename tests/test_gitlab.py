"""`tfgate comment --forge gitlab` against a real HTTP server on 127.0.0.1 that implements the GitLab v4
endpoints used (merge-request notes with offset pagination, commit statuses), and `--report-gitlab`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tfgate.forge.base import claim_of
from tfgate.forge.gitlab import GitLab, GitLabError, MergeRequest
from tfgate.forge.http import Retry

from .conftest import TF, build_scenario

TOKEN = "glpat-TESTTOKEN-must-never-be-printed-0123"
JOB_TOKEN = "glcbt-JOBTOKEN-must-never-be-printed-987"
PROJECT = "acme/platform/infra"  # a path: must be URL-encoded as one segment
ENCODED = "acme%2Fplatform%2Finfra"
PROTECT = "version: 1\nprotect:\n  - name: prod-db\n    match: {address: ['terraform_data.db']}\n"
MARKER = "<!-- tfgate:report workspace=default -->"


class FakeGitLab:
    """MR notes (paginated by x-next-page, or by Link headers), create, update, statuses; like GitLab, a job
    token may not write notes or statuses; optional injected failures."""

    def __init__(self, server: HTTPServer, page_size: int = 2, link_pages: bool = False) -> None:
        self.server = server
        self.notes: dict[int, dict] = {}
        self.statuses: list[dict] = []
        self.failures: list[tuple[int, dict, str]] = []
        self.calls: list[str] = []
        self.tokens: list[tuple[str | None, str | None]] = []
        self.page_size = page_size
        self.link_pages = link_pages
        self.next_id = 500
        server.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    def add(self, body: str, system: bool = False) -> int:
        self.next_id += 1
        self.notes[self.next_id] = {"id": self.next_id, "body": body, "system": system}
        return self.next_id

    def _json(self, data: object, status: int = 200, headers: dict | None = None) -> Response:
        return Response(json.dumps(data), status, headers=headers or {}, content_type="application/json")

    def handle(self, request: Request) -> Response:
        raw_path = request.environ.get("RAW_URI", request.full_path).split("?")[0]
        self.calls.append(f"{request.method} {raw_path}")
        private, job = request.headers.get("PRIVATE-TOKEN"), request.headers.get("JOB-TOKEN")
        self.tokens.append((private, job))
        if job == JOB_TOKEN and private is None:
            return self._json({"message": "403 Forbidden"}, 403)  # notes/statuses refuse job tokens
        if private != TOKEN:
            return self._json({"message": "401 Unauthorized"}, 401)
        if self.failures:
            status, headers, message = self.failures.pop(0)
            return self._json({"message": message}, status, headers)
        base = f"/api/v4/projects/{ENCODED}"
        if raw_path == f"{base}/merge_requests/9/notes" and request.method == "GET":
            assert request.args["sort"] == "asc"
            page = int(request.args.get("page", "1"))
            items = sorted(self.notes.values(), key=lambda n: n["id"])
            chunk = items[(page - 1) * self.page_size : page * self.page_size]
            more = page * self.page_size < len(items)
            headers = {"x-next-page": str(page + 1) if more else "", "x-page": str(page)}
            if self.link_pages:
                headers.pop("x-next-page")
                if more:
                    url = self.server.url_for(f"{base}/merge_requests/9/notes")
                    headers["Link"] = f'<{url}?page={page + 1}&per_page=100&sort=asc>; rel="next"'
            return self._json(chunk, 200, headers)
        if raw_path == f"{base}/merge_requests/9/notes" and request.method == "POST":
            nid = self.add(request.get_json()["body"])
            return self._json(self.notes[nid], 201)
        m = re.fullmatch(rf"{re.escape(base)}/merge_requests/9/notes/(\d+)", raw_path)
        if m and request.method == "PUT":
            self.notes[int(m.group(1))]["body"] = request.get_json()["body"]
            return self._json(self.notes[int(m.group(1))])
        m = re.fullmatch(rf"{re.escape(base)}/statuses/([0-9a-f]+)", raw_path)
        if m and request.method == "POST":
            self.statuses.append({"sha": m.group(1), **request.get_json()})
            return self._json({"id": 1}, 201)
        return self._json({"message": "404 Not Found"}, 404)


@pytest.fixture
def gitlab(httpserver: HTTPServer) -> FakeGitLab:
    return FakeGitLab(httpserver)


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory, terraform_bin: Path) -> dict[str, Path]:
    """Real plans, built once for the module: a blocked one, an allowed no-op, one with a replace."""
    out = {}
    for name in ("deleted_block", "no_op", "replace_triggers"):
        work = tmp_path_factory.mktemp(name)
        out[name] = build_scenario(TF(work, terraform_bin), name)
        (work / "tfgate.yaml").write_text(PROTECT)
    return out


def run(plan: Path, server: HTTPServer, *args: str, env: dict | None = None, token: str | None = TOKEN):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_"))}
    base.update({
        "GITLAB_CI": "true",
        "CI_API_V4_URL": server.url_for("/api/v4"),
        "CI_PROJECT_ID": PROJECT,
        "CI_MERGE_REQUEST_IID": "9",
        "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
        "CI_PIPELINE_ID": "4242",
        "CI_JOB_URL": "https://gitlab.example/acme/platform/infra/-/jobs/77",
    })  # fmt: skip
    if token:
        base["GITLAB_TOKEN"] = token
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "tfgate", "comment", plan.name, *args], cwd=plan.parent,
                          capture_output=True, text=True, env=base, timeout=120)  # fmt: skip


def _ours(gitlab: FakeGitLab) -> list[dict]:
    """The report notes of workspace default (legacy marker or with a root's identity), not system notes."""
    return [
        n for n in gitlab.notes.values() if _is_report(n["body"], "workspace=default") and not n["system"]
    ]


def _is_report(body: str, key: str) -> bool:
    found = claim_of(body)
    return found is not None and found.key == key


@pytest.mark.parametrize("link_pages", [False, True], ids=["x-next-page", "link-header"])
def test_note_upserted_across_pages_and_status_on_the_planned_commit(
    plans, httpserver: HTTPServer, link_pages: bool
) -> None:
    gitlab = FakeGitLab(httpserver, link_pages=link_pages)
    for i in range(3):
        gitlab.add(f"chatter {i}")
    gitlab.add(f"{MARKER} quoted in a system note", system=True)  # never edited
    first = run(plans["deleted_block"], httpserver)  # GITLAB_CI set: the GitLab forge is chosen
    assert first.returncode == 1, first.stderr
    assert len(_ours(gitlab)) == 1 and "terraform\\_data.db" in _ours(gitlab)[0]["body"]
    assert gitlab.notes[504]["body"].endswith("quoted in a system note")
    assert gitlab.statuses == [{
        "sha": "0123456789abcdef0123456789abcdef01234567", "state": "failed", "name": "tfgate/default",
        "description": gitlab.statuses[0]["description"], "pipeline_id": 4242,
        "target_url": "https://gitlab.example/acme/platform/infra/-/jobs/77",
    }]  # fmt: skip
    assert gitlab.statuses[0]["description"].startswith("blocked: 1 protected change")
    for i in range(3):
        gitlab.add(f"later chatter {i}")  # ours is now on page 3 of 4
    nid = _ours(gitlab)[0]["id"]
    gitlab.notes[nid]["body"] = f"{MARKER}\nstale"
    second = run(plans["deleted_block"], httpserver)
    assert second.returncode == 1, second.stderr
    assert len(_ours(gitlab)) == 1 and "stale" not in gitlab.notes[nid]["body"]
    assert f"updated comment {nid} on {PROJECT}!9" in second.stderr
    assert gitlab.calls.count(f"GET /api/v4/projects/{ENCODED}/merge_requests/9/notes") >= 4
    assert f"PUT /api/v4/projects/{ENCODED}/merge_requests/9/notes/{nid}" in gitlab.calls
    for proc in (first, second):
        assert TOKEN not in proc.stdout + proc.stderr
    assert all(private == TOKEN and job is None for private, job in gitlab.tokens)


def test_allowed_plan_sets_success(plans, gitlab: FakeGitLab, httpserver) -> None:
    proc = run(plans["no_op"], httpserver, "--forge", "gitlab", env={"GITLAB_CI": ""})
    assert proc.returncode == 0, proc.stderr
    assert gitlab.statuses[-1]["state"] == "success" and gitlab.statuses[-1]["name"] == "tfgate/default"


def test_wrong_token_fails_clearly_without_printing_it(plans, gitlab: FakeGitLab, httpserver) -> None:
    proc = run(plans["deleted_block"], httpserver, token="glpat-wrong-token-value-xyz")
    assert proc.returncode == 2
    assert "401" in proc.stderr and "GITLAB_TOKEN" in proc.stderr
    assert "glpat-wrong-token-value-xyz" not in proc.stdout + proc.stderr


def test_job_token_is_sent_as_job_token_and_refusal_says_what_to_do(
    plans, gitlab: FakeGitLab, httpserver
) -> None:
    proc = run(plans["deleted_block"], httpserver, token=None, env={"CI_JOB_TOKEN": JOB_TOKEN})
    assert proc.returncode == 2
    assert gitlab.tokens[0] == (None, JOB_TOKEN)
    assert "CI_JOB_TOKEN cannot write MR notes or commit statuses: set GITLAB_TOKEN" in proc.stderr
    assert JOB_TOKEN not in proc.stdout + proc.stderr


def test_no_token_at_all_is_a_usage_error(plans, gitlab: FakeGitLab, httpserver) -> None:
    proc = run(plans["deleted_block"], httpserver, token=None)
    assert proc.returncode == 2 and "no GitLab token" in proc.stderr and gitlab.calls == []


def test_branch_pipeline_without_a_merge_request_is_a_usage_error(plans, gitlab, httpserver) -> None:
    proc = run(plans["deleted_block"], httpserver, env={"CI_MERGE_REQUEST_IID": ""})
    assert proc.returncode == 2 and "no merge request" in proc.stderr and gitlab.calls == []


def test_explicit_sha_joins_no_pipeline(plans, gitlab: FakeGitLab, httpserver) -> None:
    proc = run(plans["deleted_block"], httpserver, "--sha", "abcdef12")
    assert proc.returncode == 1, proc.stderr
    assert gitlab.statuses[-1]["sha"] == "abcdef12" and "pipeline_id" not in gitlab.statuses[-1]


def test_allow_comment_failure_keeps_the_gate_exit_code(plans, gitlab: FakeGitLab, httpserver) -> None:
    gitlab.failures = [(404, {}, "404 Project Not Found")]
    proc = run(plans["deleted_block"], httpserver, "--allow-comment-failure")
    assert proc.returncode == 1 and "could not comment (tolerated)" in proc.stderr
    assert "404" in proc.stderr


def _client(httpserver: HTTPServer, slept: list[float], **kw) -> GitLab:
    return GitLab(PROJECT, TOKEN, httpserver.url_for("/api/v4"), sleep=slept.append, **kw)


def test_429_with_retry_after_and_5xx_are_retried(gitlab: FakeGitLab, httpserver) -> None:
    gitlab.failures = [(429, {"Retry-After": "2"}, "Too Many Requests"), (502, {}, "bad gateway")]
    slept: list[float] = []
    mr = MergeRequest(_client(httpserver, slept, retry=Retry(backoff=0.01)), 9)
    assert mr.comments() == []
    assert slept == [2.0, 0.02]
    assert gitlab.calls.count(f"GET /api/v4/projects/{ENCODED}/merge_requests/9/notes") == 3


def test_retries_are_bounded_in_attempts_and_time(gitlab: FakeGitLab, httpserver) -> None:
    gitlab.failures = [(503, {}, "unavailable")] * 10
    slept: list[float] = []
    with pytest.raises(GitLabError, match="503"):
        _client(httpserver, slept, retry=Retry(attempts=3, backoff=0.01)).create_note(9, "x")
    assert len(slept) == 2
    gitlab.failures = [(429, {"RateLimit-Remaining": "0", "RateLimit-Reset": "99999999999"}, "slow down")]
    slept.clear()
    with pytest.raises(GitLabError, match="429"):  # a wait past the budget: fail now, don't hang
        _client(httpserver, slept, retry=Retry(max_wait=5)).create_note(9, "x")
    assert slept == []


def test_a_token_echoed_by_the_server_is_redacted(gitlab: FakeGitLab, httpserver) -> None:
    gitlab.failures = [(400, {}, f"bad header PRIVATE-TOKEN: {TOKEN}")]
    with pytest.raises(GitLabError) as err:
        _client(httpserver, []).create_note(9, "x")
    assert TOKEN not in str(err.value) and "***" in str(err.value)
    assert TOKEN not in repr(_client(httpserver, []))


def test_a_pagination_loop_is_refused(httpserver: HTTPServer, monkeypatch) -> None:
    """A server whose x-next-page never ends is an error, not a hang."""
    import tfgate.forge.gitlab as gl

    monkeypatch.setattr(gl, "MAX_PAGES", 5)
    httpserver.expect_request(re.compile(".*")).respond_with_json([], headers={"x-next-page": "2"})
    with pytest.raises(GitLabError, match="more than 5 pages"):
        MergeRequest(_client(httpserver, []), 9).comments()


def test_report_gitlab_counts_as_gitlabs_jq_recipe(plans, tmp_path: Path) -> None:
    """The artifacts:reports:terraform JSON equals what GitLab's documented jq recipe gives for the same
    plan (real Terraform; a replace counts one create and one delete)."""
    recipe = (
        '([.resource_changes[]?.change.actions?]|flatten)|{"create":(map(select(.=="create"))|length),'
        '"update":(map(select(.=="update"))|length),"delete":(map(select(.=="delete"))|length)}'
    )
    for name in ("deleted_block", "replace_triggers"):
        plan = plans[name]
        out = tmp_path / f"{name}.json"
        proc = subprocess.run([sys.executable, "-m", "tfgate", "check", plan.name, "--report-gitlab", str(out),
                               "-f", "json"], cwd=plan.parent, capture_output=True, text=True)  # fmt: skip
        assert proc.returncode in (0, 1), proc.stderr
        show = TF(plan.parent, Path(os.environ["TFGATE_TERRAFORM"])).run("show", "-json", plan.name).stdout
        expected = subprocess.run(
            ["jq", "-c", recipe], input=show, capture_output=True, text=True, check=True
        )
        assert json.loads(out.read_text()) == json.loads(expected.stdout), name
    assert json.loads((tmp_path / "replace_triggers.json").read_text())["delete"] >= 1
