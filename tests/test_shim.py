"""The terraform shim: read-only commands pass through, apply goes through the gate, state edits need
a signed approval, with real Terraform and real ssh-keygen."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfgate.enforce.shim import MARKER, is_shim

from .conftest import TF

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


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


def shim_approve(
    workdir: Path, command: str, out: Path, key: Path, signer: str = "alice@example.com", *extra: str
):
    """`tfgate shim approve` as a human runs it (real CLI, real ssh-keygen)."""
    return subprocess.run(
        [sys.executable, "-m", "tfgate", "shim", "approve", "-C", str(workdir), "--signer", signer, "--key", str(key),
         "--reason", "CHG-1", "--yes", "--output", str(out), *extra, "--", *shlex.split(command)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def resign(stmt: Path, key: Path, **edit) -> Path:
    """Edit a statement's fields and sign it again with the same key (a legitimately signed variant)."""
    doc = json.loads(stmt.read_text())
    doc.update(edit)
    doc = {k: v for k, v in doc.items() if v is not ...}
    stmt.write_text(json.dumps(doc))
    Path(f"{stmt}.sig").unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-q", "-f", str(key), "-n", "tfgate-shim", str(stmt)], check=True
    )
    return stmt


@pytest.fixture
def signer(prod, tmp_path: Path):
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen missing")
    key = tmp_path / "alice"
    pub = _keygen(key)
    (prod.dir / "allowed_signers").write_text(f"alice@example.com {pub}\n")

    def sign(command: str, name: str = "approval.json", **edit) -> Path:
        stmt = tmp_path / "approvals" / name
        stmt.parent.mkdir(exist_ok=True)
        proc = shim_approve(prod.dir, command, stmt, key)
        assert proc.returncode == 0, proc.stderr
        return resign(stmt, key, **edit) if edit else stmt

    sign.key = key  # type: ignore[attr-defined]
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
    old = signer(
        "state rm terraform_data.web",
        "old.json",
        issued_at="2000-12-31T23:00:00Z",
        expires="2001-01-01T00:00:00Z",
    )
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
    assert proc.returncode == 1 and "bad signature" in proc.stderr
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


TWO_OF = """version: 1
approvals: {allowed_signers: allowed_signers, max_ttl: 8h}
protect:
  - name: prod-db
    match: {address: ["terraform_data.db"]}
    approvals: 2
    approvers: ["alice@example.com", "carol@example.com"]
"""


@pytest.fixture
def people(prod, tmp_path: Path) -> dict[str, Path]:
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen missing")
    keys = {who: tmp_path / f"id_{who}" for who in ("alice", "bob", "carol")}
    lines = [f"{who}@example.com {_keygen(k)}" for who, k in keys.items()]
    (prod.dir / "allowed_signers").write_text("\n".join(lines) + "\n")
    (prod.dir / "tfgate.yaml").write_text(TWO_OF)
    return keys


def _rm(shimdir: Path, workdir: Path, *approvals: Path) -> subprocess.CompletedProcess:
    env = {"TFGATE_APPROVALS": os.pathsep.join(map(str, approvals))}
    return run(shimdir, "state", "rm", "terraform_data.db", cwd=workdir, env_extra=env)


