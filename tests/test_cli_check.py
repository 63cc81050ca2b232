"""`tfgate check` end to end with real Terraform plans: verdicts, exit codes, the JSON contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from .conftest import REPO, TF

SCHEMA = json.loads((REPO / "tfgate" / "schemas" / "result.schema.json").read_text())


def tfgate(
    *args: str, cwd: Path | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tfgate", *args], cwd=cwd, capture_output=True, input=stdin, timeout=120
    )


PROTECT_DB = "version: 1\nprotect:\n  - name: prod-db\n    match: {address: ['terraform_data.db']}\n"


def _json(proc: subprocess.CompletedProcess[bytes]) -> dict:
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, SCHEMA)
    return doc


def test_protected_delete_blocks_with_exit_1_in_every_form(scenario) -> None:
    tf, _ = scenario("deleted_block")
    (tf.dir / "tfgate.yaml").write_text(PROTECT_DB)
    (tf.dir / "plan.json").write_text(tf.run("show", "-json", "plan.bin").stdout)
    (tf.dir / "stream.jsonl").write_text(tf.run("plan", "-json", "-input=false").stdout)
    digests = set()
    for source in ("plan.bin", "plan.json", "stream.jsonl"):
        proc = tfgate("check", source, "--format", "json", cwd=tf.dir)
        assert proc.returncode == 1, proc.stderr
        doc = _json(proc)
        assert doc["verdict"] == "block" and doc["exit_code"] == 1
        assert [(v["address"], v["rule"], v["class"], v["approved"]) for v in doc["violations"]] == [
            ("terraform_data.db", "prod-db", "delete", False)
        ]
        assert doc["summary"]["delete"] == 1 and doc["summary"]["no_op"] == (
            0 if source == "stream.jsonl" else 1
        )
        change = next(c for c in doc["changes"] if c["address"] == "terraform_data.db")
        assert change["protected_by"] == ["prod-db"] and change["risk"] == "high"
        assert (
            change["actions"] == ["delete"] and change["action_reason"] == "delete_because_no_resource_config"
        )
        if source != "stream.jsonl":
            digests.add(doc["plan"]["digest"])
    assert len(digests) == 1


def test_unprotected_plan_is_allowed(scenario) -> None:
    tf, _ = scenario("deleted_block")
    proc = tfgate("check", "plan.bin", "--format", "json", cwd=tf.dir)
    assert proc.returncode == 0, proc.stderr
    doc = _json(proc)
    assert doc["verdict"] == "allow" and doc["violations"] == [] and doc["reasons"] == []
    assert [f["code"] for f in doc["findings"]] == ["no_manifest"]  # visible, not silent
    # Still reported: the delete is in the change list with its risk.
    assert [c["class"] for c in doc["changes"]] == ["delete"]


def test_stdin_and_text_output(scenario) -> None:
    tf, _ = scenario("deleted_block")
    (tf.dir / "tfgate.yaml").write_text(PROTECT_DB)
    shown = tf.run("show", "-json", "plan.bin").stdout.encode()
    proc = tfgate("check", "-", cwd=tf.dir, stdin=shown)
    assert proc.returncode == 1
    out = proc.stdout.decode()
    assert out.splitlines()[0].startswith("tfgate: BLOCKED") or "BLOCKED" in out.splitlines()[0]
    assert "terraform_data.db" in out
    assert "\x1b[" not in out  # piped: no colour


def test_for_each_key_with_dots_matches_exact_rule(scenario) -> None:
    tf, _ = scenario("for_each_in_module")
    (tf.dir / "tfgate.yaml").write_text(
        "version: 1\nprotect:\n  - name: exact\n    match:\n"
        '      address: [\'module.tenant["eu.west"].terraform_data.item["a.b"]\']\n'
    )
    doc = _json(proc := tfgate("check", "plan.bin", "--format", "json", cwd=tf.dir))
    assert proc.returncode == 1
    assert [v["address"] for v in doc["violations"]] == [
        'module.tenant["eu.west"].terraform_data.item["a.b"]'
    ]


def test_forget_protected_only_when_rule_says_so(scenario) -> None:
    tf, _ = scenario("removed_forget")
    (tf.dir / "tfgate.yaml").write_text(
        "version: 1\nprotect:\n  - name: b\n    match: {address: '*bucket'}\n"
    )
    assert tfgate("check", "plan.bin", cwd=tf.dir).returncode == 0  # default actions: delete, replace
    (tf.dir / "tfgate.yaml").write_text(
        "version: 1\nprotect:\n  - name: b\n    match: {address: '*bucket'}\n    actions: [forget]\n"
    )
    doc = _json(proc := tfgate("check", "plan.bin", "--format", "json", cwd=tf.dir))
    assert proc.returncode == 1 and doc["violations"][0]["class"] == "forget"


def test_errored_plan_blocks_with_finding(tmp_path: Path) -> None:
    plan = {"format_version": "1.2", "errored": True, "resource_changes": []}
    (tmp_path / "p.json").write_text(json.dumps(plan))
    doc = _json(proc := tfgate("check", "p.json", "--format", "json", cwd=tmp_path))
    assert proc.returncode == 1
    assert [(f["code"], f["severity"]) for f in doc["findings"]] == [
        ("plan_errored", "block"),
        ("no_manifest", "warn"),
    ]


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({"p.json": "{"}, ["p.json"], "malformed or truncated"),
        ({"p.json": '{"format_version":"9.0"}'}, ["p.json"], "unsupported plan format_version"),
        (
            {"p.json": '{"format_version":"1.2"}', "tfgate.yaml": "version: 1\nprotect: 3\n"},
            ["p.json"],
            "$.protect",
        ),
        ({"p.json": '{"format_version":"1.2"}'}, ["p.json", "--format", "yaml"], "unknown format"),
        ({}, ["missing.json"], "not found"),
        ({"p.json": '{"format_version":"1.2"}'}, ["p.json", "--manifest", "nope.yaml"], "manifest not found"),
    ],
)
def test_input_errors_exit_2(tmp_path: Path, files: dict, args: list, message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    proc = tfgate("check", *args, cwd=tmp_path)
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert message in err and err.startswith("tfgate: error:")
    assert proc.stdout == b""


def test_binary_plan_terraform_cannot_read(tf: TF) -> None:
    import zipfile

    with zipfile.ZipFile(tf.dir / "bad.tfplan", "w") as z:
        z.writestr("tfplan", b"not a real plan")
    proc = tfgate("check", "bad.tfplan", cwd=tf.dir)
    assert proc.returncode == 2 and "terraform show -json failed" in proc.stderr.decode()


def test_usage_error_exit_2() -> None:
    assert tfgate("check").returncode == 2
    assert tfgate("check", "x", "--no-such-flag").returncode == 2


def test_version() -> None:
    proc = tfgate("--version")
    assert proc.returncode == 0 and proc.stdout.decode().startswith("tfgate ")


def test_reports_written_beside_output(scenario) -> None:
    tf, _ = scenario("deleted_block")
    (tf.dir / "tfgate.yaml").write_text(PROTECT_DB)
    proc = tfgate("check", "plan.bin", "--report-json", "out/r.json", cwd=tf.dir)
    assert proc.returncode == 1
    assert (
        _json(subprocess.CompletedProcess([], 0, (tf.dir / "out" / "r.json").read_bytes()))["verdict"]
        == "block"
    )


def test_unwritable_report_path_is_a_one_line_input_error(scenario) -> None:
    tf, _ = scenario("deleted_block")
    (tf.dir / "tfgate.yaml").write_text(PROTECT_DB)
    under_a_file = tf.dir / "plan.bin" / "r"
    for option, path in (
        ("--report-json", Path("/proc/nope/x.json")),
        ("--report-md", under_a_file / "x.md"),
        ("--report-html", tf.dir),  # a directory
    ):
        proc = tfgate("check", "plan.bin", option, str(path), cwd=tf.dir)
        err = proc.stderr.decode()
        assert proc.returncode == 2, err
        assert err.startswith(f"tfgate: error: cannot write the report {path}: "), err
        assert len(err.splitlines()) == 1 and "internal error" not in err


@pytest.mark.slow
def test_demo_blocks_the_silent_database_destroy() -> None:
    proc = tfgate("demo", "--terraform", "embedded", "--format", "json")
    assert proc.returncode == 0, proc.stderr  # blocked, then approved and applied: the story ran as told
    doc = _json(proc)
    assert {v["address"] for v in doc["violations"]} == {
        "module.database.terraform_data.primary",
        "module.database.terraform_data.snapshots",
    }
    assert doc["summary"]["update"] == 2 and doc["summary"]["delete"] == 2
    assert "production is untouched" in proc.stderr.decode()
    assert "applied exactly the approved plan" in proc.stderr.decode()


def test_terraform_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--terraform, then TFGATE_TERRAFORM, then terraform on PATH, then tofu on PATH, then the embedded one."""
    from tfgate.plan.terraform import embedded_command, find_terraform

    bins = {}
    for name in ("terraform", "tofu", "explicit-tf", "env-tf"):
        d = tmp_path / name
        d.mkdir()
        exe = d / ("tofu" if name == "tofu" else "terraform" if name == "terraform" else name)
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
        bins[name] = str(exe)
    monkeypatch.setenv("PATH", f"{tmp_path / 'terraform'}:{tmp_path / 'tofu'}")
    monkeypatch.setenv("TFGATE_TERRAFORM", bins["env-tf"])
    assert find_terraform(bins["explicit-tf"]) == [bins["explicit-tf"]]
    assert find_terraform() == [bins["env-tf"]]
    monkeypatch.delenv("TFGATE_TERRAFORM")
    assert find_terraform() == [bins["terraform"]]
    monkeypatch.setenv("PATH", str(tmp_path / "tofu"))
    assert find_terraform() == [bins["tofu"]]
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert find_terraform() == embedded_command()
    assert find_terraform("embedded") == embedded_command()
