"""The objects a Terraform state holds, as the manifest sees them, and the identities that follow an object
whatever its address becomes.

An object's identity keys (``identity_keys``): ``TYPE id=ID``, ``arn=ARN`` (ARNs are globally unique) and
``TYPE identity=JSON`` (Terraform's resource identity, 1.12+). The ledger keeps them for every protected
object, so a later plan that destroys one under another address (or with its rule gone) is still caught.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from tfgate.model import Change, ChangeClass, replace_change
from tfgate.plan.common import KeyAttrs, canonical_identity

_NO_OP = ("no-op",)


class _Instance(msgspec.Struct, gc=False):
    index_key: Any = None
    deposed: str | None = None
    attributes: KeyAttrs | None = None
    identity: Any = None


_instances = msgspec.json.Decoder(list[_Instance])
_SHOWN = ("id", "arn", "name", "tags", "tags_all", "labels")


@dataclass(frozen=True)
class StateObject:
    """One managed object of the state: where it is, and who it is."""

    change: Change  # a no-op Change at its address, for the manifest's rules (address, type, tags...)
    keys: tuple[str, ...]  # its identity keys


def identity_keys(type: str, prior: Mapping[str, Any], identity: str | None = None) -> tuple[str, ...]:
    """The keys an object is known by whatever its address: its id (per type), ARN, resource identity."""
    keys = []
    if identity:
        keys.append(f"{type} identity={identity}")
    arn = prior.get("arn")
    if isinstance(arn, str) and arn:
        keys.append(f"arn={arn}")
    oid = prior.get("id")
    if isinstance(oid, str) and oid:
        keys.append(f"{type} id={oid}")
    return tuple(keys)


def _key(index: Any) -> str:
    if index is None:
        return ""
    if isinstance(index, int) and not isinstance(index, bool):
        return f"[{index}]"
    return "[" + json.dumps(str(index), ensure_ascii=False) + "]"


def _provider(text: str) -> str | None:
    """``provider["registry.terraform.io/hashicorp/aws"].alias`` (maybe under a module) -> the source address."""
    start = text.find('["')
    end = text.find('"]', start + 2)
    return text[start + 2 : end] if start >= 0 and end > start else None


def state_objects(state: Any) -> Iterator[StateObject]:
    """Every managed object (instances and deposed objects) of a ``StateInfo``, with its identity keys."""
    for block in state.blocks:
        if block.mode != "managed":
            continue
        module = block.module or None
        local = f"{block.type}.{block.name}"
        base = f"{module}.{local}" if module else local
        provider = _provider(block.provider)
        try:  # one decode per resource block: its instances' key attributes only
            instances = _instances.decode(b"[" + b",".join(bytes(r) for r in block.instances) + b"]")
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue  # instances tfgate cannot read have no identity to offer
        for inst in instances:
            attrs = inst.attributes
            prior = (
                tuple((k, v) for k in _SHOWN if (v := getattr(attrs, k)) is not None and v != {})
                if attrs is not None
                else ()
            )
            fields = {
                "address": base + _key(inst.index_key), "mode": "managed", "type": block.type,
                "name": block.name, "module_address": module, "index": inst.index_key, "provider": provider,
                "actions": _NO_OP, "change_class": ChangeClass.NO_OP,
            }  # fmt: skip
            if inst.deposed is not None:
                fields["deposed"] = inst.deposed
            if prior:
                fields["prior"] = prior
            keys = []
            if inst.identity is not None and (identity := canonical_identity(inst.identity)):
                keys.append(f"{block.type} identity={identity}")
            if attrs is not None:
                if isinstance(attrs.arn, str) and attrs.arn:
                    keys.append(f"arn={attrs.arn}")
                if isinstance(attrs.id, str) and attrs.id:
                    keys.append(f"{block.type} id={attrs.id}")
            yield StateObject(Change(**fields), tuple(keys))  # the keys identity_keys() gives


def with_catalog(change: Change, catalog: Any) -> Change:
    """The change with its catalog classes (rules may match on them)."""
    entry = catalog.lookup(change.type) if catalog is not None else None
    if entry is None:
        return change
    return replace_change(change, catalog_classes=entry.classes, catalog_kind=entry.kind)


def destroyed_keys(changes: Iterable[Change]) -> frozenset[str]:
    """The identity keys of the objects an applied plan destroyed (deleted or replaced; a forget leaves the
    object alive outside the state, so it is not among them)."""
    return frozenset(
        key
        for c in changes
        if c.mode == "managed" and c.destroys
        for key in identity_keys(c.type, dict(c.prior), c.identity)
    )


def protected_entries(
    objects: Iterable[StateObject], manifest: Any, catalog: Any, previous: Mapping[str, Any], keep: bool,
    destroyed: frozenset[str] = frozenset(),
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The ledger's ``protected`` map: identity key -> the rule that protects the object and where it was.

    Objects the manifest protects now are recorded under their first matching rule; an object the ledger
    knew as protected keeps its entry even when no rule matches it any more (its rule removed, or renamed):
    that is what ``protection_removed`` reports. An entry is dropped only for an object a gated apply
    destroyed (``destroyed``, unless ``keep``: the state is not a continuation of the one the ledger saw): one
    that merely left the state (a `removed` block's forget, `state rm`) is still alive, and an `import` may
    bring it back at any address."""
    out: dict[str, dict[str, Any]] = (
        dict(previous) if keep else {k: v for k, v in previous.items() if k not in destroyed}
    )
    by_catalog = any(r.match.get("catalog") for r in manifest.rules)
    for obj in objects:
        if not obj.keys:
            continue
        change = with_catalog(obj.change, catalog) if by_catalog else obj.change
        rules = manifest.rules_for(change) if manifest.rules else ()
        rule = next((r for r in rules if set(r.actions) & {"delete", "replace", "forget"}), None)
        if rule is not None:
            entry = {
                "rule": rule.name,
                "address": obj.change.address,
                "actions": [a for a in rule.actions if a != "safety_net"],
                "approvals": rule.approvals,
                "approvers": list(rule.approvers),
            }
            for key in obj.keys:
                out[key] = entry
        else:
            for key in obj.keys:
                if key in previous:
                    out[key] = {**previous[key], "address": obj.change.address}
    return out