def test_shim_approvals_obey_the_rules_protecting_what_the_command_touches(
    shimdir: Path, prod, people, tmp_path: Path
) -> None:
    """The issue's attack: the rule wants 2 approvals from alice or carol; bob (merely listed) signs."""
    out = tmp_path / "ap"
    out.mkdir()
    # `tfgate shim approve` refuses bob up front: he approves for no rule protecting terraform_data.db.
    proc = shim_approve(
        prod.dir, "state rm terraform_data.db", out / "bob.json", people["bob"], "bob@example.com"
    )
    assert proc.returncode == 2 and "not an approver of any rule protecting" in proc.stderr
    # bob's statement made anyway (alice's, re-signed by bob as bob) does not count.
    a = out / "alice.json"
    assert shim_approve(prod.dir, "state rm terraform_data.db", a, people["alice"]).returncode == 0
    shutil.copy(a, out / "bob.json")
    bob = resign(out / "bob.json", people["bob"], signer="bob@example.com")
    for approvals, counted in (((bob,), "0 counted"), ((a,), "1 counted: alice@example.com"),
                               ((a, bob), "1 counted: alice@example.com")):  # fmt: skip
        proc = _rm(shimdir, prod.dir, *approvals)
        assert proc.returncode == 1, proc.stderr
        assert (
            "rule 'prod-db' protects terraform_data.db and needs 2 approval(s) from alice@example.com, "
            in proc.stderr
        )
        assert counted in proc.stderr
        if bob in approvals:
            assert "bob.json: signer not an approver: bob@example.com approves for no rule" in proc.stderr
    # alice twice is one person.
    a2 = resign(Path(shutil.copy(a, out / "alice2.json")), people["alice"], reason="again")
    proc = _rm(shimdir, prod.dir, a, a2)
    assert "1 counted: alice@example.com" in proc.stderr
    assert (
        "alice2.json: same signer twice: alice@example.com is the same person as alice@example.com"
        in proc.stderr
    )
    assert "terraform_data.db" in run(shimdir, "state", "list", cwd=prod.dir).stdout
    c = out / "carol.json"
    proc = shim_approve(prod.dir, "state rm terraform_data.db", c, people["carol"], "carol@example.com")
    assert proc.returncode == 0, proc.stderr
    stmt = json.loads(c.read_text())
    assert (
        stmt["version"] == 2
        and stmt["workspace"] == "default"
        and stmt["root"] == f"local:{prod.dir.resolve()}"
    )
    assert stmt["state"]["lineage"] == prod.state()["lineage"]
    proc = _rm(shimdir, prod.dir, a, c)
    assert proc.returncode == 0, proc.stderr
    assert "approved by alice@example.com, carol@example.com" in proc.stderr
    assert run(shimdir, "state", "list", cwd=prod.dir).stdout.split() == ["terraform_data.web"]


def test_a_shim_approval_is_bound_to_its_directory_state_workspace_and_lifetime(
    shimdir: Path, prod, people, tmp_path: Path, terraform_bin: Path
) -> None:
    (prod.dir / "tfgate.yaml").write_text(TWO_OF.replace("approvals: 2", "approvals: 1"))
    a = tmp_path / "a.json"
    assert shim_approve(prod.dir, "state rm terraform_data.db", a, people["alice"]).returncode == 0
    # The same file in another directory with an identical configuration and its own state.
    other = tmp_path / "other"
    other.mkdir()
    for name in ("main.tf", "tfgate.yaml", "allowed_signers"):
        shutil.copy(prod.dir / name, other / name)
    twin = TF(other, terraform_bin)
    twin.run("init", "-input=false")
    twin.apply()
    proc = _rm(shimdir, other, a)
    assert proc.returncode == 1 and "other root: approves local:" in proc.stderr
    assert "terraform_data.db" in run(shimdir, "state", "list", cwd=other).stdout
    # Copying the approved state there is still another root; the state moving on is another state.
    key = people["alice"]
    variants = {
        "other workspace": resign(Path(shutil.copy(a, tmp_path / "ws.json")), key, workspace="staging"),
        "unreadable: missing field(s) expires": resign(Path(shutil.copy(a, tmp_path / "noexp.json")), key, expires=...),
        "too long-lived": resign(Path(shutil.copy(a, tmp_path / "long.json")), key, expires="2099-01-01T00:00:00Z"),
        "not a version 2 shim approval": resign(Path(shutil.copy(a, tmp_path / "v1.json")), key, version=...),
    }  # fmt: skip
    for expected, stmt in variants.items():
        proc = _rm(shimdir, prod.dir, stmt)
        assert proc.returncode == 1 and expected in proc.stderr, (expected, proc.stderr)
    # `approve` refuses a --ttl over the manifest's max_ttl.
    proc = shim_approve(
        prod.dir, "state rm terraform_data.db", tmp_path / "x.json", key, "alice@example.com", "--ttl", "9h"
    )
    assert proc.returncode == 2 and "longer than the manifest allows (8:00:00" in proc.stderr
    prod.write(BASE + 'resource "terraform_data" "extra" {}\n')
    prod.apply()
    proc = _rm(shimdir, prod.dir, a)
    assert proc.returncode == 1 and "other state: approves state lineage" in proc.stderr
    assert "the state changed since it was approved" in proc.stderr
    assert "terraform_data.db" in run(shimdir, "state", "list", cwd=prod.dir).stdout
