"""Load a Terraform/OpenTofu plan in any of its forms and classify every resource change.

Forms: a saved binary plan (a zip; ``terraform show -json`` is run on it), the ``show -json`` plan
representation (format_version 0.x/1.x), and the ``plan -json`` machine-readable stream (JSON lines).
Plans reach hundreds of megabytes, so the document is decoded once, into typed structs that hold only
the fields the gate reads; attribute values stay raw bytes (``msgspec.Raw``) and are decoded only where
a decision needs them (key attributes of destroyed objects, safety-net attributes of updates).
"""

from __future__ import annotations

import codecs
import hashlib
import mmap
import os
import re
import stat
import sys
from pathlib import Path

import msgspec

from tfgate.errors import PlanError
from tfgate.model import PlanInfo
from tfgate.plan.changes import classify_changes
from tfgate.plan.classify import NULL as _NULL
from tfgate.plan.classify import Classifier
from tfgate.plan.common import CatalogLike, LoadedPlan, no_gc
from tfgate.plan.digest import is_compact
from tfgate.plan.stream import load_stream

FORMATS = ("binary", "show-json", "stream")
SUPPORTED_MAJOR = ("0", "1")
_FORMAT_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?")
_ZIP_MAGIC = b"PK\x03\x04"

# --- typed partial schemas -------------------------------------------------------------------------


class _Module(msgspec.Struct, gc=False):
    resources: list[msgspec.Raw] = []
    child_modules: list[_Module] = []


class _Values(msgspec.Struct, gc=False):
    root_module: _Module | None = None


class _State(msgspec.Struct, gc=False):
    values: _Values | None = None


class _Plan(msgspec.Struct, gc=False):
    format_version: str | None = None
    terraform_version: str | None = None
    # Kept raw and decoded one at a time: only one change's structs exist at once (peak memory).
    resource_changes: list[msgspec.Raw] = []
    prior_state: _State | None = None
    errored: bool = False
    complete: bool = True
    applyable: bool | None = None
    timestamp: str | None = None
    deferred_changes: list[msgspec.Raw] = []
    configuration: msgspec.Raw = _NULL


_plan_decoder = msgspec.json.Decoder(_Plan)


# --- reading ------------------------------------------------------------------------------------------


_MAP_AT = 1 << 20  # files from this size are mapped, not copied into memory


def read_source(source: str | Path) -> bytes | mmap.mmap:
    """Bytes of a plan file, or of standard input for ``-``. Large files are memory-mapped read-only
    (no copy: msgspec decodes the mapping in place, and Raw values keep it alive while needed)."""
    return open_source(source)[0]


def open_source(source: str | Path) -> tuple[bytes | mmap.mmap, os.stat_result | None]:
    """read_source's bytes, and the file's status as it was opened (None for standard input): see unchanged."""
    if str(source) == "-":
        return sys.stdin.buffer.read(), None
    path = Path(source)
    try:
        with path.open("rb") as f:
            info = os.fstat(f.fileno())
            if info.st_size >= _MAP_AT and stat.S_ISREG(info.st_mode):
                flags = mmap.MAP_PRIVATE | getattr(mmap, "MAP_POPULATE", 0)
                return mmap.mmap(f.fileno(), 0, flags=flags, prot=mmap.PROT_READ), info
            return f.read(), info
    except FileNotFoundError:
        raise PlanError(f"plan file not found: {path}") from None
    except IsADirectoryError:
        raise PlanError(f"plan path is a directory, not a plan file: {path}") from None
    except OSError as exc:
        raise PlanError(f"cannot read plan {path}: {exc.strerror}") from None


def unchanged(path: Path | None, info: os.stat_result | None, label: str) -> None:
    """Refuse a plan whose file changed while it was read. What was classified, digested and (for a saved
    plan) shown by Terraform must be the same bytes: pages of a mapped plan handed back are read from the file
    again if touched, and Terraform reads a saved plan's file itself. The kernel sets ctime on any change."""
    if path is None or info is None or not stat.S_ISREG(info.st_mode):
        return
    try:
        now: os.stat_result | None = os.stat(path)
    except OSError:
        now = None
    fields = ("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")
    if now is None or any(getattr(now, f) != getattr(info, f) for f in fields):
        raise PlanError(
            f"{label}: the plan file changed while tfgate read it: check a copy nothing writes to"
        )


