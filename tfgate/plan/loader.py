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
from typing import Any

import msgspec

from tfgate.errors import PlanError
from tfgate.model import Change, ChangeClass, PlanInfo, SafetyNetRemoval
from tfgate.plan.address import instance_ok
from tfgate.plan.common import (
    DESTRUCTIVE,
    SHARED_STRINGS,
    CatalogLike,
    KeyAttrs,
    LoadedPlan,
    canonical_identity,
    import_id,
    no_gc,
    resolve,
    shared,
    sort_key,
)
from tfgate.plan.digest import PlanDigest, is_compact
from tfgate.plan.stream import load_stream
from tfgate.policy.risk import rank

FORMATS = ("binary", "show-json", "stream")
SUPPORTED_MAJOR = ("0", "1")
_FORMAT_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?")
_NULL = msgspec.Raw(b"null")
_ZIP_MAGIC = b"PK\x03\x04"

# Exact action lists of the plan representation -> (class, replace order, creates).
_SHOW_ACTIONS: dict[tuple[str, ...], tuple[ChangeClass, str | None, bool, tuple[str, ...]]] = {
    actions: (cls, order, creates, actions)
    for actions, cls, order, creates in (
        (("no-op",), ChangeClass.NO_OP, None, False),
        (("create",), ChangeClass.CREATE, None, True),
        (("read",), ChangeClass.READ, None, False),
        (("update",), ChangeClass.UPDATE, None, False),
        (("delete",), ChangeClass.DELETE, None, False),
        (("delete", "create"), ChangeClass.REPLACE, "delete_first", True),
        (("create", "delete"), ChangeClass.REPLACE, "create_first", True),
        (("forget",), ChangeClass.FORGET, None, False),
        (("create", "forget"), ChangeClass.FORGET, None, True),
    )
}


# --- typed partial schemas -------------------------------------------------------------------------


class _Change(msgspec.Struct, gc=False):
    actions: Any = None
    before: msgspec.Raw = _NULL
    after: msgspec.Raw = _NULL
    after_unknown: msgspec.Raw = _NULL
    before_sensitive: msgspec.Raw = _NULL
    after_sensitive: msgspec.Raw = _NULL
    importing: dict[str, Any] | None = None
    before_identity: msgspec.Raw = _NULL


class _ResourceChange(msgspec.Struct, gc=False):
    address: str
    change: _Change
    mode: str | None = None
    type: str | None = None
    name: str | None = None
    module_address: str | None = None
    index: Any = None
    provider_name: str | None = None
    deposed: Any = None
    previous_address: str | None = None
    action_reason: str | None = None


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


_KEY_ATTRS = KeyAttrs.__struct_fields__
_plan_decoder = msgspec.json.Decoder(_Plan)
_rc_decoder = msgspec.json.Decoder(_ResourceChange)
_key_decoder = msgspec.json.Decoder(KeyAttrs)
_any_decoder = msgspec.json.Decoder()


# --- result ------------------------------------------------------------------------------------------


# --- reading ------------------------------------------------------------------------------------------


_MAP_AT = 1 << 20  # files from this size are mapped, not copied into memory


def read_source(source: str | Path) -> bytes | mmap.mmap:
    """Bytes of a plan file, or of standard input for ``-``. Large files are memory-mapped read-only
    (no copy: msgspec decodes the mapping in place, and Raw values keep it alive while needed)."""
    if str(source) == "-":
        return sys.stdin.buffer.read()
    path = Path(source)
    try:
        with path.open("rb") as f:
            info = os.fstat(f.fileno())
            if info.st_size >= _MAP_AT and stat.S_ISREG(info.st_mode):
                flags = mmap.MAP_PRIVATE | getattr(mmap, "MAP_POPULATE", 0)
                return mmap.mmap(f.fileno(), 0, flags=flags, prot=mmap.PROT_READ)
            return f.read()
    except FileNotFoundError:
        raise PlanError(f"plan file not found: {path}") from None
    except IsADirectoryError:
        raise PlanError(f"plan path is a directory, not a plan file: {path}") from None
    except OSError as exc:
        raise PlanError(f"cannot read plan {path}: {exc.strerror}") from None


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
    data = read_source(source)
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
            return _load_show_json(data, label, fmt_out, path, file_sha, catalog)
        return load_stream(bytes(data), label, path, catalog)


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

