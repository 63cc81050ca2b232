"""Protected mode end to end with modules and providers (issue 13 item 3): real users, sudo and Terraform. A root
with a local `module` block applies through `tfgate apply`; with the real AWS provider in a root-owned
filesystem mirror (when the machine has one at /opt/tf-plugins), a provider only a child module requires is
installed by the privileged side itself (`protect init --provider-mirror`) and the plan applies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.test_protect import POLICY, Protected, unprotected_root
from tests.unix_users import AGENT, PRIV, ensure_user
from tfgate import sysconfig

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="real users and sudo need root")]

AWS_MIRROR = Path("/opt/tf-plugins")
ROOT_TF = 'module "child" {\n  source = "./modules/child"\n}\nresource "terraform_data" "db" {\n  input = "orders"\n}\n'
AWS_CHILD = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "x"
  secret_key                  = "y"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}
"""


def _module_root(prefix: str, child: str, policy: str, agent_env: dict[str, str], *init: str) -> Protected:
    """An agent-owned root calling ./modules/child (CHILD), applied by the agent, then `protect init INIT...`."""
    p = unprotected_root(prefix, ["version"])
    (p.root / "modules" / "child").mkdir(parents=True)
    (p.root / "modules" / "child" / "main.tf").write_text(child)
    (p.root / "main.tf").write_text(ROOT_TF)
    (p.root / "tfgate.yaml").write_text(policy)
    agent = ensure_user(AGENT)
    subprocess.run(["chown", "-R", f"{agent.pw_uid}:{agent.pw_gid}", str(p.root)], check=True)
    for args in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        proc = p.agent(p.terraform, *args, **agent_env)
        assert proc.returncode == 0, proc.stderr
    cmd = [sys.executable, "-m", "tfgate", "protect", "init", str(p.root), "--agent-user", AGENT, "--user", PRIV,
           "--terraform", p.terraform, "--libexec", str(p.base / "libexec"), *init]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, sysconfig.ENV_CONFIG: str(p.config)}
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    p.init_output = proc.stdout
    return p


def _cleanup(p: Protected) -> None:
    privileged = Path(p.pin.manifest).parent.parent
    env = {**os.environ, sysconfig.ENV_CONFIG: str(p.config)}
    subprocess.run(
        [sys.executable, "-m", "tfgate", "protect", "remove", str(p.root)], env=env, capture_output=True
    )
    shutil.rmtree(privileged, ignore_errors=True)
    shutil.rmtree(p.base, ignore_errors=True)


def _apply_adds(p: Protected, child: str, **env: str) -> subprocess.CompletedProcess[str]:
    before = json.loads(p.state())
    (p.root / "modules" / "child" / "main.tf").write_text(child + 'resource "terraform_data" "added" {}\n')
    proc = p.tfgate("apply", "--auto-approve", **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = json.loads(p.state())
    assert after["serial"] > before["serial"] and after["lineage"] == before["lineage"]
    assert {(r.get("module"), r["name"]) for r in after["resources"]} >= {
        ("module.child", "added"),
        (None, "db"),
    }
    return proc


def test_a_root_with_a_local_module_applies_through_the_privileged_side() -> None:
    p = _module_root("tfgate-protmod-", 'resource "terraform_data" "inner" {}\n', POLICY, {})
    try:
        proc = _apply_adds(p, 'resource "terraform_data" "inner" {}\n')
        assert "the apply runs as " + PRIV in proc.stderr
        work = p.state_file.parent
        assert not (work / ".terraform.lock.hcl").exists(), "built-in providers only: nothing installed"
    finally:
        _cleanup(p)


@pytest.mark.skipif(
    not (AWS_MIRROR / "registry.terraform.io/hashicorp/aws").is_dir(), reason="no AWS provider mirror here"
)
def test_a_provider_only_a_child_module_requires_comes_from_roots_mirror() -> None:
    """The agent plans with its own copy of the provider; the privileged side installs its own, from the mirror
    root pinned, into its working directory, and applies the plan there."""
    policy = POLICY + 'plan:\n  providers: ["registry.terraform.io/hashicorp/*", "terraform.io/builtin/*"]\n'
    agent = ensure_user(AGENT)
    where = Path(tempfile.mkdtemp(prefix="tfgate-agentrc-", dir="/tmp"))
    where.chmod(0o755)
    rc = where / "agent.tfrc"  # the agent's own CLI configuration: it plans with its own copy of the provider
    rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{AWS_MIRROR}"\n  }}\n}}\n')
    os.chown(rc, agent.pw_uid, agent.pw_gid)
    env = {"TF_CLI_CONFIG_FILE": str(rc)}
    p = _module_root("tfgate-protaws-", AWS_CHILD, policy, env, "--provider-mirror", str(AWS_MIRROR))
    try:
        assert "hashicorp/aws" in (p.root / ".terraform.lock.hcl").read_text()
        _apply_adds(p, AWS_CHILD, **env)
        work = p.state_file.parent
        installed = work / ".terraform/providers/registry.terraform.io/hashicorp/aws"
        assert installed.is_dir() and "hashicorp/aws" in (work / ".terraform.lock.hcl").read_text()
        rcfile = Path(p.pin.manifest).parent.parent / "data" / "terraformrc"
        assert rcfile.stat().st_uid == 0 and str(AWS_MIRROR) in rcfile.read_text()
        status = subprocess.run([sys.executable, "-m", "tfgate", "protect", "status", str(p.root)], capture_output=True,
                                text=True, env={**os.environ, sysconfig.ENV_CONFIG: str(p.config)})  # fmt: skip
        assert status.returncode == 0 and f"the filesystem mirror {AWS_MIRROR} only" in status.stdout, (
            status.stdout
        )
    finally:
        _cleanup(p)
        shutil.rmtree(where, ignore_errors=True)
