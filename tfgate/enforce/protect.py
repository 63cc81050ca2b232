"""`tfgate protect init|status|remove DIR`: set up protected mode for a Terraform root (root only).

Afterwards the root's state, pinned policy, ledger and audit log belong to a dedicated system user (default
``tfgate``), and the agent's user can only apply through the privileged entry point sudo lets it run:

    /var/lib/USER/roots/SLUG/              root 0755
        policy/tfgate.yaml, allowed_signers   root 0644: the pinned policy (the privileged user cannot edit it)
        tfgate-apply-only/terraform.tfstate   USER 0644: the state (DIR/terraform.tfstate links here; a direct
                                              `terraform apply` fails with this path in its error)
        log/audit.jsonl                       USER 0644: the audit log of privileged runs
        tfgate-apply-only/terraform.tfstate.d/NAME/   USER 0755: the pinned workspaces' states (DIR/terraform.tfstate.d
                                              links here: only root adds a workspace, with --workspace NAME)
        data/                                 USER 0700: Terraform's data dir, plugin cache and CLI config
        data/credentials.env                  USER 0600: the apply credentials (--env-file), only this side has them
        data/terraformrc                      root 0644: its CLI configuration (the registry, or --provider-mirror)
    /etc/tfgate/config.yaml                   root 0644: the root pinned (manifest, allowed_signers, audit log,
                                              Terraform, protected: {user, agent_user, entry})
    /usr/local/libexec/tfgate/tfgate-privileged   root 0755: the entry point (fixed interpreter and path)
    /etc/sudoers.d/tfgate-SLUG                root 0440: AGENT may run exactly `ENTRY apply DIR` as USER

Every step says what it changed; running it again changes nothing (idempotent).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tfgate.enforce.privileged import CREDENTIALS, STATE, read_env_file
from tfgate.enforce.trust import copy_tree_into, policy_bytes, read_regular, signers_bytes, write_into
from tfgate.errors import TfgateError

LIBEXEC = Path("/usr/local/libexec/tfgate")
SUDOERS_D = Path("/etc/sudoers.d")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9_./-]+$")

Say = Callable[[str], None]


@dataclass(frozen=True)
class Layout:
    root: Path
    user: str
    agent: str
    base: Path
    entry: Path
    sudoers: Path

    @property
    def policy(self) -> Path:
        return self.base / "policy"

    @property
    def state(self) -> Path:
        return self.base / STATE

    @property
    def log(self) -> Path:
        return self.base / "log" / "audit.jsonl"

    @property
    def data(self) -> Path:
        return self.base / "data"


def slug(root: Path) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", root.name.lower()).strip("-") or "root"
    return f"{name[:40]}-{hashlib.sha256(str(root).encode()).hexdigest()[:10]}"


def layout(directory: Path, user: str, agent: str, libexec: Path = LIBEXEC) -> Layout:
    root = Path(os.path.realpath(directory))
    if not root.is_dir():
        raise TfgateError(f"{directory}: not a directory")
    if not _SAFE_PATH.match(str(root)):
        raise TfgateError(
            f"{root}: protected roots need a path of letters, digits and ._-/ (it goes into sudoers)"
        )
    s = slug(root)
    return Layout(root, user, agent, Path("/var/lib") / user / "roots" / s, libexec / "tfgate-privileged",
                  SUDOERS_D / f"tfgate-{s}")  # fmt: skip


def _require_root() -> None:
    if os.geteuid() != 0:
        raise TfgateError(
            "tfgate protect must run as root (it creates a user, owns files and writes sudoers)"
        )


def _user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise TfgateError(f"no such user: {name}") from None


def _mkdir(path: Path, uid: int, gid: int, mode: int, say: Say) -> None:
    if not path.is_dir():
        path.mkdir(parents=True)
        say(f"created {path}")
    info = path.lstat()
    if (info.st_uid, info.st_gid, info.st_mode & 0o7777) != (uid, gid, mode):
        os.chown(path, uid, gid)
        path.chmod(mode)
        say(f"set {path} to {pwd.getpwuid(uid).pw_name} {mode:04o}")


def _install(path: Path, data: bytes, uid: int, gid: int, mode: int, say: Say) -> None:
    """Write PATH atomically when its bytes, owner or mode differ."""
    try:
        info = path.lstat()
        same = path.read_bytes() == data and (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (
            uid,
            gid,
            mode,
        )
    except OSError:
        same = False
    if same:
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chown(tmp, uid, gid)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    say(f"wrote {path}")


def _wrapper() -> bytes:
    """The entry point: the interpreter and tfgate's location are fixed, nothing comes from the caller."""
    import json

    from tfgate.enforce.trust import entry_code

    python, paths = entry_code()
    from tfgate import sysconfig

    config = sysconfig.config_path() or sysconfig.SYSTEM_CONFIG
    pin_env = "" if config == sysconfig.SYSTEM_CONFIG else f" {sysconfig.ENV_CONFIG}={config}"  # tests only
    if "'" in python or any("'" in p for p in paths) or not _SAFE_PATH.match(str(config)):
        raise TfgateError("tfgate's installation path contains a quote: cannot write the entry point")
    return (
        "#!/bin/sh\n# tfgate's privileged entry point (protected mode), written by `tfgate protect init`.\n"
        f'exec /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 SUDO_USER="$SUDO_USER"{pin_env} {python} -I -c '
        f"'import sys; sys.path[:0] = {json.dumps(paths)}; "
        'from tfgate.enforce.privileged import main; main()\' "$@"\n'
    ).encode()


