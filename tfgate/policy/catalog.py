"""The built-in catalog of stateful resource types and the safety nets whose removal is flagged.

The catalog (rules/catalog.yaml) ranks risk without a manifest rule and gives manifest rules names to
match (`match: {catalog: [data-bearing]}`). Safety nets are updates that remove protection against
data loss (deletion protection off, force_destroy on, final snapshot skipped, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec

from tfgate.errors import TfgateError
from tfgate.model import SafetyNetRemoval
from tfgate.resources import data_path

UNSAFE_KINDS = ("true_to_false", "false_to_true", "to_zero", "removed", "lowered")
_MISSING: Any = object()  # no such attribute or block
_UNKNOWN: Any = object()  # the attribute's new value is known only after apply


class _TypeSpec(msgspec.Struct, forbid_unknown_fields=True):
    kind: str
    classes: list[str]


class _NetSpec(msgspec.Struct, forbid_unknown_fields=True):
    attribute: str
    unsafe: str
    description: str
    types: list[str] | None = None


class _CatalogSpec(msgspec.Struct, forbid_unknown_fields=True):
    types: dict[str, _TypeSpec]
    safety_nets: list[_NetSpec] = []


@dataclass(frozen=True)
class CatalogEntry:
    type: str
    kind: str
    classes: tuple[str, ...]


@dataclass(frozen=True)
class SafetyNet:
    """One rule: `path` into the object, and when an update removes the net."""

    path: tuple[str, ...]
    unsafe: str
    description: str
    types: frozenset[str] | None = None

    def removed(self, before: Any, after: Any) -> bool:
        return _unsafe(self.unsafe, before, after)


def _truthy(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    return None


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _unsafe(kind: str, before: Any, after: Any) -> bool:
    """The update removes the net. A switch or number known only after apply counts as removing a net
    that was on: the plan cannot show that it stays (fail closed)."""
    if before is _MISSING:
        return False
    if after is _UNKNOWN:
        if kind == "removed":  # a name computed at apply (final-${timestamp()}) is still a name
            return False
        after = _OFF[kind] if kind in _OFF else kind.split(":", 1)[1]
    if kind == "true_to_false":
        return _truthy(before) is True and _truthy(after) is not True
    if kind == "false_to_true":
        return _truthy(before) is not True and _truthy(after) is True
    if kind == "to_zero":
        b, a = _number(before), _number(after)
        return b is not None and b > 0 and (a == 0 or a is None)
    if kind == "lowered":
        b, a = _number(before), _number(after)
        return b is not None and b > 0 and (a is None or a < b)
    if kind == "removed":
        return before not in (None, "") and after in (None, "", _MISSING)
    if kind.startswith("value_to:"):
        target = kind.split(":", 1)[1]
        return before != target and after == target
    raise AssertionError(kind)


# The value each kind treats as "net off", assumed when the new value is unknown until apply.
_OFF: dict[str, Any] = {
    "true_to_false": False,
    "false_to_true": True,
    "to_zero": 0,
    "lowered": 0,
}


def _values(obj: Any, path: tuple[str, ...], absent: Any = _MISSING) -> list[Any]:
    """Values at `path`, descending into lists of nested blocks element by element; `absent` stands for a
    key a block does not have (in `after`, Terraform leaves out attributes known only after apply)."""
    current = [obj]
    for key in path:
        nxt: list[Any] = []
        for item in current:
            if isinstance(item, list):
                nxt.extend(x.get(key, absent) if isinstance(x, dict) else _MISSING for x in item)
            elif isinstance(item, dict):
                nxt.append(item.get(key, absent))
            else:
                nxt.append(_MISSING)
        current = nxt
    return current


class Catalog:
    """Lookups by resource type, and safety-net detection on raw before/after JSON."""

    def __init__(self, entries: dict[str, CatalogEntry], nets: tuple[SafetyNet, ...], source: Path) -> None:
        self.entries = entries
        self.nets = nets
        self.source = source
        names: set[str] = set()
        for e in entries.values():
            names.add(e.kind)
            names.update(e.classes)
        self.class_names: tuple[str, ...] = tuple(sorted(names))
        self._nets_for = lru_cache(maxsize=4096)(self._nets_for_type)
        # A struct with one field per safety-net root attribute: decoding an object into it skips every
        # other attribute without building anything, which keeps this cheap on every update of a plan.
        self._roots = tuple(sorted({net.path[0] for net in nets}))
        fields = [(f"f{i}", msgspec.Raw | msgspec.UnsetType, msgspec.UNSET) for i in range(len(self._roots))]
        roots_struct = msgspec.defstruct(
            "SafetyNetRoots", fields, rename={f"f{i}": r for i, r in enumerate(self._roots)}, gc=False
        )
        self._roots_decoder = msgspec.json.Decoder(roots_struct)
        self._field_of = {r: f"f{i}" for i, r in enumerate(self._roots)}

    def lookup(self, type: str) -> CatalogEntry | None:
        return self.entries.get(type)

    def classes_for(self, type: str) -> tuple[str, ...]:
        entry = self.entries.get(type)
        return (entry.kind, *entry.classes) if entry else ()

    def _nets_for_type(self, type: str) -> tuple[tuple[str, tuple[SafetyNet, ...]], ...]:
        by_root: dict[str, list[SafetyNet]] = {}
        for net in self.nets:
            if net.types is None or type in net.types:
                by_root.setdefault(net.path[0], []).append(net)
        return tuple((root, tuple(nets)) for root, nets in by_root.items())

    def has_safety_nets(self, type: str) -> bool:
        """Whether any safety net applies to the type (else an update of it never removes one)."""
        return bool(self._nets_for(type))

    def safety_nets(
        self, type: str, before: bytes | msgspec.Raw | None, after: bytes | msgspec.Raw | None
    ) -> tuple[SafetyNetRemoval, ...]:
        """Safety nets this update removes. Decodes only top-level keys, then only the attributes involved."""
        if not before or not after or memoryview(before)[0] != 0x7B or memoryview(after)[0] != 0x7B:  # "{"
            return ()
        try:
            b_top = self._roots_decoder.decode(before)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return ()
        present = msgspec.structs.astuple(b_top)
        if present.count(msgspec.UNSET) == len(present):  # no net attribute at all: the common case
            return ()
        try:
            a_top = self._roots_decoder.decode(after)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return ()
        if a_top == b_top:  # every net attribute keeps its JSON text: the next common case
            return ()
        field = self._field_of
        hits = [
            (root, nets)
            for root, nets in self._nets_for(type)
            if getattr(b_top, field[root]) is not msgspec.UNSET
        ]
        found: list[SafetyNetRemoval] = []
        for root, nets in hits:
            b_raw, a_raw = getattr(b_top, field[root]), getattr(a_top, field[root])
            if a_raw == b_raw:  # the same JSON text: nothing about this attribute changes
                continue
            b_val = msgspec.json.decode(b_raw)
            # Terraform leaves attributes that are unknown until apply out of `after`.
            a_val = msgspec.json.decode(a_raw) if a_raw is not msgspec.UNSET else _UNKNOWN
            for net in nets:
                rest = net.path[1:]
                b_vals = _values(b_val, rest) if rest else [b_val]
                if a_val is _UNKNOWN:
                    a_vals = [_UNKNOWN] * len(b_vals)
                else:
                    a_vals = _values(a_val, rest, absent=_UNKNOWN) if rest else [a_val]
                    # Blocks removed by the update take their nets with them.
                    a_vals += [_MISSING] * (len(b_vals) - len(a_vals))
                for b_item, a_item in zip(b_vals, a_vals, strict=False):
                    if net.removed(b_item, a_item):
                        unknown = a_item is _UNKNOWN
                        found.append(
                            SafetyNetRemoval(
                                attribute=".".join(net.path),
                                before=b_item,
                                after=None if unknown or a_item is _MISSING else a_item,
                                description=net.description
                                + (" (the new value is known only after apply)" if unknown else ""),
                            )
                        )
                        break
        return tuple(found)


def _parse(path: Path) -> Catalog:
    try:
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(path.read_bytes(), Loader=loader)
        spec = msgspec.convert(data, _CatalogSpec)
    except OSError as exc:
        raise TfgateError(f"cannot read catalog {path}: {exc.strerror}") from None
    except msgspec.ValidationError as exc:
        raise TfgateError(f"{path}: invalid catalog: {exc}") from None
    except Exception as exc:  # yaml errors
        raise TfgateError(f"{path}: invalid catalog: {str(exc).splitlines()[0]}") from None
    entries = {t: CatalogEntry(t, s.kind, tuple(s.classes)) for t, s in spec.types.items()}
    nets = []
    for i, n in enumerate(spec.safety_nets):
        if n.unsafe not in UNSAFE_KINDS and not n.unsafe.startswith("value_to:"):
            raise TfgateError(f"{path}: at `$.safety_nets[{i}].unsafe`: unknown kind {n.unsafe!r}")
        nets.append(
            SafetyNet(
                tuple(n.attribute.split(".")),
                n.unsafe,
                n.description,
                frozenset(n.types) if n.types else None,
            )
        )
    return Catalog(entries, tuple(nets), path)


@lru_cache(maxsize=8)
def load_catalog(path: Path | None = None) -> Catalog:
    """The built-in catalog (rules/catalog.yaml), or a custom one; cached per path."""
    return _parse(path or data_path("rules/catalog.yaml"))
