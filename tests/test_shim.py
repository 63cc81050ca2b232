"""The terraform shim: read-only commands pass through, apply goes through the gate, state edits need
a signed approval, with real Terraform and real ssh-keygen."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfgate.enforce.shim import MARKER, is_shim

pytestmark = pytest.mark.slow

BASE = 'resource "terraform_data" "db" {\n  input = "orders"\n}\nresource "terraform_data" "web" {}\n'
MANIFEST = """version: 1
approvals:
  allowed_signers: allowed_signers
protect:
  - name: prod-db
    match:
      address: ["terraform_data.db"]
"""


@pytest.fixture
def shimdir(tmp_path: Path, terraform_bin: Path) -> Path:
    d = tmp_path / "shims"
    proc = subprocess.run(
        [sys.executable, "-m", "tfgate", "shim", "install", str(d), "--terraform", str(terraform_bin)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return d


@pytest.fixture
def prod(tf):
    tf.write(BASE)
    tf.run("init", "-input=false")
    tf.apply()
    (tf.dir / "tfgate.yaml").write_text(MANIFEST)
    return tf


def run(shimdir: Path, *args: str, cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{shimdir}:{os.environ['PATH']}", **(env_extra or {}))
    env.pop("TFGATE_TERRAFORM", None)  # the shim must use the binary recorded at install time
    return subprocess.run(
        ["terraform", *args], cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )


def test_install_writes_shims_that_never_point_at_themselves(
    shimdir: Path, terraform_bin: Path, tmp_path
) -> None:
    for name in ("terraform", "tofu"):
        path = shimdir / name
        assert os.access(path, os.X_OK) and is_shim(path)
        assert str(terraform_bin.resolve()) in path.read_text()
    # Installing again with the shim dir first on PATH and no --terraform: the shim is skipped.
    env = dict(os.environ, PATH=f"{shimdir}:{terraform_bin.parent}:/usr/bin:/bin")
    env.pop("TFGATE_TERRAFORM", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tfgate", "shim", "install", str(shimdir)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{shimdir / 'terraform'} -> {terraform_bin.resolve()}" in proc.stdout
    # Pointing --terraform at the shim itself is refused.
    proc = subprocess.run(
        [sys.executable, "-m", "tfgate", "shim", "install", str(tmp_path / "x"), "--terraform",
         str(shimdir / "terraform")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2 and "shim" in proc.stderr
    assert MARKER


def test_read_only_commands_pass_through(shimdir: Path, prod) -> None:
    proc = run(shimdir, "version", cwd=prod.dir)
    assert proc.returncode == 0 and "Terraform v1." in proc.stdout
    proc = run(shimdir, "state", "list", cwd=prod.dir)
    assert proc.stdout.split() == ["terraform_data.db", "terraform_data.web"]
    proc = run(shimdir, "plan", "-input=false", "-detailed-exitcode", cwd=prod.dir)
    assert proc.returncode == 0, proc.stderr  # native exit code: no changes
    prod.write('resource "terraform_data" "x" {\n  input = var.missing\n}\n')
    assert run(shimdir, "validate", cwd=prod.dir).returncode == 1


def test_apply_goes_through_the_gate(shimdir: Path, prod) -> None:
    prod.write('resource "terraform_data" "web" {}\n')  # the protected db block is gone
    before = prod.state()
    proc = run(shimdir, "apply", "-auto-approve", cwd=prod.dir)
    assert proc.returncode == 1, proc.stderr
    assert "nothing applied" in proc.stderr
    assert run(shimdir, "destroy", "-auto-approve", cwd=prod.dir).returncode == 1
    plan = prod.plan()
    assert run(shimdir, "apply", str(plan), cwd=prod.dir).returncode == 1
    assert prod.state()["serial"] == before["serial"]
    # An unprotected change applies through the shim.
    prod.write(BASE + 'resource "terraform_data" "new" {}\n')
    proc = run(shimdir, "apply", "-auto-approve", cwd=prod.dir)
    assert proc.returncode == 0, proc.stderr
    assert "terraform_data.new" in run(shimdir, "state", "list", cwd=prod.dir).stdout
    # Without -auto-approve and no terminal, nothing is applied (Terraform would prompt).
    prod.write(BASE + 'resource "terraform_data" "new2" {}\n')
    assert run(shimdir, "apply", cwd=prod.dir).returncode == 1
    assert "new2" not in run(shimdir, "state", "list", cwd=prod.dir).stdout


@pytest.fixture
def signer(prod, tmp_path: Path):
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen missing")
    key = tmp_path / "alice"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pub = (tmp_path / "alice.pub").read_text().strip()
    (prod.dir / "allowed_signers").write_text(f"alice@example.com {pub}\n")

    def sign(command: str, name: str = "approval.json", **extra) -> Path:
        stmt = tmp_path / "approvals" / name
        stmt.parent.mkdir(exist_ok=True)
        stmt.write_text(json.dumps({"tfgate": "shim-approval", "command": command, **extra}))
        subprocess.run(
            ["ssh-keygen", "-Y", "sign", "-q", "-f", str(key), "-n", "tfgate-shim", str(stmt)], check=True
        )
        return stmt

    return sign


def test_state_commands_refused_unless_approved(shimdir: Path, prod, signer) -> None:
    proc = run(shimdir, "state", "rm", "terraform_data.web", cwd=prod.dir)
    assert proc.returncode == 1 and "refused" in proc.stderr
    for cmd in (
        ["taint", "terraform_data.web"],
        ["import", "terraform_data.x", "id"],
        ["force-unlock", "-force", "x"],
        ["init", "-migrate-state"],
    ):
        assert run(shimdir, *cmd, cwd=prod.dir).returncode == 1
    # `terraform test` applies infrastructure of its own: refused too, not routed to the gated apply.
    proc = run(shimdir, "test", cwd=prod.dir)
    assert proc.returncode == 1 and "applies real infrastructure outside the gate" in proc.stderr
    assert "terraform_data.web" in run(shimdir, "state", "list", cwd=prod.dir).stdout
    # An approval for a different command does not count; an expired one neither.
    other = signer("state rm terraform_data.db", "other.json")
    proc = run(
        shimdir, "state", "rm", "terraform_data.web", cwd=prod.dir, env_extra={"TFGATE_APPROVALS": str(other)}
    )
    assert proc.returncode == 1 and "not `state rm terraform_data.web`" in proc.stderr
    old = signer("state rm terraform_data.web", "old.json", expires="2001-01-01T00:00:00Z")
    proc = run(
        shimdir, "state", "rm", "terraform_data.web", cwd=prod.dir, env_extra={"TFGATE_APPROVALS": str(old)}
    )
    assert proc.returncode == 1 and "expired" in proc.stderr
    # A tampered statement fails verification.
    good = signer("state rm terraform_data.web", "good.json")
    forged = good.with_name("forged.json")
    forged.write_text(good.read_text().replace("terraform_data.web", "terraform_data.db"))
    shutil.copy(good.with_name("good.json.sig"), forged.with_name("forged.json.sig"))
    proc = run(
        shimdir, "state", "rm", "terraform_data.db", cwd=prod.dir, env_extra={"TFGATE_APPROVALS": str(forged)}
    )
    assert proc.returncode == 1 and "no valid signature" in proc.stderr
    proc = run(
        shimdir, "state", "rm", "terraform_data.web", cwd=prod.dir, env_extra={"TFGATE_APPROVALS": str(good)}
    )
    assert proc.returncode == 0, proc.stderr
    assert run(shimdir, "state", "list", cwd=prod.dir).stdout.split() == ["terraform_data.db"]


def test_state_push_checks_lineage_and_serial(shimdir: Path, prod, signer, tmp_path: Path) -> None:
    current = prod.state()
    older = dict(current, serial=current["serial"] - 1)
    (prod.dir / "older.tfstate").write_text(json.dumps(older))
    stranger = dict(current, lineage="00000000-0000-0000-0000-000000000000", serial=current["serial"] + 5)
    (prod.dir / "stranger.tfstate").write_text(json.dumps(stranger))
    newer = dict(current, serial=current["serial"] + 1)
    (prod.dir / "newer.tfstate").write_text(json.dumps(newer))
    for name, problem in (("older.tfstate", "lower than"), ("stranger.tfstate", "lineage")):
        approval = signer(f"state push {name}", f"{name}.json")
        proc = run(
            shimdir, "state", "push", name, cwd=prod.dir, env_extra={"TFGATE_APPROVALS": str(approval)}
        )
        assert proc.returncode == 1 and problem in proc.stderr, proc.stderr
        assert prod.state()["serial"] == current["serial"]
    approval = signer("state push newer.tfstate", "newer.json")
    proc = run(
        shimdir, "state", "push", "newer.tfstate", cwd=prod.dir, env_extra={"TFGATE_APPROVALS": str(approval)}
    )
    assert proc.returncode == 0, proc.stderr
    assert prod.state()["serial"] == current["serial"] + 1


def test_tf_cli_args_are_judged_with_the_command(shimdir: Path, prod) -> None:
    before = prod.state()
    # With no subcommand, Terraform puts TF_CLI_ARGS first: this is a destroy, and goes through the gate.
    proc = run(shimdir, cwd=prod.dir, env_extra={"TF_CLI_ARGS": "destroy -auto-approve"})
    assert proc.returncode == 1 and "nothing applied" in proc.stderr, proc.stderr
    # TF_CLI_ARGS_state turns `terraform state` into `state rm`: refused without an approval.
    proc = run(shimdir, "state", cwd=prod.dir, env_extra={"TF_CLI_ARGS_state": "rm terraform_data.db"})
    assert proc.returncode == 1 and "refused" in proc.stderr
    # refresh writes state without a plan to check: refused like other state commands.
    assert run(shimdir, "refresh", cwd=prod.dir).returncode == 1
    # Read-only commands still run, with the env arguments applied once.
    proc = run(shimdir, "state", cwd=prod.dir, env_extra={"TF_CLI_ARGS_state": "list"})
    assert proc.returncode == 0 and "terraform_data.db" in proc.stdout, proc.stderr
    after = prod.state()
    assert after["serial"] == before["serial"]
    assert sorted(r["name"] for r in after["resources"]) == sorted(r["name"] for r in before["resources"])


def test_double_dash_destroy_and_migrate_are_judged_like_single_dash(shimdir: Path, prod) -> None:
    before = prod.state()
    proc = run(shimdir, "apply", "--destroy", "-auto-approve", cwd=prod.dir)
    assert proc.returncode == 1 and "nothing applied" in proc.stderr, proc.stderr  # a destroy, gated
    assert run(shimdir, "init", "--migrate-state", cwd=prod.dir).returncode == 1
    assert prod.state()["serial"] == before["serial"]


def test_double_dash_flags_cannot_hide_a_value_flag(shimdir: Path, prod) -> None:
    benign = prod.plan()
    before = prod.state()
    proc = run(shimdir, "apply", "--auto-approve", "-destroy=true", "--backup", str(benign), cwd=prod.dir)
    assert proc.returncode != 0, proc.stderr
    after = prod.state()
    assert sorted(r["name"] for r in after["resources"]) == sorted(r["name"] for r in before["resources"])


def test_pinned_manifest_protects_wherever_terraform_runs(tmp_path: Path, terraform_bin: Path, prod) -> None:
    """With `shim install --manifest`, a directory's own (or missing) tfgate.yaml cannot lift protection."""
    pinned = tmp_path / "pinned.yaml"
    pinned.write_text(MANIFEST)
    d = tmp_path / "pinned-shims"
    proc = subprocess.run(
        [sys.executable, "-m", "tfgate", "shim", "install", str(d), "--terraform", str(terraform_bin),
         "--manifest", str(pinned)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (prod.dir / "tfgate.yaml").write_text("version: 1\nprotect: []\n")  # an agent empties the local one
    before = prod.state()
    proc = run(d, "destroy", "-auto-approve", cwd=prod.dir)
    assert proc.returncode == 1 and "nothing applied" in proc.stderr, proc.stderr
    assert prod.state()["serial"] == before["serial"]
    # A manifest that does not exist is an error at install time, not a silent pass later.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfgate",
            "shim",
            "install",
            str(d),
            "--manifest",
            str(tmp_path / "nope.yaml"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "not found" in proc.stderr
