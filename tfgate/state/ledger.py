"""What tfgate saw of each workspace's state on earlier allowed runs: the evidence for the next run.

A JSON document `{"workspaces": {NAME: {"lineage", "serial", "max_serial", "resources", "digest", "time",
"protected": {IDENTITY KEY: {"rule", "address", "actions", "approvals"}}}}}`,
by default `.tfgate/ledger.json` in the working directory (manifest `state: {ledger: PATH}`), or an object next
to the state for S3 backends. Written atomically (temporary file, then rename).

``"audit": {LOG: {"seq", "head", "time"}}`` (tfgate.anchor) is the audit log's head after the last gated apply,
so a log cut short or rebuilt from scratch no longer holds it."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tfgate.errors import TfgateError

DEFAULT = Path(".tfgate") / "ledger.json"


def ledger_path(workdir: Path, configured: Path | None) -> Path:
    return configured if configured is not None else workdir / DEFAULT


def read_ledger(path: Path) -> dict[str, Any]:
    try:
        return parse_ledger(path.read_bytes(), str(path))
    except FileNotFoundError:
        return {"workspaces": {}}
    except OSError as exc:
        raise TfgateError(f"{path}: unreadable tfgate ledger: {exc.strerror}") from None


def parse_ledger(raw: bytes | None, where: str) -> dict[str, Any]:
    if raw is None:
        return {"workspaces": {}}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise TfgateError(f"{where}: unreadable tfgate ledger: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("workspaces"), dict):
        raise TfgateError(f"{where}: not a tfgate ledger")
    return data


def entry(data: dict[str, Any], workspace: str) -> dict[str, Any] | None:
    return data["workspaces"].get(workspace)


def record(data: dict[str, Any], workspace: str, *, lineage: str | None, serial: int | None, resources: int,
           digest: str, protected: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Remember what this run saw; ``protected`` (identity key -> rule entry) replaces the protected objects
    known, None keeps them."""
    previous = data["workspaces"].get(workspace) or {}
    same_lineage = previous.get("lineage") == lineage
    max_serial = max(serial or 0, previous.get("max_serial", 0) if same_lineage else 0)
    entry_out = {
        "lineage": lineage,
        "serial": serial,
        "max_serial": max_serial,
        "resources": resources,
        "digest": digest,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for key, value in previous.items():  # fields other tfgate versions or features keep here
        entry_out.setdefault(key, value)
    known = protected if protected is not None else previous.get("protected")
    if known:
        entry_out["protected"] = known
    else:
        entry_out.pop("protected", None)
    data["workspaces"][workspace] = entry_out
    return data


def protected(data: dict[str, Any], workspace: str) -> dict[str, dict[str, Any]]:
    """Identity key -> {rule, address, actions, approvals} of the objects known as protected; malformed
    entries are an error (a ledger tfgate cannot read is not silently ignored)."""
    known = (data["workspaces"].get(workspace) or {}).get("protected") or {}
    if not isinstance(known, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("rule"), str) and isinstance(v.get("actions"), list)
        for v in known.values()
    ):
        raise TfgateError(f"workspace {workspace}: malformed `protected` entries in the tfgate ledger")
    return known


def write_ledger(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # here, not at import: the check of a large plan never writes a ledger

    fd, tmp = tempfile.mkstemp(prefix=".ledger-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def record_audit_head(data: dict[str, Any], *, log: str, seq: int, head: str) -> dict[str, Any]:
    """Remember the audit log's head (its last line's seq and hash) in the ledger document."""
    heads = data.setdefault("audit", {})
    if not isinstance(heads, dict):
        raise TfgateError("the ledger's `audit` entry is not a mapping (edited?)")
    heads[log] = {"seq": seq, "head": head, "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return data


def audit_heads(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The audit heads the ledger anchors, by log path."""
    heads = data.get("audit") or {}
    if not isinstance(heads, dict):
        raise TfgateError("the ledger's `audit` entry is not a mapping (edited?)")
    return heads
