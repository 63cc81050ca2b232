"""Ways around the gate found by a red-team review, each tried with real Terraform (embedded 1.15) as an
agent with a shell would, through `tfgate check` and `tfgate apply`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tfgate.model import Verdict
from tfgate.pipeline import CheckOptions, run_check
from tfgate.policy.manifest import PROVISIONER_RULE

from .conftest import TF

DB = 'resource "terraform_data" "db" {\n  input = "x"\n}\n'
KEEP = 'resource "terraform_data" "keep" {\n  input = "k"\n}\n'
MANIFEST = "version: 1\nprotect:\n  - name: db\n    match: {address: terraform_data.db}\n"


def tfgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfgate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def gated_apply(tf: TF, config: str) -> None:
    tf.write(config)
    tf.plan("plan.bin")
    proc = tfgate("apply", "--auto-approve", "plan.bin", cwd=tf.dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_forget_then_import_elsewhere_does_not_shed_protection(tmp_path: Path, terraform_bin: Path) -> None:
    """A `removed` block with `destroy = false` (a forget, which the rule's default actions allow) takes the
    protected object out of the state without destroying it; an `import` block then brings the same object
    back at an address no rule names. The ledger must still know it as protected: its delete is blocked."""
    tf = TF(tmp_path, terraform_bin)
    tf.write(DB + KEEP)
    (tmp_path / "tfgate.yaml").write_text(MANIFEST)
    tf.run("init", "-input=false")
    tf.apply()
    db_id = next(r for r in tf.state()["resources"] if r["name"] == "db")["instances"][0]["attributes"]["id"]
    tf.plan("plan.bin")
    assert tfgate("check", "plan.bin", cwd=tmp_path).returncode == 0  # the ledger learns the db's id
    forget = "removed {\n  from = terraform_data.db\n  lifecycle {\n    destroy = false\n  }\n}\n"
    gated_apply(tf, forget + KEEP)
    tf.plan("again.bin")
    assert tfgate("check", "again.bin", cwd=tmp_path).returncode == 0  # a check on the state without it
    other = 'resource "terraform_data" "other" {\n  input = "x"\n}\n'
    gated_apply(tf, f'import {{\n  to = terraform_data.other\n  id = "{db_id}"\n}}\n' + other + KEEP)
    tf.write(KEEP)
    tf.plan("delete.bin")
    proc = tfgate("check", "delete.bin", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DELETE   terraform_data.other" in proc.stdout and "ledger knows this object" in proc.stdout


REMOVED_WITH_PROVISIONER = """
resource "terraform_data" "keep" {
  input = "k"
}
removed {
  from = terraform_data.junk
  lifecycle {
    destroy = true
  }
  provisioner "local-exec" {
    when    = destroy
    command = "echo pwned > pwned"
  }
}
"""


REMOVED_JSON = """{"removed": [{"from": "terraform_data.junk", "lifecycle": [{"destroy": true}],
  "provisioner": [{"local-exec": {"when": "destroy", "command": "echo pwned > pwned"}}]}]}"""


@pytest.fixture(scope="module", params=["hcl", "json"])
def removed_runs(request, tmp_path_factory: pytest.TempPathFactory, terraform_bin: Path) -> TF:
    """An applied state with an unprotected resource, then a `removed` block (Terraform 1.9+; in HCL or in
    JSON syntax) that destroys it and runs a destroy-time `local-exec`: plan.bin, plan.json (show -json) and
    stream.jsonl."""
    tf = TF(tmp_path_factory.mktemp("removed"), terraform_bin)
    tf.write(KEEP + 'resource "terraform_data" "junk" {\n  input = "j"\n}\n')
    tf.run("init", "-input=false")
    tf.apply()
    if request.param == "hcl":
        tf.write(REMOVED_WITH_PROVISIONER)
    else:
        tf.write(KEEP)
        tf.write(REMOVED_JSON, "removed.tf.json")
    tf.plan("plan.bin")
    (tf.dir / "plan.json").write_text(tf.run("show", "-json", "plan.bin").stdout)
    (tf.dir / "stream.jsonl").write_text(tf.run("plan", "-json", "-input=false").stdout)
    return tf


@pytest.mark.parametrize("form", ["plan.bin", "plan.json", "stream.jsonl"])
def test_a_removed_blocks_destroy_provisioner_is_a_provisioner_command(removed_runs: TF, form: str) -> None:
    """The `removed` block's `local-exec` runs with the applier's credentials when the plan deletes
    terraform_data.junk: it blocks like any other provisioner, in every form."""
    result = run_check(CheckOptions(plan=str(removed_runs.dir / form), workdir=removed_runs.dir))
    if (removed_runs.dir / "removed.tf.json").exists() and form != "plan.bin":
        # JSON syntax is read from the saved plan only: the others cannot tell (block for a stream, warn for
        # show -json, whose plan tfgate apply checks again from the saved plan)
        assert "provisioners_unknown" in [f.code for f in result.findings]
        assert result.verdict is (Verdict.BLOCK if form == "stream.jsonl" else Verdict.ALLOW)
        return
    assert result.verdict is Verdict.BLOCK
    [v] = result.blocked_violations
    assert (v.address, v.rule) == ("terraform_data.junk", PROVISIONER_RULE)
    assert "echo pwned > pwned" in v.reason


def test_a_removed_blocks_provisioner_does_not_ride_tfgate_apply(removed_runs: TF) -> None:
    proc = tfgate("apply", "--auto-approve", "plan.bin", cwd=removed_runs.dir)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not (removed_runs.dir / "pwned").exists()


@pytest.mark.parametrize(
    "command",
    [
        "find . -name ledger.json -delete",
        "find . -name 'ledger*' -delete",
        "find . -type f -name audit.jsonl -delete",
        "find . -name ledger.json -exec rm {} +",
        "find infra -iname 'LEDGER.JSON' -delete",
    ],
)
@pytest.mark.parametrize("cwd", ["known", "unknown"])
def test_find_deleting_the_ledger_by_name_is_blocked(tmp_path: Path, command: str, cwd: str) -> None:
    """`rm .tfgate/ledger.json` is blocked; a `find -name` whose pattern names the ledger (or the audit log) in
    a directory holding it must be too: without its ledger tfgate forgets which objects it knew as protected."""
    from tfgate.agents.analyzer import check_command

    for root in (tmp_path, tmp_path / "infra"):
        (root / ".tfgate").mkdir(parents=True)
        (root / ".tfgate" / "ledger.json").write_text('{"workspaces": {}}')
        (root / ".tfgate" / "audit.jsonl").write_text("")
    decision = check_command(command, str(tmp_path) if cwd == "known" else None)
    assert not decision.allowed, decision


def test_find_deleting_other_files_by_name_passes(tmp_path: Path) -> None:
    from tfgate.agents.analyzer import check_command

    (tmp_path / ".tfgate").mkdir()
    (tmp_path / ".tfgate" / "ledger.json").write_text('{"workspaces": {}}')
    assert check_command("find . -name '*.tmp' -delete", str(tmp_path)).allowed
    assert check_command("find . -name plan.out -delete", str(tmp_path)).allowed


def test_find_deleting_a_ledger_the_manifest_moved_is_blocked(tmp_path: Path) -> None:
    from tfgate.agents.analyzer import check_command

    (tmp_path / "tfgate.yaml").write_text(MANIFEST + "state:\n  ledger: evidence/gate-memory.json\n")
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "gate-memory.json").write_text('{"workspaces": {}}')
    assert not check_command("find . -name gate-memory.json -delete", str(tmp_path)).allowed


@pytest.mark.parametrize("edit", ["cut", "other_id"])
def test_a_saved_plan_whose_prior_state_was_edited_is_blocked(
    tmp_path: Path, terraform_bin: Path, edit: str
) -> None:
    """Terraform applies a saved plan onto the state inside it (`tfstate`): a plan zip whose `tfstate` had the
    protected resource cut out (lineage and serial kept) shows an innocent update, and its apply drops the
    resource from the state (or, with its id rewritten, points the state at another object). The prior state
    inside the plan must hold every object the state holds, as the same object."""
    import json
    import zipfile

    tf = TF(tmp_path, terraform_bin)
    tf.write(DB + KEEP)
    (tmp_path / "tfgate.yaml").write_text(MANIFEST)
    tf.run("init", "-input=false")
    tf.apply()
    tf.write(DB + KEEP.replace('"k"', '"k2"'))
    tf.plan("plan.bin")
    with zipfile.ZipFile(tmp_path / "plan.bin") as src, zipfile.ZipFile(tmp_path / "edited.bin", "w") as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "tfstate":
                state = json.loads(data)
                if edit == "cut":
                    state["resources"] = [r for r in state["resources"] if r["name"] != "db"]
                else:  # the db's id rewritten: applied, the state would hold another object
                    db = next(r for r in state["resources"] if r["name"] == "db")
                    db["instances"][0]["attributes"]["id"] = "00000000-0000-0000-0000-000000000000"
                data = json.dumps(state).encode()
            out.writestr(info, data)
    before = (tmp_path / "terraform.tfstate").read_bytes()
    proc = tfgate("check", "edited.bin", cwd=tmp_path)
    assert proc.returncode == 1 and "plan_state_mismatch" in proc.stdout, proc.stdout + proc.stderr
    assert "terraform_data.db" in proc.stdout
    assert tfgate("apply", "--auto-approve", "edited.bin", cwd=tmp_path).returncode == 1
    assert (tmp_path / "terraform.tfstate").read_bytes() == before
    assert tfgate("check", "plan.bin", cwd=tmp_path).returncode == 0  # the plan as Terraform saved it


def test_the_digest_covers_the_configuration_the_apply_runs(tmp_path: Path, terraform_bin: Path) -> None:
    """An approval of a plan whose new resource runs `echo hi` is an approval of its digest: the same plan
    with the command in its embedded configuration edited must not have that digest (binary and show -json,
    compact or pretty, still share one)."""
    import json
    import zipfile

    from tfgate.plan.loader import load_plan

    tf = TF(tmp_path, terraform_bin)
    tf.write(KEEP)
    tf.run("init", "-input=false")
    tf.apply()
    tf.write(
        KEEP
        + 'resource "terraform_data" "r" {\n  provisioner "local-exec" {\n    command = "echo hi"\n  }\n}\n'
    )
    tf.plan("plan.bin")
    with zipfile.ZipFile(tmp_path / "plan.bin") as src, zipfile.ZipFile(tmp_path / "edited.bin", "w") as out:
        for info in src.infolist():
            data = src.read(info.filename)
            out.writestr(info, data.replace(b"echo hi", b"echo pwned > pwned"))
    shown = tf.run("show", "-json", "plan.bin").stdout
    (tmp_path / "plan.json").write_text(shown)
    (tmp_path / "pretty.json").write_text(json.dumps(json.loads(shown), indent=2))
    digest = {
        name: load_plan(str(tmp_path / name)).info.digest for name in ("plan.bin", "plan.json", "pretty.json")
    }
    assert len(set(digest.values())) == 1, digest
    assert load_plan(str(tmp_path / "edited.bin")).info.digest != digest["plan.bin"]


@pytest.mark.parametrize("form", ["plan.bin", "stream.jsonl"])
def test_an_approval_of_one_removed_block_command_does_not_approve_another(
    tmp_path: Path, terraform_bin: Path, form: str
) -> None:
    """A human approves the `removed` block's `echo bye`; the agent then edits the command. show -json does not
    record `removed` blocks and a stream's digest covers no configuration, so the plan digest stays the same:
    the approval names the commands' own digest, and counts for those commands only."""
    from tfgate.plan.loader import load_plan

    tf = TF(tmp_path, terraform_bin)
    tf.write(KEEP + 'resource "terraform_data" "junk" {\n  input = "j"\n}\n')
    tf.run("init", "-input=false")
    tf.apply()
    key = tmp_path / "alice"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp_path / "allowed_signers").write_text(
        f'alice@example.com namespaces="tfgate" {(tmp_path / "alice.pub").read_text()}'
    )
    (tmp_path / "tfgate.yaml").write_text("version: 1\napprovals: {allowed_signers: allowed_signers}\n")

    def plan(command: str, name: str) -> Path:
        tf.write(REMOVED_WITH_PROVISIONER.replace("echo pwned > pwned", command))
        if form == "plan.bin":
            return tf.plan(name)
        (tmp_path / name).write_text(tf.run("plan", "-json", "-input=false").stdout)
        return tmp_path / name

    reviewed = plan("echo bye", "reviewed")
    edited = plan("echo pwned > pwned", "edited")
    assert load_plan(str(reviewed)).info.digest == load_plan(str(edited)).info.digest, "the premise"
    approval = tmp_path / "approval.json"
    tf.write(REMOVED_WITH_PROVISIONER.replace("echo pwned > pwned", "echo bye"))  # the stream reads the .tf
    proc = tfgate("approve", str(reviewed), "--signer", "alice@example.com", "--key", str(key), "--reason", "ok",
                  "--yes", "-o", str(approval), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        run_check(CheckOptions(plan=str(reviewed), workdir=tmp_path, approvals=(approval,))).verdict
        is Verdict.ALLOW
    )
    tf.write(REMOVED_WITH_PROVISIONER)  # the agent's edit
    result = run_check(CheckOptions(plan=str(edited), workdir=tmp_path, approvals=(approval,)))
    assert result.verdict is Verdict.BLOCK
    [outcome] = result.approvals
    assert not outcome.counted and outcome.reason.startswith("other commands"), outcome.reason
    proc = tfgate("apply", "--auto-approve", "--approvals", str(approval), str(edited), cwd=tmp_path)
    assert proc.returncode != 0 and not (tmp_path / "pwned").exists()
