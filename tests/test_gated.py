"""tfgate plan/apply/destroy with real Terraform: the gate stands between the plan and the apply."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfgate import audit

pytestmark = pytest.mark.slow

BASE = """
resource "terraform_data" "db" {
  input = "orders"
}
resource "terraform_data" "cache" {
  input = "v1"
}
"""
# The db block is deleted: Terraform plans to destroy it.
WITHOUT_DB = """
resource "terraform_data" "cache" {
  input = "v2"
}
"""
MANIFEST = """
version: 1
protect:
  - name: prod-db
    match:
      address: ["terraform_data.db"]
"""


def tfgate(*args: str, cwd: Path, check: bool = False, **kw) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "tfgate", *args], cwd=cwd, capture_output=True, text=True, **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"tfgate {args} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _resources(state: dict) -> list[tuple[str, str]]:
    return sorted((r["name"], r["instances"][0]["attributes"]["id"]) for r in state["resources"])


@pytest.fixture
def prod(tf):
    """A working directory with applied "production" state and the manifest protecting the db."""
    tf.write(BASE)
    tf.run("init", "-input=false")
    tf.apply()
    (tf.dir / "tfgate.yaml").write_text(MANIFEST)
    return tf


def test_blocked_apply_leaves_state_untouched(prod, _audit_log_env: Path) -> None:
    prod.write(WITHOUT_DB)
    before = prod.state()
    plan = prod.plan()
    proc = tfgate("apply", str(plan), cwd=prod.dir)
    assert proc.returncode == 1, proc.stderr
    assert "nothing applied" in proc.stderr
    after = prod.state()
    assert after["serial"] == before["serial"]
    assert _resources(after) == _resources(before)
    events = [json.loads(line) for line in _audit_log_env.read_text().splitlines()]
    assert [e["event"] for e in events] == ["check", "refusal"]
    assert events[0]["verdict"] == "block"
    assert events[0]["violations"][0]["address"] == "terraform_data.db"
    assert audit.verify(_audit_log_env).ok


def test_blocked_apply_without_planfile_and_destroy(prod) -> None:
    prod.write(WITHOUT_DB)
    before = prod.state()
    assert tfgate("apply", "--auto-approve", cwd=prod.dir).returncode == 1
    prod.write(BASE)
    assert tfgate("destroy", "--auto-approve", cwd=prod.dir).returncode == 1
    after = prod.state()
    assert (after["serial"], _resources(after)) == (before["serial"], _resources(before))


def test_allowed_apply_applies_exactly_the_saved_plan(prod, _audit_log_env: Path) -> None:
    (prod.dir / "tfgate.yaml").write_text("version: 1\nprotect: []\n")
    prod.write(WITHOUT_DB)
    plan = prod.plan()
    expected = prod.show_json(plan)
    planned = {rc["address"]: rc["change"]["actions"] for rc in expected["resource_changes"]}
    assert planned == {"terraform_data.db": ["delete"], "terraform_data.cache": ["update"]}
    # The config changes again after the plan: applying the saved plan must ignore that.
    prod.write(WITHOUT_DB.replace("v2", "v3") + 'resource "terraform_data" "extra" {}\n')
    before = prod.state()
    proc = tfgate("apply", str(plan), cwd=prod.dir)
    assert proc.returncode == 0, proc.stderr
    after = prod.state()
    assert after["serial"] > before["serial"]
    assert [r["name"] for r in after["resources"]] == ["cache"]
    assert after["resources"][0]["instances"][0]["attributes"]["input"]["value"] == "v2"
    events = [json.loads(line) for line in _audit_log_env.read_text().splitlines()]
    assert [(e["event"], e.get("status")) for e in events] == [
        ("check", None),
        ("apply", "started"),
        ("apply", "applied"),
    ]
    assert events[1]["plan_sha256"] == events[0]["plan_sha256"]


def test_plan_writes_plan_and_reports(prod) -> None:
    prod.write(WITHOUT_DB)
    proc = tfgate("plan", "--format", "json", cwd=prod.dir)
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)  # Terraform's own output went to stderr
    assert result["verdict"] == "block"
    (out,) = (prod.dir / ".tfgate" / "plans").iterdir()
    assert (out / "plan.bin").read_bytes()[:2] == b"PK"
    assert json.loads((out / "report.json").read_text())["verdict"] == "block"
    # The saved plan from `tfgate plan` is what `tfgate apply` takes (still blocked here).
    assert tfgate("apply", str(out / "plan.bin"), cwd=prod.dir).returncode == 1


def test_plan_dir_argument_and_terraform_args(prod, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = tfgate("plan", str(prod.dir), "--out", str(out), "--", "-refresh=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "plan.bin").is_file()


def test_plan_out_folder_that_cannot_be_created_is_an_input_error(prod, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file" / "out", Path("/proc/nope/out")):
        proc = tfgate("plan", "--out", str(out), cwd=prod.dir)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(f"tfgate: error: cannot create the report folder {out}: "), proc.stderr
        assert len(proc.stderr.splitlines()) == 1


def test_swapped_plan_file_is_refused(prod, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan file is replaced after the check (by a slow `terraform show` wrapper): refused."""
    (prod.dir / "tfgate.yaml").write_text("version: 1\nprotect: []\n")
    prod.write(WITHOUT_DB.replace("v2", "benign"))
    benign = prod.plan("benign.bin")
    prod.write(WITHOUT_DB)
    evil = prod.plan("evil.bin")
    before = prod.state()
    # A terraform wrapper that swaps the plan file while tfgate is checking it.
    wrapper = prod.dir.parent / "swap-terraform"
    wrapper.write_text(
        f'#!/bin/sh\nif [ "$1" = show ]; then cp "{evil}" "{benign}"; fi\nexec "{prod.exe}" "$@"\n'
    )
    wrapper.chmod(0o755)
    proc = tfgate("apply", str(benign), "--terraform", str(wrapper), cwd=prod.dir)
    assert proc.returncode == 2, proc.stderr
    assert "changed after the check" in proc.stderr and "nothing applied" in proc.stderr
    after = prod.state()
    assert (after["serial"], _resources(after)) == (before["serial"], _resources(before))