_RELEASE_EVERY = 4096  # changes between two hand-backs of the plan pages already read


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
    changes: list[Change] = []
    raws = plan.resource_changes
    pages = _Pages(data)
    classify = _Classifier(label, catalog, prior_empty)
    # The digest runs over changes in (address, deposed) order. Terraform writes them in that order, so
    # they are hashed as they come, and each key greater than the one before proves them unique; a
    # document in another order is checked against a set of keys and hashed again, sorted, at the end.
    in_order, last, read = True, ("", ""), 0
    seen: set[tuple[str, str]] = set()
    with PlanDigest(is_compact(data)) as digest:
        for i, raw in enumerate(raws):
            try:
                rc = _rc_decoder.decode(raw)
            except msgspec.ValidationError as exc:
                where = str(exc).replace("at `$", f"at `$.resource_changes[{i}]")
                raise PlanError(f"{label}: not a Terraform JSON plan: {where}") from None
            try:
                change = classify(rc)
            except (UnicodeDecodeError, RecursionError) as exc:
                raise PlanError(f"{label}: {rc.address}: unreadable values ({type(exc).__name__})") from None
            key = (change.address, change.deposed or "")
            size = len(raw)
            if in_order and key > last:
                last = key
                values = rc.change
                digest.add(change, values.before, values.after, values.after_unknown, size)
            else:
                if in_order:
                    in_order = False
                    seen.update(sort_key(c) for c in changes)
                if key in seen:
                    raise PlanError(f"{label}: duplicate resource change for address {change.address}")
                seen.add(key)
            changes.append(change)
            read += size
            if i % _RELEASE_EVERY == 0:
                digest.flush(read)
                pages.release(digest.consumed)  # only the pages whose values the digest has copied
        if in_order:
            hexdigest = digest.hexdigest(plan.configuration)
    if not in_order:
        with PlanDigest(is_compact(data)) as digest:
            for i in sorted(range(len(changes)), key=lambda i: sort_key(changes[i])):
                values = _rc_decoder.decode(raws[i]).change
                digest.add(changes[i], values.before, values.after, values.after_unknown, len(raws[i]))
            hexdigest = digest.hexdigest(plan.configuration)
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


