"""Many roots in one run: a monorepo of real Terraform roots (one in Terragrunt's cache layout) checked and
commented as one combined result; forges are real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tfgate.model import CombinedResult, RootResult, Violation
from tfgate.render.markdown import ROOTS_MARKER, render_roots

from .conftest import REPO, TF, build_scenario
from .test_github import TOKEN as GH_TOKEN
from .test_github import FakeGitHub
from .test_gitlab import ENCODED, PROJECT, FakeGitLab
from .test_gitlab import TOKEN as GL_TOKEN

SCHEMA = json.loads((REPO / "tfgate" / "schemas" / "result.schema.json").read_text())
PROTECT = "version: 1\nprotect:\n  - name: prod-db\n    match: {address: ['terraform_data.db']}\n"
CACHE = "live/vpc/.terragrunt-cache/Xa1b2c3/Yd4e5f6"


@pytest.fixture(scope="module")
def mono(tmp_path_factory: pytest.TempPathFactory, terraform_bin: Path) -> Path:
    """A monorepo: envs/prod (destroys the protected db), envs/dev (no changes), a Terragrunt unit
    live/vpc planned in its cache (a replace), a broken plan, and one tfgate.yaml at the top."""
    base = tmp_path_factory.mktemp("mono")
    for rel, scenario in (("envs/prod", "deleted_block"), ("envs/dev", "no_op"), (CACHE, "replace_triggers")):
        work = base / rel
        work.mkdir(parents=True)
        build_scenario(TF(work, terraform_bin), scenario)
    (base / "broken").mkdir()
    (base / "broken" / "plan.json").write_text('{"format_version": "1.2", "resource_changes": [')
    (base / "tfgate.yaml").write_text(PROTECT)
    return base


PLANS = ["envs/prod/plan.bin", "envs/dev/plan.bin", f"{CACHE}/plan.bin"]


def tfgate(base: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_"))}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "tfgate", *args], cwd=base, capture_output=True, text=True,
                          env=full, timeout=300)  # fmt: skip


def test_check_many_roots_json(mono: Path) -> None:
    proc = tfgate(mono, "check", *PLANS, "broken/plan.json", "-f", "json")
    assert proc.returncode == 2, proc.stderr  # the input error wins, but every other root is reported
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, SCHEMA)
    roots = {r["name"]: r for r in doc["roots"]}
    assert list(roots) == ["envs/prod", "envs/dev", "live/vpc", "broken"]  # the unit, not the cache path
    assert [r["verdict"] for r in doc["roots"]] == ["block", "allow", "block", "error"]
    assert roots["envs/prod"]["blocked"] == 1 and roots["envs/prod"]["approvals_needed"] == 1
    assert roots["envs/prod"]["destroys"] == 1 and roots["live/vpc"]["destroys"] >= 1
    assert roots["envs/prod"]["result"]["violations"][0]["rule"] == "prod-db"  # the top-level tfgate.yaml
    assert "not a Terraform JSON plan" in roots["broken"]["error"] or roots["broken"]["error"]
    assert (doc["verdict"], doc["exit_code"]) == ("block", 2)
    ok = tfgate(mono, "check", *PLANS, "-f", "json")
    assert ok.returncode == 1 and json.loads(ok.stdout)["exit_code"] == 1
    allowed = tfgate(mono, "check", "dev=envs/dev/plan.bin", "-f", "json")  # NAME=PATH: combined, 1 root
    assert allowed.returncode == 0, allowed.stderr
    assert [r["name"] for r in json.loads(allowed.stdout)["roots"]] == ["dev"]


def test_check_many_roots_text_and_reports(mono: Path, tmp_path: Path) -> None:
    proc = tfgate(mono, "check", *PLANS, "--report-md", str(tmp_path / "r.md"), "--report-html",
                  str(tmp_path / "r.html"), "--report-gitlab", str(tmp_path / "gl.json"))  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("tfgate: BLOCKED (3 roots: 2 blocked, 1 allowed)")
    assert re.search(r"envs/prod\s+BLOCK\s+1\s+1\s+1", proc.stdout)
    assert "== envs/prod ==" in proc.stdout and "== envs/dev ==" not in proc.stdout  # no changes: table only
    md = (tmp_path / "r.md").read_text()
    assert md.startswith(ROOTS_MARKER) and "| `envs/prod` | ⛔ block | 1 | 1 | 1 |" in md
    assert "<details><summary>✅ <b>envs/dev</b>: no changes" in md  # folded away
    assert "<details open><summary>⛔ <b>envs/prod</b>: blocked" in md
    page = (tmp_path / "r.html").read_text()
    ids = re.findall(r'id="([^"]+)"', page)
    assert len(ids) == len(set(ids)) and page.count('<details class="root"') == 3
    gitlab = json.loads((tmp_path / "gl.json").read_text())  # one report per job: the sum of the roots
    singles = []
    for plan in PLANS:
        out = tmp_path / (plan.replace("/", "_") + ".json")
        assert tfgate(mono, "check", plan, "--report-gitlab", str(out)).returncode in (0, 1)
        singles.append(json.loads(out.read_text()))
    assert gitlab == {k: sum(s[k] for s in singles) for k in ("create", "update", "delete")}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["envs/prod/plan.bin", "prod=envs/dev/plan.bin", "prod=envs/prod/plan.bin"], "two plans for root"),
        (["envs/prod/plan.bin", "-"], "none can be stdin"),
        (["bad name=envs/prod/plan.bin"], "may hold only"),
        (["-C", "envs", "prod/plan.bin", "../broken/plan.json"], "is outside"),
    ],
)
def test_root_usage_errors(mono: Path, args: list[str], message: str) -> None:
    proc = tfgate(mono, "check", *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_dash_c_is_the_base_of_paths_and_names(mono: Path) -> None:
    proc = tfgate(mono.parent, "check", "-C", mono.name, *PLANS, "-f", "json")
    assert proc.returncode == 1, proc.stderr
    assert [r["name"] for r in json.loads(proc.stdout)["roots"]] == ["envs/prod", "envs/dev", "live/vpc"]


def test_single_plan_output_unchanged(mono: Path) -> None:
    """One plain plan keeps the single-plan document (no `roots`)."""
    proc = tfgate(mono / "envs" / "prod", "check", "plan.bin", "-f", "json", "-m", "../../tfgate.yaml")
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert proc.returncode == 1 and "roots" not in doc and doc["violations"][0]["rule"] == "prod-db"


def test_comment_many_roots_on_github(mono: Path, httpserver) -> None:
    github = FakeGitHub(httpserver)
    github.add("chatter")
    env = {"GITHUB_TOKEN": GH_TOKEN, "GITHUB_API_URL": httpserver.url_for("").rstrip("/")}
    args = ("comment", *PLANS, "broken/plan.json", "--repo", "acme/infra", "--pr", "7", "--sha", "abc123")
    first = tfgate(mono, *args, env=env)
    assert first.returncode == 2, first.stderr  # broken root: exit 2, but everything was posted
    ours = [c for c in github.comments.values() if c["body"].startswith("<!-- tfgate:report roots set=")]
    assert len(ours) == 1 and "| `broken` | ❗ error |" in ours[0]["body"]
    states = {s["context"]: s["state"] for s in github.statuses}
    assert states == {"tfgate/envs/prod": "failure", "tfgate/envs/dev": "success", "tfgate/live/vpc": "failure",
                      "tfgate/broken": "failure", "tfgate": "failure"}  # fmt: skip
    broken = next(s for s in github.statuses if s["context"] == "tfgate/broken")
    assert broken["description"].startswith("input error: ")
    second = tfgate(mono, *args, env=env)
    assert second.returncode == 2 and len(github.comments) == 2 and "updated comment" in second.stderr
    assert GH_TOKEN not in first.stderr + first.stdout + second.stderr + second.stdout


def test_comment_many_roots_on_gitlab(mono: Path, httpserver) -> None:
    gitlab = FakeGitLab(httpserver)
    env = {"GITLAB_CI": "true", "GITLAB_TOKEN": GL_TOKEN, "CI_API_V4_URL": httpserver.url_for("/api/v4"),
           "CI_PROJECT_ID": PROJECT, "CI_MERGE_REQUEST_IID": "9", "CI_COMMIT_SHA": "feedbeef"}  # fmt: skip
    proc = tfgate(mono, "comment", *PLANS, env=env)
    assert proc.returncode == 1, proc.stderr
    (note,) = gitlab.notes.values()
    assert re.fullmatch(r"<!-- tfgate:report roots set=[0-9a-f]{12} -->", note["body"].splitlines()[0])
    assert {s["name"]: s["state"] for s in gitlab.statuses} == {
        "tfgate/envs/prod": "failed", "tfgate/envs/dev": "success", "tfgate/live/vpc": "failed",
        "tfgate": "failed",
    }  # fmt: skip
    assert f"POST /api/v4/projects/{ENCODED}/statuses/feedbeef" in gitlab.calls
    assert GL_TOKEN not in proc.stdout + proc.stderr


def _many_blocked(combined: CombinedResult, n: int) -> CombinedResult:
    roots = []
    for r in combined.roots:
        if r.result is not None and r.blocked:
            template = r.result.violations[0]
            fake = tuple(
                dataclasses.replace(template, address=f'terraform_data.db["{r.name}-{i:05d}"]')
                for i in range(n)
            )
            r = dataclasses.replace(r, result=dataclasses.replace(r.result, violations=fake))
        roots.append(r)
    return dataclasses.replace(combined, roots=tuple(roots))


def test_combined_comment_fits_and_keeps_every_roots_blocked_rows_first(mono: Path) -> None:
    from tfgate.pipeline import CheckOptions
    from tfgate.roots import parse_roots, run_roots

    cwd = os.getcwd()
    os.chdir(mono)
    try:
        roots = parse_roots(["envs/prod/plan.bin", "prod2=envs/prod/plan.bin", "envs/dev/plan.bin"])
        combined = run_roots(roots, CheckOptions(plan="", state_checks=False))
    finally:
        os.chdir(cwd)
    assert isinstance(combined.roots[0], RootResult) and isinstance(
        combined.roots[0].result.violations[0], Violation
    )
    big = _many_blocked(combined, 1500)  # 3,000 blocked rows: no way they all fit in 65,536 characters
    text = render_roots(big)
    assert len(text) <= 65536 and text.startswith(ROOTS_MARKER)
    for name in ("envs/prod", "prod2"):
        assert f'terraform\\_data.db\\["{name}-00000"\\]' in text  # each root keeps its first blocked rows
        assert "more blocked changes not listed" in text
    assert "| `envs/dev` | ✅ allow |" in text  # the summary table is never cut
    small = render_roots(_many_blocked(combined, 40), limit=20000)
    assert len(small) <= 20000 and small.count('\\["prod2-00039"\\]') == 1


def test_root_names_and_manifests(tmp_path: Path) -> None:
    from tfgate.errors import TfgateError
    from tfgate.roots import nearest_manifest, parse_roots

    cache = tmp_path / "live/prod/vpc/.terragrunt-cache/h1/h2/modules/vpc"
    cache.mkdir(parents=True)
    (tmp_path / "x=y.json").write_text("{}")
    roots = parse_roots(
        ["live/prod/vpc/.terragrunt-cache/h1/h2/modules/vpc/tfplan", "x=y.json", "top=plan.bin"], tmp_path
    )
    assert [r.name for r in roots] == ["live/prod/vpc", ".", "top"]  # a file named x=y.json is a path
    assert roots[0].workdir == tmp_path / "live/prod/vpc/.terragrunt-cache/h1/h2/modules/vpc"
    for args, message in (
        (["my dir/plan.bin"], "name it NAME=PATH"),
        (["../elsewhere/plan.bin", "a/plan.bin"], "is outside"),
        (["a/plan.bin", "b=a/../a/plan.bin", "a=c/plan.bin"], "two plans for root 'a'"),
        (["x/../../plan.bin=p"], "name it NAME=PATH"),
    ):
        with pytest.raises(TfgateError, match=message):
            parse_roots(args, tmp_path)
    assert nearest_manifest(cache, tmp_path) is None
    (tmp_path / "tfgate.yaml").write_text(PROTECT)
    assert nearest_manifest(cache, tmp_path) == tmp_path / "tfgate.yaml"
    (tmp_path / "live/prod/vpc/tfgate.yaml").write_text(PROTECT)
    assert nearest_manifest(cache, tmp_path) == tmp_path / "live/prod/vpc/tfgate.yaml"
    assert nearest_manifest(cache, cache) is None  # never above the base directory
