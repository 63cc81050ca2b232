"""The system-wide pin: a root-owned ``/etc/tfgate/config.yaml`` naming, globally or per Terraform root, the
manifest, allowed_signers, audit log and Terraform binary every gating command uses.

    version: 1
    defaults:                         # every root not listed below (optional)
      manifest: /etc/tfgate/tfgate.yaml
      terraform: /usr/local/bin/terraform
    roots:
      /srv/infra/prod:                # an absolute path; symlinks resolved
        manifest: /var/lib/tfgate/roots/srv-infra-prod/tfgate.yaml
        allowed_signers: /var/lib/tfgate/roots/srv-infra-prod/allowed_signers
        audit_log: /var/lib/tfgate/roots/srv-infra-prod/audit.jsonl
        terraform: /usr/local/bin/terraform
        protected: {user: tfgate, agent_user: agent}    # written by `tfgate protect init`

When the file exists, a caller other than root cannot steer the gate around it: ``--manifest``,
``--terraform``, ``--audit-log``, ``--no-state-checks``, ``$TFGATE_TERRAFORM``, ``$TFGATE_AUDIT_LOG`` that
differ from the pin, and a working directory that is no pinned root (when there are no ``defaults``), are
refused (exit 2). The file is read strictly (a key twice, an unknown key, a relative path: refused) and only
when it and every directory above it are owned by root and writable by nobody else.

``$TFGATE_SYSTEM_CONFIG`` names another file, for tests: honoured for root, and for other users only while
``/etc/tfgate/config.yaml`` does not exist (then there is no pin to get around; the file named only adds
one). A user who is not root and sets it beside the real file is refused.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from tfgate.errors import TfgateError

SYSTEM_CONFIG = Path("/etc/tfgate/config.yaml")
ENV_CONFIG = "TFGATE_SYSTEM_CONFIG"
#: A protected root's state directory (beside its pinned policy/): where the privileged side checks and applies.
PRIVILEGED_STATE = "tfgate-apply-only"
_AbsPath = Annotated[str, msgspec.Meta(pattern=r"^/", min_length=2)]
_User = Annotated[str, msgspec.Meta(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
#: A workspace name as Terraform accepts it (and safe as one path component).
_Workspace = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,89}$")]


class BackendSpec(msgspec.Struct, forbid_unknown_fields=True):
    """The backend a protected root's plans must write to (its settings as the .tf files give them)."""

    type: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]+$")]
    config: dict[str, Any] = msgspec.field(default_factory=dict)


class ProtectedSpec(msgspec.Struct, forbid_unknown_fields=True):
    """Protected mode: the privileged user owning the root's state and policy, the agent's user."""

    user: _User
    agent_user: _User
    #: The privileged entry point the sudoers drop-in allows (`tfgate-privileged apply ROOT`).
    entry: _AbsPath
    #: A remote backend (S3 ...); None: the default local backend, the state held in the privileged directory.
    backend: BackendSpec | None = None
    #: The workspaces the privileged side applies to (only root adds one: `protect init --workspace NAME`).
    workspaces: list[_Workspace] = msgspec.field(default_factory=lambda: ["default"])
    #: Root's filesystem mirror the privileged side installs providers from (None: the registry).
    provider_mirror: _AbsPath | None = None


class PinSpec(msgspec.Struct, forbid_unknown_fields=True):
    manifest: _AbsPath | None = None
    allowed_signers: _AbsPath | None = None
    audit_log: _AbsPath | None = None
    terraform: _AbsPath | Literal["embedded"] | None = None
    protected: ProtectedSpec | None = None


class SystemConfigSpec(msgspec.Struct, forbid_unknown_fields=True):
    version: Literal[1]
    defaults: PinSpec | None = None
    roots: dict[_AbsPath, PinSpec] = msgspec.field(default_factory=dict)


def valid_workspace(name: str) -> str:
    """NAME when it is a workspace name protected mode accepts (TfgateError otherwise)."""
    try:
        msgspec.convert(name, _Workspace)
    except msgspec.ValidationError:
        raise TfgateError(f"workspace {name!r}: letters, digits and _.- only (up to 90)") from None
    return name


def json_schema() -> dict[str, Any]:
    """The file's JSON Schema (shipped as rules/system-config.schema.json)."""
    schema = msgspec.json.schema(SystemConfigSpec)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tfgate system configuration (/etc/tfgate/config.yaml)"
    return schema


