"""Audit log anchors: the log's head, kept where the log itself cannot be edited alone.

A hash chain shows an edited, deleted or inserted line, but not a tail cut off, nor a chain rebuilt from
scratch. So the head (the last line's ``seq`` and hash) is anchored elsewhere and `tfgate audit verify`
checks that the log still holds it:

- the ledger records the head after each gated apply (``"audit"`` in the ledger document, beside the state
  for S3 backends);
- an anchor file (``{"tfgate": "audit-anchor", "log", "seq", "head", "time"}``): `write_anchor` is the API for
  a copy the agent's user cannot write (protected mode keeps one as the privileged user), checked with
  ``--anchor FILE``;
- a checkpoint signed with an SSH key (`tfgate audit checkpoint --key KEY --signer S`, namespace
  ``tfgate-audit``), verified against the manifest's allowed_signers with ``--checkpoint FILE``
  (tfgate.checkpoint, which also holds `tfgate audit verify`).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tfgate.audit import _last_line, line_hash, resolve_log
from tfgate.errors import TfgateError


@dataclass(frozen=True)
class Head:
    """An audit log's head: the real path of the log, its last line's seq and that line's SHA-256."""

    log: str
    seq: int
    hash: str
    time: str | None = None


def head(log: Path) -> Head | None:
    """The log's current head; None when there is no log or no readable last line."""
    try:
        fd = os.open(log, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TfgateError(f"cannot read audit log {log}: {exc.strerror or exc}") from None
    try:
        last = _last_line(fd)
    finally:
        os.close(fd)
    if not last:
        return None
    try:
        seq = json.loads(last)["seq"]
    except (ValueError, KeyError, TypeError):
        return None
    return Head(str(log.resolve()), seq, line_hash(last)) if isinstance(seq, int) else None


def _by_seq(log: Path) -> tuple[dict[int, str], int]:
    """{seq: line hash} of every readable line, and the highest seq."""
    out: dict[int, str] = {}
    for line in log.read_bytes().split(b"\n"):
        if not line:
            continue
        try:
            seq = json.loads(line).get("seq")
        except (ValueError, AttributeError):
            continue
        if isinstance(seq, int):
            out.setdefault(seq, line_hash(line))
    return out, max(out, default=0)


def check(log: Path, anchored: Head, where: str) -> str | None:
    """Why the log no longer holds the anchored head (the problem to report), or None."""
    lines, last = _by_seq(log)
    when = f" ({anchored.time})" if anchored.time else ""
    what = f"{where} anchors the head seq {anchored.seq} sha256:{anchored.hash}{when}"
    if anchored.seq not in lines:
        if anchored.seq > last:
            return f"{what}, but the log ends at seq {last}: its tail was cut off"
        return f"{what}, which is not in the log: it was rebuilt or rewritten"
    if lines[anchored.seq] != anchored.hash:
        return f"{what}, but the log's entry seq {anchored.seq} is another line: the chain was rebuilt or rewritten"
    return None


# --- anchor files (protected mode's privileged copy) -------------------------------------------------------


def write_anchor(path: Path, h: Head) -> None:
    """Write (atomically) an anchor file holding ``h``."""
    doc = {"tfgate": "audit-anchor", "log": h.log, "seq": h.seq, "head": h.hash,
           "time": h.time or datetime.now(timezone.utc).isoformat(timespec="seconds")}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".anchor-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def read_anchor(path: Path) -> Head:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise TfgateError(f"{path}: not a readable audit anchor: {exc}") from None
    if not isinstance(doc, dict) or doc.get("tfgate") != "audit-anchor":
        raise TfgateError(f'{path}: not an audit anchor ("tfgate": "audit-anchor" missing)')
    return _head(doc, str(path))


def _head(doc: dict[str, Any], where: str) -> Head:
    seq, h, log = doc.get("seq"), doc.get("head"), doc.get("log")
    if (
        not isinstance(seq, int)
        or isinstance(seq, bool)
        or not isinstance(h, str)
        or not isinstance(log, str)
    ):
        raise TfgateError(f"{where}: an audit anchor needs log (string), seq (integer) and head (hex)")
    return Head(
        log, seq, h.removeprefix("sha256:"), doc.get("time") if isinstance(doc.get("time"), str) else None
    )


def anchor_in_ledger(workdir: Path, manifest: Any, result: Any, audit_log: str | Path | None) -> None:
    """After a gated apply: the ledger records the audit log's head (with the state the apply produced)."""
    from tfgate import state

    path = resolve_log(audit_log, manifest_log=manifest.audit_log, cwd=workdir)
    state.record_ledger(
        workdir=workdir, plan=None, manifest=manifest, workspace=result.workspace, result=result,
        audit_head=head(path), applied=result.changes,
    )  # fmt: skip
