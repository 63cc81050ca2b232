"""The protected-resource manifest: which changes need a human's signed approval.

YAML or JSON, validated by typed structs (the JSON Schema in ``rules/manifest.schema.json`` is
generated from them, so the two cannot drift). Errors name the file, the path and the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from tfgate.errors import ManifestError, PlanError
from tfgate.model import Change, ChangeClass
from tfgate.strict import json_loads, yaml_load

DEFAULT_NAMES = ("tfgate.yaml", "tfgate.yml", "tfgate.json")
#: Rule names tfgate's own approvable checks use (an approval names them like a manifest rule).
PROVISIONER_RULE = "provisioner_commands"
PROVIDER_RULE = "provider_not_allowed"
#: Both approve code the plan brings along (statement class `provisioner`).
RESERVED_RULES = frozenset({PROVISIONER_RULE, PROVIDER_RULE})
RuleAction = Literal["delete", "replace", "forget", "safety_net"]
_Pattern = Annotated[str, msgspec.Meta(min_length=1)]
# A pattern or a non-empty list of patterns: an empty list or string would be a rule that silently
# protects nothing.
Globs = _Pattern | Annotated[list[_Pattern], msgspec.Meta(min_length=1)]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# --- the file format ---------------------------------------------------------------------------------


class MatchSpec(msgspec.Struct, forbid_unknown_fields=True):
    """Every given key must hold; a list means any of its entries."""

    address: Globs | None = None
    type: Globs | None = None
    module: Globs | None = None
    provider: Globs | None = None
    tags: Annotated[dict[str, Globs], msgspec.Meta(min_length=1)] | None = None
    catalog: Globs | None = None
    #: Globs on the object's prior ``id`` (its identity at the provider), whatever its address.
    id: Globs | None = None


class RuleSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    match: MatchSpec
    actions: Annotated[list[RuleAction], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["delete", "replace"]
    )
    approvals: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    approvers: list[str] = msgspec.field(default_factory=list)
    description: str | None = None


class ApprovalsSpec(msgspec.Struct, forbid_unknown_fields=True):
    allowed_signers: str | None = None
    #: The longest an approval may be valid (expires - issued_at), e.g. "24h" (the default).
    max_ttl: str | None = None


class StateSpec(msgspec.Struct, forbid_unknown_fields=True):
    max_plan_age: str | None = None
    ledger: str | None = None


class AuditSpec(msgspec.Struct, forbid_unknown_fields=True):
    log: str | None = None


class PlanSpec(msgspec.Struct, forbid_unknown_fields=True):
    """What a plan may run besides its providers: provisioner commands block (approvable) or only warn."""

    provisioners: Literal["block", "warn"] = "block"
    #: Provider source addresses (globs, e.g. "registry.terraform.io/hashicorp/*") a plan may use; unset: any.
    providers: Annotated[list[_Pattern], msgspec.Meta(min_length=1)] | None = None


class ManifestSpec(msgspec.Struct, forbid_unknown_fields=True):
    version: Literal[1]
    protect: list[RuleSpec] = msgspec.field(default_factory=list)
    approvals: ApprovalsSpec | None = None
    state: StateSpec | None = None
    audit: AuditSpec | None = None
    plan: PlanSpec | None = None


def json_schema() -> dict[str, Any]:
    """The manifest's JSON Schema (shipped as rules/manifest.schema.json)."""
    schema = msgspec.json.schema(ManifestSpec)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tfgate protected-resource manifest"
    return schema