@dataclass(frozen=True)
class Pin:
    """What the system configuration pins for one working directory (None: not pinned)."""

    source: Path
    root: Path | None  # the pinned root this directory is, None when only `defaults` apply
    manifest: Path | None = None
    allowed_signers: Path | None = None
    audit_log: Path | None = None
    terraform: str | None = None
    protected: ProtectedSpec | None = None


@dataclass(frozen=True)
class SystemConfig:
    source: Path
    defaults: PinSpec | None
    roots: dict[Path, PinSpec]

    def pin_for(self, workdir: Path) -> Pin | None:
        """The pin of WORKDIR: its root's entry, else `defaults`, else None (not a pinned root)."""
        where = Path(os.path.realpath(workdir))
        spec, root = self.roots.get(where), where
        if spec is None:  # a protected root's privileged state directory is that root (its pin, its identity)
            spec, root = next(
                ((s, r) for r, s in self.roots.items() if s.protected and _state_dir(s) == where),
                (None, None),
            )
        if spec is None:
            spec, root = self.defaults, None
        if spec is None:
            return None
        return Pin(
            source=self.source, root=root,
            manifest=_path(spec.manifest), allowed_signers=_path(spec.allowed_signers),
            audit_log=_path(spec.audit_log), terraform=spec.terraform, protected=spec.protected,
        )  # fmt: skip


def _state_dir(spec: PinSpec) -> Path | None:
    """The privileged state directory of a protected root (its manifest is pinned at BASE/policy/tfgate.yaml)."""
    return (
        Path(os.path.realpath(Path(spec.manifest).parent.parent / PRIVILEGED_STATE))
        if spec.manifest
        else None
    )


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def is_root() -> bool:
    return os.geteuid() == 0


def is_agent_of(pin: Pin | None) -> bool:
    """Is the current user a protected root's unprivileged side (neither root nor its privileged user)?"""
    if pin is None or pin.protected is None or is_root():
        return False
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name != pin.protected.user


def config_path() -> Path | None:
    """The system configuration in force (None: there is none). TfgateError when a non-root user names
    another file beside the real one."""
    env = os.environ.get(ENV_CONFIG)
    real_exists = os.path.lexists(SYSTEM_CONFIG)
    if env:
        if real_exists and not is_root():
            raise TfgateError(
                f"{ENV_CONFIG} is refused: {SYSTEM_CONFIG} exists and only root may name another system "
                "configuration; unset it"
            )
        return Path(env)
    return SYSTEM_CONFIG if real_exists else None


def load() -> SystemConfig | None:
    """The system configuration, checked and parsed (None when there is none); TfgateError (exit 2) when it
    is unsafe or invalid: a pin that cannot be read must not silently fall away."""
    path = config_path()
    if path is None:
        return None
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise TfgateError(f"system configuration {path} not found ({ENV_CONFIG})") from None
    except OSError as exc:
        raise TfgateError(f"cannot read the system configuration {path}: {exc.strerror}") from None
    _check_ownership(path)  # every time: a directory above may have changed since the last parse
    return _parse(str(path), info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino)


@lru_cache(maxsize=4)
def _parse(path_text: str, _mtime: int, _ctime: int, _size: int, _ino: int) -> SystemConfig:
    from tfgate.strict import yaml_load

    path = Path(path_text)
    try:
        with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as fh:
            data = yaml_load(fh.read())
    except OSError as exc:
        raise TfgateError(f"cannot read the system configuration {path}: {exc.strerror}") from None
    except Exception as exc:  # yaml raises several types; all mean "unreadable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TfgateError(f"{path}: not valid YAML: {first}") from None
    try:
        spec = msgspec.convert(data, SystemConfigSpec)
    except msgspec.ValidationError as exc:
        raise TfgateError(f"{path}: {exc}") from None
    roots: dict[Path, PinSpec] = {}
    for name, pin in spec.roots.items():
        key = Path(os.path.realpath(name))
        if key in roots:
            raise TfgateError(f"{path}: roots {name!r} names the same directory as another entry ({key})")
        roots[key] = pin
    return SystemConfig(path, spec.defaults, roots)


