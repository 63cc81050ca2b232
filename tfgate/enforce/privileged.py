"""Protected mode's privileged half: `tfgate-privileged apply ROOT`, run through sudo as the privileged user.

Small on purpose (the OpenSSH pattern: the part with the power does little and trusts nothing). The command
line is fixed by the sudoers drop-in `tfgate protect init` writes (no flags the caller chooses); the
environment is the wrapper's (`env -i`); the only input is one JSON document on stdin: the plan's bytes
and the approval statements. It then

1. checks that ROOT is pinned in the system configuration as protected for this user, with the caller
   (sudo's SUDO_USER) as its agent user;
2. seals the plan's bytes in a memfd (read once; nothing the caller can write);
3. refuses a plan whose backend is not the pinned one (the default local backend, or the remote backend
   `protect init` pinned from the root's backend block, initialised here with this user's credentials), and
   checks it with the pinned manifest, allowed_signers and Terraform, against the privileged state;
4. installs the providers the plan's lock file names (each one its configuration uses and the manifest allows)
   itself, into its working directory (never from the caller's `.terraform/`), then applies exactly the
   sealed bytes.

Everything is recorded in the pinned audit log. Exit codes as everywhere: 0 applied, 1 blocked, 2 error.
"""

from __future__ import annotations

import base64
import contextlib
import os
import pwd
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tfgate.errors import TfgateError
from tfgate.plan.backend_record import LOCAL_DEFAULT, plan_backend, unpack, without_nulls
from tfgate.sysconfig import ENV_CONFIG, PRIVILEGED_STATE

MAX_INPUT = 1 << 30
#: The privileged state directory's name: a direct `terraform apply` by the agent fails naming this path.
STATE = PRIVILEGED_STATE


def read_request(stream: object) -> tuple[bytes, list[tuple[str, bytes, bytes]], bool]:
    """The caller's one JSON document: {"plan": b64, "approvals": [[name, statement b64, sig b64]],
    "new_workspace": bool}. TfgateError for anything else."""
    raw = stream.buffer.read(MAX_INPUT + 1)  # type: ignore[attr-defined]
    if len(raw) > MAX_INPUT:
        raise TfgateError("request larger than 1 GiB")
    from tfgate.strict import json_loads

    try:
        doc = json_loads(raw)
        if not isinstance(doc, dict) or set(doc) - {"plan", "approvals", "new_workspace"}:
            raise ValueError("unexpected fields")
        plan = base64.b64decode(doc["plan"], validate=True)
        approvals = []
        for name, statement, sig in doc.get("approvals", []):
            safe = Path(str(name)).name
            if not safe.endswith(".json") or safe != name:
                raise ValueError(f"approval name {name!r}")
            approvals.append(
                (safe, base64.b64decode(statement, validate=True), base64.b64decode(sig, validate=True))
            )
        new_workspace = doc.get("new_workspace", False)
        if not isinstance(new_workspace, bool):
            raise ValueError("new_workspace")
    except (ValueError, KeyError, TypeError) as exc:
        raise TfgateError(f"malformed request on stdin: {exc}") from None
    return plan, approvals, new_workspace


def _protected_pin(root: Path):  # -> sysconfig.Pin
    from tfgate import sysconfig

    config = sysconfig.load()
    if config is None:
        raise TfgateError("no system configuration: protected mode is not set up (tfgate protect init)")
    pin = config.pin_for(root)
    me = pwd.getpwuid(os.geteuid()).pw_name
    if pin is None or pin.root is None or pin.protected is None:
        raise TfgateError(f"{root} is not a protected root in {config.source}")
    if pin.protected.user != me:
        raise TfgateError(f"{root} is protected for user {pin.protected.user}, not {me}")
    caller = os.environ.get("SUDO_USER")
    if caller != pin.protected.agent_user:
        raise TfgateError(
            f"{root} accepts applies from {pin.protected.agent_user} through sudo, not {caller}"
        )
    if pin.manifest is None or pin.terraform is None or pin.audit_log is None:
        raise TfgateError(
            f"{config.source}: protected root {root} must pin manifest, terraform and audit_log"
        )
    return pin


#: Resource limits the apply needs (None: unlimited). sudo hands the caller's limits to the command, so the
#: agent could otherwise have the privileged Terraform cut short mid-apply or truncate the state it writes.
_LIMITS = {"RLIMIT_FSIZE": None, "RLIMIT_CPU": None, "RLIMIT_AS": None, "RLIMIT_DATA": None,
           "RLIMIT_NOFILE": 1024, "RLIMIT_NPROC": 512, "RLIMIT_STACK": 8 << 20}  # fmt: skip


