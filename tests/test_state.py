"""State integrity with real Terraform (local backend) and an S3 backend on moto_server at 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from .conftest import TF

PROTECT = "version: 1\nprotect:\n  - name: db\n    match: {address: ['terraform_data.db*']}\n"
CONFIG = 'resource "terraform_data" "db" {\n  input = "%s"\n}\n'


def check(tf: TF, plan: str = "plan.bin", *args: str) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "tfgate", "check", plan, "--format", "json", *args],
                          cwd=tf.dir, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def codes(doc: dict) -> list[str]:
    return [f["code"] for f in doc["findings"] if f["severity"] != "info"]


def evidence(doc: dict, code: str) -> dict:
    return next(f for f in doc["findings"] if f["code"] == code)["evidence"]


@pytest.fixture
def prod(tf: TF) -> TF:
    """A healthy workspace with protected resources, checked once so the ledger knows it."""
    (tf.dir / "tfgate.yaml").write_text(PROTECT)
    tf.write(CONFIG % "v1")
    tf.apply()
    tf.write(CONFIG % "v2")
    tf.plan()
    code, doc = check(tf)
    assert (code, codes(doc)) == (0, [])  # healthy: no finding
    return tf


def test_healthy_new_workspace_has_no_finding(tf: TF) -> None:
    (tf.dir / "tfgate.yaml").write_text(
        "version: 1\nprotect:\n  - name: other\n    match: {type: aws_db_instance}\n"
    )
    tf.write(CONFIG % "v1")
    tf.plan()
    code, doc = check(tf)
    assert code == 0 and doc["findings"] == []


def test_first_creation_of_a_protected_resource_needs_a_human_to_say_the_workspace_is_new(tf: TF) -> None:
    (tf.dir / "tfgate.yaml").write_text(PROTECT)
    tf.write(CONFIG % "v1")
    tf.plan()
    code, doc = check(tf)
    assert code == 1 and codes(doc) == ["missing_state"]
    assert "--new-workspace" in doc["findings"][0]["message"]
    code, doc = check(tf, "plan.bin", "--new-workspace")
    assert code == 0 and codes(doc) == ["new_workspace"]
    assert evidence(doc, "new_workspace")["protected_creates"] == ["terraform_data.db"]
    # tfgate apply takes the same confirmation, and the ledger then knows the workspace.
    proc = subprocess.run([sys.executable, "-m", "tfgate", "apply", "plan.bin", "--new-workspace"], cwd=tf.dir,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (
        json.loads((tf.dir / ".tfgate" / "ledger.json").read_text())["workspaces"]["default"]["resources"]
        == 1
    )


def test_new_workspace_does_not_override_other_evidence(prod: TF) -> None:
    """The state was there before (the ledger says so): declaring the workspace new changes nothing."""
    (prod.dir / "terraform.tfstate").unlink()
    (prod.dir / "terraform.tfstate.backup").unlink(missing_ok=True)
    prod.plan()
    code, doc = check(prod, "plan.bin", "--new-workspace")
    assert code == 1 and "missing_state" in codes(doc) and "new_workspace" not in codes(doc)


def test_fresh_checkout_without_state_file(prod: TF) -> None:
    (prod.dir / "terraform.tfstate").unlink()
    (prod.dir / "terraform.tfstate.backup").unlink(missing_ok=True)
    prod.plan()  # Terraform now plans to create a duplicate of everything
    code, doc = check(prod)
    assert code == 1
    assert "missing_state" in codes(doc)
    messages = " ".join(f["message"] for f in doc["findings"] if f["code"] == "missing_state")
    assert "protected resource" in messages and "managed 1 resources" in messages
    ev = [f["evidence"] for f in doc["findings"] if f["code"] == "missing_state"]
    assert any(e.get("protected_creates") == ["terraform_data.db"] for e in ev)


def test_state_file_removed_but_its_backup_remains(prod: TF) -> None:
    """No ledger, no protected create: Terraform's own backup is the evidence that a state existed."""
    prod.apply()  # writes terraform.tfstate.backup
    shutil.rmtree(prod.dir / ".tfgate")
    (prod.dir / "tfgate.yaml").write_text("version: 1\nprotect: []\n")
    (prod.dir / "terraform.tfstate").unlink()
    prod.plan()
    code, doc = check(prod)
    assert code == 1 and codes(doc) == ["no_rules", "missing_state"]
    ev = evidence(doc, "missing_state")
    assert ev["backup_serial"] >= 1 and ev["backup"].endswith("terraform.tfstate.backup")