def test_terraform_failure_exit_code(tf) -> None:
    tf.write('resource "terraform_data" "x" {\n  input = var.nope\n}\n')
    tf.run("init", "-input=false")
    proc = tfgate("plan", cwd=tf.dir)
    assert proc.returncode == 1
    assert "terraform plan failed" in proc.stderr


SLOW = """
resource "terraform_data" "slow" {
  provisioner "local-exec" {
    command = "sleep 30"
  }
}
"""


def test_sigint_during_apply_releases_the_lock(tf, _audit_log_env: Path) -> None:
    (tf.dir / "tfgate.yaml").write_text("version: 1\nplan: {provisioners: warn}\n")  # the sleep is the point
    tf.write(SLOW)
    tf.run("init", "-input=false")
    plan = tf.plan()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfgate", "apply", str(plan)],
        cwd=tf.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lock = tf.dir / ".terraform.tfstate.lock.info"
    deadline = time.monotonic() + 60
    while not lock.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert lock.exists(), "apply never took the lock"
    time.sleep(1.5)  # let the provisioner start
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert time.monotonic() - started < 25, "Terraform did not stop on the interrupt"
    assert proc.returncode not in (0, None), out
    assert not lock.exists()
    tf.run("plan", "-lock-timeout=0s", "-input=false")  # the lock is free
    events = [json.loads(line) for line in _audit_log_env.read_text().splitlines()]
    assert events[-1]["status"] == "failed"


