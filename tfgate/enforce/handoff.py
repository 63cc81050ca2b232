"""Protected mode's unprivileged half: `tfgate apply`/`destroy` run by the agent's user in a protected root
hand the plan's bytes and the approval statements to the privileged entry point through sudo.

The agent's side decides nothing that matters: it shows its own check (the same policy, read-only) and asks
for confirmation, then sends one JSON document on sudo's stdin; the privileged side reads it once, checks it
again with the pinned policy against the state it holds, and applies exactly those bytes. The command line
is the one the sudoers drop-in allows, with no argument the caller chooses.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tfgate.errors import TfgateError


def request(plan: bytes, approvals: tuple[Path, ...], new_workspace: bool) -> bytes:
    """The document the privileged side reads: the plan and each statement with its signature."""
    from tfgate.approvals.statement import signature_path, statement_files

    entries = []
    for i, path in enumerate(statement_files(list(approvals))):
        sig = signature_path(path)
        try:
            entries.append([f"{i:03d}-{path.name}" if path.name.endswith(".json") else f"{i:03d}.json",
                            base64.b64encode(path.read_bytes()).decode(),
                            base64.b64encode(sig.read_bytes() if sig.is_file() else b"").decode()])  # fmt: skip
        except OSError as exc:
            raise TfgateError(f"cannot read approval {path}: {exc.strerror or exc}") from None
    doc = {"plan": base64.b64encode(plan).decode(), "approvals": entries, "new_workspace": new_workspace}
    return json.dumps(doc).encode()


def handoff(
    opts,
    emit: Callable[[object], None],
    original: Path,
    confirm: Callable[[], bool] | None,
    *,
    check: Callable[..., object],
    _say: Callable[[str], None],
) -> int:
    """Check locally with CHECK (for the agent to see), confirm, then `sudo -n -u PRIVILEGED ENTRY apply ROOT`."""
    from tfgate import sysconfig
    from tfgate.enforce.sealed import read_once, seal

    pin = sysconfig.resolve(opts.workdir).pin
    data = read_once(original)
    with seal(data) as sealed:
        result = check(opts, sealed.path, shown=original)  # the way out names the saved plan, not the memfd
    emit(result)
    if result.exit_code != 0:  # type: ignore[attr-defined]
        _say("blocked: nothing handed to the privileged side, nothing applied")
        return result.exit_code  # type: ignore[attr-defined]
    if confirm is not None and not confirm():
        _say("not confirmed: nothing applied")
        return 1
    protected = pin.protected
    argv = ["sudo", "-n", "-u", protected.user, protected.entry, "apply", str(pin.root)]
    _say(f"protected root: the apply runs as {protected.user} ({' '.join(argv[4:])})")
    sys.stdout.flush()
    try:
        proc = subprocess.run(argv, input=request(data, opts.approvals, opts.new_workspace))
    except OSError as exc:
        raise TfgateError(f"cannot run sudo for the protected apply: {exc.strerror or exc}") from None
    return proc.returncode
