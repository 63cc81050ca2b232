"""The states inside a saved binary plan (a zip), read in memory with bounded sizes, never extracted."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from tfgate.errors import TfgateError
from tfgate.state.tfstate import StateInfo, parse_state

MAX_MEMBERS = 10_000
MAX_STATE_BYTES = 512 * 1024 * 1024


def plan_states(path: Path) -> tuple[StateInfo | None, StateInfo | None]:
    """(`tfstate`, `tfstate-prev`) of a saved plan: the state it was planned against, and the one before."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    except (OSError, zipfile.BadZipFile) as exc:
        raise TfgateError(f"{path}: not a readable saved plan: {exc}") from None
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise TfgateError(f"{path}: saved plan has {len(infos)} members; refusing (limit {MAX_MEMBERS})")
    found: dict[str, StateInfo | None] = {}
    for info in infos:
        if info.filename not in ("tfstate", "tfstate-prev"):
            continue
        if info.filename in found:  # Terraform applies onto the first, zipfile would read the last
            raise TfgateError(f"{path}: saved plan holds {info.filename} twice; refusing")
        if info.file_size > MAX_STATE_BYTES:
            raise TfgateError(
                f"{path}: {info.filename} is {info.file_size} bytes; refusing (limit {MAX_STATE_BYTES})"
            )
        with archive.open(info) as member:
            data = member.read(MAX_STATE_BYTES + 1)
        if len(data) > MAX_STATE_BYTES:
            raise TfgateError(f"{path}: {info.filename} inflates beyond {MAX_STATE_BYTES} bytes; refusing")
        found[info.filename] = parse_state(data, f"{path}!{info.filename}")
    return found.get("tfstate"), found.get("tfstate-prev")
