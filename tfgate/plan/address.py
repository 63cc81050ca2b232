"""Terraform resource addresses: parsed by their grammar, keys full of dots, brackets and quotes included."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from tfgate.errors import PlanError

# Terraform's resource instance address grammar. Identifiers are HCL's (a Unicode letter or "_", then
# letters, digits, "_" and "-"); instance keys are numbers or quoted strings with backslash escapes.
_IDENT = r"[^\W\d][\w-]*"
_KEY = r'\[(?:\d+|"(?:[^"\\]|\\.)*")\]'
_KEY_RE = re.compile(_KEY, re.DOTALL)
_MODULE_RE = re.compile(rf"module\.{_IDENT}(?:{_KEY})?(?:\.module\.{_IDENT}(?:{_KEY})?)*", re.DOTALL)
_ADDRESS = re.compile(
    rf"(?P<module>(?:module\.{_IDENT}(?:{_KEY})?\.)*)(?P<data>data\.)?(?P<type>{_IDENT})\.(?P<name>{_IDENT})(?P<key>{_KEY})?",
    re.DOTALL,
)


class Address(NamedTuple):
    """A resource instance address, split: ``module`` is None at the root."""

    module: str | None
    mode: str  # "managed" | "data"
    type: str
    name: str
    local: str  # the address without its module path


def parse_address(address: str) -> Address:
    """Split a resource instance address; PlanError when it is not one (stray spaces, invisible
    characters, unbalanced brackets or quotes, missing parts)."""
    m = _ADDRESS.fullmatch(address) if isinstance(address, str) else None
    if m is None:
        raise PlanError(f"malformed resource address: {address!r}")
    module = m["module"]
    return Address(
        module[:-1] or None,
        "data" if m["data"] else "managed",
        m["type"],
        m["name"],
        address[len(module) :],
    )


_IDENT_RE = re.compile(_IDENT)


def _ident(text: str) -> bool:
    return _IDENT_RE.fullmatch(text) is not None  # the same rule as the full parse


@lru_cache(maxsize=65536)
def _head(module: str | None, data: bool, type: str, name: str) -> str | None:
    """``module.x.[data.]type.name`` when its parts are valid identifiers and module path, else None.
    Cached: plans repeat the same modules, types and names across instances."""
    if not (_ident(type) and _ident(name)) or (module and _MODULE_RE.fullmatch(module) is None):
        return None
    local = f"data.{type}.{name}" if data else f"{type}.{name}"
    return f"{module}.{local}" if module else local


def _key_ok(rest: str) -> bool:
    """An instance key (``[0]``, ``["k"]``) or nothing; the regex only for keys with quotes or escapes."""
    if not rest:
        return True
    inner = rest[1:-1]
    if rest[0] != "[" or rest[-1] != "]":
        return False
    if (inner.isascii() and inner.isdigit()) or (
        len(inner) >= 2
        and inner[0] == '"'
        and inner[-1] == '"'
        and '"' not in inner[1:-1]
        and "\\" not in inner
    ):
        return True
    return _KEY_RE.fullmatch(rest) is not None


def resolve_address(
    address: str,
    *,
    mode: str | None = None,
    type: str | None = None,
    name: str | None = None,
    module: str | None = None,
) -> Address:
    """Parse an address, checking that the fields a plan repeats beside it agree with it.

    Fast path: when the fields rebuild the address exactly, only the instance key is left to check (the
    identifiers and module path are checked once per distinct combination). Otherwise the full parse
    names the field that contradicts the address. PlanError for a malformed address or a contradiction."""
    if type is not None and name is not None and (mode is None or mode == "managed" or mode == "data"):
        data = mode == "data"
        head = _head(module or None, data, type, name)
        if head is not None and address.startswith(head) and _key_ok(address[len(head) :]):
            local = address[len(module) + 1 :] if module else address
            return Address(module or None, "data" if data else "managed", type, name, local)
    parsed = parse_address(address)
    given = {"mode": mode, "type": type, "name": name, "module": module}
    derived = {"mode": parsed.mode, "type": parsed.type, "name": parsed.name, "module": parsed.module or ""}
    for field, value in given.items():
        if value is not None and value != derived[field]:
            raise PlanError(f"{address}: {field} {value!r} contradicts the address")
    return parsed