def to_utf8(data: bytes | mmap.mmap) -> bytes | mmap.mmap:
    """JSON bytes as UTF-8: strips a UTF-8 BOM, re-encodes UTF-16 with a BOM (as PowerShell writes)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return bytes(data).decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise PlanError(f"plan is not valid UTF-16: {exc.reason}") from None
    if data[:3] == b"\xef\xbb\xbf":
        return data[3:]
    return data


_UTF8_CHUNK = 1 << 18  # small enough to stay in cache between the copy and the scan


def require_utf8(data: bytes | mmap.mmap, label: str) -> None:
    """Refuse a document that is not valid UTF-8 (JSON's encoding), wherever the bad bytes are.

    msgspec skips the values the gate does not decode without checking them (from 0.23 on), so the
    whole document is checked here, in chunks, so as not to copy a large plan. ASCII chunks (nearly all
    of a plan) are only scanned; the others, and any chunk continuing a split character, are decoded."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    size = len(data)
    start = 0
    try:
        for start in range(0, size, _UTF8_CHUNK):
            piece = data[start : start + _UTF8_CHUNK]
            if piece.isascii() and not decoder.getstate()[0]:
                continue
            decoder.decode(piece, final=start + _UTF8_CHUNK >= size)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise PlanError(
            f"{label}: not valid UTF-8 (byte {start + exc.start}): not a plan tfgate can read"
        ) from None


def detect_format(head: bytes) -> str:
    """Tell the plan's form from its first bytes."""
    if head.startswith(_ZIP_MAGIC):
        return "binary"
    text = head.lstrip()
    if not text:
        raise PlanError("plan is empty")
    if not text.startswith(b"{"):
        raise PlanError("not a Terraform plan: expected a saved plan file (zip) or JSON")
    first_line = text.split(b"\n", 1)[0][:4096]
    if b'"@level"' in first_line or b'"@message"' in first_line or b'"type":"version"' in first_line:
        return "stream"
    return "show-json"


def load_plan(
    source: str | Path,
    *,
    input_format: str | None = None,
    terraform: str | None = None,
    cwd: Path | None = None,
    catalog: CatalogLike | None = None,
) -> LoadedPlan:
    """Read, decode and classify a plan; raises PlanError (exit 2) on anything not fully understood."""
    if input_format is not None and input_format not in FORMATS:
        raise PlanError(f"unknown --input-format {input_format!r}; expected one of {', '.join(FORMATS)}")
    data, opened = open_source(source)
    if data[: len(_ZIP_MAGIC)] != _ZIP_MAGIC:
        data = to_utf8(data)
    fmt = input_format or detect_format(data[:8192])
    path = None if str(source) == "-" else Path(source)
    label = str(source)
    file_sha = None
    if fmt == "binary":
        if data[: len(_ZIP_MAGIC)] != _ZIP_MAGIC:
            raise PlanError(f"{label}: not a saved binary plan (no zip header)")
        file_sha = hashlib.sha256(data).hexdigest()
        data = _show_binary(data, path, terraform, cwd)
        fmt_out = "binary"
        parse_fmt = "show-json"
    else:
        fmt_out = parse_fmt = fmt
    require_utf8(data, label)
    with no_gc():
        if parse_fmt == "show-json":
            loaded = _load_show_json(data, label, fmt_out, path, file_sha, catalog)
        else:
            loaded = load_stream(bytes(data), label, path, catalog)
    unchanged(path, opened, label)
    return loaded


def _show_binary(data: bytes, path: Path | None, terraform: str | None, cwd: Path | None) -> bytes:
    from tfgate.plan import terraform as tfmod

    tf = tfmod.find_terraform(terraform)
    if path is None:
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".tfplan", delete=False) as fh:
            fh.write(data)
            tmp = Path(fh.name)
        try:
            return tfmod.show_json(tf, tmp, cwd=cwd)
        finally:
            tmp.unlink(missing_ok=True)
    return tfmod.show_json(tf, path.absolute(), cwd=cwd)  # not resolve(): /proc/PID/fd/N is a sealed plan


# --- show -json -------------------------------------------------------------------------------------


def _load_show_json(
    data: bytes,
    label: str,
    fmt: str,
    path: Path | None,
    file_sha: str | None,
    catalog: CatalogLike | None,
) -> LoadedPlan:
    try:
        plan = _plan_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise PlanError(f"{label}: not a Terraform JSON plan: {exc}") from None
    except msgspec.DecodeError as exc:
        raise PlanError(f"{label}: malformed or truncated JSON: {exc}") from None
    except RecursionError:
        raise PlanError(f"{label}: JSON nested too deeply to be a Terraform plan") from None
    fv = plan.format_version
    if fv is None:
        raise PlanError(f"{label}: not a Terraform JSON plan (no format_version)")
    if not _FORMAT_VERSION.fullmatch(fv):
        raise PlanError(f"{label}: malformed plan format_version {fv!r}")
    if fv.split(".", 1)[0] not in SUPPORTED_MAJOR:
        raise PlanError(f"{label}: unsupported plan format_version {fv} (tfgate reads 0.x and 1.x)")

    if plan.prior_state is not None:
        prior_empty = _module_empty(plan.prior_state.values.root_module if plan.prior_state.values else None)
    else:
        prior_empty = True  # Terraform omits prior_state when there is no state at all
    classify = Classifier(label, catalog, prior_empty)
    changes, hexdigest = classify_changes(
        plan.resource_changes, data, label, classify, is_compact(data), plan.configuration
    )
    info = PlanInfo(
        source=label,
        input_format=fmt,
        format_version=fv,
        terraform_version=plan.terraform_version,
        digest=hexdigest,
        errored=plan.errored,
        complete=plan.complete and not plan.deferred_changes,
        # Incomplete with no error and nothing deferred: Terraform's mark of a -target plan.
        targeted=not plan.complete and not plan.errored and not plan.deferred_changes,
        applyable=plan.applyable,
        timestamp=plan.timestamp,
        has_values=True,
        file_sha256=file_sha,
    )
    return LoadedPlan(
        info=info, changes=tuple(changes), prior_state_empty=prior_empty, path=path,
        configuration=plan.configuration,
    )  # fmt: skip


def _module_empty(mod: _Module | None) -> bool:
    if mod is None:
        return True
    return not mod.resources and all(_module_empty(c) for c in mod.child_modules)
