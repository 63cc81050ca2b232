"""Terraform resource addresses: parsed by their grammar, keys full of dots, brackets and quotes included."""

from __future__ import annotations

import re
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

# Parts already checked, by their text: plans repeat the same module instances, types and names across
# thousands of changes (the same rules as the full parse; bounded, as a long-running process may read
# many plans).
_MODULES_OK: dict[str, bool] = {}
_LOCAL_HEADS: dict[tuple[bool, str, str], str | None] = {}
_CACHE_MAX = 200_000


def _module_ok(module: str) -> bool:
    ok = _MODULES_OK.get(module)
    if ok is None:
        if len(_MODULES_OK) > _CACHE_MAX:
            _MODULES_OK.clear()
        ok = _MODULES_OK[module] = _MODULE_RE.fullmatch(module) is not None
    return ok


def _local_head(data: bool, type: str, name: str) -> str | None:
    """``[data.]type.name`` when both are valid identifiers, else None."""
    key = (data, type, name)
    try:
        return _LOCAL_HEADS[key]
    except KeyError:
        pass
    if len(_LOCAL_HEADS) > _CACHE_MAX:
        _LOCAL_HEADS.clear()
    ok = _IDENT_RE.fullmatch(type) is not None and _IDENT_RE.fullmatch(name) is not None
    head = _LOCAL_HEADS[key] = (f"data.{type}.{name}" if data else f"{type}.{name}") if ok else None
    return head


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


def instance_ok(
    address: str, mode: str | None, type: str | None, name: str | None, module: str | None
) -> bool:
    """Whether the fields a plan repeats beside an address rebuild it exactly (``module.type.name`` and
    a valid instance key): the fast path of resolve_address, for the loaders' 100,000 changes. False means
    only that the full parse must decide (it names what is malformed or contradicts the address)."""
    if type is None or name is None:
        return False
    if mode is None or mode == "managed":
        data = False
    elif mode == "data":
        data = True
    else:
        return False
    head = _LOCAL_HEADS.get((data, type, name)) or _local_head(data, type, name)
    if head is None:
        return False
    start = 0
    if module:
        start = len(module) + 1
        if address[start - 1 : start] != "." or not address.startswith(module):
            return False
        if not (_MODULES_OK.get(module) or _module_ok(module)):
            return False
    if not address.startswith(head, start):
        return False
    rest = address[start + len(head) :]
    return not rest or _key_ok(rest)


def resolve_address(
    address: str,
    *,
    mode: str | None = None,
    type: str | None = None,
    name: str | None = None,
    module: str | None = None,
) -> Address:
    """Parse an address, checking that the fields a plan repeats beside it agree with it.

    Fast path (instance_ok): when the fields rebuild the address exactly, only the instance key is left to
    check (module paths and identifiers are checked once each). Otherwise the full parse names the field
    that contradicts the address. PlanError for a malformed address or a contradiction."""
    if instance_ok(address, mode, type, name, module):
        assert type is not None and name is not None
        local = address[len(module) + 1 :] if module else address
        return Address(module or None, "data" if mode == "data" else "managed", type, name, local)
    parsed = parse_address(address)
    given = {"mode": mode, "type": type, "name": name, "module": module}
    derived = {"mode": parsed.mode, "type": parsed.type, "name": parsed.name, "module": parsed.module or ""}
    for field, value in given.items():
        if value is not None and value != derived[field]:
            raise PlanError(f"{address}: {field} {value!r} contradicts the address")
    return parsed
