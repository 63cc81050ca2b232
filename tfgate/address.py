"""Terraform resource addresses: split into segments without tripping over keys full of dots and quotes."""

from __future__ import annotations

from functools import lru_cache

from tfgate.errors import PlanError


def split_address(address: str) -> tuple[str, ...]:
    """Split at dots outside ``[...]`` and string literals.

    ``module.a["x.y"].aws_s3_bucket.b[0]`` -> ``("module", 'a["x.y"]', "aws_s3_bucket", "b[0]")``.
    """
    parts: list[str] = []
    start = 0
    depth = 0
    in_str = False
    i = 0
    n = len(address)
    while i < n:
        c = address[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c == "." and depth == 0:
            parts.append(address[start:i])
            start = i + 1
        i += 1
    if in_str or depth:
        raise PlanError(f"malformed resource address: {address!r}")
    parts.append(address[start:])
    return tuple(parts)


@lru_cache(maxsize=65536)
def module_of(address: str) -> str | None:
    """The module instance part of a resource address (``module.a["k"].module.b``), or None for root."""
    if not address.startswith("module."):
        return None
    parts = split_address(address)
    mods: list[str] = []
    i = 0
    while i + 1 < len(parts) and parts[i] == "module":
        mods.append(f"module.{parts[i + 1]}")
        i += 2
    return ".".join(mods) or None


def resource_part(address: str) -> tuple[str, ...]:
    """Segments after the module path: (``type``, ``name[key]``) or (``data``, ``type``, ``name[key]``)."""
    parts = split_address(address) if "[" in address or '"' in address else tuple(address.split("."))
    i = 0
    while i + 1 < len(parts) and parts[i] == "module":
        i += 2
    return parts[i:]


def is_data_address(address: str) -> bool:
    rest = resource_part(address)
    return len(rest) >= 3 and rest[0] == "data"
