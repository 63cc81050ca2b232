"""What every plan form shares: the loaded plan, and helpers for classifying its changes and digesting them."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import msgspec

from tfgate.errors import PlanError
from tfgate.model import Change, ChangeClass, PlanInfo, SafetyNetRemoval
from tfgate.plan.address import Address, resolve_address

DESTRUCTIVE = frozenset({ChangeClass.DELETE, ChangeClass.REPLACE, ChangeClass.FORGET})


class KeyAttrs(msgspec.Struct, gc=False):
    """An object's key attributes (ids, names, tags): what reports show next to a destroyed object, what the
    manifest's tag and id rules and the ledger's identity keys read, of a plan's prior values or a state's
    objects alike; everything else is skipped."""

    id: Any = None
    name: Any = None
    arn: Any = None
    identifier: Any = None
    bucket: Any = None
    tags: Any = None
    tags_all: Any = None
    labels: Any = None


@dataclass(frozen=True)
class LoadedPlan:
    """A plan, read and classified. ``protected_by``/``risk`` are filled in by evaluate."""

    info: PlanInfo
    changes: tuple[Change, ...]
    #: True when the plan's prior state holds no resources; None when unknown (stream form).
    prior_state_empty: bool | None
    path: Path | None = None
    #: The show-json ``configuration`` block, raw (None: the form has none); read by tfgate.plan.configuration.
    configuration: Any = None
    #: What the configuration will run besides providers (tfgate.plan.configuration.Provisioners), added by
    #: the pipeline after loading; None when not read.
    provisioners: Any = None


class CatalogLike(Protocol):
    def lookup(self, type: str) -> Any: ...
    def has_safety_nets(self, type: str) -> bool: ...
    def safety_nets(
        self, type: str, before: bytes | None, after: bytes | None
    ) -> tuple[SafetyNetRemoval, ...]: ...


SHARED_STRINGS: dict[str, str] = {}


def shared(text: str | None) -> str | None:
    """One string object for values that repeat across a plan's changes (types, modules, providers):
    a 100,000-change plan keeps a handful of distinct ones instead of 100,000 copies."""
    if text is None:
        return None
    if len(SHARED_STRINGS) > 100_000:
        SHARED_STRINGS.clear()
    return SHARED_STRINGS.setdefault(text, text)


def resolve(
    label: str,
    address: str,
    mode: str | None = None,
    type: str | None = None,
    name: str | None = None,
    module: str | None = None,
) -> Address:
    try:
        return resolve_address(address, mode=mode, type=type, name=name, module=module)
    except PlanError as exc:
        raise PlanError(f"{label}: {exc}") from None


def data_bearing(entry: Any) -> bool:
    return entry is not None and "data-bearing" in entry.classes


def import_id(importing: dict[str, Any] | None) -> str | None:
    if not importing:
        return None
    if isinstance(importing.get("id"), str):
        return importing["id"]
    return msgspec.json.encode(importing).decode()


def canonical_identity(value: Any) -> str | None:
    """Terraform's resource identity (a JSON object) as one canonical string; None when there is none."""
    if value is None or value == {}:
        return None
    return msgspec.json.encode(value, order="sorted").decode()


def sort_key(change: Change) -> tuple[str, str]:
    return (change.address, change.deposed or "")


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic GC while hundreds of thousands of acyclic objects are built (about 10% faster)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
