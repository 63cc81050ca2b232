"""action.yml, the workflows and the Atlantis snippet: valid YAML, sound structure, real tfgate commands."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml
from typer.testing import CliRunner

from tfgate.cli import app

from .conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def _load(path):
    return yaml.safe_load(path.read_text())


def _tfgate_commands(text: str) -> list[list[str]]:
    """Every `tfgate SUB [SUB2]` invocation in shell snippets."""
    found = []
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for match in re.finditer(r"(?:^|[\s;&|(])tfgate[ \t]+([a-z][a-z-]*)(?:[ \t]+([a-z][a-z-]*))?", text):
        found.append([g for g in match.groups() if g])
    return found


def _assert_real_command(words: list[str]) -> None:
    runner = CliRunner()
    result = runner.invoke(app, [*words, "--help"])
    if result.exit_code != 0 and len(words) > 1:  # the second word was an argument, not a subcommand
        result = runner.invoke(app, [words[0], "--help"])
    assert result.exit_code == 0, f"tfgate {' '.join(words)} is not a command: {result.output}"


def test_action_is_a_composite_action_with_sound_steps() -> None:
    action = _load(REPO / "action.yml")
    assert action["runs"]["using"] == "composite"
    inputs = set(action["inputs"])
    assert {"working-directory", "manifest", "approvals", "terraform", "comment"} <= inputs
    text = (REPO / "action.yml").read_text()
    for ref in re.findall(r"inputs\.([a-z-]+)", text):
        assert ref in inputs, ref
    steps = action["runs"]["steps"]
    for step in steps:
        if "run" in step:
            assert step.get("shell") == "bash", step.get("name")
    ids = {s.get("id") for s in steps}
    for ref in re.findall(r"steps\.([a-z-]+)\.outputs", text):
        assert ref in ids
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert (
        uploads and "report.html" in uploads[0]["with"]["path"] and "report.md" in uploads[0]["with"]["path"]
    )
    assert any("exit 1" in s.get("run", "") for s in steps)  # fails the job on a block


def test_action_and_workflows_call_real_commands() -> None:
    texts = [(REPO / "action.yml").read_text()] + [p.read_text() for p in WORKFLOWS]
    readme = (REPO / "README.md").read_text()
    atlantis = readme.split("### GitHub pull requests and Atlantis", 1)[1].split("\n### ", 1)[0]
    texts.append(atlantis)
    commands = [c for t in texts for c in _tfgate_commands(t)]
    assert {c[0] for c in commands} >= {"plan", "comment", "apply", "check"}
    for words in commands:
        _assert_real_command(words)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_are_valid(path) -> None:
    wf = _load(path)
    assert wf["jobs"]
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert on
    for job in wf["jobs"].values():
        assert job["runs-on"] and job["steps"]


def test_ci_workflow_runs_the_readme_test_command() -> None:
    ci = (REPO / ".github" / "workflows" / "ci.yml").read_text()
    ci_run = (REPO / ".ci" / "run").read_text()
    for command in ("python -m pytest -n 2 -q", "ruff check ."):
        assert command in ci and command in ci_run


def test_example_applies_only_through_tfgate() -> None:
    wf = _load(REPO / ".github" / "workflows" / "example-pre-apply.yml")
    runs = [s.get("run", "") for job in wf["jobs"].values() for s in job["steps"]]
    assert not any(re.search(r"\bterraform\b[^|;&]*\bapply\b", r) for r in runs)
    # tfgate's own guard finds nothing that applies around the gate, and one step applies through it.
    from tfgate.agents.analyzer import check_command

    # (Pinning `--manifest`/`--terraform` is the CI author's call; the guard refuses only that to an agent.)
    judged = [check_command(r) for r in runs]
    assert all(d.allowed or d.code == "tamper" for d in judged), [d for d in judged if not d.allowed]
    lines = [line.strip() for r in runs for line in r.splitlines()]
    assert any(shlex.split(line)[:2] == ["tfgate", "apply"] for line in lines if line.startswith("tfgate"))
    assert wf["permissions"]["pull-requests"] == "write" and wf["permissions"]["statuses"] == "write"


def test_gitlab_example_plans_in_merge_requests_and_applies_only_through_tfgate() -> None:
    path = REPO / "examples" / "gitlab-ci.yml"
    ci = _load(path)  # valid YAML
    jobs = {name: job for name, job in ci.items() if isinstance(job, dict) and "script" in job}
    scripts = {name: "\n".join(job["script"]) for name, job in jobs.items()}
    assert not any(re.search(r"\bterraform\b[^|;&]*\bapply\b", s) for s in scripts.values())
    assert jobs["plan"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert jobs["apply"]["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    assert jobs["apply"]["environment"]["name"] == "production" and jobs["apply"]["resource_group"]
    assert jobs["plan"]["artifacts"]["reports"]["terraform"] == "tfgate-gitlab.json"
    calls = [shlex.split(m.group(0)) for s in scripts.values() for m in re.finditer(r"\btfgate [^|;&\n]+", s)]
    assert [c[:2] for c in calls] == [["tfgate", "comment"], ["tfgate", "check"], ["tfgate", "apply"]]
    assert (
        "--report-gitlab" in calls[0]
        and calls[0][calls[0].index("--report-gitlab") + 1] == "tfgate-gitlab.json"
    )
    runner = CliRunner()
    for words in calls:  # every option it uses exists (click refuses an unknown one before --help)
        result = runner.invoke(app, [*words[1:], "--help"])
        assert result.exit_code == 0, f"{' '.join(words)}: {result.output}"
