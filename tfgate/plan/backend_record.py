"""The backend record of a saved plan (`tfplan`, protobuf): which backend and workspace its apply writes to.

Read without Terraform: the protobuf's top-level fields and the msgpack subset Terraform writes for a
backend's configuration; anything else is refused (TfgateError, exit 2).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from tfgate.errors import TfgateError

#: The local backend with its defaults, as a saved plan records it (msgpack {path: nil, workspace_dir: nil}).
LOCAL_DEFAULT = b"\x82\xa4path\xc0\xadworkspace_dir\xc0"


def _take(data: bytes, i: int, n: int) -> bytes:
    """N bytes at I; a length that runs past the end is a malformed record, never a shorter value."""
    if n < 0 or i + n > len(data):
        raise TfgateError("the plan's tfplan record is malformed (truncated)")
    return data[i : i + n]


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise TfgateError("the plan's tfplan record is malformed")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(data: bytes) -> list[tuple[int, int, object]]:
    """Top-level protobuf fields (number, wire type, value) of a message; enough to find the backend."""
    out, i = [], 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            value, i = _take(data, i, size), i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = _take(data, i, size), i + size
        else:
            raise TfgateError("the plan's tfplan record is malformed")
        out.append((number, wire, value))
    return out


def unpack(data: bytes) -> object:
    """The msgpack subset Terraform writes for a backend configuration (maps, strings, nil, booleans,
    numbers, arrays); anything else (an unknown value, an extension type) is refused."""
    import struct

    def read(i: int) -> tuple[object, int]:
        if i >= len(data):
            raise TfgateError("the plan's backend configuration is truncated")
        b = data[i]
        if b <= 0x7F or b >= 0xE0:
            return (b if b <= 0x7F else b - 0x100), i + 1
        if 0xA0 <= b <= 0xBF or b in (0xD9, 0xDA, 0xDB):
            if b <= 0xBF:
                n, i = b & 0x1F, i + 1
            else:
                w = {0xD9: 1, 0xDA: 2, 0xDB: 4}[b]
                n, i = int.from_bytes(_take(data, i + 1, w), "big"), i + 1 + w
            try:
                return _take(data, i, n).decode("utf-8"), i + n
            except UnicodeDecodeError:
                raise TfgateError(
                    "the plan's backend configuration holds a string that is not UTF-8"
                ) from None
        if 0x80 <= b <= 0x8F or b in (0xDE, 0xDF) or 0x90 <= b <= 0x9F or b in (0xDC, 0xDD):
            if b <= 0x9F:
                n, i = b & 0x0F, i + 1
            else:
                w = 2 if b in (0xDE, 0xDC) else 4
                n, i = int.from_bytes(_take(data, i + 1, w), "big"), i + 1 + w
            is_map = 0x80 <= b <= 0x8F or b in (0xDE, 0xDF)
            items = []
            for _ in range(n * (2 if is_map else 1)):
                value, i = read(i)
                items.append(value)
            return (dict(zip(items[::2], items[1::2], strict=True)) if is_map else items), i
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if b in simple:
            return simple[b], i + 1
        ints = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q",
                0xCA: ">f", 0xCB: ">d"}  # fmt: skip
        if b in ints:
            size = struct.calcsize(ints[b])
            return struct.unpack(ints[b], _take(data, i + 1, size))[0], i + 1 + size
        raise TfgateError(f"the plan's backend configuration holds a value tfgate does not read (0x{b:02x})")

    value, end = read(0)
    if end != len(data):
        raise TfgateError("the plan's backend configuration has trailing bytes")
    return value


def without_nulls(value: object) -> object:
    """A configuration as given: the attributes left unset (null) dropped, at every level."""
    if isinstance(value, dict):
        kept = {k: without_nulls(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in kept.items() if v != {}}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def plan_backend(plan: bytes | Path) -> tuple[str, bytes, str]:
    """(type, msgpack config, workspace) of the backend a saved plan (its bytes, or a path: only its `tfplan`
    entry is read) will write its state to."""
    import io

    try:
        archive = zipfile.ZipFile(io.BytesIO(plan) if isinstance(plan, bytes) else plan)
        from collections import Counter

        twice = sorted(n for n, k in Counter(archive.namelist()).items() if k > 1)
        if twice:  # Terraform reads the first of them, zipfile the last: what is checked is not what runs
            raise TfgateError(f"the saved plan holds {', '.join(twice[:3])} twice: refused")
        tfplan = archive.read("tfplan")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise TfgateError(f"not a saved plan: {exc}") from None
    backends = [v for n, w, v in _fields(tfplan) if n == 13 and w == 2]
    if len(backends) != 1:
        raise TfgateError(
            "the plan names no single backend (a state store?): tfgate cannot tell where it writes: refused"
        )
    parts = {n: v for n, w, v in _fields(backends[0]) if w == 2}  # type: ignore[arg-type]
    config = {n: v for n, w, v in _fields(parts.get(2, b"")) if w == 2}  # type: ignore[arg-type]
    return bytes(parts.get(1, b"")).decode(), bytes(config.get(1, b"")), bytes(parts.get(3, b"")).decode()
