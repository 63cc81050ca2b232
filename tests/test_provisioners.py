"""Provisioner commands a plan will run, and the same-user apply's sealed plan and confirmation (issue 13,
item 4), with real Terraform (embedded 1.15 and the 1.11 binary), real ssh-keygen approvals."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfgate.enforce.sealed import read_once, seal
from tfgate.pipeline import CheckOptions, run_check

pytestmark = pytest.mark.slow

EVIL = """
resource "terraform_data" "keep" {
  input = "prod"
}
resource "terraform_data" "innocent" {
  input = "x"
  provisioner "local-exec" {
    command = "echo pwned > ${path.module}/pwned"
  }
  provisioner "local-exec" {
    when    = destroy
    command = "echo bye"
  }
}
module "m" {
  source = "./mod"
}
"""
MOD = """
resource "terraform_data" "remote" {
  provisioner "remote-exec" {
    inline = ["rm -rf /srv"]
    connection {
      host = "192.0.2.1"
    }
  }
}
"""
REAL_TERRAFORM = Path("/usr/local/bin/terraform")


@pytest.fixture(scope="module")
def evil(tmp_path_factory: pytest.TempPathFactory, terraform_bin: Path):
    """A directory whose create-only plan runs local-exec and remote-exec commands; its binary plan,
    show-json and plan -json stream."""
    from tests.conftest import TF

    work = tmp_path_factory.mktemp("prov")
    tf = TF(work, terraform_bin)
    (work / "mod").mkdir()
    (work / "mod" / "main.tf").write_text(MOD)
    tf.write(EVIL.split('resource "terraform_data" "innocent"')[0])
    tf.run("init", "-input=false")
    tf.apply()  # a state to plan against (approvals are bound to it)
    tf.write(EVIL)
    tf.run("init", "-input=false")
    plan = tf.plan()
    (work / "plan.json").write_text(tf.run("show", "-json", "plan.bin").stdout)
    (work / "stream.json").write_text(tf.run("plan", "-json", "-input=false").stdout)
    return tf, plan


def _check(path: Path, workdir: Path, manifest: Path | None = None, **kw):
    return run_check(
        CheckOptions(plan=str(path), manifest=manifest, workdir=workdir, state_checks=False, **kw)
    )


def _finding(result, code: str):
    return next(f for f in result.findings if f.code == code)


@pytest.mark.parametrize("form", ["plan.bin", "plan.json", "stream.json"])
def test_create_time_provisioners_block_in_every_form(evil, form: str) -> None:
    tf, _ = evil
    result = _check(tf.dir / form, tf.dir)
    assert result.exit_code == 1
    finding = _finding(result, "provisioner_commands")
    assert finding.blocks
    listed = {(p["address"], p["type"]) for p in finding.evidence_dict()["provisioners"]}
    assert listed >= {
        ("terraform_data.innocent", "local-exec"),
        ("module.m.terraform_data.remote", "remote-exec"),
    }
    assert "rm -rf /srv" in finding.message
    # show -json records a template's references, not its text: `<computed from path.module>`
    assert ("pwned" if form != "plan.json" else "<computed from path.module>") in finding.message
    assert {v.address for v in result.violations if v.rule == "provisioner_commands"} == {
        "terraform_data.innocent",
        "module.m.terraform_data.remote",
    }
    assert "terraform_data.keep" not in {v.address for v in result.violations}
    if form != "plan.json":  # the embedded configuration and the .tf files say `when`
        whens = {p["when"] for p in finding.evidence_dict()["provisioners"]}
        assert whens == {"create"}, "a destroy-time provisioner does not run on a create"


def test_destroy_time_provisioners_on_destroy(evil, tmp_path: Path, terraform_bin: Path) -> None:
    from tests.conftest import TF

    tf = TF(tmp_path, terraform_bin)
    tf.write(EVIL.split('module "m"')[0])
    (tmp_path / "tfgate.yaml").write_text("version: 1\nplan: {provisioners: warn}\n")
    tf.run("init", "-input=false")
    tf.apply()
    plan = tf.plan("d.bin", "-destroy")
    result = _check(plan, tmp_path, manifest=None)
    finding = _finding(result, "provisioner_commands")
    assert finding.severity.value == "warn", "plan: {provisioners: warn} relaxes it"
    assert [(p["address"], p["when"], p["command"]) for p in finding.evidence_dict()["provisioners"]] == [
        ("terraform_data.innocent", "destroy", "echo bye")
    ]
    assert result.exit_code == 0
    (tmp_path / "tfgate.yaml").write_text("version: 1\n")
    assert _check(plan, tmp_path).exit_code == 1


def test_stream_without_its_configuration_fails_closed(evil, tmp_path: Path) -> None:
    tf, _ = evil
    stream = tmp_path / "stream.json"
    shutil.copy(tf.dir / "stream.json", stream)
    result = _check(stream, tmp_path)  # no .tf files where it is checked
    assert _finding(result, "provisioners_unknown").blocks
    assert result.exit_code == 1
    shutil.copy(tf.dir / "main.tf", tmp_path / "main.tf")  # the module it calls is not installed here
    finding = _finding(_check(stream, tmp_path), "provisioners_unknown")
    assert finding.blocks and "module m" in finding.message


def test_a_signed_approval_lets_the_commands_run(evil, tmp_path: Path) -> None:
    tf, plan = evil
    key = tmp_path / "alice"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    signers = tmp_path / "allowed_signers"
    signers.write_text(f'alice@example.com namespaces="tfgate" {(tmp_path / "alice.pub").read_text()}')
    manifest = tmp_path / "tfgate.yaml"
    manifest.write_text(f"version: 1\napprovals: {{allowed_signers: {signers}}}\n")
    out = tmp_path / "approval.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tfgate", "approve", str(plan), "--signer", "alice@example.com", "--key", str(key),
         "--reason", "reviewed the commands", "--yes", "-o", str(out), "-m", str(manifest), "-C", str(tf.dir)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    changes = json.loads(out.read_text())["changes"]
    assert {(c["address"], c["class"]) for c in changes} == {
        ("terraform_data.innocent", "provisioner"),
        ("module.m.terraform_data.remote", "provisioner"),
    }
    result = _check(plan, tf.dir, manifest=manifest, approvals=(out,))
    assert result.exit_code == 0, result.reasons
    assert _finding(result, "provisioner_commands").severity.value == "info"


def test_reserved_rule_name_is_refused(tmp_path: Path) -> None:
    from tfgate.errors import ManifestError
    from tfgate.policy.manifest import load_manifest

    path = tmp_path / "tfgate.yaml"
    path.write_text("version: 1\nprotect:\n  - name: provisioner_commands\n    match: {type: x}\n")
    with pytest.raises(ManifestError, match="reserved"):
        load_manifest(path)
    path.write_text("version: 1\nplan: {provisioners: maybe}\n")
    with pytest.raises(ManifestError):
        load_manifest(path)


# --- the sealed plan ---------------------------------------------------------------------------------------


def test_sealed_plan_cannot_be_changed(evil) -> None:
    _, plan = evil
    with seal(read_once(plan)) as sealed:
        assert sealed.kind == "memfd"
        for flags in (os.O_WRONLY, os.O_RDWR | os.O_TRUNC):
            try:
                fd = os.open(sealed.path, flags)
            except OSError:
                continue
            try:
                with pytest.raises(OSError):
                    os.write(fd, b"PK\x03\x04 evil")
            finally:
                os.close(fd)
        assert sealed.current_sha256() == sealed.sha256


@pytest.mark.parametrize("which", ["embedded", "terraform-1.11"])
def test_both_terraforms_read_and_apply_the_sealed_plan(
    tmp_path: Path, terraform_bin: Path, which: str
) -> None:
    """The memfd path works for `show -json` and `apply` with the embedded Terraform and a real binary."""
    from tests.conftest import TF

    if which == "terraform-1.11" and not REAL_TERRAFORM.exists():
        pytest.skip("no /usr/local/bin/terraform")
    exe = terraform_bin if which == "embedded" else REAL_TERRAFORM
    tf = TF(tmp_path, exe)
    tf.write('resource "terraform_data" "a" {\n  input = "v1"\n}\n')
    tf.run("init", "-input=false")
    tf.plan()
    env = {**os.environ, "TFGATE_TERRAFORM": str(exe)}
    proc = subprocess.run([sys.executable, "-m", "tfgate", "apply", "plan.bin"], cwd=tmp_path, capture_output=True,
                          text=True, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "/proc/" not in proc.stdout, "reports name the plan file given, not the sealed copy"
    assert tf.state()["resources"][0]["instances"][0]["attributes"]["input"]["value"] == "v1"


# --- confirmation --------------------------------------------------------------------------------------------


def test_apply_without_plan_and_terminal_is_refused(tmp_path: Path, terraform_bin: Path) -> None:
    from tests.conftest import TF

    tf = TF(tmp_path, terraform_bin)
    tf.write('resource "terraform_data" "a" {}\n')
    tf.run("init", "-input=false")
    for cmd in ("apply", "destroy"):
        proc = subprocess.run([sys.executable, "-m", "tfgate", cmd], cwd=tmp_path, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)  # fmt: skip
        assert proc.returncode == 2
        assert "--auto-approve" in proc.stderr and "no terminal" in proc.stderr
        # the saved-plan route it names plans the same thing: a destroy plan for `tfgate destroy`
        assert ("`tfgate plan -- -destroy`" in proc.stderr) is (cmd == "destroy"), proc.stderr
    assert not (tmp_path / "terraform.tfstate").exists() or not tf.state()["resources"]


def _on_terminal(args: list[str], cwd: Path, answer: bytes) -> tuple[int, str]:
    pid, fd = pty.fork()
    if pid == 0:  # child: tfgate on the terminal
        os.chdir(cwd)
        os.execv(sys.executable, [sys.executable, "-m", "tfgate", *args])
    out = b""
    sent = False
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not sent and b"Enter a value:" in out:
            os.write(fd, answer)
            sent = True
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")


def test_apply_on_a_terminal_asks_and_only_yes_applies(tmp_path: Path, terraform_bin: Path) -> None:
    from tests.conftest import TF

    tf = TF(tmp_path, terraform_bin)
    tf.write('resource "terraform_data" "a" {}\n')
    tf.run("init", "-input=false")
    code, out = _on_terminal(["apply"], tmp_path, b"no\n")
    assert code == 1 and "not confirmed: nothing applied" in out
    assert not (tmp_path / "terraform.tfstate").exists()
    code, out = _on_terminal(["apply"], tmp_path, b"yes\n")
    assert code == 0, out
    assert len(tf.state()["resources"]) == 1


def test_plan_swapped_as_terraform_starts_applying_is_not_what_is_applied(
    tmp_path: Path, terraform_bin: Path
) -> None:
    """The race from the issue: the plan file replaced by a destroy plan right as Terraform starts the apply
    (after every re-hash). Terraform reads the sealed copy: the checked plan is applied, not the swap."""
    from tests.conftest import TF

    tf = TF(tmp_path, terraform_bin)
    tf.write('resource "terraform_data" "db" {\n  input = "orders"\n}\n')
    tf.run("init", "-input=false")
    tf.apply()
    (tmp_path / "tfgate.yaml").write_text(
        "version: 1\nprotect:\n  - name: db\n    match: {address: terraform_data.db}\n"
    )
    evil = tf.plan("evil.bin", "-destroy")
    tf.write('resource "terraform_data" "db" {\n  input = "orders"\n}\nresource "terraform_data" "new" {}\n')
    benign = tf.plan("benign.bin")
    wrapper = tmp_path.parent / f"{tmp_path.name}-swap"
    # ...and the path Terraform is handed (the private copy the attack replaced) overwritten too.
    wrapper.write_text(
        f'#!/bin/sh\nif [ "$1" = apply ]; then cp "{evil}" "{benign}"; for a; do last="$a"; done\n'
        f'  cp "{evil}" "$last" 2>/dev/null; fi\nexec "{terraform_bin}" "$@"\n'
    )
    wrapper.chmod(0o755)
    proc = subprocess.run(
        [sys.executable, "-m", "tfgate", "apply", str(benign), "--terraform", str(wrapper)],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["name"] for r in tf.state()["resources"]) == ["db", "new"]


# --- providers outside the allow-list, data "external" -----------------------------------------------------


def test_providers_outside_the_allow_list_block_until_approved(evil, tmp_path: Path) -> None:
    tf, plan = evil
    manifest = tmp_path / "tfgate.yaml"
    manifest.write_text(
        'version: 1\nplan: {provisioners: warn, providers: ["registry.terraform.io/hashicorp/*"]}\n'
    )
    result = _check(plan, tf.dir, manifest=manifest)
    finding = _finding(result, "provider_not_allowed")
    assert finding.blocks and "terraform.io/builtin/terraform" in finding.message
    assert [v.address for v in result.violations] == ['provider["terraform.io/builtin/terraform"]']
    manifest.write_text('version: 1\nplan: {provisioners: warn, providers: ["terraform.io/builtin/*"]}\n')
    assert _check(plan, tf.dir, manifest=manifest).exit_code == 0


def test_a_data_external_read_during_the_apply_is_a_command(tmp_path: Path) -> None:
    """Hand-written edge case (the external provider cannot be downloaded offline): a deferred read."""
    doc = {
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "resource_changes": [
            {"address": "data.external.x", "mode": "data", "type": "external", "name": "x",
             "provider_name": "registry.terraform.io/hashicorp/external",
             "change": {"actions": ["read"], "before": None, "after": None}},
        ],
        "configuration": {"root_module": {}},
    }  # fmt: skip
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    result = _check(path, tmp_path)
    assert _finding(result, "provisioner_commands").blocks
    assert [v.address for v in result.violations] == ["data.external.x"]