def own_limits() -> None:
    """The limits above in force (unlimited ones raised to unlimited, the others to at least the minimum);
    TfgateError when the caller's hard limit leaves less."""
    import resource

    inf = resource.RLIM_INFINITY
    for name, need in _LIMITS.items():
        which = getattr(resource, name, None)
        if which is None:
            continue
        soft, hard = resource.getrlimit(which)
        if hard != inf and (need is None or hard < need):
            raise TfgateError(
                f"resource limit {name} is {hard} (the caller's, through sudo): the apply needs "
                f"{'no limit' if need is None else f'at least {need}'}; run it without `ulimit`"
            )
        if need is None and soft != inf:
            resource.setrlimit(which, (inf, inf))
        elif need is not None and soft != inf and soft < need:
            resource.setrlimit(which, (need, hard))


def run(root: Path) -> int:
    """Check and apply the plan on stdin for the protected ROOT."""
    from tfgate.enforce import gated
    from tfgate.enforce.sealed import seal

    own_limits()
    os.umask(0o022)
    pin = _protected_pin(root)
    base = state_dir_of(pin)
    plan, approvals, new_workspace = read_request(sys.stdin)
    if new_workspace:
        raise TfgateError(
            "--new-workspace is a human's confirmation: in a protected root only root gives it, by running the "
            f"first apply itself (`sudo tfgate apply --new-workspace PLAN` in {root}; README, Protected mode)"
        )
    kind, config, workspace = plan_backend(plan)
    pinned = pin.protected.backend
    if pinned is None:
        if kind != "local" or config != LOCAL_DEFAULT:
            raise TfgateError(
                f"the plan writes its state to backend {kind!r} with its own settings: this protected root holds "
                "its state in the default local backend"
            )
    elif kind != pinned.type or without_nulls(unpack(config)) != without_nulls(pinned.config):
        raise TfgateError(
            f"the plan writes its state to backend {kind!r} with settings other than the pinned {pinned.type!r} "
            "backend's: refused"
        )
    if workspace not in pin.protected.workspaces:
        raise TfgateError(
            f"workspace {workspace!r} is not pinned for this root (pinned: {', '.join(pin.protected.workspaces)}); "
            f"root adds one with `tfgate protect init {root} --workspace {workspace} ...`"
        )
    env = privileged_env(base, workspace)
    os.environ.clear()
    os.environ.update(env)
    with tempfile.TemporaryDirectory(prefix="tfgate-approvals-") as tmp:
        paths = []
        for name, statement, sig in approvals:
            (Path(tmp) / name).write_bytes(statement)
            (Path(tmp) / (name + ".sig")).write_bytes(sig)
            paths.append(Path(tmp) / name)
        opts = gated.GateOptions(
            workdir=base / STATE, workspace=workspace, terraform=pin.terraform, manifest=pin.manifest,
            approvals=tuple(paths),
            audit_log=str(pin.audit_log), command=("tfgate-privileged", "apply", str(root)),
            new_workspace=new_workspace, auto_approve=True, one_signal=True,
        )  # fmt: skip
        with seal(plan) as sealed, one_at_a_time(base / STATE):
            prepare(pin, plan, base)
            label = f"{root} (plan from {env['SUDO_USER']}, sha256 {sealed.sha256[:12]})"
            code = gated.apply_checked(opts, sealed, emit=_emit, label=label)
    anchor_audit(Path(pin.audit_log), base / STATE)
    return code


#: Held (flock) while the privileged side prepares and applies: one apply of a root at a time.
LOCK = ".tfgate-privileged.lock"


