"""Approvals bound to the root and the prior state: real Terraform in two directories, real ssh-keygen.

The attack from issue 14: staging and production hold identical-looking configurations (same addresses,
workspace `default`); alice approves staging's `terraform plan -destroy -json`. That approval must not let
production's destroy through, nor staging's own after its state is re-created or changed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tfgate.cli import app

from .conftest import TF

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH ssh-keygen")

CONFIG = 'resource "terraform_data" "db" {\n  input = "orders"\n}\n'
MANIFEST = """version: 1
protect:
  - name: db
    match: {address: terraform_data.db}
    approvers: ["alice@example.com"]
approvals: {allowed_signers: allowed_signers}
"""


@dataclass
class Env:
    tf: TF
    key: Path

    @property
    def dir(self) -> Path:
        return self.tf.dir

    def stream(self, name: str = "destroy.jsonl") -> Path:
        out = self.dir / name
        out.write_text(self.tf.run("plan", "-destroy", "-json", "-input=false").stdout)
        return out

    def lineage(self) -> tuple[str, int]:
        st = self.tf.state()
        return st["lineage"], st["serial"]


def _root(base: Path, name: str, exe: Path, key: Path) -> Env:
    work = base / name
    work.mkdir()
    tf = TF(work, exe)
    tf.write(CONFIG)
    tf.run("init", "-input=false")
    tf.apply()
    (work / "tfgate.yaml").write_text(MANIFEST)
    pub = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    (work / "allowed_signers").write_text(f'alice@example.com namespaces="tfgate,tfgate-shim" {pub}\n')
    return Env(tf, key)


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory, terraform_bin: Path) -> tuple[Env, Env]:
    base = tmp_path_factory.mktemp("binding")
    key = base / "id_alice"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return _root(base, "staging", terraform_bin, key), _root(base, "production", terraform_bin, key)


def cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def approve(env: Env, plan: Path, out: Path, *extra: str):
    return cli(
        "approve", str(plan), "-C", str(env.dir), "--signer", "alice@example.com", "--key", str(env.key),
        "--reason", "retire staging (CHG-7)", "--yes", "--output", str(out), *extra,
    )  # fmt: skip


def check(env: Env, plan: Path, approval: Path, *extra: str) -> tuple[int, dict]:
    res = cli(
        "check", str(plan), "-C", str(env.dir), "--format", "json", "--approvals", str(approval), *extra
    )
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, json.loads(res.stdout)


def _refusal(doc: dict) -> str:
    [outcome] = doc["approvals"]
    assert outcome["counted"] is False
    return outcome["reason"]


def test_a_staging_stream_approval_does_not_allow_productions_identical_destroy(
    envs: tuple[Env, Env], tmp_path: Path
) -> None:
    staging, prod = envs
    s_plan, p_plan = staging.stream(), prod.stream()
    ok = approve(staging, s_plan, tmp_path / "alice.json")
    assert ok.exit_code == 0, ok.output
    stmt = json.loads((tmp_path / "alice.json").read_text())
    lineage, serial = staging.lineage()
    assert stmt["tfgate_approval"] == 2 and stmt["workspace"] == "default"
    assert stmt["root"] == f"local:{staging.dir.resolve()}"
    assert stmt["state"] == {"lineage": lineage, "serial": serial}
    code, doc = check(staging, s_plan, tmp_path / "alice.json")
    assert code == 0 and doc["violations"][0]["approved_by"] == ["alice@example.com"]
    assert doc["binding"] == {
        "root": stmt["root"], "lineage": lineage, "serial": serial, "source": "state", "problem": None,
    }  # fmt: skip

    # The attack: production's stream has the same digest (addresses, actions, reasons), the same workspace.
    code, doc = check(prod, p_plan, tmp_path / "alice.json")
    assert doc["plan"]["digest"] == stmt["plan_digest"]
    assert code == 1 and doc["violations"][0]["approved"] is False
    reason = _refusal(doc)
    assert reason.startswith(
        f"other root: approves {stmt['root']}, this plan's root is local:{prod.dir.resolve()}"
    )
    # The same file judged from staging's directory again, with production's plan stream: still staging.
    # Copying production's state over staging's (the other half of a swap) is another lineage.
    saved = (staging.dir / "terraform.tfstate").read_bytes()
    try:
        shutil.copy(prod.dir / "terraform.tfstate", staging.dir / "terraform.tfstate")
        code, doc = check(staging, p_plan, tmp_path / "alice.json", "--no-state-checks")
        assert code == 1 and _refusal(doc).startswith("other state: approves state lineage " + lineage)
        assert "another lineage" in _refusal(doc)
    finally:
        (staging.dir / "terraform.tfstate").write_bytes(saved)

    # Every report format names the reason.
    for fmt, needle in (("text", "other root"), ("markdown", "other root"), ("html", "other root")):
        res = cli(
            "check",
            str(p_plan),
            "-C",
            str(prod.dir),
            "--format",
            fmt,
            "--approvals",
            str(tmp_path / "alice.json"),
        )
        assert res.exit_code == 1 and needle in res.stdout, fmt


def test_a_stream_approval_dies_with_the_state_it_was_made_against(
    envs: tuple[Env, Env], tmp_path: Path
) -> None:
    staging, _ = envs
    plan = staging.stream("again.jsonl")
    assert approve(staging, plan, tmp_path / "a.json").exit_code == 0
    assert check(staging, plan, tmp_path / "a.json")[0] == 0
    # The state moves on (an apply writes it: serial + 1): the approval no longer holds.
    staging.tf.apply("-refresh-only")
    before = json.loads((tmp_path / "a.json").read_text())["state"]
    if staging.lineage()[1] == before["serial"]:  # refresh-only with nothing to change may not write
        staging.tf.write(CONFIG + 'resource "terraform_data" "extra" {}\n')
        staging.tf.apply()
    code, doc = check(staging, plan, tmp_path / "a.json", "--no-state-checks")
    assert code == 1 and "the state changed since it was approved: re-plan and approve again" in _refusal(doc)


def test_saved_plan_approval_is_bound_to_the_plans_own_state(envs: tuple[Env, Env], tmp_path: Path) -> None:
    staging, prod = envs
    plan = prod.tf.plan("destroy.bin", "-destroy")
    assert approve(prod, plan, tmp_path / "p.json").exit_code == 0
    stmt = json.loads((tmp_path / "p.json").read_text())
    assert stmt["state"] == dict(zip(("lineage", "serial"), prod.lineage(), strict=True))
    code, doc = check(prod, plan, tmp_path / "p.json")
    assert code == 0, doc["approvals"]
    assert doc["binding"]["source"] == "plan" and doc["binding"]["lineage"] == stmt["state"]["lineage"]
    # The same plan file carried to staging's directory: the root differs (and the state checks block too).
    code, doc = check(staging, plan, tmp_path / "p.json", "--no-state-checks")
    assert code == 1 and _refusal(doc).startswith("other root:")


def test_stream_approvals_are_refused_where_the_state_cannot_be_known(
    envs: tuple[Env, Env], tmp_path: Path
) -> None:
    staging, _ = envs
    plan = staging.stream("unknown.jsonl")
    elsewhere = tmp_path / "consul-root"
    elsewhere.mkdir()
    (elsewhere / "main.tf").write_text(
        CONFIG + 'terraform {\n  backend "consul" {\n    address = "127.0.0.1:1"\n    path = "x"\n  }\n}\n'
    )
    for name in ("tfgate.yaml", "allowed_signers"):
        shutil.copy(staging.dir / name, elsewhere / name)
    res = cli(
        "approve", str(plan), "-C", str(elsewhere), "--signer", "alice@example.com", "--key", str(staging.key),
        "--reason", "r", "--yes", "--output", str(tmp_path / "x.json"),
    )  # fmt: skip
    assert res.exit_code == 2 and not (tmp_path / "x.json").exists()
    assert (
        "cannot approve: a plan -json stream carries no prior state and tfgate cannot read the consul"
        in res.stderr
    )
    # A statement made elsewhere is refused there with the same reason, in the report.
    assert approve(staging, plan, tmp_path / "s.json").exit_code == 0
    code, doc = check(
        Env(TF(elsewhere, staging.tf.exe), staging.key), plan, tmp_path / "s.json", "--no-state-checks"
    )
    assert code == 1 and _refusal(doc).startswith("state unknown: a plan -json stream carries no prior state")
    assert doc["binding"]["problem"] and doc["binding"]["root"].startswith("consul://127.0.0.1:1/x")
