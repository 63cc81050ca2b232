"""Terraform state files (format version 4): only the identity fields, decoded partially."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from tfgate.errors import TfgateError

#: The state format version tfgate reads (Terraform 0.12+ and OpenTofu write 4).
STATE_VERSION = 4


class _Block(msgspec.Struct, gc=False):
    """One resource block of a state; its instances stay raw until their identities are needed."""

    mode: str
    type: str
    name: str
    module: str | None = None
    provider: str = ""
    instances: list[msgspec.Raw] = []


class _State(msgspec.Struct, gc=False):
    """The identity fields every Terraform state carries; a document without them is not a state."""

    version: int
    lineage: str  # empty in the state a saved plan holds for a workspace without state
    serial: Annotated[int, msgspec.Meta(ge=0)]
    terraform_version: str | None = None
    resources: list[_Block] = []


_decoder = msgspec.json.Decoder(_State)


@dataclass(frozen=True)
class StateInfo:
    """Who a state is (lineage), how far along (serial), and how much it manages (managed resources: data
    sources are re-read on every plan and hold nothing to lose)."""

    source: str
    lineage: str | None
    serial: int | None
    resources: int
    terraform_version: str | None = None
    #: The decoded resource blocks (for the identities of the objects: ``tfgate.state.objects``).
    blocks: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    @property
    def empty(self) -> bool:
        return self.resources == 0

    @property
    def never_saved(self) -> bool:
        """The state Terraform starts from when there is none (a saved plan's for a new workspace)."""
        return self.lineage == "" and self.serial == 0


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
    managed = sum(1 for r in state.resources if r.mode == "managed")
    return StateInfo(
        source, state.lineage, state.serial, managed, state.terraform_version, tuple(state.resources)
    )


class _Resource(msgspec.Struct, gc=False):
    type: str
    name: str
    mode: str = "managed"
    module: str | None = None
    each: str | None = None


class _Resources(msgspec.Struct, gc=False):
    version: int
    resources: list[_Resource] = []


def managed_resources(data: bytes, source: str) -> tuple[tuple[str, str], ...]:
    """(address, type) of every managed resource a state holds, `[*]` after those with count or for_each
    (`tfgate init` lists them). Not a readable version-4 state: TfgateError."""
    if parse_state(data, source) is None:
        return ()
    state = msgspec.json.decode(data, type=_Resources)
    out = []
    for r in state.resources:
        if r.mode == "managed":
            address = ".".join(p for p in (r.module, f"{r.type}.{r.name}") if p)
            out.append((address + ("[*]" if r.each else ""), r.type))
    return tuple(dict.fromkeys(out))