@contextlib.contextmanager
def one_at_a_time(workdir: Path) -> Iterator[None]:
    """An exclusive lock on the root's privileged working directory: a second apply while one runs would rebuild
    the `.terraform/` the first is using; it is refused (exit 2), not queued behind it."""
    import fcntl

    fd = os.open(workdir / LOCK, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TfgateError(
                "another apply of this protected root is running: nothing done; try again when it has ended"
            ) from None
        yield
    finally:
        os.close(fd)


#: The privileged copy of the audit log's head, in its state directory (`tfgate audit verify --anchor FILE`).
ANCHOR = "audit-anchor.json"


def anchor_audit(log: Path, base: Path) -> None:
    """Record the audit log's head where only the privileged user writes, after every privileged check (allowed
    and applied, or blocked); a run that ends in an input error leaves the previous anchor."""
    from tfgate.anchor import head, write_anchor

    h = head(log)
    if h is not None:
        write_anchor(base / ANCHOR, h)


def state_dir_of(pin) -> Path:
    """The privileged directory of a protected root: the manifest is pinned at BASE/policy/tfgate.yaml."""
    return Path(pin.manifest).parent.parent


#: The apply credentials `protect init --env-file` placed (privileged user 0600): NAME=VALUE lines.
CREDENTIALS = "credentials.env"
#: What the privileged side sets itself: an env file cannot change where Terraform finds its configuration,
#: providers, state or workspace, nor add arguments to the apply.
_RESERVED = {"PATH", "HOME", "LANG", "SUDO_USER", "TF_PLUGIN_CACHE_DIR", "TF_CLI_CONFIG_FILE", "TF_IN_AUTOMATION",
             "CHECKPOINT_DISABLE", "TF_DATA_DIR", "TF_WORKSPACE", "TF_INPUT", "TF_FORCE_LOCAL_BACKEND"}  # fmt: skip
_RESERVED_PREFIXES = ("TF_CLI_ARGS", "TF_REATTACH_PROVIDERS", "TFGATE_", "LD_", "PYTHON", "SUDO_")


def read_env_file(data: bytes, source: str) -> dict[str, str]:
    """NAME=VALUE lines (blank lines and # comments skipped; values taken literally, no quotes or expansion).
    Anything else, a name given twice, or a name the privileged side sets itself is refused."""
    import re

    out: dict[str, str] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TfgateError(f"{source}: not UTF-8") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise TfgateError(f"{source}:{n}: not NAME=VALUE")
        if name in out:
            raise TfgateError(f"{source}:{n}: {name} given twice")
        if name.upper() in _RESERVED or name.upper().startswith(_RESERVED_PREFIXES):
            raise TfgateError(f"{source}:{n}: {name} is set by tfgate's privileged side, not by an env file")
        out[name] = value
    return out


def credentials(base: Path) -> dict[str, str]:
    """The placed apply credentials (none: Terraform finds its own, e.g. in data/.aws/ as HOME is data/)."""
    path = base / "data" / CREDENTIALS
    try:
        return read_env_file(path.read_bytes(), str(path))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise TfgateError(f"cannot read {path}: {exc.strerror or exc}") from None


def privileged_env(base: Path, workspace: str = "default") -> dict[str, str]:
    """What Terraform runs with on the privileged side: the placed credentials, its own data dir, plugin cache
    and CLI config, and the plan's workspace (Terraform applies a saved plan to the selected workspace, not
    to the one the plan was made in)."""
    data = base / "data"
    return {
        **credentials(base),
        "TF_WORKSPACE": workspace,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(data),
        "LANG": "C.UTF-8",
        "TF_PLUGIN_CACHE_DIR": str(data / "plugins"),
        "TF_CLI_CONFIG_FILE": str(data / "terraformrc"),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "SUDO_USER": os.environ.get("SUDO_USER", ""),
        # the system configuration the entry point named (tests only; sudo's env_reset keeps the caller's out):
        # the check below reads the same pin as the one that let this run
        **({ENV_CONFIG: os.environ[ENV_CONFIG]} if os.environ.get(ENV_CONFIG) else {}),
    }


def prepare(pin, plan: bytes, base: Path) -> None:
    """The privileged working directory made ready for the plan: the CLI configuration checked against the pin,
    then the plan's providers (each used by it and on the allow-list) installed by this side and a pinned remote
    backend initialised, in one `terraform init` (tfgate.enforce.providers)."""
    from tfgate.enforce import providers
    from tfgate.plan.terraform import find_terraform
    from tfgate.policy.manifest import load_manifest

    providers.check_cli_config(base / "data" / "terraformrc", pin.protected.provider_mirror)
    allowed = load_manifest(Path(pin.manifest)).providers
    backend = pin.protected.backend is not None
    providers.install(find_terraform(pin.terraform), plan, base / STATE, allowed, backend, root=str(pin.root))


def _emit(result: object) -> None:
    from tfgate.render import render

    sys.stdout.write(render(result, "text"))  # type: ignore[arg-type]
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "apply" or not args[1].startswith("/"):
        sys.stderr.write(
            "usage: tfgate-privileged apply /ABSOLUTE/ROOT  (plan and approvals as JSON on stdin)\n"
        )
        raise SystemExit(2)
    try:
        code = run(Path(args[1]))
    except TfgateError as exc:
        sys.stderr.write(f"tfgate (privileged): error: {exc}\n")
        code = exc.exit_code
    except Exception as exc:  # fail closed
        sys.stderr.write(f"tfgate (privileged): internal error ({type(exc).__name__}): {exc}\n")
        code = 2
    raise SystemExit(code)


if __name__ == "__main__":
    main()