class _Pages:
    """Hands the pages of a memory-mapped plan already read back to the kernel as the changes are
    classified, so that the plan file and its 100,000 classified changes are not resident at once (peak
    memory). Only a hint: a page touched again is read back from the file; a plan in memory is left alone."""

    def __init__(self, data: bytes | mmap.mmap) -> None:
        self._map = data if isinstance(data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED") else None
        self._done = 0

    def release(self, read: int) -> None:
        """Release the pages wholly within the first `read` bytes (the changes read so far, no more than
        where the next one starts)."""
        end = read - read % mmap.PAGESIZE
        if self._map is not None and end > self._done:
            self._map.madvise(mmap.MADV_DONTNEED, self._done, end - self._done)
            self._done = end


def _module_empty(mod: _Module | None) -> bool:
    if mod is None:
        return True
    return not mod.resources and all(_module_empty(c) for c in mod.child_modules)


#: What the changes of one resource type share: (type string, catalog kind, catalog classes, data-bearing,
#: may an update remove a safety net).
_TypeFacts = tuple[Any, "str | None", "tuple[str, ...]", bool, bool]


class _Classifier:
    """Classifies the changes of one plan. What their types share (catalog entry, data-bearing, whether
    any safety net applies) is looked up once per type, not once per change."""

    def __init__(self, label: str, catalog: CatalogLike | None, creates_need_prior: bool) -> None:
        self.label = label
        self.catalog = catalog
        self.creates_need_prior = creates_need_prior
        self._types: dict[tuple[str, Any], _TypeFacts] = {}

    def _type_facts(self, mode: str, rtype: Any) -> _TypeFacts:
        """(the shared type string, catalog kind, catalog classes, data-bearing, may an update remove a
        safety net)."""
        facts = self._types.get((mode, rtype))
        if facts is None:
            catalog, kind, classes, bearing, nets = self.catalog, None, (), False, False
            if mode == "managed" and catalog is not None:
                entry = catalog.lookup(rtype)
                if entry is not None:
                    kind, classes = entry.kind, entry.classes
                    bearing = "data-bearing" in entry.classes
                nets = catalog.has_safety_nets(rtype)
            facts = self._types[mode, rtype] = (
                SHARED_STRINGS.get(rtype) or shared(rtype),
                kind,
                classes,
                bearing,
                nets,
            )
        return facts

    def __call__(self, rc: _ResourceChange) -> Change:
        label, address, values = self.label, rc.address, rc.change
        actions_list = values.actions
        try:
            known = _SHOW_ACTIONS.get(tuple(actions_list)) if isinstance(actions_list, list) else None
        except TypeError:  # unhashable entries: not strings
            known = None
        if known is None:
            if not isinstance(actions_list, list) or not all(isinstance(a, str) for a in actions_list):
                raise PlanError(f"{label}: {address}: change.actions missing or not a list of strings")
            raise PlanError(f"{label}: {address}: unknown action list {actions_list}")
        cls, order, creates, actions = known
        # The address is the identity; the fields that repeat parts of it must agree with it.
        mode, rtype, name, module = rc.mode, rc.type, rc.name, rc.module_address
        if instance_ok(address, mode, rtype, name, module):
            mode = "data" if mode == "data" else "managed"
            module = (SHARED_STRINGS.get(module) or shared(module)) if module else None
        else:  # the full parse: what is malformed, or which field contradicts the address
            if mode is not None and mode != "managed" and mode != "data":
                raise PlanError(f"{label}: {address}: unknown resource mode {mode!r}")
            parsed = resolve(label, address, mode, rtype, name, module)
            mode, rtype, name, module = parsed.mode, parsed.type, parsed.name, shared(parsed.module)
        reason, previous, deposed, importing = (
            rc.action_reason,
            rc.previous_address,
            rc.deposed,
            values.importing,
        )
        if previous is not None:
            resolve(label, previous)
        if mode != "managed" and cls is not ChangeClass.READ and cls is not ChangeClass.NO_OP:
            # Data sources hold no remote object: whatever the actions, nothing is created or destroyed.
            cls, order, creates = ChangeClass.NO_OP, None, False
        rtype, kind, classes, data_bearing, may_remove_net = self._types.get(
            (mode, rtype)
        ) or self._type_facts(mode, rtype)
        provider = rc.provider_name
        if provider is not None:
            provider = SHARED_STRINGS.get(provider) or shared(provider)
        if deposed is not None and not isinstance(deposed, str):
            deposed = str(deposed)
        import_ref = None if importing is None else import_id(importing)
        if cls is ChangeClass.NO_OP and reason is None and previous is None:
            # Nearly half of a big plan: nothing below applies but the catalog fields and the import.
            return Change(
                address, mode, rtype, name, module, rc.index, provider, actions, cls, None, None, False,
                deposed, None, importing is not None, import_ref, (), (), (), classes, kind,
            )  # fmt: skip
        nets: tuple[SafetyNetRemoval, ...] = ()
        if may_remove_net and cls is ChangeClass.UPDATE:
            assert self.catalog is not None
            nets = self.catalog.safety_nets(rtype, values.before, values.after)
        # Key attributes are decoded only where a decision or the report needs them: destroyed and
        # forgotten objects, updates that remove a safety net, and creates when the prior state is empty
        # (a protected resource planned for create is the signature of a missing state).
        prior: tuple[tuple[str, Any], ...] = ()
        hidden_tags: tuple[str, ...] = ()
        identity = None
        if cls in DESTRUCTIVE or nets:
            prior, hidden_tags = key_attributes(values.before, values.before_sensitive)
            if cls in DESTRUCTIVE:
                identity = resource_identity(values.before_identity)
        elif cls is ChangeClass.CREATE and self.creates_need_prior:
            prior, hidden_tags = key_attributes(values.after, values.after_sensitive)
        return Change(
            address, mode, rtype, name, module, rc.index, provider, actions, cls, reason, order, creates,
            deposed, previous, importing is not None, import_ref, prior, hidden_tags, nets, classes, kind, (),
            _RISK[cls, data_bearing, bool(nets)], identity,
        )  # fmt: skip


def resource_identity(raw: msgspec.Raw) -> str | None:
    """``before_identity`` (Terraform 1.12+) as canonical JSON; None when absent or unreadable."""
    if not raw or bytes(raw) == b"null":
        return None
    try:
        return canonical_identity(_any_decoder.decode(raw))
    except msgspec.DecodeError:
        return None


# The risk of an unprotected change (protection raises it in evaluate), by class, data-bearing, net removed.
_RISK = {
    (cls, db, net): rank(cls, data_bearing=db, safety_net_removed=net, protected=False)
    for cls in ChangeClass
    for db in (False, True)
    for net in (False, True)
}

_TAG_KEYS = frozenset({"tags", "tags_all", "labels"})
_ALL_TAGS = ("*",)


def key_attributes(
    raw: msgspec.Raw, sensitive: msgspec.Raw
) -> tuple[tuple[tuple[str, Any], ...], tuple[str, ...]]:
    """id, name, tags... of an object, minus anything marked sensitive (never shown anywhere), and the
    tag keys that could not be read (``("*",)`` when the object or its whole tag map is unreadable)."""
    view = memoryview(raw)
    if not view.nbytes or view[0] != 0x7B:  # "{"
        return (), _ALL_TAGS
    try:
        attrs = _key_decoder.decode(raw)
    except msgspec.DecodeError:
        return (), _ALL_TAGS
    hidden: Any = False
    if sensitive and bytes(sensitive) not in (b"null", b"false", b"{}"):
        try:
            hidden = _any_decoder.decode(sensitive)
        except msgspec.DecodeError:
            hidden = True
    if hidden is True:
        return (), _ALL_TAGS
    out = []
    unreadable: set[str] = set()
    for key in _KEY_ATTRS:
        value = getattr(attrs, key)
        mark = hidden.get(key) if isinstance(hidden, dict) else None
        if key in _TAG_KEYS and value is not None:
            if not isinstance(value, dict) or mark is True:
                unreadable.add("*")
                continue
            if isinstance(mark, dict):
                secret = {k for k, v in mark.items() if v not in (None, False)}
                unreadable.update(secret)
                value = {k: v for k, v in value.items() if k not in secret}
        elif mark not in (None, False):
            continue
        if value is None or value == {}:
            continue
        out.append((key, value))
    return tuple(out), (_ALL_TAGS if "*" in unreadable else tuple(sorted(unreadable)))


# --- plan -json stream --------------------------------------------------------------------------------
