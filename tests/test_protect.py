"""Protected mode (issue 13 items 1-3): real Unix users, real sudo, real Terraform. Every way around the gate,
tried as the agent's user, leaves the protected state byte-identical; an allowed change still applies through
`tfgate apply` (as the privileged user, through sudo)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.unix_users import AGENT, PRIV, Runtime, ensure_user, run_as, runtime
from tfgate import sysconfig

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="real users and sudo need root")]

REAL_TERRAFORM = Path("/usr/local/bin/terraform")
V1 = """
resource "terraform_data" "db" {
  input = "orders"
}
resource "terraform_data" "cache" {}
"""
POLICY = "version: 1\nprotect:\n  - name: db\n    match: {address: terraform_data.db}\n"


class Protected:
    def __init__(self, rt: Runtime, base: Path, root: Path, config: Path, terraform: str) -> None:
        self.rt, self.base, self.root, self.config, self.terraform = rt, base, root, config, terraform

    @property
    def pin(self) -> sysconfig.Pin:
        os.environ[sysconfig.ENV_CONFIG] = str(self.config)
        try:
            pin = sysconfig.load().pin_for(self.root)
        finally:
            del os.environ[sysconfig.ENV_CONFIG]
        assert pin is not None and pin.protected is not None
        return pin

    @property
    def state_file(self) -> Path:
        return Path(self.pin.manifest).parent.parent / "tfgate-apply-only" / "terraform.tfstate"

    def state(self) -> bytes:
        return self.state_file.read_bytes()

    def env(self, **extra: str) -> dict[str, str]:
        return self.rt.env(HOME="/tmp", **{sysconfig.ENV_CONFIG: str(self.config)}, **extra)

    def agent(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """ARGS as the agent's user in the root."""
        return run_as(AGENT, self.rt, list(args), cwd=self.root, env=self.env(**extra))

    def tfgate(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.agent(self.rt.python, "-m", "tfgate", *args, **extra)

    def write(self, text: str) -> None:
        main = self.root / "main.tf"
        main.write_text(text)
        agent = ensure_user(AGENT)
        os.chown(main, agent.pw_uid, agent.pw_gid)


def _terraform(rt: Runtime, where: Path) -> str:
    if REAL_TERRAFORM.exists():
        return str(REAL_TERRAFORM)
    wrapper = where / "terraform"  # the embedded Terraform, for a machine without the binary
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH="{rt.pythonpath}" exec "{rt.python}" -m tfgate.plan.embedded "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


def unprotected_root(prefix: str, *terraform_runs: list[str]) -> Protected:
    """A fresh base (etc/, libexec/, bin/) and an agent-owned root with V1 and POLICY, on which the agent ran
    TERRAFORM_RUNS (default: init and apply), not yet protected."""
    agent = ensure_user(AGENT)
    rt = runtime()
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o755)
    for d in ("etc", "libexec", "bin"):
        (base / d).mkdir(mode=0o755)
    terraform = _terraform(rt, base / "bin")
    root = base / "root"
    root.mkdir()
    (root / "main.tf").write_text(V1)
    (root / "tfgate.yaml").write_text(POLICY)
    subprocess.run(["chown", "-R", f"{agent.pw_uid}:{agent.pw_gid}", str(root)], check=True)
    p = Protected(rt, base, root, base / "etc" / "config.yaml", terraform)
    for args in terraform_runs or (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        proc = p.agent(terraform, *args)
        assert proc.returncode == 0, proc.stderr
    return p


@pytest.fixture(scope="module")
def protected():
    """A root with applied state, protected by `tfgate protect init` (run as root, like an administrator)."""
    p = unprotected_root("tfgate-prot-")
    base, root, config, terraform = p.base, p.root, p.config, p.terraform
    env = {**os.environ, sysconfig.ENV_CONFIG: str(config)}
    init = [sys.executable, "-m", "tfgate", "protect", "init", str(root), "--agent-user", AGENT, "--user", PRIV,
            "--terraform", terraform, "--libexec", str(base / "libexec")]  # fmt: skip
    proc = subprocess.run(init, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    p.init_output = proc.stdout
    p.init_again = subprocess.run(init, capture_output=True, text=True, env=env)
    privileged = Path(p.pin.manifest).parent.parent
    yield p
    subprocess.run(
        [sys.executable, "-m", "tfgate", "protect", "remove", str(root)], env=env, capture_output=True
    )
    shutil.rmtree(privileged, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)


def test_init_sets_up_owns_and_is_idempotent(protected: Protected) -> None:
    out = protected.init_output
    assert "moved the state" in out and "visudo -cf: ok" in out and "protected:" in out
    assert protected.init_again.returncode == 0
    assert protected.init_again.stdout.strip().splitlines() == [out.strip().splitlines()[-1]], (
        "nothing changed"
    )
    pin = protected.pin
    assert Path(pin.manifest).stat().st_uid == 0 and not Path(pin.manifest).stat().st_mode & 0o022
    assert protected.state_file.stat().st_uid == ensure_user(PRIV).pw_uid
    status = subprocess.run([sys.executable, "-m", "tfgate", "protect", "status", str(protected.root)],
                            capture_output=True, text=True, env={**os.environ, sysconfig.ENV_CONFIG: str(protected.config)})  # fmt: skip
    assert status.returncode == 0 and "all in place" in status.stdout, status.stdout
    assert (
        "allowed providers (the pinned `plan: {providers}`): none (no list: built-in ones only)"
        in status.stdout
    )
    proc = protected.tfgate("protect", "init", str(protected.root), "--agent-user", AGENT)
    assert proc.returncode == 2 and "must run as root" in proc.stderr


WAYS_AROUND = {
    "terraform destroy": ["{tf}", "destroy", "-auto-approve", "-input=false"],
    "terraform destroy -lock=false": ["{tf}", "destroy", "-auto-approve", "-input=false", "-lock=false"],
    "terraform apply to a fresh local state": [
        "sh",
        "-c",
        "rm -f terraform.tfstate; {tf} apply -auto-approve -input=false; ln -sf {state} terraform.tfstate",
    ],
    "write the state file": ["sh", "-c", "echo '{{}}' > {state}"],
    "tfgate destroy with an empty manifest": [
        "{py}",
        "-m",
        "tfgate",
        "destroy",
        "--auto-approve",
        "--manifest",
        "/dev/null",
    ],
    "tfgate destroy with the embedded terraform": [
        "{py}",
        "-m",
        "tfgate",
        "destroy",
        "--auto-approve",
        "--terraform",
        "embedded",
    ],
    "mv tfgate.yaml away, tfgate destroy": [
        "sh",
        "-c",
        "mv tfgate.yaml /tmp/tfgate-moved.$$; {py} -m tfgate destroy --auto-approve; "
        "rc=$?; mv /tmp/tfgate-moved.$$ tfgate.yaml; exit $rc",
    ],
    "a substitute terraform first on PATH": [
        "sh",
        "-c",
        "mkdir -p /tmp/evil.$$ && printf '#!/bin/sh\\nexec {tf} destroy -auto-approve\\n' > /tmp/evil.$$/terraform && "
        "chmod +x /tmp/evil.$$/terraform && PATH=/tmp/evil.$$:$PATH {py} -m tfgate destroy --auto-approve",
    ],
    "sudo the entry point for another root": ["sudo", "-n", "-u", PRIV, "{entry}", "apply", "/tmp"],
    "sudo a shell as the privileged user": [
        "sudo",
        "-n",
        "-u",
        PRIV,
        "/bin/sh",
        "-c",
        "echo '{{}}' > {state}",
    ],
    "sudo with an environment variable": [
        "sudo",
        "-n",
        "-u",
        PRIV,
        "TF_CLI_ARGS=-destroy",
        "{entry}",
        "apply",
        "{root}",
    ],
    "tfgate destroy without a terminal": ["{py}", "-m", "tfgate", "destroy"],
}


@pytest.mark.parametrize("way", list(WAYS_AROUND))
def test_every_way_around_leaves_the_state_byte_identical(protected: Protected, way: str) -> None:
    before = protected.state()
    pin = protected.pin
    args = [a.format(tf=protected.terraform, py=protected.rt.python, state=protected.state_file,
                     entry=pin.protected.entry, root=protected.root) for a in WAYS_AROUND[way]]  # fmt: skip
    proc = protected.agent(*args)
    # Terraform 1.11 may even report success after failing to persist the state: the bytes are what count.
    assert protected.state() == before, f"{way}\n{proc.stdout}\n{proc.stderr}"
    if not way.startswith("terraform "):
        assert proc.returncode != 0, f"{way}: exit 0\n{proc.stdout}\n{proc.stderr}"
    assert (protected.root / "terraform.tfstate").is_symlink()


def test_a_blocked_destroy_names_the_saved_plan_in_its_way_out(protected: Protected) -> None:
    """The agent's side checks a sealed copy (/proc/PID/fd/N, gone when tfgate exits): the way out names the
    saved plan file, which the approver signs and `tfgate apply` takes."""
    proc = protected.tfgate("destroy", "--auto-approve")
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout + proc.stderr
    approve = next(line for line in out.splitlines() if "tfgate approve " in line)
    assert "/proc/" not in out, approve
    assert " .tfgate/plans/" in approve and "/plan.bin " in approve, approve


def test_the_agent_cannot_confirm_a_new_workspace_and_is_told_who_can(protected: Protected) -> None:
    before = protected.state()
    proc = protected.tfgate("apply", "--auto-approve", "--new-workspace")
    assert proc.returncode == 2 and "only root gives it" in proc.stderr, proc.stderr
    assert f"`sudo tfgate apply --new-workspace PLAN` in {protected.root}" in proc.stderr, proc.stderr
    assert protected.state() == before


def test_a_direct_terraform_apply_is_denied(protected: Protected) -> None:
    before = protected.state()
    protected.write(V1 + 'resource "terraform_data" "direct" {}\n')
    try:
        proc = protected.agent(protected.terraform, "apply", "-auto-approve", "-input=false", "-no-color")
    finally:
        protected.write(V1)
    assert proc.returncode != 0
    assert "permission denied" in proc.stderr, proc.stderr
    assert protected.state() == before


def _request(plan: bytes) -> bytes:
    return json.dumps({"plan": base64.b64encode(plan).decode(), "approvals": []}).encode()


def test_the_privileged_side_checks_what_it_is_handed(protected: Protected, tmp_path: Path) -> None:
    """The agent skips tfgate and hands a destroy plan (and one with its own backend) straight to sudo."""
    before = protected.state()
    entry = protected.pin.protected.entry
    plan_dir = protected.root / ".tfgate" / "evil"
    proc = protected.agent("sh", "-c", f"mkdir -p {plan_dir} && {protected.terraform} plan -destroy -lock=false "
                                       f"-input=false -out={plan_dir}/destroy.bin")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sudo = ["runuser", "-u", AGENT, "--", "sudo", "-n", "-u", PRIV, entry, "apply", str(protected.root)]
    res = subprocess.run(sudo, input=_request((plan_dir / "destroy.bin").read_bytes()), capture_output=True,
                         cwd=protected.root)  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert b"terraform_data.db" in res.stdout and b"nothing applied" in res.stderr
    res = subprocess.run(sudo, input=b'{"plan": "not base64!"}', capture_output=True, cwd=protected.root)
    assert res.returncode == 2 and b"malformed request" in res.stderr
    assert protected.state() == before


def test_provisioner_commands_are_refused_on_the_privileged_side(protected: Protected) -> None:
    before = protected.state()
    protected.write(V1 + 'resource "terraform_data" "sneaky" {\n  provisioner "local-exec" {\n'
                    f'    command = "{protected.terraform} destroy -auto-approve"\n  }}\n}}\n')  # fmt: skip
    try:
        proc = protected.tfgate("apply", "--auto-approve")
    finally:
        protected.write(V1)
    assert proc.returncode == 1, proc.stderr
    assert "provisioner_commands" in proc.stdout
    assert protected.state() == before


def test_an_allowed_change_applies_as_the_privileged_user(protected: Protected) -> None:
    before = json.loads(protected.state())
    protected.write(V1 + 'resource "terraform_data" "added" {}\n')
    try:
        proc = protected.tfgate("apply", "--auto-approve")
    finally:
        protected.write(V1)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the apply runs as " + PRIV in proc.stderr
    after = json.loads(protected.state())
    assert after["serial"] > before["serial"] and after["lineage"] == before["lineage"]
    assert "added" in {r["name"] for r in after["resources"]}
    assert protected.state_file.stat().st_uid == ensure_user(PRIV).pw_uid
    log = Path(protected.pin.audit_log).read_text().splitlines()
    assert json.loads(log[-1])["status"] == "applied"
    # the privileged side anchors the log's head where the agent cannot write; a cut-off tail then shows
    anchor = protected.state_file.parent / "audit-anchor.json"
    assert (
        anchor.stat().st_uid == ensure_user(PRIV).pw_uid
        and json.loads(anchor.read_text())["seq"] == json.loads(log[-1])["seq"]
    )
    verify = subprocess.run(
        [sys.executable, "-m", "tfgate", "audit", "verify", "--anchor", str(anchor), str(protected.pin.audit_log)],
        capture_output=True, text=True, cwd=anchor.parent,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