# --- matching ------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def glob_to_regex(pattern: str) -> str:
    """Address glob -> regex. Only ``*`` (any run of characters) and ``?`` are wildcards;
    brackets and quotes are literal because addresses are full of them."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return "".join(out)


class GlobPattern:
    """Globs as one anchored regex, compiled when first matched: every start reads the manifest, and a
    small plan tries few of its rules (compiling 50 rules' patterns is a good part of a small check)."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._compiled: re.Pattern[str] | None = None

    def match(self, text: str) -> re.Match[str] | None:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(self.pattern, re.DOTALL)
        return compiled.match(text)


def _compile(globs: Globs | None) -> GlobPattern | None:
    if globs is None:
        return None
    items = [globs] if isinstance(globs, str) else globs
    return GlobPattern("(?:" + "|".join(glob_to_regex(g) for g in items) + r")\Z")


def _as_list(globs: Globs | None) -> tuple[str, ...]:
    if globs is None:
        return ()
    return (globs,) if isinstance(globs, str) else tuple(globs)


@dataclass(frozen=True)
class Rule:
    """One protection rule, compiled."""

    name: str
    actions: tuple[str, ...]
    approvals: int = 1
    approvers: tuple[str, ...] = ()
    description: str | None = None
    match: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    _address: GlobPattern | None = field(default=None, compare=False, repr=False)
    _type: GlobPattern | None = field(default=None, compare=False, repr=False)
    _module: GlobPattern | None = field(default=None, compare=False, repr=False)
    _provider: GlobPattern | None = field(default=None, compare=False, repr=False)
    _tags: tuple[tuple[str, GlobPattern], ...] = field(default=(), compare=False, repr=False)
    _catalog: tuple[str, ...] = field(default=(), compare=False, repr=False)
    #: Provider globs, and their last path segments (what a short provider name is matched against).
    _provider_short: GlobPattern | None = field(default=None, compare=False, repr=False)
    _id: GlobPattern | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_spec(cls, spec: RuleSpec) -> Rule:
        m = spec.match
        tags = tuple((k, p) for k, v in (m.tags or {}).items() if (p := _compile(v)) is not None)
        return cls(
            name=spec.name,
            actions=tuple(dict.fromkeys(spec.actions)),
            approvals=spec.approvals,
            approvers=tuple(spec.approvers),
            description=spec.description,
            match=msgspec.to_builtins(m),
            _address=_compile(m.address),
            _type=_compile(m.type),
            _module=_compile(m.module),
            _provider=_compile(m.provider),
            _tags=tags,
            _catalog=_as_list(m.catalog),
            _provider_short=_compile([g.rsplit("/", 1)[-1] for g in _as_list(m.provider)] or None),
            _id=_compile(m.id),
        )

    @property
    def uses_tags(self) -> bool:
        return bool(self._tags)

    def applies_to(self, change: Change, *, tags_known: bool = True) -> bool:
        """The change's class is one this rule protects against (and it matches)."""
        cls = change.change_class
        wanted = (
            (cls is ChangeClass.DELETE and "delete" in self.actions)
            or (cls is ChangeClass.REPLACE and "replace" in self.actions)
            or (cls is ChangeClass.FORGET and "forget" in self.actions)
            or (bool(change.safety_nets) and "safety_net" in self.actions)
        )
        return wanted and self.matches(change, tags_known=tags_known)

    def matches(self, change: Change, *, tags_known: bool = True) -> bool:
        """Every given match key holds, at the change's address or at its previous one (a moved object keeps
        its protection). Unknown tags or ids (stream plans) count as matching: fail closed."""
        if not self._place(change.address, change.type, change.module_address):
            previous = previous_place(change)
            if previous is None or not self._place(*previous):
                return False
        if self._provider and not self._provider_matches(change.provider or ""):
            return False
        if self._id:
            value = change.prior_dict().get("id")
            if isinstance(value, str):
                if not self._id.match(value):
                    return False
            elif tags_known or value is not None:
                return False  # no id to match (a create, or a value the plan hides)
        if self._catalog:
            have = set(change.catalog_classes)
            if change.catalog_kind:
                have.add(change.catalog_kind)
            if not have.intersection(self._catalog):
                return False
        if self._tags and tags_known:
            tags = resource_tags(change)
            for key, pattern in self._tags:
                value = tags.get(key)
                if isinstance(value, str):
                    if not pattern.match(value):
                        return False
                elif value is None and not _tag_hidden(change, key):
                    return False
                # else: a value the plan hides or that is not a string: assumed to match (fail closed)
        return True

    def _place(self, address: str, type: str, module: str | None) -> bool:
        """The address, type and module keys hold for one address of the object."""
        return (
            (not self._address or self._address.match(address) is not None)
            and (not self._type or self._type.match(type) is not None)
            and (not self._module or self._module.match(module or "") is not None)
        )

    def _provider_matches(self, provider: str) -> bool:
        """A provider glob matches the full source address (``registry.terraform.io/hashicorp/aws``), its
        shorter forms (``hashicorp/aws``, ``aws``) and, for the short name a ``plan -json`` stream gives,
        any glob whose last segment matches (the stream does not say which namespace: fail closed)."""
        assert self._provider is not None and self._provider_short is not None
        if "/" not in provider:
            return self._provider_short.match(provider) is not None
        parts = provider.split("/")
        return any(self._provider.match("/".join(parts[i:])) for i in range(len(parts)))

    def assumed_tags(self, change: Change) -> tuple[str, ...]:
        """This rule's tag keys that matched only because the plan does not show their values."""
        tags = resource_tags(change) if self._tags else {}
        return tuple(
            k
            for k, _ in self._tags
            if not isinstance(tags.get(k), str) and (k in tags or _tag_hidden(change, k))
        )


@lru_cache(maxsize=4096)
def _split_previous(previous: str) -> tuple[str, str, str | None] | None:
    from tfgate.plan.address import parse_address

    try:
        parsed = parse_address(previous)
    except PlanError:
        return None
    return previous, parsed.type, parsed.module


def previous_place(change: Change) -> tuple[str, str, str | None] | None:
    """(address, type, module) of the change's previous address, when it moved; None otherwise."""
    previous = change.previous_address
    if previous is None or previous == change.address:
        return None
    return _split_previous(previous)


def _tag_hidden(change: Change, key: str) -> bool:
    """The plan hides this tag's prior value (sensitive, or the whole tag map is unreadable)."""
    hidden = change.hidden_tags
    return bool(hidden) and ("*" in hidden or key in hidden)


def resource_tags(change: Change) -> dict[str, Any]:
    """Tags (AWS/Azure, including provider default tags) or labels (Google) from the prior values."""
    prior = change.prior_dict()
    merged: dict[str, Any] = {}
    for key in ("labels", "tags_all", "tags"):
        value = prior.get(key)
        if isinstance(value, dict):
            merged.update(value)
    return merged


class RuleIndex:
    """The rules a change could match, found without trying every rule on every change. A rule whose
    address, type or module globs all start with literal text can only match a place (address, type,
    module; the change's or the one it moved from) starting with one of those texts, and one with catalog
    classes only the types of those classes: it is filed under them. The candidates, in the manifest's
    order, are then matched in full; the other rules are candidates for every change."""

    _KEYS = ("address", "type", "module")

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self._rules = rules
        self._always: list[int] = []
        #: per place key (address, type, module): length -> literal start -> rules
        self._starts: tuple[dict[int, dict[str, list[int]]], ...] = ({}, {}, {})
        self._catalog: dict[str, list[int]] = {}
        for i, rule in enumerate(rules):
            patterns = (rule._address, rule._type, rule._module)
            for key, pattern, table in zip(self._KEYS, patterns, self._starts, strict=True):
                starts = _literal_starts(pattern, rule.match.get(key))
                if starts and all(starts):
                    for start in starts:
                        table.setdefault(len(start), {}).setdefault(start, []).append(i)
                    break
            else:
                if rule._catalog:
                    for name in rule._catalog:
                        self._catalog.setdefault(name, []).append(i)
                else:
                    self._always.append(i)

    def candidates(self, change: Change) -> tuple[Rule, ...]:
        """The rules that may match the change, at its address or its previous one."""
        if len(self._always) == len(self._rules):
            return self._rules
        found = set(self._always)
        places = [(change.address, change.type, change.module_address or "")]
        previous = previous_place(change)
        if previous is not None:
            places.append((previous[0], previous[1], previous[2] or ""))
        for place in places:
            for text, table in zip(place, self._starts, strict=True):
                for length, starts in table.items():
                    hit = starts.get(text[:length])
                    if hit:
                        found.update(hit)
        for name in (change.catalog_kind, *change.catalog_classes) if self._catalog else ():
            hit = self._catalog.get(name)  # type: ignore[arg-type]
            if hit:
                found.update(hit)
        return tuple(self._rules[i] for i in sorted(found))


def _literal_starts(pattern: GlobPattern | None, globs: Any) -> tuple[str, ...]:
    """The literal text each glob starts with (before its first wildcard); () when the rule has no such key
    or its compiled pattern does not come from these globs."""
    if pattern is None or not isinstance(globs, (str, list)):
        return ()
    items = _as_list(globs)
    if pattern.pattern != "(?:" + "|".join(glob_to_regex(g) for g in items) + r")\Z":
        return ()
    return tuple(re.split(r"[*?]", g, maxsplit=1)[0] for g in items)


@dataclass(frozen=True)
class Manifest:
    path: Path | None = None
    rules: tuple[Rule, ...] = ()
    allowed_signers: Path | None = None
    max_plan_age: timedelta | None = None
    ledger: Path | None = None
    audit_log: Path | None = None
    #: `plan: {provisioners: block|warn}`: whether provisioner commands a plan will run block (approvable).
    provisioners: str = "block"
    #: `plan: {providers: [...]}`: the provider allow-list (None: any provider).
    providers: tuple[str, ...] | None = None
    #: approvals: {max_ttl}: the longest an approval may be valid (None: the 24 h default).
    max_ttl: timedelta | None = None

    def rules_for(self, change: Change, *, tags_known: bool = True) -> tuple[Rule, ...]:
        """Rules that match the change, whatever its class (state checks ask about creates too)."""
        return tuple(r for r in self._index.candidates(change) if r.matches(change, tags_known=tags_known))

    def protecting(self, change: Change, *, tags_known: bool = True) -> tuple[Rule, ...]:
        """Rules that protect this change: they match and cover its class."""
        return tuple(r for r in self._index.candidates(change) if r.applies_to(change, tags_known=tags_known))

    @cached_property
    def _index(self) -> RuleIndex:
        return RuleIndex(self.rules)

    @property
    def uses_tags(self) -> bool:
        return any(r.uses_tags for r in self.rules)


# --- loading -------------------------------------------------------------------------------------------


def parse_duration(text: str, where: str) -> timedelta:
    m = _DURATION.match(text)
    if not m:
        raise ManifestError(f"{where}: invalid duration {text!r} (use e.g. 30m, 4h, 2d)")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def find_manifest(cwd: Path) -> Path | None:
    for name in DEFAULT_NAMES:
        candidate = cwd / name
        if candidate.is_file():
            return candidate
    return None


def load_manifest(path: Path | None, *, cwd: Path | None = None) -> Manifest:
    """Load and validate a manifest. With no path, ``tfgate.yaml`` in ``cwd`` if present, else empty."""
    if path is None:
        path = find_manifest(cwd or Path.cwd())
        if path is None:
            return Manifest()
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {path}") from None
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror}") from None
    return _parse_cached(text, str(path))


