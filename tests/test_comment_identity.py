"""Which root a `tfgate comment` report belongs to: two Terraform roots of a monorepo that report under one
status context (same workspace in two CI jobs; two combined runs) must not overwrite each other's comment
or status. Real Terraform plans, real HTTP servers on 127.0.0.1 (the GitHub and GitLab fakes)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from werkzeug import Request, Response

from tfgate.forge.base import Claim, claim_of

from .test_github import TOKEN as GH_TOKEN
from .test_github import FakeGitHub
from .test_gitlab import TOKEN as GL_TOKEN
from .test_gitlab import FakeGitLab
from .test_roots import mono, tfgate  # noqa: F401  (mono: the module-scoped monorepo fixture)

SHA = "abc123def456"
LEGACY = "<!-- tfgate:report workspace=default -->"
OTHER = "<!-- tfgate:report workspace=default root=0123456789ab -->"


def _gh_env(server, checkout: Path) -> dict[str, str]:
    return {
        "GITHUB_TOKEN": GH_TOKEN,
        "GITHUB_API_URL": server.url_for("").rstrip("/"),
        "GITHUB_REPOSITORY": "acme/infra",
        "GITHUB_WORKSPACE": str(checkout),
    }


def _gl_env(server, checkout: Path) -> dict[str, str]:
    return {
        "GITLAB_CI": "true", "GITLAB_TOKEN": GL_TOKEN, "CI_API_V4_URL": server.url_for("/api/v4"),
        "CI_PROJECT_ID": "acme/platform/infra", "CI_MERGE_REQUEST_IID": "9", "CI_COMMIT_SHA": "feedbeef",
        "CI_PROJECT_DIR": str(checkout),
    }  # fmt: skip


def single(checkout: Path, root: str, env: dict[str, str], *args: str):
    """One CI job: `tfgate comment plan.bin` in the root's directory (the monorepo's one manifest)."""
    extra = ("--pr", "7", "--sha", SHA) if "GITHUB_TOKEN" in env else ()
    return tfgate(checkout / root, "comment", "plan.bin", "-m", "../../tfgate.yaml", *extra, *args, env=env)


def _reports(bodies: list[str]) -> list[Claim]:
    return [c for c in map(claim_of, bodies) if c is not None]


def _last(statuses: list[dict], context: str, key: str = "context") -> dict:
    return [s for s in statuses if s[key] == context][-1]


def test_attack_second_root_cannot_hide_the_blocked_report_or_pass_the_status(mono: Path, httpserver) -> None:  # noqa: F811
    """envs/prod (blocked) and envs/dev (allowed), both workspace `default`, in two jobs on one PR."""
    github = FakeGitHub(httpserver)
    env = _gh_env(httpserver, mono)
    prod = single(mono, "envs/prod", env)
    assert prod.returncode == 1, prod.stderr
    (prod_id,) = github.comments
    dev = single(mono, "envs/dev", env)
    assert dev.returncode == 2, dev.stderr
    assert "two roots report as tfgate/default" in dev.stderr
    assert "one `tfgate comment` run with several plans" in dev.stderr and "workspace" in dev.stderr
    assert len(github.comments) == 2  # dev posted its own comment ...
    assert "terraform\\_data.db" in github.comments[prod_id]["body"]  # ... and prod's blocked report stays
    assert "**BLOCKED**" in github.comments[prod_id]["body"]
    last = _last(github.statuses, "tfgate/default")
    assert last["state"] == "failure" and "two roots report as tfgate/default" in last["description"]
    assert {s["state"] for s in github.statuses} == {"failure"}  # never success, not even for a moment
    dev_id = next(i for i in github.comments if i != prod_id)
    assert "two roots report as tfgate/default" in github.comments[dev_id]["body"]  # said in the PR too
    again = single(mono, "envs/prod", env)  # prod re-runs: its own comment, updated; still the clash
    assert again.returncode == 2 and "updated comment " + str(prod_id) in again.stderr
    assert len(github.comments) == 2 and _last(github.statuses, "tfgate/default")["state"] == "failure"
    assert GH_TOKEN not in prod.stderr + dev.stderr + again.stderr


def test_attack_on_gitlab_allowed_first_then_blocked(mono: Path, httpserver) -> None:  # noqa: F811
    gitlab = FakeGitLab(httpserver)
    env = _gl_env(httpserver, mono)
    dev = single(mono, "envs/dev", env)
    assert dev.returncode == 0, dev.stderr
    prod = single(mono, "envs/prod", env)
    assert prod.returncode == 2 and "two roots report as tfgate/default" in prod.stderr, prod.stderr
    assert len(gitlab.notes) == 2
    assert any("terraform\\_data.db" in n["body"] for n in gitlab.notes.values())
    assert _last(gitlab.statuses, "tfgate/default", "name")["state"] == "failed"


def test_upgrade_adopts_the_legacy_comment_once(mono: Path, httpserver) -> None:  # noqa: F811
    github = FakeGitHub(httpserver)
    github.add("chatter")
    legacy = github.add(f"{LEGACY}\nreport of an older tfgate")
    env = _gh_env(httpserver, mono)
    prod = single(mono, "envs/prod", env)
    assert prod.returncode == 1, prod.stderr
    assert f"updated comment {legacy}" in prod.stderr and len(github.comments) == 2  # no stale report left
    claim = claim_of(github.comments[legacy]["body"])
    assert claim is not None and claim.key == "workspace=default" and claim.identity
    assert _last(github.statuses, "tfgate/default")["state"] == "failure"
    dev = single(mono, "envs/dev", env)  # the adopted comment is prod's now: dev is another root
    assert dev.returncode == 2 and "two roots" in dev.stderr and len(github.comments) == 3


def test_legacy_comment_beside_ours_is_another_root(mono: Path, httpserver) -> None:  # noqa: F811
    """An older tfgate in another job keeps writing the legacy marker: that shares the status too."""
    github = FakeGitHub(httpserver)
    env = _gh_env(httpserver, mono)
    assert single(mono, "envs/dev", env).returncode == 0
    github.add(f"{LEGACY}\nan older tfgate's report of some other root")
    dev = single(mono, "envs/dev", env)
    assert dev.returncode == 2 and "two roots" in dev.stderr
    assert _last(github.statuses, "tfgate/default")["state"] == "failure"


def test_same_root_on_another_checkout_path_updates_in_place(
    mono: Path,  # noqa: F811
    httpserver,
    tmp_path: Path,
) -> None:
    github = FakeGitHub(httpserver)
    first = single(mono, "envs/prod", _gh_env(httpserver, mono))
    assert first.returncode == 1, first.stderr
    other = tmp_path / "runner-2" / "checkout"
    shutil.copytree(mono, other, symlinks=True)
    second = single(other, "envs/prod", _gh_env(httpserver, other))
    assert second.returncode == 1, second.stderr  # no false clash
    assert len(github.comments) == 1 and "updated comment" in second.stderr
    assert [s["state"] for s in github.statuses] == ["failure", "failure"]


def test_distinct_workspaces_do_not_clash(mono: Path, httpserver) -> None:  # noqa: F811
    github = FakeGitHub(httpserver)
    env = _gh_env(httpserver, mono)
    assert single(mono, "envs/prod", env, "--workspace", "default").returncode == 1
    dev = single(mono, "envs/dev", {**env, "TF_WORKSPACE": "dev"})  # blocked: no state for workspace dev
    assert dev.returncode == 1 and "two roots" not in dev.stderr, dev.stderr
    assert len(github.comments) == 2 and {s["context"] for s in github.statuses} == {
        "tfgate/default",
        "tfgate/dev",
    }
    assert not any("two roots" in s["description"] for s in github.statuses)


def _combined(checkout: Path, env: dict[str, str], *plans: str):
    extra = ("--pr", "7", "--sha", SHA) if "GITHUB_TOKEN" in env else ()
    return tfgate(checkout, "comment", *plans, *extra, env=env)


def test_combined_vs_combined(mono: Path, httpserver) -> None:  # noqa: F811
    github = FakeGitHub(httpserver)
    env = _gh_env(httpserver, mono)
    one = _combined(mono, env, "envs/prod/plan.bin", "envs/dev/plan.bin")
    assert one.returncode == 1, one.stderr
    (first_id,) = github.comments
    two = _combined(mono, env, "envs/dev/plan.bin", "dev2=envs/dev/plan.bin")
    assert two.returncode == 2 and "two sets of roots report as tfgate" in two.stderr, two.stderr
    assert "**BLOCKED**" in github.comments[first_id]["body"] and len(github.comments) == 2
    assert _last(github.statuses, "tfgate")["state"] == "failure"
    assert _last(github.statuses, "tfgate/envs/dev")["state"] == "failure"  # every status of the clash
    rerun = _combined(mono, env, "envs/dev/plan.bin", "envs/prod/plan.bin")  # same set, other order
    assert rerun.returncode == 2 and f"updated comment {first_id}" in rerun.stderr
    assert len(github.comments) == 2


def test_combined_adopts_the_legacy_roots_comment(mono: Path, httpserver) -> None:  # noqa: F811
    gitlab = FakeGitLab(httpserver)
    legacy = gitlab.add("<!-- tfgate:report roots -->\nold")
    proc = _combined(mono, _gl_env(httpserver, mono), "envs/prod/plan.bin", "envs/dev/plan.bin")
    assert proc.returncode == 1 and f"updated comment {legacy}" in proc.stderr, proc.stderr
    assert len(gitlab.notes) == 1 and claim_of(gitlab.notes[legacy]["body"]).identity  # type: ignore[union-attr]


class RacingGitHub(FakeGitHub):
    """Another job's comment for the same status appears after this run listed the comments (parallel
    jobs): `steal` overwrites this run's comment with another root's report instead."""

    def __init__(self, server, steal: bool = False) -> None:
        super().__init__(server)
        self.steal, self.raced = steal, False

    def handle(self, request: Request) -> Response:
        response = super().handle(request)
        if request.method in ("POST", "PATCH") and "/comments" in request.path and not self.raced:
            self.raced = True
            if self.steal:
                cid = int(re.findall(r'"id": (\d+)', response.get_data(as_text=True))[0])
                self.comments[cid]["body"] = f"{OTHER}\nthe other job adopted it too"
            else:
                self.add(f"{OTHER}\nthe other job's blocked report")
        return response


@pytest.mark.parametrize("steal", [False, True], ids=["created-meanwhile", "overwritten-meanwhile"])
def test_a_clash_that_appears_while_posting_is_caught(mono: Path, httpserver, steal: bool) -> None:  # noqa: F811
    github = RacingGitHub(httpserver, steal=steal)
    if steal:
        github.add(f"{LEGACY}\nboth jobs adopt this one")
    dev = single(mono, "envs/dev", _gh_env(httpserver, mono))
    assert dev.returncode == 2 and "two roots report as tfgate/default" in dev.stderr, dev.stderr
    assert _last(github.statuses, "tfgate/default")["state"] == "failure"  # set after the clash was seen
    mine = [
        c for c in _reports([c["body"] for c in github.comments.values()]) if c.identity != "0123456789ab"
    ]
    assert len(mine) == 1  # this root's report is (again) on the PR


def test_root_identity_is_stable_and_distinct(tmp_path: Path, monkeypatch) -> None:
    from tfgate.forge.comment import root_identity

    for var in ("GITHUB_WORKSPACE", "CI_PROJECT_DIR"):
        monkeypatch.delenv(var, raising=False)
    for checkout in ("a", "b"):
        for rel in ("envs/prod", "envs/dev", "unit/.terragrunt-cache/X1/Y1", "unit/.terragrunt-cache/X2/Y2"):
            (tmp_path / checkout / rel).mkdir(parents=True)
        (tmp_path / checkout / ".git").mkdir()
    ids = {c: {r: root_identity(tmp_path / c / r) for r in ("envs/prod", "envs/dev")} for c in ("a", "b")}
    assert ids["a"] == ids["b"] and ids["a"]["envs/prod"] != ids["a"]["envs/dev"]  # the git work tree
    cache = root_identity(tmp_path / "a/unit/.terragrunt-cache/X1/Y1")
    assert (
        cache
        == root_identity(tmp_path / "b/unit/.terragrunt-cache/X2/Y2")
        == root_identity(tmp_path / "a/unit")
    )
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path / "a"))
    assert root_identity(tmp_path / "a" / "envs/prod") == ids["a"]["envs/prod"]
    (tmp_path / "a" / ".git").rmdir()
    (tmp_path / "b" / ".git").rmdir()
    monkeypatch.delenv("GITHUB_WORKSPACE")
    assert root_identity(tmp_path / "a/envs/prod") != root_identity(tmp_path / "b/envs/prod")  # real paths
    assert re.fullmatch(r"[0-9a-f]{12}", root_identity(tmp_path))