def test_works_with_explicit_terraform(prod, terraform_bin: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TFGATE_TERRAFORM"}
    env["PATH"] = "/usr/bin:/bin"
    prod.write(WITHOUT_DB)
    proc = tfgate("plan", "--terraform", str(terraform_bin), cwd=prod.dir, env=env)
    assert proc.returncode == 1, proc.stderr
    proc = tfgate("plan", "--terraform", "embedded", cwd=prod.dir, env=env)
    assert proc.returncode == 1, proc.stderr


@pytest.mark.parametrize(
    "extra",
    [
        ["-auto-approve", "-destroy", "-backup"],  # a trailing value flag would swallow the plan path
        ["-state-out=x.tfstate"],
        ["--backup", "b"],
        ["other.bin"],
        ["-parallelism", "2"],
    ],
    ids=["backup-swallows-plan", "state-out", "double-dash", "positional", "separate-value"],
)
def test_apply_arguments_cannot_replace_the_checked_plan(prod, extra: list[str]) -> None:
    plan = prod.plan()  # no changes: the gate allows it
    before = prod.state()
    proc = tfgate("apply", str(plan), "--", *extra, cwd=prod.dir)
    assert proc.returncode == 2, proc.stderr
    assert "`terraform apply`" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    after = prod.state()
    assert (after["serial"], _resources(after)) == (before["serial"], _resources(before))
    # Flags given as -name=value and switches still pass through.
    assert tfgate("apply", str(plan), "--", "-parallelism=2", "-no-color", cwd=prod.dir).returncode == 0


def test_tf_cli_args_cannot_change_what_tfgate_applies(prod, monkeypatch: pytest.MonkeyPatch) -> None:
    (prod.dir / "tfgate.yaml").write_text("version: 1\nprotect: []\n")
    plan = prod.plan()  # no changes
    before = prod.state()
    # Terraform would add these to `terraform apply PLAN`; tfgate applies exactly the checked plan.
    monkeypatch.setenv("TF_CLI_ARGS_apply", "-state-out=elsewhere.tfstate")
    monkeypatch.setenv("TF_CLI_ARGS", "-lock=false")
    assert tfgate("apply", str(plan), cwd=prod.dir).returncode == 0
    assert not (prod.dir / "elsewhere.tfstate").exists()
    assert _resources(prod.state()) == _resources(before)


def test_a_plan_applied_from_another_directory_is_blocked(prod, tmp_path: Path) -> None:
    """The manifest and state are read from the working directory: a plan carried elsewhere (where no
    manifest protects anything) must not slip through."""
    prod.write(WITHOUT_DB)
    plan = prod.plan()
    before = prod.state()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = tfgate("apply", str(plan), "--format", "json", cwd=elsewhere)
    assert proc.returncode == 1, proc.stderr
    codes = [f["code"] for f in json.loads(proc.stdout)["findings"]]
    assert "missing_state" in codes
    assert _resources(prod.state()) == _resources(before)


def test_a_plan_is_applied_to_the_workspace_it_was_made_in_and_checked_against(tf) -> None:
    """Terraform applies a saved plan to the selected workspace, whichever one it was made in and whichever
    one tfgate read the state of: the apply must write where the check looked, and the plan must come from
    there."""
    tf.write(BASE)
    tf.run("init", "-input=false")
    (tf.dir / "tfgate.yaml").write_text("version: 1\nprotect: []\n")
    tf.run("workspace", "new", "scratch")
    plan = tf.plan()
    tf.run("workspace", "select", "default")
    scratch = tf.dir / "terraform.tfstate.d" / "scratch" / "terraform.tfstate"
    proc = tfgate("apply", str(plan), "--auto-approve", cwd=tf.dir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "made in workspace 'scratch'" in proc.stderr and "nothing applied" in proc.stderr
    assert not (tf.dir / "terraform.tfstate").exists()
    # Named with --workspace (default still selected), the plan is checked and applied in its own workspace.
    proc = tfgate("apply", str(plan), "--auto-approve", "--workspace", "scratch", cwd=tf.dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (tf.dir / "terraform.tfstate").exists()
    assert sorted(r["name"] for r in json.loads(scratch.read_text())["resources"]) == ["cache", "db"]