@lru_cache(maxsize=8)
def _parse_cached(text: bytes, path: str) -> Manifest:
    """The same bytes at the same path parse to the same (immutable) Manifest: one parse per process even
    when the check, the ledger and the audit log each ask for the manifest."""
    return parse_manifest(text, Path(path))


def parse_manifest(text: bytes, path: Path) -> Manifest:
    try:
        data = json_loads(text) if path.suffix == ".json" else yaml_load(text)
    except Exception as exc:  # yaml and msgspec raise several types; all mean "unreadable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ManifestError(f"{path}: not valid YAML/JSON: {first}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: a manifest is a mapping with `version: 1` and `protect:` rules")
    try:
        spec = msgspec.convert(data, ManifestSpec)
    except msgspec.ValidationError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    names: set[str] = set()
    for i, rule in enumerate(spec.protect):
        where = f"{path}: at `$.protect[{i}]`"
        if rule.name in names:
            raise ManifestError(f"{where}: duplicate rule name {rule.name!r}")
        if rule.name in RESERVED_RULES or rule.name == "plan_incomplete":
            raise ManifestError(f"{where}: rule name {rule.name!r} is reserved for tfgate's own checks")
        names.add(rule.name)
        if not any(v is not None for v in msgspec.structs.astuple(rule.match)):
            raise ManifestError(
                f"{where}.match: give at least one of address, type, module, provider, tags, catalog, id"
            )
        if (
            rule.approvals > max(1, len(rule.approvers))
            and rule.approvers
            and not any("*" in a or "?" in a for a in rule.approvers)
        ):
            raise ManifestError(
                f"{where}: approvals: {rule.approvals} can never be met by {len(rule.approvers)} approver(s)"
            )
        _check_catalog_names(_as_list(rule.match.catalog), f"{where}.match.catalog")
    base = path.parent
    state = spec.state or StateSpec()
    return Manifest(
        path=path,
        rules=tuple(Rule.from_spec(r) for r in spec.protect),
        allowed_signers=_rel(base, spec.approvals.allowed_signers if spec.approvals else None),
        max_plan_age=parse_duration(state.max_plan_age, f"{path}: at `$.state.max_plan_age`")
        if state.max_plan_age
        else None,
        ledger=_rel(base, state.ledger),
        audit_log=_rel(base, spec.audit.log if spec.audit else None),
        provisioners=spec.plan.provisioners if spec.plan else "block",
        providers=tuple(spec.plan.providers) if spec.plan and spec.plan.providers else None,
        max_ttl=_max_ttl(spec.approvals, path),
    )


def _max_ttl(spec: ApprovalsSpec | None, path: Path) -> timedelta | None:
    if spec is None or spec.max_ttl is None:
        return None
    ttl = parse_duration(spec.max_ttl, f"{path}: at `$.approvals.max_ttl`")
    if ttl <= timedelta(0):
        raise ManifestError(f"{path}: at `$.approvals.max_ttl`: must be positive")
    return ttl


def _rel(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _check_catalog_names(names: tuple[str, ...], where: str) -> None:
    if not names:
        return
    from tfgate.policy.catalog import load_catalog

    known = set(load_catalog().class_names)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ManifestError(
            f"{where}: unknown catalog class {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
