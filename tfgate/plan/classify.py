"""Classify one ``show -json`` resource change: its action, its address checked against the fields that repeat
it, its type's catalog facts, the safety nets an update removes and the key attributes of what it destroys.

The change is decoded from its raw bytes into the typed partial schema below (attribute values stay raw,
``msgspec.Raw``) and turned into one immutable tfgate.model.Change."""

from __future__ import annotations

from typing import Any

import msgspec

from tfgate.errors import PlanError
from tfgate.model import Change, ChangeClass, SafetyNetRemoval
from tfgate.plan.address import instance_ok
from tfgate.plan.common import (
    DESTRUCTIVE,
    SHARED_STRINGS,
    CatalogLike,
    KeyAttrs,
    canonical_identity,
    import_id,
    resolve,
    shared,
)
from tfgate.policy.risk import rank

NULL = msgspec.Raw(b"null")  # an absent value

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


# --- the typed partial schema of one resource change ------------------------------------------------


class ChangeValues(msgspec.Struct, gc=False):
    actions: Any = None
    before: msgspec.Raw = NULL
    after: msgspec.Raw = NULL
    after_unknown: msgspec.Raw = NULL
    before_sensitive: msgspec.Raw = NULL
    after_sensitive: msgspec.Raw = NULL
    importing: dict[str, Any] | None = None
    before_identity: msgspec.Raw = NULL


class ResourceChange(msgspec.Struct, gc=False):
    address: str
    change: ChangeValues
    mode: str | None = None
    type: str | None = None
    name: str | None = None
    module_address: str | None = None
    index: Any = None
    provider_name: str | None = None
    deposed: Any = None
    previous_address: str | None = None
    action_reason: str | None = None


KEY_ATTRS = KeyAttrs.__struct_fields__
rc_decoder = msgspec.json.Decoder(ResourceChange)
_key_decoder = msgspec.json.Decoder(KeyAttrs)
_any_decoder = msgspec.json.Decoder()


#: What the changes of one resource type share: (type string, catalog kind, catalog classes, data-bearing,
#: may an update remove a safety net).
_TypeFacts = tuple[Any, "str | None", "tuple[str, ...]", bool, bool]


class Classifier:
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

    def __call__(self, rc: ResourceChange) -> Change:
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
    for key in KEY_ATTRS:
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
