"""Protected mode attacked as the agent's user would (red team, after pinned workspaces, --env-file and
`protect policy`): real users, real sudo, real Terraform, real ssh-keygen. Each way around leaves the protected
state byte-identical and the privileged side's secrets unread."""

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

from tests.test_protect import V1, Protected, _request, _terraform
from tests.unix_users import AGENT, PRIV, ensure_user, run_as, runtime
from tfgate import sysconfig
from tfgate.errors import TfgateError

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="real users and sudo need root"),
    pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH ssh-keygen"),
]
SECRET = "AKIAPRIVILEGEDSECRET"


def _root_run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, sysconfig.ENV_CONFIG: str(config)}
    return subprocess.run([sys.executable, "-m", "tfgate", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def _key(where: Path, name: str) -> tuple[Path, str]:
    key = where / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key, " ".join(Path(f"{key}.pub").read_text().split()[:2])


@pytest.fixture(scope="module")
def signed():
    """A protected root whose manifest names its allowed_signers by an absolute path inside the root (the
    administrator's key in it when init pinned it), with apply credentials placed by --env-file."""
    agent = ensure_user(AGENT)
    rt = runtime()
    base = Path(tempfile.mkdtemp(prefix="tfgate-red-", dir="/tmp"))
    base.chmod(0o755)
    for d in ("etc", "libexec", "bin", "keys"):
        (base / d).mkdir(mode=0o755)
    terraform = _terraform(rt, base / "bin")
    root = base / "root"
    root.mkdir()
    (root / "main.tf").write_text(V1)
    _, admin_pub = _key(base / "keys", "admin")
    (root / "allowed_signers").write_text(f'admin@example.com namespaces="tfgate" {admin_pub}\n')
    (root / "tfgate.yaml").write_text(
        "version: 1\nprotect:\n  - name: db\n    match: {address: terraform_data.db}\n"
        f"approvals: {{allowed_signers: {root}/allowed_signers}}\n"
    )
    subprocess.run(["chown", "-R", f"{agent.pw_uid}:{agent.pw_gid}", str(root)], check=True)
    config = base / "etc" / "config.yaml"
    p = Protected(rt, base, root, config, terraform)
    for args in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        proc = p.agent(terraform, *args)
        assert proc.returncode == 0, proc.stderr
    creds = base / "creds.env"
    creds.write_text(f"AWS_ACCESS_KEY_ID={SECRET}\n")
    init = ["protect", "init", str(root), "--agent-user", AGENT, "--user", PRIV, "--terraform", terraform,
            "--libexec", str(base / "libexec"), "--env-file", str(creds)]  # fmt: skip
    proc = _root_run(config, *init)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    privileged = Path(p.pin.manifest).parent.parent
    yield p
    _root_run(config, "protect", "remove", str(root))
    shutil.rmtree(privileged, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)


def _sudo(p: Protected, request: bytes) -> subprocess.CompletedProcess[bytes]:
    entry = p.pin.protected.entry
    argv = ["runuser", "-u", AGENT, "--", "sudo", "-n", "-u", PRIV, entry, "apply", str(p.root)]
    return subprocess.run(argv, input=request, capture_output=True, cwd=p.root)


def _agent_plan(p: Protected, name: str, *args: str) -> Path:
    out = p.root / ".tfgate" / "red" / name
    proc = p.agent("sh", "-c", f"mkdir -p {out.parent} && {p.terraform} plan -lock=false -input=false "
                               f"-out={out} {' '.join(args)}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out


def test_the_privileged_side_judges_approvals_with_the_pinned_allowed_signers(signed: Protected) -> None:
    """The manifest names the root's allowed_signers; init pinned a copy. The agent puts its own key in the
    root's file, approves its destroy plan itself and hands plan and approval straight to sudo."""
    before = signed.state()
    pinned = Path(signed.pin.allowed_signers)
    assert pinned.read_bytes() == (signed.root / "allowed_signers").read_bytes()
    keys = Path(tempfile.mkdtemp(prefix="tfgate-agentkey-", dir="/tmp"))
    try:
        shutil.chown(keys, AGENT)
        proc = signed.agent("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{keys}/me")
        assert proc.returncode == 0, proc.stderr
        pub = " ".join(Path(f"{keys}/me.pub").read_text().split()[:2])
        original = (signed.root / "allowed_signers").read_text()
        (signed.root / "allowed_signers").write_text(
            original + f'agent@example.com namespaces="tfgate" {pub}\n'
        )
        plan = _agent_plan(signed, "destroy.bin", "-destroy")
        # signed by the agent's own tfgate run without the pin (which reads the root's tfgate.yaml and so the
        # allowed_signers just edited), bound to the root as a human's would be, and to the privileged state
        # directory the privileged side checks in
        doc = json.loads(_request(plan.read_bytes()))
        for i, where in enumerate((signed.root, signed.state_file.parent)):
            approval = keys / f"approval-{i}.json"
            proc = run_as(AGENT, signed.rt, [signed.rt.python, "-m", "tfgate", "approve", str(plan), "-C", str(where),
                          "--manifest", str(signed.root / "tfgate.yaml"), "--signer", "agent@example.com", "--key",
                          f"{keys}/me", "--reason", "mine", "--yes", "--output", str(approval)],
                          cwd=signed.root, env=signed.rt.env(HOME="/tmp"))  # fmt: skip
            assert approval.is_file(), proc.stdout + proc.stderr
            doc["approvals"].append([f"00{i}-approval.json", base64.b64encode(approval.read_bytes()).decode(),
                                     base64.b64encode(Path(f"{approval}.sig").read_bytes()).decode()])  # fmt: skip
        res = _sudo(signed, json.dumps(doc).encode())
    finally:
        (signed.root / "allowed_signers").write_text(pinned.read_text())
        shutil.rmtree(keys, ignore_errors=True)
    assert signed.state() == before, res.stdout.decode() + res.stderr.decode()
    assert res.returncode == 1, res.stdout.decode() + res.stderr.decode()
    assert b"agent@example.com" in res.stdout and b"terraform_data.db" in res.stdout


def test_an_administrators_approval_made_in_the_root_counts_on_the_privileged_side(signed: Protected) -> None:
    """The human approves the agent's plan in the root (`tfgate approve -C ROOT`); the privileged side checks in
    its own state directory and still counts it: the approval is bound to the root, where the state is."""
    before = json.loads(signed.state())
    plan = _agent_plan(signed, "replace.bin", "-replace=terraform_data.db")
    approval = signed.base / "keys" / "replace.json"
    proc = _root_run(signed.config, "approve", str(plan), "-C", str(signed.root), "--signer", "admin@example.com",
                     "--key", str(signed.base / "keys" / "admin"), "--reason", "rotate", "--yes", "--output",
                     str(approval))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for f in (approval, Path(f"{approval}.sig")):
        f.chmod(0o644)
    proc = signed.tfgate("apply", str(plan), "--approvals", str(approval))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = json.loads(signed.state())
    assert after["serial"] > before["serial"] and after["lineage"] == before["lineage"]
    ids = {r["name"]: r["instances"][0]["attributes"]["id"] for r in after["resources"]}
    assert ids["db"] != {r["name"]: r["instances"][0]["attributes"]["id"] for r in before["resources"]}["db"]


READS_AT_APPLY = """
resource "terraform_data" "where" {
  input = "{creds}"
}
resource "terraform_data" "leak" {
  input = file(terraform_data.where.output)
}
output "leak" {
  value = terraform_data.leak.output
}
"""


def test_a_configuration_cannot_read_the_privileged_users_files_during_the_apply(signed: Protected) -> None:
    """A file() whose path is unknown until the apply runs is read by the privileged user's Terraform: its
    credentials would land in the state and the apply's output, both the agent's to read."""
    creds = signed.state_file.parent.parent / "data" / "credentials.env"
    assert signed.agent("cat", str(creds)).returncode != 0
    before = signed.state()
    signed.write(V1 + READS_AT_APPLY.replace("{creds}", str(creds)))
    try:
        proc = signed.tfgate("apply", "--auto-approve")
        plan = _agent_plan(signed, "reads.bin")  # and straight to sudo, past the agent's own check
        res = _sudo(signed, _request(plan.read_bytes()))
    finally:
        signed.write(V1)
    for out in (proc.stdout + proc.stderr, (res.stdout + res.stderr).decode()):
        assert SECRET not in out
        assert "apply_reads_files" in out and "file()" in out, out
    assert proc.returncode == 1 and res.returncode == 1
    assert signed.state() == before


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_every_spelling_of_a_file_function_is_found(tmp_path: Path) -> None:
    import zipfile

    from tfgate.plan.configuration import file_reads

    plan = tmp_path / "p.bin"
    with zipfile.ZipFile(plan, "w") as z:
        z.writestr("tfconfig/m-/a.tf", 'x = core::file /* c */ (var.p)\ny = templatefile(\n"t", {})\n')
        z.writestr("tfconfig/m-mod/b.tf.json", '{"locals": {"z": "${fil\\u0065sha256(var.p)}"}}')
        z.writestr("tfconfig/m-/c.tofu", "w = filebase64(var.p)  # source_file = 1, profile(x)\n")
        z.writestr("tfconfig/m-/c.tofu", "w = 1\n")  # a second entry of the same name hides nothing
    assert file_reads(plan) == ["m-/a.tf: file()", "m-/a.tf: templatefile()", "m-mod/b.tf.json: filesha256()",
                                "m-/c.tofu: filebase64()"]  # fmt: skip


def test_a_policy_naming_another_file_as_allowed_signers_is_not_pinned(signed: Protected) -> None:
    """The agent's tfgate.yaml names the privileged user's credentials as its allowed_signers: root's `protect
    policy --yes` (and `protect init`) would copy them, as root, into the world-readable policy directory."""
    creds = signed.state_file.parent.parent / "data" / "credentials.env"
    manifest = signed.root / "tfgate.yaml"
    original, pinned = manifest.read_text(), Path(signed.pin.allowed_signers)
    pinned_before = pinned.read_bytes()
    manifest.write_text(original.replace(f"{signed.root}/allowed_signers", str(creds)))
    try:
        proc = _root_run(signed.config, "protect", "policy", str(signed.root), "--yes")
    finally:
        manifest.write_text(original)
        leaked = SECRET.encode() in pinned.read_bytes()
        _root_run(signed.config, "protect", "policy", str(signed.root), "--yes")
    assert not leaked and pinned.read_bytes() == pinned_before
    assert proc.returncode == 2 and "allowed_signers" in proc.stderr, proc.stdout + proc.stderr
    assert SECRET not in proc.stdout + proc.stderr


def test_init_refuses_a_tfgate_the_agent_can_write(tmp_path: Path) -> None:
    """root runs `protect init` from a tfgate the agent's user owns (its project venv, a checkout in its home):
    the entry point would run the agent's code as the privileged user. Refused before anything changes."""
    agent, rt = ensure_user(AGENT), runtime()
    base = Path(tempfile.mkdtemp(prefix="tfgate-owncode-", dir="/tmp"))
    try:
        base.chmod(0o755)
        code, root, etc = base / "code", base / "root", base / "etc"
        for d in (code, root, etc):
            d.mkdir(mode=0o755)
        shutil.copytree(Path(__file__).resolve().parents[1] / "tfgate", code / "tfgate")
        subprocess.run(["chown", "-R", f"{agent.pw_uid}:{agent.pw_gid}", str(code)], check=True)
        (root / "main.tf").write_text(V1)
        (root / "tfgate.yaml").write_text("version: 1\nprotect: []\n")
        env = {**os.environ, sysconfig.ENV_CONFIG: str(etc / "config.yaml"),
               "PYTHONPATH": f"{code}{os.pathsep}{rt.pythonpath}"}  # fmt: skip
        proc = subprocess.run([sys.executable, "-m", "tfgate", "protect", "init", str(root), "--agent-user", AGENT,
                               "--user", PRIV, "--libexec", str(base / "libexec")], capture_output=True, text=True,
                              env=env, cwd=base)  # fmt: skip
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"{AGENT} can write {code}" in proc.stderr, proc.stderr
        assert not (etc / "config.yaml").exists() and not (base / "libexec").exists()
    finally:  # had it gone through: undo what it wrote
        from tfgate.enforce.protect import layout

        lay = layout(root, PRIV, AGENT)
        lay.sudoers.unlink(missing_ok=True)
        shutil.rmtree(lay.base, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


def _fresh_root(prefix: str) -> tuple[Path, Path, Protected]:
    """An applied root (agent-owned) under a new base, not protected yet."""
    agent, rt = ensure_user(AGENT), runtime()
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o755)
    for d in ("etc", "libexec", "bin", "root"):
        (base / d).mkdir(mode=0o755)
    root = base / "root"
    (root / "main.tf").write_text(V1)
    (root / "tfgate.yaml").write_text("version: 1\nprotect: []\n")
    subprocess.run(["chown", "-R", f"{agent.pw_uid}:{agent.pw_gid}", str(root)], check=True)
    p = Protected(rt, base, root, base / "etc" / "config.yaml", _terraform(rt, base / "bin"))
    for args in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        proc = p.agent(p.terraform, *args)
        assert proc.returncode == 0, proc.stderr
    return base, root, p


def _cleanup(base: Path, root: Path) -> None:
    from tfgate.enforce.protect import layout

    lay = layout(root, PRIV, AGENT)
    lay.sudoers.unlink(missing_ok=True)
    shutil.rmtree(lay.base, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)


def test_init_does_not_follow_a_state_swapped_for_a_symlink(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent swaps DIR/terraform.tfstate for a symlink to a file only root can read, just after init looked
    (simulated: the look says regular file): root must not copy that file into the agent-readable state."""
    from tfgate.enforce import protect

    base, root, p = _fresh_root("tfgate-swap-")
    try:
        secret = base / "root-only.json"
        secret.write_text(json.dumps({"secret": SECRET}))
        secret.chmod(0o600)
        (root / "terraform.tfstate").unlink()
        (root / "terraform.tfstate").symlink_to(secret)
        real = Path.is_symlink
        monkeypatch.setattr(
            Path, "is_symlink", lambda self: False if self == root / "terraform.tfstate" else real(self)
        )
        monkeypatch.setenv(sysconfig.ENV_CONFIG, str(p.config))
        with pytest.raises(TfgateError, match="not a regular file"):
            protect.init(
                root, AGENT, user=PRIV, terraform=p.terraform, libexec=base / "libexec", say=lambda _: None
            )
        leaked = [f for f in protect.layout(root, PRIV, AGENT).base.rglob("*") if f.is_file() and SECRET.encode()
                  in f.read_bytes()]  # fmt: skip
        assert leaked == []
    finally:
        _cleanup(base, root)


def test_remove_does_not_write_through_a_symlink_the_agent_swaps_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """`protect remove` puts the state back into the agent's directory: the agent puts a symlink to a file of
    root's where the link was, the moment it is gone (simulated: unlink does both). root must not write the
    state into that file, nor hand it to the agent (chown follows symlinks)."""
    from tfgate.enforce import protect

    base, root, p = _fresh_root("tfgate-rmswap-")
    try:
        proc = _root_run(p.config, "protect", "init", str(root), "--agent-user", AGENT, "--user", PRIV,
                         "--terraform", p.terraform, "--libexec", str(base / "libexec"))  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        state = p.state()
        victim = base / "precious"
        victim.write_text("root's own\n")
        victim.chmod(0o600)
        link, real = root / "terraform.tfstate", Path.unlink

        def unlink(self: Path, missing_ok: bool = False) -> None:
            real(self, missing_ok)
            if self == link:
                os.symlink(victim, link)

        monkeypatch.setattr(Path, "unlink", unlink)
        monkeypatch.setenv(sysconfig.ENV_CONFIG, str(p.config))
        protect.remove(root, say=lambda _: None)
        assert victim.read_text() == "root's own\n" and victim.stat().st_uid == 0
        assert not link.is_symlink() and link.read_bytes() == state
        assert link.stat().st_uid == ensure_user(AGENT).pw_uid
    finally:
        monkeypatch.undo()
        _cleanup(base, root)


def test_a_protected_object_moved_to_another_address_stays_protected() -> None:
    """Two allowed-looking steps through the privileged side: a `moved` block renames the protected db to an
    address no rule names, then a plan destroys it there. The ledger the privileged side keeps follows it."""
    base, root, p = _fresh_root("tfgate-moved-")
    try:
        (root / "tfgate.yaml").write_text(
            "version: 1\nprotect:\n  - name: db\n    match: {address: terraform_data.db}\n"
        )
        proc = _root_run(p.config, "protect", "init", str(root), "--agent-user", AGENT, "--user", PRIV,
                         "--terraform", p.terraform, "--libexec", str(base / "libexec"))  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        p.write(
            V1.replace('"db"', '"renamed"')
            + "moved {\n  from = terraform_data.db\n  to = terraform_data.renamed\n}\n"
        )
        proc = p.tfgate("apply", "--auto-approve")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        before = p.state()
        assert b'"renamed"' in before
        p.write('resource "terraform_data" "cache" {}\n')
        proc = p.tfgate("apply", "--auto-approve")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert p.state() == before
        plan = _agent_plan(p, "gone.bin")
        res = _sudo(p, _request(plan.read_bytes()))
        assert res.returncode == 1, res.stdout.decode() + res.stderr.decode()
        assert p.state() == before
    finally:
        _root_run(p.config, "protect", "remove", str(root))
        _cleanup(base, root)


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_plan_with_two_tfplan_entries_is_refused(signed: Protected) -> None:
    """Terraform reads the first `tfplan` of a zip, Python's zipfile the last: the agent puts a plan whose
    backend writes the state elsewhere first and its pinned plan's record last, so the backend check reads one
    and Terraform applies the other."""
    import zipfile

    before = signed.state()
    rogue = signed.state_file.parent / "terraform.tfstate.d" / "rogue" / "terraform.tfstate"
    pinned = _agent_plan(signed, "pinned.bin")
    copy = Path(tempfile.mkdtemp(prefix="tfgate-elsewhere-", dir="/tmp"))
    try:
        shutil.copy(signed.root / "main.tf", copy / "main.tf")
        (copy / "backend.tf").write_text(
            f'terraform {{\n  backend "local" {{\n    path = "{rogue}"\n  }}\n}}\n'
        )
        subprocess.run(["chown", "-R", AGENT, str(copy)], check=True)
        script = (f"cd {copy} && {signed.terraform} init -input=false >/dev/null && "
                  f"{signed.terraform} plan -lock=false -input=false -state=state.json -out=p.bin")  # fmt: skip
        proc = signed.agent("sh", "-c", script)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        crafted = copy / "crafted.bin"
        with zipfile.ZipFile(copy / "p.bin") as src, zipfile.ZipFile(crafted, "w") as out:
            for info in src.infolist():
                out.writestr(info, src.read(info))
            with zipfile.ZipFile(pinned) as good:
                out.writestr("tfplan", good.read("tfplan"))
        res = _sudo(signed, _request(crafted.read_bytes()))
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    assert not rogue.exists(), res.stdout.decode() + res.stderr.decode()
    shutil.rmtree(rogue.parent, ignore_errors=True)
    # before: ALLOWED, and Terraform ran it with the other backend (its lineage check was all that stopped it)
    assert res.returncode == 2 and b"twice" in res.stderr, res.stdout.decode() + res.stderr.decode()
    assert b"ALLOWED" not in res.stdout and signed.state() == before


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_plan_with_two_prior_states_is_refused_in_every_mode(tmp_path: Path) -> None:
    """The same first-or-last difference for `tfstate` (the prior state Terraform applies onto): a crafted
    first copy without the protected object and the real one last would pass the state checks."""
    import zipfile

    from tfgate.state.planfile import plan_states

    plan = tmp_path / "p.bin"
    state = json.dumps({"version": 4, "lineage": "l", "serial": 1, "resources": []})
    with zipfile.ZipFile(plan, "w") as z:
        z.writestr("tfstate", state)
        z.writestr("tfstate", state)
    with pytest.raises(TfgateError, match="tfstate twice"):
        plan_states(plan)


BIG = """
resource "terraform_data" "big" {
  input = format("%0600000d", 0)
}
"""


def test_resource_limits_the_agent_sets_do_not_reach_the_privileged_apply() -> None:
    """sudo hands the invoking user's resource limits to the command: with a file size limit between the
    audit log's size and the new state's, the privileged Terraform would truncate the state it writes."""
    base, root, p = _fresh_root("tfgate-rlimit-")
    try:
        proc = _root_run(p.config, "protect", "init", str(root), "--agent-user", AGENT, "--user", PRIV,
                         "--terraform", p.terraform, "--libexec", str(base / "libexec"))  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        before = p.state()
        p.write(V1 + BIG)
        plan = _agent_plan(p, "big.bin")
        request = base / "request.json"
        request.write_bytes(_request(plan.read_bytes()))
        entry = p.pin.protected.entry
        limit = 256 * 1024
        script = (f"import os, resource; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
                  f"os.execvp('sudo', ['sudo', '-n', '-u', '{PRIV}', '{entry}', 'apply', '{root}'])")  # fmt: skip
        res = run_as(AGENT, p.rt, ["sh", "-c", f'exec python3 -c "{script}" < {request}'], cwd=root,
                     env=p.env())  # fmt: skip
        after = p.state()
        assert after == before or json.loads(after)["resources"], res.stdout + res.stderr
        assert after == before and res.returncode == 2 and "limit" in res.stderr, res.stdout + res.stderr
    finally:
        _root_run(p.config, "protect", "remove", str(root))
        _cleanup(base, root)


_CHILD = r"""
import os, signal, sys, time
got = []
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, lambda n, f: got.append(n))
marker = sys.argv[1]
def until(cond):
    while not cond():
        time.sleep(0.01)
os.kill(os.getppid(), signal.SIGINT)          # the caller's first interrupt, relayed by sudo
until(lambda: got)
for n, name in ((signal.SIGTERM, "TERM"), (signal.SIGHUP, "HUP")):   # and the ones after it
    os.kill(os.getppid(), n)
    until(lambda: os.path.exists(marker + name))
    time.sleep(0); time.sleep(0)
sys.exit(len(got))
"""


def test_the_privileged_apply_passes_one_interrupt_to_terraform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sudo relays the caller's signals: a second interrupt makes Terraform exit at once, without saving the
    state of what it changed. The privileged side forwards the first signal only (Terraform stops cleanly)."""
    import signal

    from tfgate.enforce import gated

    marker = tmp_path / "handled-"
    real = signal.signal

    def wrapped(signum, handler):
        if not callable(handler) or handler in (signal.SIG_DFL, signal.SIG_IGN):
            return real(signum, handler)

        def mark(n, frame):
            handler(n, frame)
            if n != signal.SIGINT:
                Path(f"{marker}{signal.Signals(n).name[3:]}").touch()

        return real(signum, mark)

    monkeypatch.setattr(gated.signal, "signal", wrapped)
    child = [sys.executable, "-c", _CHILD, str(marker)]
    assert gated.run_streamed(child, cwd=tmp_path, one_signal=True) == 1
    for f in tmp_path.glob("handled-*"):
        f.unlink()
    assert gated.run_streamed(child, cwd=tmp_path) == 3  # same-user mode: each signal, as a terminal's
