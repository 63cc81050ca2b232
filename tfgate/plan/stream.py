"""The ``terraform plan -json`` machine-readable stream (JSON lines): its planned changes, diagnostics and
change summary. It carries no attribute values; its digest covers addresses, actions and reasons only."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from tfgate.errors import PlanError
from tfgate.model import Change, ChangeClass, PlanInfo, replace_change
from tfgate.plan.common import (
    CatalogLike,
    LoadedPlan,
    data_bearing,
    import_id,
    resolve,
    shared,
    sort_key,
)
from tfgate.plan.digest import change_record
from tfgate.policy.risk import rank

# The stream's single action word -> (class, actions in plan-representation vocabulary).
_STREAM_ACTIONS: dict[str, tuple[ChangeClass, tuple[str, ...]]] = {
    "noop": (ChangeClass.NO_OP, ("no-op",)),
    "no-op": (ChangeClass.NO_OP, ("no-op",)),
    "move": (ChangeClass.NO_OP, ("no-op",)),
    "import": (ChangeClass.NO_OP, ("no-op",)),
    "create": (ChangeClass.CREATE, ("create",)),
    "read": (ChangeClass.READ, ("read",)),
    "update": (ChangeClass.UPDATE, ("update",)),
    "delete": (ChangeClass.DELETE, ("delete",)),
    "replace": (ChangeClass.REPLACE, ("delete", "create")),
    "remove": (ChangeClass.FORGET, ("forget",)),
}


# The stream renames some reasons; report them in the plan representation's vocabulary.
_STREAM_REASONS = {
    "tainted": "replace_because_tainted",
    "requested": "replace_by_request",
    "cannot_update": "replace_because_cannot_update",
    "replace_triggered_by": "replace_by_triggers",
}


class _StreamResource(msgspec.Struct, gc=False):
    addr: str
    module: str | None = None
    resource: str | None = None
    resource_type: str | None = None
    resource_name: str | None = None
    resource_key: Any = None
    implied_provider: str | None = None


class _StreamChange(msgspec.Struct, gc=False):
    resource: _StreamResource
    action: str
    reason: str | None = None
    previous_resource: _StreamResource | None = None
    importing: dict[str, Any] | None = None
    deposed: Any = None


# Message types only an apply (or destroy) writes, except for the data-source reads of a plan: such a log is
# not a plan, whatever else it holds.
_APPLY_TYPES = frozenset(
    {
        "apply_start",
        "apply_progress",
        "apply_complete",
        "apply_errored",
        "provision_start",
        "provision_progress",
        "provision_complete",
        "provision_errored",
    }
)
_DESTROYS = frozenset({ChangeClass.DELETE, ChangeClass.REPLACE, ChangeClass.FORGET})
# Terraform's warning on a plan made with -target: the plan leaves out changes.
_TARGETED = "Resource targeting is in effect"


class _Diagnostic(msgspec.Struct, gc=False):
    severity: str = ""
    summary: str = ""


class _HookResource(msgspec.Struct, gc=False):
    addr: str = ""


class _Hook(msgspec.Struct, gc=False):
    action: str | None = None
    resource: _HookResource | None = None
    id_key: str | None = None
    id_value: Any = None


class _Message(msgspec.Struct, gc=False):
    type: str | None = None
    hook: _Hook | None = None
    change: _StreamChange | None = None
    changes: dict[str, Any] | None = None
    diagnostic: _Diagnostic | None = None
    terraform: str | None = None


_msg_decoder = msgspec.json.Decoder(_Message)


def _iter_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(data.splitlines(), 1):
        line = line.strip()
        if line:
            yield number, line


def load_stream(data: bytes, label: str, path: Path | None, catalog: CatalogLike | None) -> LoadedPlan:
    changes: list[Change] = []
    seen: dict[tuple[str, str | None], Change] = {}
    summaries: list[dict[str, Any]] = []
    errors: list[str] = []
    version: str | None = None
    saw_version = False
    targeted = False
    apply_types: set[str] = set()
    refreshed: dict[str, str] = {}  # address -> id, from the refresh of current objects
    for number, line in _iter_lines(data):
        try:
            msg = _msg_decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise PlanError(f"{label}:{number}: malformed stream line: {exc}") from None
        except RecursionError:
            raise PlanError(f"{label}:{number}: malformed stream line: nested too deeply") from None
        if msg.type == "version":
            saw_version = True
            version = msg.terraform
        elif msg.type == "planned_change":
            if msg.change is None:
                raise PlanError(f"{label}:{number}: planned_change without a change")
            change = _classify_stream(msg.change, label, number, catalog)
            if change.key in seen:
                change = _deposed(change, seen, changes, label, number)
            seen[change.key] = change
            changes.append(change)
        elif msg.type == "change_summary":
            if not isinstance(msg.changes, dict):
                raise PlanError(f"{label}:{number}: change_summary without its `changes` counts")
            summaries.append(msg.changes)
        elif msg.type == "diagnostic" and msg.diagnostic:
            if msg.diagnostic.severity == "error":
                errors.append(msg.diagnostic.summary)
            elif msg.diagnostic.summary == _TARGETED:
                targeted = True
        elif msg.type == "refresh_start" and msg.hook and msg.hook.resource and msg.hook.id_key == "id":
            if isinstance(msg.hook.id_value, str) and msg.hook.id_value:
                refreshed[msg.hook.resource.addr] = msg.hook.id_value
        elif msg.type in _APPLY_TYPES and not (msg.hook and msg.hook.action == "read"):
            apply_types.add(msg.type)  # a plan reads data sources with apply_* messages too, nothing else
    if apply_types:
        raise PlanError(
            f"{label}: this is a Terraform apply log ({', '.join(sorted(apply_types))}), not a plan"
        )
    if not saw_version and not changes and not summaries:
        raise PlanError(f"{label}: not a Terraform plan -json stream (no version, planned_change or summary)")
    operations = {s.get("operation", "plan") for s in summaries}
    if operations - {"plan"}:
        raise PlanError(
            f"{label}: this is a Terraform {'/'.join(sorted(operations - {'plan'}))} log, not a plan"
        )
    if not summaries and not errors:
        raise PlanError(f"{label}: stream has no change_summary: truncated or the plan did not finish")
    if len(summaries) > 1:
        raise PlanError(f"{label}: {len(summaries)} change_summary messages: not the stream of one plan")
    if summaries:
        _check_summary(summaries[0], changes, label)
    if refreshed:  # the only attribute a stream shows: the id of a destroyed current object (its identity)
        changes = [
            replace_change(c, prior=(("id", refreshed[c.address]),))
            if c.deposed is None and c.address in refreshed and c.change_class in _DESTROYS
            else c
            for c in changes
        ]
    digest = hashlib.sha256(b"tfgate-plan-digest-v1-stream\n")
    for change in sorted(changes, key=sort_key):
        digest.update(change_record(change))
    info = PlanInfo(
        source=label,
        input_format="stream",
        format_version=None,
        terraform_version=version,
        digest="sha256:" + digest.hexdigest(),
        errored=bool(errors),
        complete=not errors and not targeted,
        applyable=None,
        has_values=False,
        targeted=targeted,
    )
    return LoadedPlan(info=info, changes=tuple(changes), prior_state_empty=None, path=path)


def _classify_stream(sc: _StreamChange, label: str, number: int, catalog: CatalogLike | None) -> Change:
    known = _STREAM_ACTIONS.get(sc.action)
    res = sc.resource
    if known is None:
        raise PlanError(f"{label}:{number}: {res.addr}: unknown action {sc.action!r}")
    cls, actions = known
    prev = sc.previous_resource.addr if sc.previous_resource else None
    where = f"{label}:{number}"
    local = res.resource
    parsed = resolve(
        where,
        res.addr,
        mode=None if local is None else "data" if local.startswith("data.") else "managed",
        type=res.resource_type,
        name=res.resource_name,
        module=res.module,
    )
    if local is not None and local != parsed.local:
        raise PlanError(f"{where}: {res.addr}: resource {local!r} contradicts the address")
    if prev is not None:
        resolve(where, prev)
    mode, rtype, name = parsed.mode, parsed.type, parsed.name
    deposed = sc.deposed if sc.deposed is None or isinstance(sc.deposed, str) else str(sc.deposed)
    entry = catalog.lookup(rtype) if catalog is not None and mode == "managed" else None
    return Change(
        address=res.addr,
        mode=mode,
        type=shared(rtype),
        name=name,
        module_address=shared(parsed.module),
        index=res.resource_key,
        provider=shared(res.implied_provider),
        actions=actions,
        change_class=cls,
        action_reason=_STREAM_REASONS.get(sc.reason, sc.reason) if sc.reason else None,
        creates=cls in (ChangeClass.CREATE, ChangeClass.REPLACE),
        deposed=deposed,
        previous_address=prev,
        importing=sc.importing is not None or sc.action == "import",
        import_id=import_id(sc.importing),
        catalog_classes=entry.classes if entry else (),
        catalog_kind=entry.kind if entry else None,
        risk=rank(cls, data_bearing=data_bearing(entry), safety_net_removed=False, protected=False),
    )


def _deposed(
    change: Change, seen: dict[tuple[str, str | None], Change], changes: list[Change], label: str, number: int
) -> Change:
    """A second planned change at one address: the stream's only sign of a deposed object (it carries no
    deposed key). A deposed object can only be deleted: of the two, the delete is the deposed one (Terraform
    lists it before or after the current object's change); it gets a stand-in key ``stream-N``. Returns the
    change to add under its own key."""
    first = seen[change.key]
    if change.deposed is not None:
        raise PlanError(f"{label}:{number}: duplicate planned change for address {change.address}")
    n = 1
    while (change.address, f"stream-{n}") in seen:
        n += 1
    if change.change_class is ChangeClass.DELETE:
        return replace_change(change, deposed=f"stream-{n}")
    if first.change_class is ChangeClass.DELETE:  # the delete listed first was the deposed object
        moved = replace_change(first, deposed=f"stream-{n}")
        changes[changes.index(first)] = moved
        seen[moved.key] = moved
        return change
    raise PlanError(f"{label}:{number}: duplicate planned change for address {change.address}")


def _check_summary(summary: dict[str, Any], changes: list[Change], label: str) -> None:
    """The stream's own totals must match its planned changes, or lines are missing."""
    managed = [c for c in changes if c.mode == "managed"]
    count = {cls: sum(1 for c in managed if c.change_class is cls) for cls in ChangeClass}
    expected = {
        "add": count[ChangeClass.CREATE] + count[ChangeClass.REPLACE],
        "change": count[ChangeClass.UPDATE],
        "remove": count[ChangeClass.DELETE] + count[ChangeClass.REPLACE],
        "import": sum(1 for c in managed if c.importing),
    }
    for key, value in expected.items():
        given = summary.get(key)
        if key == "import" and given is None:
            continue  # Terraform before 1.5 does not count imports
        if type(given) is not int:
            raise PlanError(f"{label}: change_summary.{key} is {given!r}, not a count")
        if given != value:
            raise PlanError(
                f"{label}: change_summary says {key}={summary[key]} but the stream lists {value}: "
                "incomplete stream"
            )
