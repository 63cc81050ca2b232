"""Terraform state files (format version 4): only the identity fields, decoded partially."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from tfgate.errors import TfgateError


class _State(msgspec.Struct, gc=False):
    version: int = 0
    lineage: str | None = None
    serial: int | None = None
    terraform_version: str | None = None
    resources: list[msgspec.Raw] = []


_decoder = msgspec.json.Decoder(_State)


@dataclass(frozen=True)
class StateInfo:
    """Who a state is (lineage), how far along (serial), and how much it manages."""

    source: str
    lineage: str | None
    serial: int | None
    resources: int
    terraform_version: str | None = None

    @property
    def empty(self) -> bool:
        return self.resources == 0


def parse_state(data: bytes, source: str) -> StateInfo | None:
    """StateInfo of a state document; None for an empty file. Unreadable state is an input error."""
    if not data.strip():
        return None
    try:
        state = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise TfgateError(f"{source}: not a readable Terraform state: {exc}") from None
    return StateInfo(source, state.lineage, state.serial, len(state.resources), state.terraform_version)