def _destructive(plan: Any) -> bool:
    return any(
        c.mode == "managed" and (c.destroys or c.change_class is ChangeClass.FORGET) for c in plan.changes
    )


def needed(
    plan: Any, manifest: Any, current: Any, known: Mapping[str, Any], readable: bool
) -> tuple[StateObject, ...]:
    """The state's objects, decoded only when something reads them: the coverage check (the manifest has rules)
    or following protected objects through a plan that carries no values."""
    if current is None or not readable or current.empty:
        return ()
    if manifest.rules or (known and not plan.info.has_values and _destructive(plan)):
        return tuple(state_objects(current))
    return ()


def coverage(manifest: Any, objects: tuple[StateObject, ...], plan: Any) -> list[Any]:
    """A warning for each rule that matches no object of the (non-empty) state and no change of the plan: a
    rule that protects nothing is most often a typo (addresses, types and tags are case-sensitive)."""
    from tfgate.model import Finding, Severity
    from tfgate.policy.catalog import load_catalog

    if not objects or not manifest.rules:
        return []
    tags_known = plan.info.has_values
    # The state holds every object the plan keeps or changes; only the plan's creates are new.
    changes = [c for c in plan.changes if c.creates and c.mode == "managed"]
    in_state: list[Change] = [o.change for o in objects]
    if any(r.match.get("catalog") for r in manifest.rules):
        catalog = load_catalog()
        in_state = [with_catalog(c, catalog) for c in in_state]
    out = []
    for rule in manifest.rules:
        if any(rule.matches(c) for c in in_state):
            continue
        if any(rule.matches(c, tags_known=tags_known) for c in changes):
            continue
        out.append(
            Finding(
                "rule_matches_nothing",
                Severity.WARN,
                f"rule '{rule.name}' matches no object in the current state ({len(objects)} objects) and no "
                "change of this plan: it protects nothing (a typo? addresses, types and tags are case-sensitive)",
                (("rule", rule.name), ("match", rule.match)),
            )
        )
    return out


def protection(known: Mapping[str, Any], objects: tuple[StateObject, ...], plan: Any) -> Any:
    """What evaluation needs to follow protected objects: the ledger's entries, and the state's objects by
    (address, deposed) when the plan has destructive changes to look up."""
    from tfgate.model import Protection

    if not objects or not _destructive(plan):
        return Protection(known=dict(known))
    state = {(o.change.address, o.change.deposed): (o.change.prior, o.keys) for o in objects}
    return Protection(known=dict(known), state=state)