def _check_ownership(path: Path) -> None:
    """The file and every directory above it: owned by root, writable by nobody else (a sticky directory
    such as /tmp is fine: nobody else can rename what root owns in it). Symlinks are refused."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise TfgateError(f"system configuration {path} is not a regular file (a symlink?): refused")
    _owned_by_root(path, info, directory=False)
    for parent in path.absolute().parents:
        _owned_by_root(parent, os.lstat(parent), directory=True)


def _owned_by_root(path: Path, info: os.stat_result, *, directory: bool) -> None:
    if info.st_uid != 0:
        raise TfgateError(f"system configuration refused: {path} is not owned by root (uid {info.st_uid})")
    writable = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable and not (directory and info.st_mode & stat.S_ISVTX):
        raise TfgateError(f"system configuration refused: {path} is writable by others than root")


# --- what the gating commands ask -------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """The settings a gating command runs with, after the system pin."""

    manifest: Path | None
    terraform: str | None
    audit_log: str | Path | None
    state_checks: bool
    pin: Pin | None = None


def _same(given: Any, pinned: Any) -> bool:
    if given is None or pinned is None:
        return given is None
    if str(given) == "embedded" or str(pinned) == "embedded":
        return str(given) == str(pinned)
    return os.path.realpath(str(given)) == os.path.realpath(str(pinned))


def resolve(
    workdir: Path,
    *,
    manifest: Path | None = None,
    terraform: str | None = None,
    audit_log: str | Path | None = None,
    state_checks: bool = True,
    pinned_root_required: bool = True,
    runs_terraform: bool = True,
) -> Resolved:
    """Apply the system pin to a gating command's options: pinned values fill in, and for a user other than
    root every override that differs from the pin is refused (TfgateError, exit 2); so is a directory that is
    no pinned root, unless PINNED_ROOT_REQUIRED is False (the audit log of a guard decision anywhere)."""
    config = load()
    if config is None:
        return Resolved(manifest, terraform, audit_log, state_checks)
    pin = config.pin_for(workdir)
    root = is_root()
    if pin is None:
        if not root and pinned_root_required:
            raise TfgateError(
                f"{os.path.realpath(workdir)} is not a Terraform root pinned in {config.source}: "
                "tfgate gates only the roots it pins (ask an administrator to add it)"
            )
        return Resolved(manifest, terraform, audit_log, state_checks)
    if not root:
        env_tf, env_log = os.environ.get("TFGATE_TERRAFORM"), os.environ.get("TFGATE_AUDIT_LOG")
        refused = [
            what
            for what, given, pinned in (
                ("--manifest", manifest, pin.manifest),
                ("--terraform", terraform, pin.terraform),
                ("$TFGATE_TERRAFORM", env_tf if runs_terraform else None, pin.terraform),
                ("--audit-log", audit_log, pin.audit_log),
                ("$TFGATE_AUDIT_LOG", env_log, pin.audit_log),
            )
            if given is not None and not _same(given, pinned)
        ]
        if not state_checks:
            refused.append("--no-state-checks")
        if refused:
            where = pin.root or "every root"
            raise TfgateError(
                f"{', '.join(refused)} refused: {config.source} pins the gate for {where}; only root may "
                "override it (run the command without it)"
            )
    return Resolved(
        manifest=manifest if manifest is not None else pin.manifest,
        terraform=terraform if terraform is not None else pin.terraform,
        # a protected root's agent user cannot write the privileged audit log: its runs log where they did
        audit_log=audit_log if audit_log is not None or is_agent_of(pin) else pin.audit_log,
        state_checks=state_checks,
        pin=pin,
    )


def gate_manifest(
    explicit: Path | None, workdir: Path, *, terraform: str | None = None, state_checks: bool = True
) -> tuple[Any, Resolved]:
    """The manifest a gating command judges with (the pinned one, with the pinned allowed_signers), and the
    resolved options."""
    import dataclasses

    from tfgate.policy.manifest import load_manifest

    resolved = resolve(workdir, manifest=explicit, terraform=terraform, state_checks=state_checks)
    manifest = load_manifest(resolved.manifest, cwd=workdir)
    pin = resolved.pin
    if pin is not None and pin.protected is not None:
        # A protected root's manifest is a copy of what the agent wrote: a path in it may name a file the agent
        # can write (its root's allowed_signers, a ledger there). Only the pin's signers count (none pinned:
        # none), and the ledger is the privileged state directory's own (or the S3 object beside the state).
        manifest = dataclasses.replace(manifest, allowed_signers=pin.allowed_signers, ledger=None)
    elif pin is not None and pin.allowed_signers is not None:
        manifest = dataclasses.replace(manifest, allowed_signers=pin.allowed_signers)
    return manifest, resolved