def test_full_destroy_then_plan_is_not_a_missing_state(prod: TF) -> None:
    """After a real `terraform destroy` the state is empty and the backup still lists resources: healthy."""
    prod.run("destroy", "-auto-approve", "-input=false")
    shutil.rmtree(prod.dir / ".tfgate")
    (prod.dir / "tfgate.yaml").write_text("version: 1\nprotect: []\n")
    prod.plan()
    code, doc = check(prod)
    assert code == 0 and codes(doc) == ["no_rules"]  # an empty `protect:` is said, not silently accepted


def test_the_ledger_learns_the_state_an_apply_produced(prod: TF) -> None:
    """tfgate apply records the state it produced: putting back the pre-apply copy is caught by the ledger."""
    before = (prod.dir / "terraform.tfstate").read_bytes()
    proc = subprocess.run([sys.executable, "-m", "tfgate", "apply", "plan.bin"], cwd=prod.dir, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ledger = json.loads((prod.dir / ".tfgate" / "ledger.json").read_text())
    applied_serial = json.loads((prod.dir / "terraform.tfstate").read_text())["serial"]
    assert ledger["workspaces"]["default"]["max_serial"] == applied_serial
    (prod.dir / "terraform.tfstate").write_bytes(before)
    (prod.dir / "terraform.tfstate.backup").unlink(missing_ok=True)
    prod.plan()
    code, doc = check(prod)
    assert code == 1 and "serial_regression" in codes(doc)


def test_older_copy_of_state_put_back(prod: TF) -> None:
    old = (prod.dir / "terraform.tfstate").read_bytes()
    prod.apply()  # v2: serial moves on
    prod.plan()
    assert check(prod)[0] == 0  # the ledger now knows the newer serial
    (prod.dir / "terraform.tfstate").write_bytes(old)
    (prod.dir / "terraform.tfstate.backup").unlink(missing_ok=True)
    prod.plan()
    code, doc = check(prod)
    assert code == 1 and "serial_regression" in codes(doc)
    ev = evidence(doc, "serial_regression")
    assert ev["current_serial"] < ev["highest_serial_seen"]


def test_older_copy_caught_by_backup_without_ledger(prod: TF) -> None:
    old = (prod.dir / "terraform.tfstate").read_bytes()
    prod.apply()
    prod.write(CONFIG % "v3")
    prod.apply()  # terraform.tfstate.backup now holds the v2 state, newer than `old`
    shutil.rmtree(prod.dir / ".tfgate")  # no ledger
    (prod.dir / "terraform.tfstate").write_bytes(old)  # backup now holds the newer serial
    prod.plan()
    code, doc = check(prod)
    assert code == 1 and "serial_regression" in codes(doc)
    assert (
        evidence(doc, "serial_regression")["backup_serial"]
        > evidence(doc, "serial_regression")["current_serial"]
    )


def test_another_workspaces_state_put_in_place(prod: TF, tmp_path: Path) -> None:
    other = TF(tmp_path / "other", prod.exe)
    other.dir.mkdir()
    other.write(CONFIG % "x" + 'resource "terraform_data" "db2" {}\n')
    other.apply()
    shutil.copy(other.dir / "terraform.tfstate", prod.dir / "terraform.tfstate")
    prod.plan()
    code, doc = check(prod)
    assert code == 1 and "lineage_mismatch" in codes(doc)
    ev = evidence(doc, "lineage_mismatch")
    assert ev["current_lineage"] != ev["ledger_lineage"]


def test_saved_plan_then_a_different_apply(prod: TF) -> None:
    prod.plan("saved.bin")
    prod.write(CONFIG % "v3")
    prod.apply()  # someone applied something else since
    code, doc = check(prod, "saved.bin")
    assert code == 1 and "stale_plan" in codes(doc)
    ev = evidence(doc, "stale_plan")
    assert ev["plan_serial"] < ev["current_serial"]


def test_max_plan_age(prod: TF) -> None:
    (prod.dir / "tfgate.yaml").write_text(PROTECT + "state: {max_plan_age: 1s}\n")
    time.sleep(1.5)
    code, doc = check(prod)
    assert code == 1 and "stale_plan" in codes(doc)
    assert "plan_timestamp" in evidence(doc, "stale_plan")


def test_backend_declared_but_not_initialised(prod: TF) -> None:
    prod.write('terraform {\n  backend "s3" {\n    bucket = "b"\n    key = "k"\n  }\n}\n', "backend.tf")
    code, doc = check(prod)
    assert code == 1 and "missing_state" in codes(doc)
    assert evidence(doc, "missing_state")["configured_backend"] == "s3"


@pytest.mark.parametrize(
    ("configured", "initialised", "changed"),
    [
        ('backend "local" {\n    path = "other.tfstate"\n  }', {"type": "local", "config": {"path": "a.tfstate"}}, "path"),
        ('backend "local" {}', {"type": "s3", "config": {"bucket": "old", "key": "k"}}, "type"),
        ('backend "s3" {\n    bucket = "new"\n    key = "k"\n  }', {"type": "s3", "config": {"bucket": "old", "key": "k"}},
         "bucket"),
    ],
    ids=["local-path", "s3-to-local", "s3-bucket"],
)  # fmt: skip
def test_backend_changed_since_init(prod: TF, configured: str, initialised: dict, changed: str) -> None:
    """The configuration's backend vs the one `terraform init` recorded in .terraform/terraform.tfstate."""
    record = prod.dir / ".terraform" / "terraform.tfstate"
    record.parent.mkdir(exist_ok=True)
    record.write_text(json.dumps({"version": 3, "backend": {**initialised, "hash": 1}}))
    prod.write(f"terraform {{\n  {configured}\n}}\n", "backend.tf")
    proc = subprocess.run([sys.executable, "-m", "tfgate", "state", "check", ".", "--format", "json"], cwd=prod.dir,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert "backend_changed" in codes(doc)
    assert any(changed in key for key in evidence(doc, "backend_changed"))


def test_state_check_command(prod: TF) -> None:
    (prod.dir / "terraform.tfstate").unlink()
    proc = subprocess.run([sys.executable, "-m", "tfgate", "state", "check", ".", "--format", "json"],
                          cwd=prod.dir, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "missing_state" in codes(json.loads(proc.stdout))


def _tfgate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tfgate", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_a_state_that_is_not_a_terraform_state_is_an_input_error(prod: TF) -> None:
    state_file = prod.dir / "terraform.tfstate"
    good = json.loads(state_file.read_text())
    for bad, says in (
        ({}, "missing required field `version`"),
        ({k: v for k, v in good.items() if k != "lineage"}, "missing required field `lineage`"),
        (dict(good, serial="7"), "`$.serial`"),
        (dict(good, version=5), "unsupported Terraform state format version 5"),
    ):
        state_file.write_text(json.dumps(bad))
        proc = _tfgate(prod.dir, "state", "check", ".")
        assert proc.returncode == 2, proc.stdout
        assert proc.stderr.startswith("tfgate: error: terraform.tfstate: ") and says in proc.stderr
        assert len(proc.stderr.splitlines()) == 1
    state_file.write_text(json.dumps(good))
    # The same validation for the state inside a saved binary plan (one Terraform itself still reads).
    original = zipfile.ZipFile(prod.dir / "plan.bin")
    with zipfile.ZipFile(prod.dir / "odd.bin", "w") as odd:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == "tfstate":
                data = json.dumps(
                    {k: v for k, v in json.loads(data).items() if k not in ("lineage", "serial")}
                )
            odd.writestr(info, data)
    proc = _tfgate(prod.dir, "check", "odd.bin")
    assert proc.returncode == 2, proc.stdout
    assert "odd.bin!tfstate: " in proc.stderr and "missing required field" in proc.stderr


# --- S3 backend: Terraform's own s3 backend against moto_server on 127.0.0.1 -----------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_server():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("moto_server did not start")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def s3(moto_server: str, monkeypatch: pytest.MonkeyPatch):
    import boto3

    for k, v in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    client = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    bucket = f"state-{time.time_ns()}"
    client.create_bucket(Bucket=bucket)
    return client, bucket, moto_server


def _s3_backend(tf: TF, bucket: str, url: str, locking: str = "use_lockfile = true") -> None:
    tf.write(
        f'terraform {{\n  backend "s3" {{\n    bucket = "{bucket}"\n    key = "prod/terraform.tfstate"\n'
        f'    region = "us-east-1"\n    endpoints = {{ s3 = "{url}" }}\n    use_path_style = true\n'
        "    skip_credentials_validation = true\n    skip_requesting_account_id = true\n"
        f"    skip_metadata_api_check = true\n    skip_region_validation = true\n    {locking}\n  }}\n}}\n",
        "backend.tf",
    )
    tf.run("init", "-input=false")


def test_s3_history_shows_regression_and_deletion(tf: TF, s3) -> None:
    client, bucket, url = s3
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    (tf.dir / "tfgate.yaml").write_text(PROTECT)
    _s3_backend(tf, bucket, url)
    tf.write(CONFIG % "v1")
    tf.apply()
    first = client.get_object(Bucket=bucket, Key="prod/terraform.tfstate")["Body"].read()
    tf.write(CONFIG % "v2")
    tf.apply()
    tf.plan()
    code, doc = check(tf)
    assert (code, codes(doc)) == (0, [])  # healthy, versioned, locked
    ledger = json.loads(
        client.get_object(Bucket=bucket, Key="prod/terraform.tfstate.tfgate-ledger.json")["Body"].read()
    )
    assert ledger["workspaces"]["default"]["resources"] == 1  # the ledger lives next to the state
    # An older version is put back over the state object.
    client.put_object(Bucket=bucket, Key="prod/terraform.tfstate", Body=first)
    tf.plan()
    code, doc = check(tf)
    assert code == 1 and "serial_regression" in codes(doc)
    ev = next(f["evidence"] for f in doc["findings"] if "newer_version" in f.get("evidence", {}))
    assert ev["current_serial"] < ev["newer_serial"] and ev["current_version"] != ev["newer_version"]
    # Then the state object is deleted.
    client.delete_object(Bucket=bucket, Key="prod/terraform.tfstate")
    tf.plan()
    code, doc = check(tf)
    assert code == 1 and "missing_state" in codes(doc)
    assert any(
        "earlier_version" in f.get("evidence", {}) for f in doc["findings"] if f["code"] == "missing_state"
    )


def test_s3_without_versioning_or_locking_warns(tf: TF, s3) -> None:
    _, bucket, url = s3
    (tf.dir / "tfgate.yaml").write_text(PROTECT)
    _s3_backend(tf, bucket, url, locking="")
    tf.write(CONFIG % "v1")
    tf.apply()
    tf.plan()
    code, doc = check(tf)
    assert code == 0
    assert sorted(codes(doc)) == ["state_not_locked", "state_not_versioned"]
    assert {f["severity"] for f in doc["findings"] if f["code"].startswith("state_not")} == {"warn"}


def test_s3_access_denied_is_an_input_error(tf: TF, s3, monkeypatch: pytest.MonkeyPatch) -> None:
    _, bucket, url = s3
    _s3_backend(tf, bucket, url)
    tf.write(CONFIG % "v1")
    tf.plan()
    tf.write(
        (tf.dir / "backend.tf").read_text().replace(f'bucket = "{bucket}"', 'bucket = "no-such-bucket-x"'),
        "backend.tf",
    )
    os.replace(tf.dir / ".terraform" / "terraform.tfstate", tf.dir / "init.json")
    data = json.loads((tf.dir / "init.json").read_text())
    data["backend"]["config"]["bucket"] = "no-such-bucket-x"
    (tf.dir / ".terraform" / "terraform.tfstate").write_text(json.dumps(data))
    proc = subprocess.run([sys.executable, "-m", "tfgate", "check", "plan.bin"], cwd=tf.dir, capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 2 and "NoSuchBucket" in proc.stderr


def test_unsupported_backend_is_said_not_silently_passed(tf: TF) -> None:
    tf.write(CONFIG % "v1")
    tf.apply()
    tf.plan()
    (tf.dir / ".terraform").mkdir(exist_ok=True)
    (tf.dir / ".terraform" / "terraform.tfstate").write_text(
        json.dumps({"version": 3, "backend": {"type": "gcs", "config": {"bucket": "b"}}})
    )
    tf.write('terraform {\n  backend "gcs" {\n    bucket = "b"\n  }\n}\n', "backend.tf")
    _, doc = check(tf)
    info = [f for f in doc["findings"] if f["code"] == "state_not_checked"]
    assert info and info[0]["evidence"] == {"backend": "gcs"}
