"""`tfgate protect policy DIR`: root reviews and re-pins a protected root's policy.

The agent edits `DIR/tfgate.yaml` like any other file, so its bytes are a proposal, never the policy: what the
privileged side enforces is the root-owned copy `protect init` pinned. A change reaches it only when root runs
this command, sees the difference (manifest and allowed_signers, as a unified diff), and confirms it: `yes` on
a terminal, or `--yes`. The new policy must load (a broken one is never pinned), and the change is recorded in
the protected root's audit log with both versions' hashes.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import pwd
import sys
from pathlib import Path

from tfgate.enforce.protect import Say, _install, _require_root
from tfgate.enforce.trust import policy_bytes, signers_bytes
from tfgate.errors import TfgateError


def _diff(old: bytes | None, new: bytes | None, name: str) -> list[str]:
    def lines(data: bytes | None) -> list[str]:
        return [] if data is None else data.decode("utf-8", "replace").splitlines(keepends=True)

    return list(difflib.unified_diff(lines(old), lines(new), f"pinned/{name}", f"proposed/{name}"))


def _read(path: Path | None) -> bytes | None:
    try:
        return None if path is None else path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TfgateError(f"cannot read {path}: {exc.strerror or exc}") from None


def _sha(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def repin(directory: Path, *, manifest: Path | None = None, allowed_signers: Path | None = None,
          yes: bool = False, say: Say = print, stdin=None) -> int:  # fmt: skip
    """Show how the proposed policy (DIR's tfgate.yaml and the allowed_signers it names, or the files given)
    differs from the pinned one and pin it once root confirms. Returns 0 (pinned or already the same), 1 (not
    confirmed)."""
    _require_root()
    from tfgate import sysconfig
    from tfgate.audit import record_event
    from tfgate.enforce.privileged import ANCHOR, STATE, anchor_audit, state_dir_of
    from tfgate.policy.manifest import find_manifest

    config = sysconfig.load()
    root = Path(os.path.realpath(directory))
    pin = config.pin_for(root) if config else None
    if pin is None or pin.protected is None or pin.root is None or pin.manifest is None:
        raise TfgateError(f"{root} is not a protected root: `tfgate protect init` it first")
    source = manifest or find_manifest(root)
    if source is None:
        raise TfgateError(f"{root} has no tfgate.yaml to pin: pass --manifest FILE")
    new_manifest, proposed = policy_bytes(source)  # a policy that does not load is never pinned
    signers_src = allowed_signers or proposed.allowed_signers
    new_signers = _read(signers_src)
    if signers_src is not None and new_signers is None:
        raise TfgateError(f"{signers_src}: no such allowed_signers file")
    if signers_src is not None:
        new_signers = signers_bytes(signers_src)  # parsed before it is shown or pinned
    policy_dir = Path(pin.manifest).parent
    signers_dst = pin.allowed_signers or policy_dir / "allowed_signers"
    old_manifest, old_signers = _read(Path(pin.manifest)), _read(signers_dst)
    diff = _diff(old_manifest, new_manifest, "tfgate.yaml")
    if new_signers is not None:
        diff += _diff(old_signers, new_signers, "allowed_signers")
    if not diff:
        say(f"{root}: the pinned policy is already {source}" + (f" and {signers_src}" if signers_src else ""))
        return 0
    say("".join(diff).rstrip("\n"))
    if not yes:
        stdin = stdin or sys.stdin
        if not stdin.isatty():
            raise TfgateError(
                "no terminal to confirm on: review the difference above and run again with --yes"
            )
        sys.stderr.write(f"\nPin this policy for {root}? Only 'yes' will be accepted.\n  Enter a value: ")
        sys.stderr.flush()
        if stdin.readline().strip() != "yes":
            say("not confirmed: the pinned policy is unchanged")
            return 1
    _install(Path(pin.manifest), new_manifest, 0, 0, 0o644, say)
    if new_signers is not None:
        _install(signers_dst, new_signers, 0, 0, 0o644, say)
        if pin.allowed_signers is None:
            _pin_signers(root, signers_dst, say)
    state = state_dir_of(pin) / STATE
    if pin.audit_log is not None:
        record_event(
            "policy_pinned", command=["tfgate", "protect", "policy", str(root)], log=pin.audit_log,
            manifest_sha256={"old": _sha(old_manifest), "new": _sha(new_manifest)},
            allowed_signers_sha256={"old": _sha(old_signers), "new": _sha(new_signers or old_signers)},
            source=str(source),
        )  # fmt: skip
        anchor_audit(Path(pin.audit_log), state)
        priv = pwd.getpwnam(pin.protected.user)
        os.chown(state / ANCHOR, priv.pw_uid, priv.pw_gid)
    say(
        f"pinned: the policy of {root} is now {source}"
        + (f" (recorded in {pin.audit_log})" if pin.audit_log else "")
    )
    return 0


def _pin_signers(root: Path, signers: Path, say: Say) -> None:
    """Name a newly pinned allowed_signers file in the root's system configuration entry."""
    from tfgate.enforce.protect import _config_path, _read_config, _write_config

    path = _config_path()
    doc = _read_config(path)
    doc["roots"][str(root)]["allowed_signers"] = str(signers)
    _write_config(path, doc, say)