def _sudoers(lay: Layout) -> bytes:
    return (
        f"# tfgate protected mode for {lay.root} (tfgate protect init): {lay.agent} may run exactly this,\n"
        f"# as {lay.user}, with a reset environment and no variables of its own.\n"
        f"Defaults!{lay.entry} env_reset, !setenv\n"
        f"{lay.agent} ALL=({lay.user}) NOPASSWD: {lay.entry} apply {lay.root}\n"
    ).encode()


def _visudo_install(lay: Layout, say: Say) -> None:
    data = _sudoers(lay)
    if lay.sudoers.is_file() and lay.sudoers.read_bytes() == data:
        return
    with tempfile.NamedTemporaryFile(dir=lay.sudoers.parent, prefix=".tfgate-", delete=False) as fh:
        fh.write(data)
    os.chmod(fh.name, 0o440)
    proc = subprocess.run(["visudo", "-cf", fh.name], capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(fh.name)
        raise TfgateError(f"visudo refused the drop-in: {proc.stdout.strip()} {proc.stderr.strip()}")
    os.replace(fh.name, lay.sudoers)
    say(f"wrote {lay.sudoers} (visudo -cf: ok)")


def _ensure_user(name: str, say: Say) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    proc = subprocess.run(
        ["useradd", "--system", "--user-group", "--home-dir", f"/var/lib/{name}", "--no-create-home",
         "--shell", "/usr/sbin/nologin", name],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode not in (0, 9):
        raise TfgateError(f"useradd {name}: {proc.stderr.strip()}")
    say(f"created system user {name}")
    return pwd.getpwnam(name)


def _config_path() -> Path:
    from tfgate import sysconfig

    return sysconfig.config_path() or sysconfig.SYSTEM_CONFIG


def _read_config(path: Path) -> dict:
    from tfgate import sysconfig
    from tfgate.strict import yaml_load

    if not path.exists():
        return {"version": 1, "roots": {}}
    sysconfig.load()  # strict: a broken configuration is fixed by hand, not rewritten
    doc = yaml_load(path.read_bytes())
    doc.setdefault("roots", {})
    return doc


def _write_config(path: Path, doc: dict, say: Say) -> None:
    import yaml

    _mkdir(path.parent, 0, 0, 0o755, say) if not path.parent.is_dir() else None
    header = (
        b"# tfgate system configuration: root-owned; see `tfgate protect` and the README (Protected mode).\n"
    )
    _install(path, header + yaml.safe_dump(doc, sort_keys=False).encode(), 0, 0, 0o644, say)


def init(directory: Path, agent: str, *, user: str = "tfgate", terraform: str | None = None,
         workspaces: tuple[str, ...] = (), env_file: Path | None = None, provider_mirror: Path | None = None,
         libexec: Path = LIBEXEC, say: Say = print) -> int:  # fmt: skip
    """Set up (or repair) protected mode for DIRECTORY; returns 0. WORKSPACES are added to those already
    pinned ("default" always is); ENV_FILE (NAME=VALUE lines) becomes the privileged side's apply credentials;
    PROVIDER_MIRROR (root's filesystem mirror) replaces the registry for provider installation (kept once set)."""
    _require_root()
    from tfgate.enforce.providers import cli_config, mirror_problems

    mirror = os.path.realpath(provider_mirror) if provider_mirror is not None else None
    if mirror is not None and mirror_problems(Path(mirror)):
        raise TfgateError(f"--provider-mirror: {'; '.join(mirror_problems(Path(mirror)))}")
    credentials = None
    if env_file is not None:
        try:
            credentials = env_file.read_bytes()
        except OSError as exc:
            raise TfgateError(f"cannot read {env_file}: {exc.strerror or exc}") from None
        read_env_file(credentials, str(env_file))  # refused before anything changes
    from tfgate.sysconfig import valid_workspace

    for name in workspaces:
        valid_workspace(name)
    from tfgate.plan.terraform import find_terraform
    from tfgate.policy.manifest import find_manifest

    agent_pw = _user(agent)
    if agent_pw.pw_uid == 0 or agent == user:
        raise TfgateError("the agent user must be an ordinary user other than the privileged one")
    from tfgate.enforce.trust import entry_code, refuse_agent_writable

    python, paths = entry_code()
    tf_path = terraform or find_terraform()[-1]
    refuse_agent_writable(agent, [python, *paths, *([tf_path] if tf_path.startswith("/") else [])])
    priv = _ensure_user(user, say)
    lay = layout(directory, user, agent, libexec)
    manifest_src = find_manifest(lay.root)
    if manifest_src is None and not (lay.policy / "tfgate.yaml").is_file():
        raise TfgateError(
            f"{lay.root} has no tfgate.yaml: write the policy there first (it is copied and pinned)"
        )
    uid, gid = priv.pw_uid, priv.pw_gid
    _mkdir(Path("/var/lib") / user, uid, gid, 0o755, say)
    _mkdir(lay.base.parent, 0, 0, 0o755, say)
    _mkdir(lay.base, 0, 0, 0o755, say)
    _mkdir(lay.policy, 0, 0, 0o755, say)
    if not (lay.policy / "tfgate.yaml").is_file() and manifest_src is not None:
        data, manifest = policy_bytes(manifest_src)  # a policy that does not load is not pinned
        _install(lay.policy / "tfgate.yaml", data, 0, 0, 0o644, say)
        if manifest.allowed_signers is not None and manifest.allowed_signers.is_file():
            _install(
                lay.policy / "allowed_signers", signers_bytes(manifest.allowed_signers), 0, 0, 0o644, say
            )
    elif manifest_src is not None and manifest_src.read_bytes() != (lay.policy / "tfgate.yaml").read_bytes():
        say(f"note: {manifest_src} differs from the pinned policy (kept): review and pin it with "
            f"`tfgate protect policy {lay.root}`")  # fmt: skip
    for d, mode in (
        (lay.state, 0o755),
        (lay.log.parent, 0o755),
        (lay.data, 0o700),
        (lay.data / "plugins", 0o700),
    ):
        _mkdir(d, uid, gid, mode, say)
    if credentials is not None:
        _install(lay.data / CREDENTIALS, credentials, uid, gid, 0o600, say)
    path = _config_path()
    doc = _read_config(path)
    before = (doc["roots"].get(str(lay.root)) or {}).get("protected") or {}
    pinned = list(dict.fromkeys(["default", *before.get("workspaces", []), *workspaces]))
    mirror = mirror or before.get("provider_mirror")
    _install(
        lay.data / "terraformrc", cli_config(mirror), 0, 0, 0o644, say
    )  # root's content, checked per run
    backend = _remote_backend(lay.root)
    if backend is None:
        _move_state(lay, uid, gid, say)
        _link_workspaces(lay, pinned, uid, gid, say)
    else:  # the state is remote: the privileged side's credentials (in data/, its HOME) are what can write it
        _install(lay.state / "backend.tf", _backend_tf(backend), 0, 0, 0o644, say)
    if not lay.log.exists():
        _install(lay.log, b"", uid, gid, 0o644, say)
    _mkdir(libexec, 0, 0, 0o755, say) if not libexec.is_dir() else None
    _install(lay.entry, _wrapper(), 0, 0, 0o755, say)
    tf = terraform or find_terraform()[-1]
    if tf != "embedded":
        tf = os.path.realpath(tf) if os.path.exists(tf) else "embedded"
    if tf.endswith("embedded.py") or "tfgate.plan.embedded" in tf:
        tf = "embedded"
    entry = {
        "manifest": str(lay.policy / "tfgate.yaml"),
        **(
            {"allowed_signers": str(lay.policy / "allowed_signers")}
            if (lay.policy / "allowed_signers").is_file()
            else {}
        ),
        "audit_log": str(lay.log),
        "terraform": tf,
        "protected": {
            "user": user,
            "agent_user": agent,
            "entry": str(lay.entry),
            **({"backend": {"type": backend.type, "config": backend.config}} if backend else {}),
            "workspaces": pinned,
            **({"provider_mirror": mirror} if mirror else {}),
        },
    }
    doc["roots"][str(lay.root)] = entry
    _write_config(path, doc, say)
    _visudo_install(lay, say)
    _check_entry(lay, say)
    say(f"protected: {lay.root} (apply as {user} via `tfgate apply`; {agent} keeps editing the .tf files)")
    return 0


def _remote_backend(root: Path):  # -> Backend | None
    """The backend the root's .tf files declare, when it is not the default local one."""
    from tfgate.state.backend import configured_backend

    backend = configured_backend(root)
    if backend is None or (backend.type == "local" and not backend.config):
        return None
    if backend.type in ("local", "cloud", "remote"):
        raise TfgateError(
            f"{root}: backend {backend.type!r} with settings: protected mode holds a local state itself, or pins "
            "a remote backend such as s3 (HCP Terraform is its own boundary)"
        )
    return backend


def _hcl(value: object) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_hcl(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_hcl(v) for v in value) + "]"
    return json.dumps(value)


def _backend_tf(backend) -> bytes:
    """The pinned backend as a .tf file in the privileged directory (where tfgate's state checks read it)."""
    body = "".join(f"    {k} = {_hcl(v)}\n" for k, v in backend.config.items())
    return f'# pinned by `tfgate protect init`\nterraform {{\n  backend "{backend.type}" {{\n{body}  }}\n}}\n'.encode()


def _move_state(lay: Layout, uid: int, gid: int, say: Say) -> None:
    link, target = lay.root / "terraform.tfstate", lay.state / "terraform.tfstate"
    if link.is_symlink() and os.readlink(link) == str(target):
        return
    if link.is_symlink() or (link.exists() and not link.is_file()):
        raise TfgateError(f"{link} is not a regular state file: move it away first")
    if link.is_file():
        if target.exists():
            raise TfgateError(f"both {link} and the protected {target} exist: keep one")
        _install(target, read_regular(link), uid, gid, 0o644, lambda _: None)
        link.unlink()
        say(f"moved the state {link} -> {target} ({lay.user} 0644)")
        backup = lay.root / "terraform.tfstate.backup"
        if backup.is_file() and not backup.is_symlink():
            _install(lay.state / backup.name, read_regular(backup), uid, gid, 0o644, lambda _: None)
            backup.unlink()
    link.symlink_to(target)
    os.lchown(link, 0, 0)
    say(f"linked {link} -> {target} (readable for planning, writable only by {lay.user})")


def _link_workspaces(lay: Layout, pinned: list[str], uid: int, gid: int, say: Say) -> None:
    """DIR/terraform.tfstate.d links to the privileged one, which holds a directory per pinned workspace:
    the agent plans against every pinned workspace's state and can neither write one nor add a workspace.
    States already in DIR/terraform.tfstate.d move there; a workspace there that is not pinned is refused."""
    link, target = lay.root / "terraform.tfstate.d", lay.state / "terraform.tfstate.d"
    _mkdir(target, uid, gid, 0o755, say)
    if link.is_dir() and not link.is_symlink():
        found = sorted(p.name for p in link.iterdir())
        extra = [n for n in found if n not in pinned]
        if extra:
            raise TfgateError(
                f"{link} holds workspace(s) {', '.join(extra)}: pin them with --workspace NAME, or move them away"
            )
        for name in found:  # every file moves (state and backup): nothing is deleted
            files = sorted((link / name).iterdir()) if (link / name).is_dir() else [link]
            if not (link / name).is_dir() or any(
                not f.is_file() or f.is_symlink() or (target / name / f.name).exists() for f in files
            ):
                raise TfgateError(
                    f"{link / name}: not plain state files, or already in {target / name}: sort it out first"
                )
            _mkdir(target / name, uid, gid, 0o755, say)
            for f in files:
                _install(target / name / f.name, read_regular(f), uid, gid, 0o644, lambda _: None)
                f.unlink()
                say(f"moved {f} -> {target / name / f.name} ({lay.user} 0644)")
            (link / name).rmdir()
        link.rmdir()
    elif (link.is_symlink() and os.readlink(link) != str(target)) or (link.exists() and not link.is_dir()):
        raise TfgateError(f"{link} is not the workspaces' directory: move it away first")
    for name in pinned:
        if name != "default":
            _mkdir(target / name, uid, gid, 0o755, say)
    if not link.is_symlink():
        link.symlink_to(target)
        os.lchown(link, 0, 0)
        say(f"linked {link} -> {target} (workspaces: {', '.join(pinned)})")


def _check_entry(lay: Layout, say: Say) -> None:
    """The privileged user can run the entry point (interpreter and tfgate reachable)."""
    proc = subprocess.run(["runuser", "-u", lay.user, "--", str(lay.entry)], capture_output=True, text=True)
    if "usage: tfgate-privileged" not in proc.stderr:
        raise TfgateError(
            f"{lay.user} cannot run {lay.entry} ({proc.stderr.strip()[-300:]}): install tfgate where that user can "
            "read it (for example a venv under /opt) and run `tfgate protect init` from it"
        )


def status(directory: Path, *, user: str | None = None, say: Say = print) -> int:
    """What protects DIRECTORY, checked item by item: 0 when everything is in place, 1 otherwise."""
    from tfgate import sysconfig

    config = sysconfig.load()
    root = Path(os.path.realpath(directory))
    pin = config.pin_for(root) if config else None
    if pin is None or pin.protected is None or pin.root is None:
        say(
            f"{root}: not protected (no protected entry in {config.source if config else sysconfig.SYSTEM_CONFIG})"
        )
        return 1
    lay = layout(root, pin.protected.user, pin.protected.agent_user, Path(pin.protected.entry).parent)
    priv = _user(lay.user)
    problems = []
    checks = [
        (pin.manifest, 0, 0o022), (pin.allowed_signers, 0, 0o022), (pin.audit_log, priv.pw_uid, 0o022),
        (lay.state, priv.pw_uid, 0o022), (lay.entry, 0, 0o022), (lay.sudoers, 0, 0o022),
        (lay.data / "terraformrc", 0, 0o022),
    ]  # fmt: skip
    for path, uid, forbidden in checks:
        if path is None:
            continue
        try:
            info = Path(path).lstat()
        except OSError:
            problems.append(f"missing: {path}")
            continue
        if info.st_uid != uid or info.st_mode & forbidden:
            problems.append(
                f"{path}: owner uid {info.st_uid}, mode {info.st_mode & 0o7777:04o} (want uid {uid}, not group/other-writable)"
            )
    link = root / "terraform.tfstate"
    if not (link.is_symlink() and os.readlink(link) == str(lay.state / "terraform.tfstate")):
        problems.append(f"{link} does not link to the protected state (the agent's plans will not see it)")
    wlink = root / "terraform.tfstate.d"
    if pin.protected.backend is None and not (
        wlink.is_symlink() and os.readlink(wlink) == str(lay.state / "terraform.tfstate.d")
    ):
        problems.append(f"{wlink} does not link to the protected workspaces' states")
    for name in pin.protected.workspaces:
        if name != "default" and pin.protected.backend is None:
            checks_ws = lay.state / "terraform.tfstate.d" / name
            info = checks_ws.lstat() if checks_ws.is_dir() else None
            if info is None or info.st_uid != priv.pw_uid or info.st_mode & 0o022:
                problems.append(f"{checks_ws}: missing, or not {lay.user}'s and closed to others' writes")
    creds = lay.data / CREDENTIALS
    if creds.exists():
        info = creds.lstat()
        if info.st_uid != priv.pw_uid or info.st_mode & 0o077:
            problems.append(
                f"{creds}: owner uid {info.st_uid}, mode {info.st_mode & 0o7777:04o} (want {lay.user} 0600)"
            )
    if (
        lay.sudoers.exists()
        and subprocess.run(["visudo", "-cf", str(lay.sudoers)], capture_output=True).returncode
    ):
        problems.append(f"{lay.sudoers}: visudo -c fails")
    say(f"{root}: protected for {lay.agent}, applied as {lay.user} through {lay.entry}")
    say(f"  workspaces: {', '.join(pin.protected.workspaces)}")
    problems += _provider_status(lay, pin.protected.provider_mirror, say)
    if not creds.is_file():
        say(f"  apply credentials: none placed ({lay.user}'s own: {lay.data}/.aws/, ...)")
    elif os.access(creds, os.R_OK):
        say(
            f"  apply credentials: {', '.join(sorted(read_env_file(creds.read_bytes(), str(creds))))} ({creds})"
        )
    else:
        say(f"  apply credentials: placed in {creds} (readable only by {lay.user})")
    for line in problems:
        say(f"  problem: {line}")
    say(
        "  all in place" if not problems else f"  {len(problems)} problem(s): run `tfgate protect init` again"
    )
    return 0 if not problems else 1


def _provider_status(lay: Layout, mirror: str | None, say: Say) -> list[str]:
    """Where the privileged side installs providers from; problems with its CLI configuration or mirror."""
    from tfgate.enforce.providers import cli_config, mirror_problems

    say(f"  providers: from {f'the filesystem mirror {mirror} only' if mirror else 'the registry'}, checked "
        f"against each plan's lock file, into {lay.state}/.terraform (plugin cache {lay.data}/plugins)")  # fmt: skip
    from tfgate.policy.manifest import load_manifest

    listed = load_manifest(lay.policy / "tfgate.yaml").providers  # a pinned policy that does not load: exit 2
    say(f"  allowed providers (the pinned `plan: {{providers}}`): {', '.join(listed or ()) or 'none'}"
        + (" (no list: built-in ones only)" if listed is None else ""))  # fmt: skip
    rc = lay.data / "terraformrc"
    problems = (
        []
        if rc.is_file() and rc.read_bytes() == cli_config(mirror)
        else [f"{rc}: not the pinned CLI configuration"]
    )
    return problems + (mirror_problems(Path(mirror)) if mirror else [])


def remove(directory: Path, *, say: Say = print) -> int:
    """Undo `init` for DIRECTORY: the state goes back into it, the sudoers drop-in and the pin are removed
    (the privileged directory is kept, with its audit log). Returns 0."""
    _require_root()
    path = _config_path()
    root = Path(os.path.realpath(directory))
    doc = _read_config(path)
    entry = doc["roots"].get(str(root))
    if entry is None:
        say(f"{root}: not protected, nothing to remove")
        return 0
    prot = entry.get("protected") or {}
    lay = layout(
        root,
        prot.get("user", "tfgate"),
        prot.get("agent_user", ""),
        Path(prot.get("entry", LIBEXEC / "x")).parent,
    )
    if lay.sudoers.exists():
        lay.sudoers.unlink()
        say(f"removed {lay.sudoers}")
    link, state = root / "terraform.tfstate", lay.state / "terraform.tfstate"
    if link.is_symlink():
        owner = root.stat()
        if state.is_file():  # over the link, never through it (nor through one the agent swapped in)
            write_into(link, state.read_bytes(), owner.st_uid, owner.st_gid)
            say(f"copied the state back to {link}")
        else:
            link.unlink()
    wlink, workspaces = root / "terraform.tfstate.d", lay.state / "terraform.tfstate.d"
    if wlink.is_symlink():
        wlink.unlink()
        if workspaces.is_dir():
            owner = root.stat()
            copy_tree_into(workspaces, wlink, owner.st_uid, owner.st_gid)
            say(f"copied the workspaces' states back to {wlink}")
    del doc["roots"][str(root)]
    _write_config(path, doc, say)
    say(f"unprotected: {root} (kept {lay.base}: its audit log and the state as it was)")
    return 0
