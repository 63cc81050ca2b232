"""Approval statements: the JSON a human signs with an SSH key, its strict parser, and which changes it names.

The statement (a JSON file; its signature is the armored SSHSIG ``FILE.sig``, namespace ``tfgate``, made by
``ssh-keygen -Y sign -n tfgate -f KEY FILE`` over the file's exact bytes)::

    {"tfgate_approval": 2,                      # format version (1 is refused: it was bound to no state)
     "plan_digest": "sha256:...",               # the plan's digest (tfgate check reports it)
     "workspace": "prod",
     "root": "s3://tfstate-prod/orders.tfstate", # where the state lives (tfgate.state.binding)
     "state": {"lineage": "5ef7...", "serial": 12},  # the prior state the plan was made against; null: none
     "changes": [{"address": "aws_db_instance.main", "class": "delete"},
                 {"address": "aws_instance.x", "class": "delete", "deposed": "0a1b2c3d"},
                 {"address": "terraform_data.x", "class": "provisioner", "commands": "sha256:..."}],
                                                # class: delete | replace | forget | safety_net
                                                # | provisioner (with the digest of the commands it runs)
                                                # | plan_incomplete (address "(plan)": a -target plan)
     "signer": "alice@example.com",             # a principal the signing key is listed for
     "issued_at": "2025-01-01T10:00:00Z", "expires_at": "2025-01-01T14:00:00Z",
     "reason": "decommissioning the old database (TICKET-123)"}

A protected change (a Violation) is approved when at least ``approvals`` statements count for it: each
with a good signature in namespace ``tfgate`` by a key that the allowed-signers file lists for the
statement's ``signer`` (namespaces and validity honoured), the current plan digest, workspace, root and prior
state (lineage and serial), unexpired
and not issued in the future, naming the change's address, class and deposed key, from a signer matching
the rule's ``approvers`` (any listed signer when the rule names none), each from a distinct person
(allowed_signers lines sharing a key or a principal are one person). Every statement gets an
ApprovalOutcome saying why it counts or why not. Nothing
malformed ever counts: fail closed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from tfgate.errors import TfgateError
from tfgate.model import Change, ChangeClass, Violation
from tfgate.strict import json_loads

FORMAT_VERSION = 2
NAMESPACE = "tfgate"
#: How far in the future an issued_at may lie (clock skew between machines).
CLOCK_SKEW = timedelta(minutes=5)
MAX_STATEMENT_BYTES = 16 * 1024 * 1024
#: provisioner: code a change brings along, its provisioner commands or an unlisted provider (tfgate's rules
#: `provisioner_commands`, `provider_not_allowed`).
CLASSES = ("delete", "replace", "forget", "safety_net", "provisioner", "plan_incomplete")
#: The longest an approval may be valid (expires - issued_at) unless the manifest says `approvals: {max_ttl}`.
DEFAULT_MAX_TTL = timedelta(hours=24)
_KEYS = (
    "tfgate_approval",
    "plan_digest",
    "workspace",
    "root",
    "state",
    "changes",
    "signer",
    "issued_at",
    "expires_at",
    "reason",
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class StatementError(ValueError):
    """A statement file that is not a valid tfgate approval."""


# --- the statement ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovedChange:
    address: str
    change_class: str  # delete | replace | forget | safety_net | provisioner | plan_incomplete
    deposed: str | None = None
    #: class provisioner: ``sha256:`` of the commands approved (Violation.subject).
    commands: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"address": self.address, "class": self.change_class}
        if self.deposed:
            out["deposed"] = self.deposed
        if self.commands:
            out["commands"] = self.commands
        return out


@dataclass(frozen=True)
class Statement:
    plan_digest: str
    workspace: str
    changes: tuple[ApprovedChange, ...]
    signer: str
    issued_at: datetime
    expires_at: datetime
    reason: str
    root: str = ""
    #: The prior state: (lineage, serial), or None when the plan was made against no state.
    state: tuple[str, int] | None = None

    def to_json(self) -> bytes:
        """The statement file's bytes (what gets signed)."""
        doc = {
            "tfgate_approval": FORMAT_VERSION,
            "plan_digest": self.plan_digest,
            "workspace": self.workspace,
            "root": self.root,
            "state": {"lineage": self.state[0], "serial": self.state[1]} if self.state else None,
            "changes": [c.as_dict() for c in self.changes],
            "signer": self.signer,
            "issued_at": _rfc3339(self.issued_at),
            "expires_at": _rfc3339(self.expires_at),
            "reason": self.reason,
        }
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    @cached_property
    def _change_set(self) -> frozenset[ApprovedChange]:
        return frozenset(self.changes)

    def covers(self, v: Violation) -> bool:
        return ApprovedChange(v.address, violation_class(v), v.deposed, v.subject) in self._change_set

    @classmethod
    def parse(cls, data: bytes) -> Statement:
        """Strictly parse a statement file; StatementError says what is wrong."""
        try:
            doc = json_loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise StatementError(f"not JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise StatementError("not a JSON object")
        version = doc.get("tfgate_approval")
        if version == 1 and not isinstance(version, bool):
            raise StatementError(
                "format version 1 (tfgate_approval: 1) is refused: it is bound to no root and no state, so it "
                "could approve another environment's identical-looking plan; approve again with this tfgate"
            )
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise StatementError(f"not a tfgate approval (tfgate_approval: {FORMAT_VERSION} missing)")
        require_fields(
            doc, _KEYS, ("plan_digest", "workspace", "root", "signer", "reason", "issued_at", "expires_at")
        )
        if not _DIGEST.match(doc["plan_digest"]):
            raise StatementError("plan_digest must be sha256:<64 hex digits>")
        if not isinstance(doc["changes"], list) or not doc["changes"]:
            raise StatementError("changes must be a non-empty list")
        changes = []
        for i, c in enumerate(doc["changes"]):
            if not isinstance(c, dict) or set(c) - {"address", "class", "deposed", "commands"}:
                raise StatementError(f"changes[{i}] must be {{address, class[, deposed][, commands]}}")
            address, klass, deposed = c.get("address"), c.get("class"), c.get("deposed")
            commands = c.get("commands")
            if commands is not None and (klass != "provisioner" or not isinstance(commands, str)
                                         or not _DIGEST.match(commands)):  # fmt: skip
                raise StatementError(
                    f"changes[{i}].commands must be sha256:<64 hex digits>, for class provisioner"
                )
            if not isinstance(address, str) or not address:
                raise StatementError(f"changes[{i}].address must be a non-empty string")
            if klass not in CLASSES:
                raise StatementError(f"changes[{i}].class must be one of {', '.join(CLASSES)}")
            if deposed is not None and (not isinstance(deposed, str) or not deposed):
                raise StatementError(f"changes[{i}].deposed must be a non-empty string")
            changes.append(ApprovedChange(address, klass, deposed, commands))
        state = _state(doc["state"])
        issued, expires = _time(doc["issued_at"], "issued_at"), _time(doc["expires_at"], "expires_at")
        if expires <= issued:
            raise StatementError("expires_at is not after issued_at")
        return cls(
            plan_digest=doc["plan_digest"],
            workspace=doc["workspace"],
            changes=tuple(changes),
            signer=doc["signer"],
            issued_at=issued,
            expires_at=expires,
            reason=doc["reason"],
            root=doc["root"],
            state=state,
        )


def _state(value: object) -> tuple[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"lineage", "serial"}:
        raise StatementError("state must be null or {lineage, serial}")
    lineage, serial = value["lineage"], value["serial"]
    if not isinstance(lineage, str) or not lineage:
        raise StatementError("state.lineage must be a non-empty string")
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
        raise StatementError("state.serial must be a non-negative integer")
    return (lineage, serial)


def describe_state(state: tuple[str, int] | None) -> str:
    return f"state lineage {state[0]} serial {state[1]}" if state else "no prior state"


def max_ttl(manifest: object) -> timedelta:
    """The manifest's `approvals: {max_ttl}`, else 24 hours."""
    return getattr(manifest, "max_ttl", None) or DEFAULT_MAX_TTL


def lifetime_problem(issued: datetime, expires: datetime, limit: timedelta) -> str | None:
    """The refusal when a statement is valid for longer than the manifest allows (clock skew tolerated)."""
    if expires - issued <= limit + CLOCK_SKEW:
        return None
    return (
        f"too long-lived: valid for {expires - issued} ({_rfc3339(issued)} to {_rfc3339(expires)}), the "
        f"manifest allows at most {limit} (approvals: {{max_ttl}})"
    )


def require_fields(doc: dict[str, Any], keys: Sequence[str], strings: Sequence[str]) -> None:
    """A statement has exactly KEYS, and each of STRINGS is a non-empty string (StatementError otherwise)."""
    unknown = sorted(set(doc) - set(keys))
    if unknown:
        raise StatementError(f"unknown field(s) {', '.join(unknown)}")
    missing = [k for k in keys if k not in doc]
    if missing:
        raise StatementError(f"missing field(s) {', '.join(missing)}")
    for k in strings:
        if not isinstance(doc[k], str) or not doc[k]:
            raise StatementError(f"{k} must be a non-empty string")


def _time(text: str, name: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise StatementError(f"{name} is not an RFC 3339 time: {text!r}") from None
    if when.tzinfo is None:
        raise StatementError(f"{name} has no time zone: {text!r}")
    return when.astimezone(timezone.utc)


def _rfc3339(when: datetime) -> str:
    return when.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def violation_class(v: Violation) -> str:
    """The statement class of a violation: an update is a safety-net removal; tfgate's provisioner rule is
    its own class (approving a destroy does not approve the commands it runs); a plan-level one, its code."""
    if v.finding:
        return v.finding
    if v.rule in ("provisioner_commands", "provider_not_allowed"):
        return "provisioner"
    return "safety_net" if v.change_class is ChangeClass.UPDATE else v.change_class.value


# --- collecting statement files --------------------------------------------------------------------------


def statement_files(paths: Sequence[Path]) -> list[Path]:
    """Statement files named by --approvals: a file, or every *.json entry in a directory (sorted).

    Directory entries are not filtered by kind: a dangling symlink or a directory named ``*.json`` is
    judged (and reported as unreadable) like any other statement that cannot be read."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix == ".json"))
        elif p.is_file():
            if p.name.endswith(".sig") and p.with_name(p.name[:-4]).is_file():
                p = p.with_name(p.name[:-4])
            out.append(p)
        else:
            raise TfgateError(f"approvals path not found: {p}")
    return list(dict.fromkeys(out))


def signature_path(statement: Path) -> Path:
    return statement.with_name(statement.name + ".sig")


# --- judging ---------------------------------------------------------------------------------------------


def statement_class(change: Change) -> str | None:
    """The statement class of a managed delete, replace, forget or safety-net removal; None otherwise."""
    if change.mode != "managed":
        return None
    cls = change.change_class
    if cls in (ChangeClass.DELETE, ChangeClass.REPLACE, ChangeClass.FORGET):
        return cls.value
    return "safety_net" if cls is ChangeClass.UPDATE and change.safety_nets else None


def destructive(changes: Iterable[Change]) -> tuple[ApprovedChange, ...]:
    """Deletes, replaces, forgets and safety-net removals of managed resources (model Change objects)."""
    return tuple(ApprovedChange(c.address, k, c.deposed) for c in changes if (k := statement_class(c)))
