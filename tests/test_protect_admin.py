"""Protected mode, the administrator's side (issue 13): pinned workspaces, apply credentials only the privileged
side holds, and policy changes that only root pins after seeing them. Real users, real sudo, real Terraform."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.test_protect import POLICY, V1, Protected, _request, unprotected_root
from tests.unix_users import AGENT, PRIV, ensure_user
from tfgate import sysconfig
from tfgate.enforce.privileged import read_env_file
from tfgate.errors import TfgateError

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="real users and sudo need root")
STRICTER = POLICY + "  - name: cache\n    match: {address: terraform_data.cache}\n"


def test_env_files_are_read_strictly() -> None:
    assert read_env_file(b"# keys\nAWS_ACCESS_KEY_ID=AKIA\n\nAWS_SECRET_ACCESS_KEY=a=b 'c'\n", "f") == {
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "a=b 'c'",  # literal: no quote removal, no expansion
    }
    for bad, why in [
        (b"export A=1\n", "not NAME=VALUE"),
        (b"A\n", "not NAME=VALUE"),
        (b"A=1\nA=2\n", "given twice"),
        (b"TF_CLI_ARGS_apply=-destroy\n", "set by tfgate"),
        (b"TF_WORKSPACE=prod\n", "set by tfgate"),
        (b"tf_cli_config_file=/tmp/x\n", "set by tfgate"),
        (b"TFGATE_SYSTEM_CONFIG=/tmp/c\n", "set by tfgate"),
        (b"LD_PRELOAD=/tmp/x.so\n", "set by tfgate"),
        (b"PATH=/tmp\n", "set by tfgate"),
        (b"\xff=1\n", "not UTF-8"),
    ]:
        with pytest.raises(TfgateError, match=why):
            read_env_file(bad, "creds.env")


def _root_run(config: Path, *args: str, **kw) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, sysconfig.ENV_CONFIG: str(config)}
    return subprocess.run([sys.executable, "-m", "tfgate", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def admin():
    """A root with a default and a staging workspace, protected with both pinned and an env file placed."""
    p = unprotected_root(
        "tfgate-admin-", ["init", "-input=false"], ["apply", "-auto-approve", "-input=false"],
        ["workspace", "new", "staging"], ["apply", "-auto-approve", "-input=false"], ["workspace", "select", "default"],
    )  # fmt: skip
    base, root, config, terraform = p.base, p.root, p.config, p.terraform
    creds = base / "creds.env"
    creds.write_text(
        "# the apply role's keys\nAWS_ACCESS_KEY_ID=AKIAPRIVILEGED\nAWS_SECRET_ACCESS_KEY=s3cr3t\n"
    )
    init = ["protect", "init", str(root), "--agent-user", AGENT, "--user", PRIV, "--terraform", terraform,
            "--libexec", str(base / "libexec"), "--workspace", "staging", "--env-file", str(creds)]  # fmt: skip
    proc = _root_run(config, *init)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    p.init_output = proc.stdout
    privileged = Path(p.pin.manifest).parent.parent
    yield p
    staging = _staging(p).read_bytes()
    proc = _root_run(config, "protect", "remove", str(root))
    try:  # unprotected again: every workspace's state is back in the root, as it was
        assert proc.returncode == 0, proc.stderr
        assert (root / "terraform.tfstate.d" / "staging" / "terraform.tfstate").read_bytes() == staging
        assert not (root / "terraform.tfstate.d").is_symlink()
    finally:
        shutil.rmtree(privileged, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)


def _staging(p: Protected) -> Path:
    return p.state_file.parent / "terraform.tfstate.d" / "staging" / "terraform.tfstate"


@needs_root
def test_init_pins_workspaces_and_places_credentials(admin: Protected) -> None:
    priv = ensure_user(PRIV)
    assert "moved" in admin.init_output and "workspaces: default, staging" in admin.init_output
    assert admin.pin.protected.workspaces == ["default", "staging"]
    assert _staging(admin).stat().st_uid == priv.pw_uid and _staging(admin).is_file()
    link = admin.root / "terraform.tfstate.d"
    assert link.is_symlink() and link.lstat().st_uid == 0
    creds = admin.state_file.parent.parent / "data" / "credentials.env"
    assert creds.stat().st_uid == priv.pw_uid and creds.stat().st_mode & 0o777 == 0o600
    # the agent plans against both workspaces, cannot read the keys, cannot add a workspace
    assert admin.agent(admin.terraform, "workspace", "list").returncode == 0
    assert admin.agent("cat", str(creds)).returncode != 0
    proc = admin.agent(admin.terraform, "workspace", "new", "other")
    assert proc.returncode != 0 and not (link / "other").exists()
    status = _root_run(admin.config, "protect", "status", str(admin.root))
    assert status.returncode == 0, status.stdout
    assert "workspaces: default, staging" in status.stdout
    assert "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY" in status.stdout


@needs_root
def test_an_allowed_change_applies_to_the_plans_own_pinned_workspace(admin: Protected) -> None:
    default, staging = admin.state(), json.loads(_staging(admin).read_text())
    admin.write(V1 + 'resource "terraform_data" "added" {}\n')
    try:
        assert admin.agent(admin.terraform, "workspace", "select", "staging").returncode == 0
        proc = admin.tfgate("apply", "--auto-approve")
    finally:
        admin.agent(admin.terraform, "workspace", "select", "default")
        admin.write(V1)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = json.loads(_staging(admin).read_text())
    assert after["lineage"] == staging["lineage"] and after["serial"] > staging["serial"]
    assert "added" in {r["name"] for r in after["resources"]}
    assert admin.state() == default


@needs_root
def test_a_plan_for_a_workspace_root_did_not_pin_is_refused(admin: Protected) -> None:
    """The agent makes a workspace of its own in a copy of the root and hands its plan straight to sudo."""
    before = admin.state(), _staging(admin).read_bytes()
    copy = Path(tempfile.mkdtemp(prefix="tfgate-copy-", dir="/tmp"))
    try:
        (copy / "main.tf").write_text("")
        shutil.chown(copy, AGENT)
        script = (f"cd {copy} && {admin.terraform} init -input=false >/dev/null && {admin.terraform} workspace "
                  f"new other >/dev/null && {admin.terraform} plan -input=false -out=p.bin >/dev/null")  # fmt: skip
        proc = admin.agent("sh", "-c", script)
        assert proc.returncode == 0, proc.stderr
        entry = admin.pin.protected.entry
        sudo = ["runuser", "-u", AGENT, "--", "sudo", "-n", "-u", PRIV, entry, "apply", str(admin.root)]
        res = subprocess.run(sudo, input=_request((copy / "p.bin").read_bytes()), capture_output=True)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    assert res.returncode == 2, res.stderr
    assert b"workspace 'other' is not pinned" in res.stderr
    assert (admin.state(), _staging(admin).read_bytes()) == before


@needs_root
def test_policy_changes_reach_the_pin_only_through_root(admin: Protected) -> None:
    pinned = Path(admin.pin.manifest)
    original = pinned.read_bytes()
    before = admin.state()
    # The agent weakens the policy it can edit: the pinned one still decides.
    (admin.root / "tfgate.yaml").write_text("version: 1\nprotect: []\n")
    proc = admin.tfgate("destroy", "--auto-approve")
    assert proc.returncode == 1 and "terraform_data.db" in proc.stdout, proc.stdout + proc.stderr
    assert admin.state() == before
    # root, without a terminal and without --yes: the diff is shown, nothing is pinned
    proc = _root_run(admin.config, "protect", "policy", str(admin.root))
    assert proc.returncode == 2 and "-  - name: db" in proc.stdout and "--yes" in proc.stderr
    assert pinned.read_bytes() == original
    # a policy that does not load is never pinned
    (admin.root / "tfgate.yaml").write_text("version: 1\nprotect: [{name: x}]\nprotect: []\n")
    assert _root_run(admin.config, "protect", "policy", str(admin.root), "--yes").returncode == 2
    assert pinned.read_bytes() == original
    # a reviewed change, confirmed: pinned, recorded, anchored
    (admin.root / "tfgate.yaml").write_text(STRICTER)
    try:
        proc = _root_run(admin.config, "protect", "policy", str(admin.root), "--yes")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "+  - name: cache" in proc.stdout and pinned.read_bytes() == STRICTER.encode()
        assert pinned.stat().st_uid == 0 and not pinned.stat().st_mode & 0o022
        log = Path(admin.pin.audit_log)
        last = json.loads(log.read_text().splitlines()[-1])
        assert last["event"] == "policy_pinned" and last["user"] == "root"
        assert last["manifest_sha256"]["new"] != last["manifest_sha256"]["old"]
        anchor = admin.state_file.parent / "audit-anchor.json"
        assert json.loads(anchor.read_text())["seq"] == last["seq"]
        verify = _root_run(admin.config, "audit", "verify", "--anchor", str(anchor), str(log))
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert _root_run(admin.config, "protect", "policy", str(admin.root)).returncode == 0  # same: no-op
        admin.write("")  # the agent removes both resources: the newly pinned rule blocks the cache too
        try:
            proc = admin.tfgate("apply", "--auto-approve", "--format", "json")
        finally:
            admin.write(V1)
        assert proc.returncode == 1
        blocked = {v["address"] for v in json.loads(proc.stdout)["violations"]}
        assert blocked == {"terraform_data.db", "terraform_data.cache"}
    finally:
        (admin.root / "tfgate.yaml").write_text(POLICY)
        assert _root_run(admin.config, "protect", "policy", str(admin.root), "--yes").returncode == 0
    assert pinned.read_bytes() == POLICY.encode() and admin.state() == before
    assert admin.tfgate("protect", "policy", str(admin.root), "--yes").returncode == 2  # root only


@needs_root
def test_the_embedded_terraform_points_the_agent_at_tfgate_apply(admin: Protected) -> None:
    """Terraform's own error is `permission denied`; tfgate's embedded Terraform says what to run instead (the
    boundary is still the file permissions: this is the pointer, and the state stays byte-identical)."""
    before = admin.state(), _staging(admin).read_bytes()
    embedded = [admin.rt.python, "-m", "tfgate.plan.embedded"]
    for args in (["apply", "-auto-approve", "-input=false"], ["destroy", "-auto-approve"],
                 ["-chdir=.", "state", "rm", "terraform_data.db"]):  # fmt: skip
        proc = admin.agent(*embedded, *args)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "protected root" in proc.stderr and "tfgate apply PLANFILE" in proc.stderr
    assert admin.agent(*embedded, "state", "list").returncode == 0  # reading is planning
    assert (admin.state(), _staging(admin).read_bytes()) == before


@needs_root
def test_one_privileged_apply_of_a_root_at_a_time(admin: Protected) -> None:
    """A second apply while one runs would rebuild the `.terraform/` the first uses: it is refused."""
    import fcntl

    from tfgate.enforce.privileged import LOCK

    before = admin.state()
    admin.write(V1 + 'resource "terraform_data" "added_while_busy" {}\n')
    fd = os.open(admin.state_file.parent / LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # an apply in progress
        proc = admin.tfgate("apply", "--auto-approve")
        assert proc.returncode == 2 and "another apply of this protected root is running" in proc.stderr, (
            proc.stderr
        )
        assert admin.state() == before
        fcntl.flock(fd, fcntl.LOCK_UN)
        proc = admin.tfgate("apply", "--auto-approve")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        os.close(fd)
        admin.write(V1)
    assert "added_while_busy" in admin.state().decode()
