"""The system-wide pin (/etc/tfgate/config.yaml, issue 13 item 5): strict, root-owned, honoured by every gating
command; a non-root user's overrides are refused. Real Unix users (runuser), real Terraform."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.unix_users import AGENT, Runtime, ensure_user, needs_root, run_as, runtime
from tfgate import sysconfig
from tfgate.errors import TfgateError

REPO = Path(__file__).resolve().parent.parent
REAL_TERRAFORM = Path("/usr/local/bin/terraform")
V1 = 'resource "terraform_data" "db" {\n  input = "orders"\n}\nresource "terraform_data" "cache" {}\n'
V2 = 'resource "terraform_data" "cache" {}\n'  # the db block deleted: a destroy
PINNED = "version: 1\nprotect:\n  - name: db\n    match: {address: terraform_data.db}\n"


def test_schema_file_is_generated_from_the_structs() -> None:
    shipped = json.loads((REPO / "rules" / "system-config.schema.json").read_text())
    assert shipped == sysconfig.json_schema(), "regenerate rules/system-config.schema.json"


@pytest.fixture
def conf_dir(monkeypatch: pytest.MonkeyPatch):
    """A root-owned, world-readable directory for a test system configuration (named by the env var)."""
    d = Path(tempfile.mkdtemp(prefix="tfgate-sys-", dir="/tmp"))
    d.chmod(0o755)
    monkeypatch.setenv(sysconfig.ENV_CONFIG, str(d / "config.yaml"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@needs_root
@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("version: 1\nversion: 1\n", "duplicate key"),
        ("version: 1\nroots: {/srv/x: {manifest: /m, colour: red}}\n", "colour"),
        ("version: 1\ndefaults: {manifest: relative/tfgate.yaml}\n", "manifest"),
        ("version: 2\n", "version"),
        ("- a list\n", "Expected `object`"),
        ("version: 1\nroots: {/srv/x: {terraform: [a]}}\n", "terraform"),
        ("version: 1\nroots: {/srv/x: {protected: {user: 'bad user', agent_user: a}}}\n", "user"),
        ("version: 1\nroots: {'/srv/x': {}, '/srv/x/': {}}\n", "same directory"),
        ("{", "not valid YAML"),
    ],
)
def test_strict_parsing(conf_dir: Path, text: str, error: str) -> None:
    (conf_dir / "config.yaml").write_text(text)
    with pytest.raises(TfgateError, match=error):
        sysconfig.load()


@needs_root
def test_unsafe_files_are_refused(conf_dir: Path) -> None:
    agent = ensure_user(AGENT)
    path = conf_dir / "config.yaml"
    path.write_text("version: 1\n")
    assert sysconfig.load() is not None
    path.chmod(0o666)
    with pytest.raises(TfgateError, match="writable by others"):
        sysconfig.load()
    path.chmod(0o644)
    os.chown(path, agent.pw_uid, 0)
    with pytest.raises(TfgateError, match="not owned by root"):
        sysconfig.load()
    os.chown(path, 0, 0)
    conf_dir.chmod(0o777)
    with pytest.raises(TfgateError, match="writable by others"):
        sysconfig.load()
    conf_dir.chmod(0o755)
    path.rename(conf_dir / "real.yaml")
    path.symlink_to(conf_dir / "real.yaml")
    with pytest.raises(TfgateError, match="not a regular file"):
        sysconfig.load()


# --- as the agent's user ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pinned_root():
    """A Terraform root owned by the agent's user (state, a plan destroying the db, an empty tfgate.yaml the
    agent wrote), and a root-owned system configuration pinning the real manifest and Terraform for it."""
    if os.geteuid() != 0:
        pytest.skip("real Unix users need root")
    agent = ensure_user(AGENT)
    rt = runtime()
    base = Path(tempfile.mkdtemp(prefix="tfgate-pin-", dir="/tmp"))
    base.chmod(0o755)
    pin = base / "etc"
    pin.mkdir(mode=0o755)
    terraform = _terraform(rt, pin)
    (pin / "tfgate.yaml").write_text(PINNED)
    root = base / "root"
    root.mkdir()
    (root / "main.tf").write_text(V1)
    env = {**rt.env(), "TF_DATA_DIR": str(root / ".terraform")}
    for args in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        subprocess.run([terraform, *args], cwd=root, env=env, check=True, capture_output=True)
    (root / "main.tf").write_text(V2)
    subprocess.run([terraform, "plan", "-out=plan.bin", "-input=false"], cwd=root, env=env, check=True,
                   capture_output=True)  # fmt: skip
    show = subprocess.run([terraform, "show", "-json", "plan.bin"], cwd=root, env=env, check=True,
                          capture_output=True)  # fmt: skip
    (root / "plan.json").write_bytes(show.stdout)
    (root / "tfgate.yaml").write_text("version: 1\n")  # what the agent would like the policy to be
    (root / "empty.yaml").write_text("version: 1\n")
    subprocess.run(["chown", "-R", f"{agent.pw_uid}:{agent.pw_gid}", str(root)], check=True)
    config = pin / "config.yaml"
    config.write_text(
        f"version: 1\nroots:\n  {root}:\n    manifest: {pin / 'tfgate.yaml'}\n    terraform: {terraform}\n"
        f"    audit_log: {base / 'audit.jsonl'}\n"
    )
    (base / "audit.jsonl").touch()
    os.chown(base / "audit.jsonl", agent.pw_uid, agent.pw_gid)  # B alone pins; ownership is protected mode's
    yield rt, root, config, terraform
    shutil.rmtree(base, ignore_errors=True)


def _terraform(rt: Runtime, where: Path) -> str:
    if REAL_TERRAFORM.exists():
        return str(REAL_TERRAFORM)
    wrapper = where / "terraform"
    wrapper.write_text(f'#!/bin/sh\nexec "{rt.python}" -m tfgate.plan.embedded "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def _tfgate(
    rt: Runtime, root: Path, config: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return run_as(AGENT, rt, [rt.python, "-m", "tfgate", *args], cwd=root,
                  env=rt.env(**{sysconfig.ENV_CONFIG: str(config)}, **env))  # fmt: skip


def _state(root: Path) -> bytes:
    return (root / "terraform.tfstate").read_bytes()


@needs_root
def test_the_pinned_manifest_is_used_whatever_the_directory_holds(pinned_root) -> None:
    rt, root, config, _ = pinned_root
    proc = _tfgate(rt, root, config, "check", "plan.json", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["manifest"] == str(config.parent / "tfgate.yaml")
    assert [v["address"] for v in report["violations"]] == ["terraform_data.db"]
    assert (config.parent.parent / "audit.jsonl").read_text(), "the pinned audit log got the check"


@needs_root
@pytest.mark.parametrize(
    ("args", "env", "refused"),
    [
        (["check", "plan.json", "--manifest", "empty.yaml"], {}, "--manifest refused"),
        (["check", "plan.bin", "--terraform", "embedded"], {}, "--terraform refused"),
        (["check", "plan.json", "--no-state-checks"], {}, "--no-state-checks refused"),
        (["check", "plan.json", "--audit-log", "/tmp/mine.jsonl"], {}, "--audit-log refused"),
        (["check", "plan.json"], {"TFGATE_AUDIT_LOG": "/tmp/mine.jsonl"}, "$TFGATE_AUDIT_LOG refused"),
        (["check", "plan.json", "-C", "/tmp"], {}, "is not a Terraform root pinned"),
        (["destroy", "--auto-approve", "--manifest", "empty.yaml"], {}, "--manifest refused"),
        (["destroy", "--auto-approve", "--terraform", "embedded"], {}, "--terraform refused"),
        (["apply", "plan.bin"], {"TFGATE_TERRAFORM": "embedded"}, "$TFGATE_TERRAFORM refused"),
        (["plan", "--audit-log", "/tmp/mine.jsonl"], {}, "--audit-log refused"),
        (
            ["approvals", "verify", "x.json", "--plan", "plan.json", "-m", "empty.yaml"],
            {},
            "--manifest refused",
        ),
    ],
)
def test_overrides_are_refused_for_the_agent(pinned_root, args: list[str], env: dict, refused: str) -> None:
    rt, root, config, _ = pinned_root
    before = _state(root)
    proc = _tfgate(rt, root, config, *args, **env)
    assert proc.returncode == 2, proc.stderr
    assert refused in proc.stderr
    assert _state(root) == before


@needs_root
def test_moving_the_manifest_away_changes_nothing(pinned_root) -> None:
    rt, root, config, _ = pinned_root
    before = _state(root)
    proc = run_as(AGENT, rt, ["sh", "-c", f"mv tfgate.yaml /tmp/moved-{os.getpid()}.yaml; "
                                          f"{rt.python} -m tfgate destroy --auto-approve; rc=$?; "
                                          f"mv /tmp/moved-{os.getpid()}.yaml tfgate.yaml; exit $rc"],
                  cwd=root, env=rt.env(**{sysconfig.ENV_CONFIG: str(config)}))  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "terraform_data.db" in proc.stdout and "nothing applied" in proc.stderr
    assert _state(root) == before


@needs_root
def test_naming_another_config_beside_the_real_one_is_refused(pinned_root) -> None:
    """As a user other than root, TFGATE_SYSTEM_CONFIG counts only while the real file does not exist (the
    real path is pointed at a test file here: /etc is not touched)."""
    rt, root, config, _ = pinned_root
    code = (
        "import sys; from pathlib import Path; from tfgate import sysconfig; "
        f"sysconfig.SYSTEM_CONFIG = Path({str(config)!r}); "
        "from tfgate.errors import TfgateError\n"
        "try:\n    print(sysconfig.config_path())\nexcept TfgateError as e:\n    print('refused:', e); sys.exit(2)"
    )
    proc = run_as(AGENT, rt, [rt.python, "-c", code], cwd=root,
                  env=rt.env(**{sysconfig.ENV_CONFIG: "/tmp/agent-config.yaml"}))  # fmt: skip
    assert proc.returncode == 2 and "only root may name another" in proc.stdout, proc.stdout + proc.stderr
    proc = run_as(AGENT, rt, [rt.python, "-c", code], cwd=root)
    assert proc.returncode == 0 and proc.stdout.strip() == str(config)
