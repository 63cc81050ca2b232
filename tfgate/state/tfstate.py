"""Terraform state files (format version 4): only the identity fields, decoded partially."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec

from tfgate.errors import TfgateError

#: The state format version tfgate reads (Terraform 0.12+ and OpenTofu write 4).
STATE_VERSION = 4


class _State(msgspec.Struct, gc=False):
    """The identity fields every Terraform state carries; a document without them is not a state."""

    version: int
    lineage: str  # empty in the state a saved plan holds for a workspace without state
    serial: Annotated[int, msgspec.Meta(ge=0)]
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
    """StateInfo of a state document; None for an empty file. A document that is not a Terraform state of
    a known format version (version, lineage and serial of the right types) is an input error."""
    if not data.strip():
        return None
    try:
        state = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise TfgateError(f"{source}: not a readable Terraform state: {exc}") from None
    if state.version != STATE_VERSION:
        raise TfgateError(
            f"{source}: unsupported Terraform state format version {state.version} "
            f"(tfgate reads version {STATE_VERSION})"
        )
    return StateInfo(source, state.lineage, state.serial, len(state.resources), state.terraform_version)
