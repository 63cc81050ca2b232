"""Signed approvals: statements a human signs with an SSH key, and the judge that counts them.

The statement (a JSON file; its signature is the armored SSHSIG ``FILE.sig``, namespace ``tfgate``, made by
``ssh-keygen -Y sign -n tfgate -f KEY FILE`` over the file's exact bytes)::

    {"tfgate_approval": 1,                      # format version
     "plan_digest": "sha256:...",               # the plan's digest (tfgate check reports it)
     "workspace": "prod",
     "changes": [{"address": "aws_db_instance.main", "class": "delete"},
                 {"address": "aws_instance.x", "class": "delete", "deposed": "0a1b2c3d"}],
                                                # class: delete | replace | forget | safety_net
     "signer": "alice@example.com",             # a principal the signing key is listed for
     "issued_at": "2025-01-01T10:00:00Z", "expires_at": "2025-01-01T14:00:00Z",
     "reason": "decommissioning the old database (TICKET-123)"}

A protected change (a Violation) is approved when at least ``approvals`` statements count for it: each
with a good signature in namespace ``tfgate`` by a key that the allowed-signers file lists for the
statement's ``signer`` (namespaces and validity honoured), the current plan digest and workspace, unexpired
and not issued in the future, naming the change's address, class and deposed key, from a signer matching
the rule's ``approvers`` (any listed signer when the rule names none), each from a distinct principal and
a distinct key. Every statement gets an ApprovalOutcome saying why it counts or why not. Nothing
malformed ever counts: fail closed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from tfgate.errors import TfgateError
from tfgate.model import ApprovalOutcome, Change, ChangeClass, PlanInfo, SafetyNetRemoval, Violation
from tfgate.strict import json_loads

FORMAT_VERSION = 1
NAMESPACE = "tfgate"
#: How far in the future an issued_at may lie (clock skew between machines).
CLOCK_SKEW = timedelta(minutes=5)
MAX_STATEMENT_BYTES = 16 * 1024 * 1024
CLASSES = ("delete", "replace", "forget", "safety_net")
_KEYS = (
    "tfgate_approval",
    "plan_digest",
    "workspace",
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
    change_class: str  # delete | replace | forget | safety_net
    deposed: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"address": self.address, "class": self.change_class}
        if self.deposed:
            out["deposed"] = self.deposed
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

    def to_json(self) -> bytes:
        """The statement file's bytes (what gets signed)."""
        doc = {
            "tfgate_approval": FORMAT_VERSION,
            "plan_digest": self.plan_digest,
            "workspace": self.workspace,
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
        return ApprovedChange(v.address, violation_class(v), v.deposed) in self._change_set

    @classmethod
    def parse(cls, data: bytes) -> Statement:
        """Strictly parse a statement file; StatementError says what is wrong."""
        try:
            doc = json_loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise StatementError(f"not JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise StatementError("not a JSON object")
        if doc.get("tfgate_approval") != FORMAT_VERSION or isinstance(doc.get("tfgate_approval"), bool):
            raise StatementError(f"not a tfgate approval (tfgate_approval: {FORMAT_VERSION} missing)")
        unknown = sorted(set(doc) - set(_KEYS))
        if unknown:
            raise StatementError(f"unknown field(s) {', '.join(unknown)}")
        missing = [k for k in _KEYS if k not in doc]
        if missing:
            raise StatementError(f"missing field(s) {', '.join(missing)}")
        for k in ("plan_digest", "workspace", "signer", "reason", "issued_at", "expires_at"):
            if not isinstance(doc[k], str) or not doc[k]:
                raise StatementError(f"{k} must be a non-empty string")
        if not _DIGEST.match(doc["plan_digest"]):
            raise StatementError("plan_digest must be sha256:<64 hex digits>")
        if not isinstance(doc["changes"], list) or not doc["changes"]:
            raise StatementError("changes must be a non-empty list")
        changes = []
        for i, c in enumerate(doc["changes"]):
            if not isinstance(c, dict) or set(c) - {"address", "class", "deposed"}:
                raise StatementError(f"changes[{i}] must be {{address, class[, deposed]}}")
            address, klass, deposed = c.get("address"), c.get("class"), c.get("deposed")
            if not isinstance(address, str) or not address:
                raise StatementError(f"changes[{i}].address must be a non-empty string")
            if klass not in CLASSES:
                raise StatementError(f"changes[{i}].class must be one of {', '.join(CLASSES)}")
            if deposed is not None and (not isinstance(deposed, str) or not deposed):
                raise StatementError(f"changes[{i}].deposed must be a non-empty string")
            changes.append(ApprovedChange(address, klass, deposed))
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
        )


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
    """The statement class of a violation: an update is a safety-net removal."""
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


@dataclass(frozen=True)
class _Valid:
    source: str
    statement: Statement
    key_id: str  # fingerprint of the signing key


@dataclass
class _Tally:
    counted_for: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # kind -> detail


def load_signers(manifest: Any) -> Any:
    """The manifest's allowed-signers file, parsed (TfgateError when not configured or unreadable)."""
    from tfgate import allowed_signers

    path = getattr(manifest, "allowed_signers", None)
    if path is None:
        where = getattr(manifest, "path", None) or "no manifest"
        raise TfgateError(
            f"approvals given but the manifest ({where}) names no `approvals: {{allowed_signers: PATH}}`"
        )
    return allowed_signers.load(Path(path))


def check_statement(
    source: Path, signers: Any, *, digest: str, workspace: str, now: datetime
) -> tuple[_Valid | None, ApprovalOutcome | None]:
    """Everything about one statement that does not depend on the other statements."""
    from tfgate import sshsig

    name = str(source)

    def refuse(reason: str, signer: str | None = None) -> tuple[None, ApprovalOutcome]:
        return None, ApprovalOutcome(source=name, signer=signer, counted=False, reason=reason)

    try:
        if source.stat().st_size > MAX_STATEMENT_BYTES:
            return refuse("unreadable: statement file is larger than 16 MiB")
        data = source.read_bytes()
    except OSError as exc:
        return refuse(f"unreadable: {exc.strerror or exc}")
    try:
        statement = Statement.parse(data)
    except StatementError as exc:
        return refuse(f"unreadable: {exc}")
    signer = statement.signer
    sig_file = signature_path(source)
    try:
        sig_bytes = sig_file.read_bytes()
    except FileNotFoundError:
        return refuse(f"unsigned: no signature file {sig_file.name}", signer)
    except OSError as exc:
        return refuse(f"unreadable: signature {sig_file.name}: {exc.strerror or exc}", signer)
    try:
        sig = sshsig.parse(sig_bytes)
        key = sshsig.verify(sig, data, NAMESPACE)
    except sshsig.SignatureError as exc:
        kind = "wrong namespace" if exc.kind == "namespace" else "bad signature"
        return refuse(f"{kind}: {exc}", signer)
    auth = signers.authorize(key, signer, NAMESPACE, now)
    if not auth.ok:
        return refuse(f"{auth.kind}: {auth.reason}", signer)
    if statement.plan_digest != digest:
        return refuse(f"other plan: approves {statement.plan_digest}, this plan is {digest}", signer)
    if statement.workspace != workspace:
        return refuse(
            f"other workspace: approves workspace {statement.workspace!r}, this is {workspace!r}", signer
        )
    if now >= statement.expires_at:
        return refuse(f"expired: at {_rfc3339(statement.expires_at)}", signer)
    if statement.issued_at > now + CLOCK_SKEW:
        return refuse(f"not yet valid: issued_at {_rfc3339(statement.issued_at)} is in the future", signer)
    return _Valid(name, statement, key.fingerprint), None


def judge(
    paths: Sequence[Path],
    violations: tuple[Violation, ...],
    manifest: Any,
    *,
    digest: str,
    workspace: str,
    now: datetime,
) -> tuple[tuple[Violation, ...], tuple[ApprovalOutcome, ...]]:
    """Count valid statements toward each violation; one ApprovalOutcome per statement judged."""
    from tfgate.allowed_signers import match_pattern

    signers = load_signers(manifest)
    files = statement_files(paths)
    results: dict[str, ApprovalOutcome | None] = {}
    valid: list[_Valid] = []
    for f in files:
        ok, outcome = check_statement(f, signers, digest=digest, workspace=workspace, now=now)
        results[str(f)] = outcome
        if ok is not None:
            valid.append(ok)

    approvers = {r.name: tuple(r.approvers) for r in getattr(manifest, "rules", ())}
    tallies = {v.source: _Tally() for v in valid}
    judged: list[Violation] = []
    for v in violations:
        allowed = approvers.get(v.rule, ())
        principals: dict[str, str] = {}  # principal -> source
        keys: dict[str, str] = {}  # key fingerprint -> source
        for s in valid:
            tally = tallies[s.source]
            if not s.statement.covers(v):
                continue
            who = s.statement.signer
            if allowed and not any(match_pattern(who, a) for a in allowed):
                tally.refused.setdefault(
                    "signer not an approver",
                    f"{who} is not an approver of rule {v.rule!r} ({', '.join(allowed)}) for {v.address}",
                )
            elif who in principals or s.key_id in keys:
                first = principals.get(who) or keys[s.key_id]
                tally.refused.setdefault(
                    "same signer twice",
                    f"{who} (key {s.key_id}) already counted for {v.address} by {first}",
                )
            else:
                principals[who] = s.source
                keys[s.key_id] = s.source
                tally.counted_for.append(v.address)
        approved = len(principals) >= v.approvals_required
        judged.append(
            dataclasses.replace(
                v,
                approved=approved,
                approved_by=tuple(principals) if approved else (),
                counted_by=tuple(principals),
            )
        )

    for s in valid:
        tally = tallies[s.source]
        who = s.statement.signer
        if tally.counted_for:
            addresses = tuple(dict.fromkeys(tally.counted_for))
            reason = f"counted for {_some(addresses)} (signed by {who}, key {s.key_id})"
            if tally.refused:
                reason += "; " + "; ".join(f"{k}: {d}" for k, d in tally.refused.items())
            results[s.source] = ApprovalOutcome(s.source, who, True, reason, addresses)
        elif tally.refused:
            kind, detail = next(iter(tally.refused.items()))
            results[s.source] = ApprovalOutcome(s.source, who, False, f"{kind}: {detail}")
        else:
            named = _some([c.address for c in s.statement.changes])
            results[s.source] = ApprovalOutcome(
                s.source,
                who,
                False,
                f"address not covered: it approves {named}, none of which is a protected change "
                "of this plan with that class",
            )
    outcomes = tuple(o for o in results.values() if o is not None)
    return tuple(judged), outcomes


def _some(addresses: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(addresses[:limit])
    return shown if len(addresses) <= limit else f"{shown} and {len(addresses) - limit} more"


# --- what a reviewer approves ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A plan as far as approving it goes: digest, workspace, destructive changes, protected ones."""

    source: str
    digest: str
    workspace: str
    changes: tuple[ApprovedChange, ...]
    violations: tuple[Violation, ...]
    blocking_findings: tuple[str, ...] = ()


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


def is_report(head: bytes) -> bool:
    """Does this look like `tfgate check --format json` output (not a Terraform plan)?"""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"{") and b'"schema_version"' in text[:300] and b'"tfgate"' in text[:600]


class _ReportNet(msgspec.Struct):
    attribute: str
    description: str
    before: Any = None
    after: Any = None


class _ReportChange(msgspec.Struct):
    """What a report says about one change (risk and catalog are re-derived, not read)."""

    address: str
    mode: str
    type: str
    actions: list[str]
    class_: ChangeClass = msgspec.field(name="class")
    protected_by: list[str] = []
    module_address: str | None = None
    action_reason: str | None = None
    replace_order: str | None = None
    deposed: str | None = None
    previous_address: str | None = None
    safety_nets: list[_ReportNet] = []
    prior: dict[str, Any] = {}
    hidden_tags: list[str] = []
    provider: str | None = None


class _ReportViolation(msgspec.Struct):
    address: str
    rule: str
    class_: Literal["delete", "replace", "forget", "update", "safety_net"] = msgspec.field(name="class")
    approvals_required: Annotated[int, msgspec.Meta(ge=1)]
    reason: str = ""
    deposed: str | None = None


class _ReportFinding(msgspec.Struct):
    code: str
    severity: str


class _ReportPlan(msgspec.Struct):
    digest: str
    input_format: str
    format_version: str | None = None
    terraform_version: str | None = None
    errored: bool = False
    complete: bool = True
    has_values: bool = True


class _ReportTool(msgspec.Struct):
    name: Literal["tfgate"]


class _Report(msgspec.Struct):
    tool: _ReportTool
    workspace: str
    plan: _ReportPlan
    changes: list[_ReportChange]
    violations: list[_ReportViolation]
    findings: list[_ReportFinding] = []


def _key(address: str, rule: str, klass: str, deposed: str | None) -> tuple[str, str, str, str]:
    return (address, rule, klass, deposed or "")


def _report_change(c: _ReportChange, catalog: Any) -> Change:
    """A model Change from a report entry; its catalog entry is looked up again, not read."""
    entry = catalog.lookup(c.type) if c.mode == "managed" else None
    return Change(
        address=c.address, mode=c.mode, type=c.type, name="", module_address=c.module_address, index=None,
        provider=c.provider, actions=tuple(c.actions), change_class=c.class_, action_reason=c.action_reason,
        replace_order=c.replace_order, deposed=c.deposed, previous_address=c.previous_address,
        prior=tuple(c.prior.items()), hidden_tags=tuple(c.hidden_tags),
        safety_nets=tuple(SafetyNetRemoval(n.attribute, n.before, n.after, n.description) for n in c.safety_nets),
        catalog_classes=entry.classes if entry else (), catalog_kind=entry.kind if entry else None,
        protected_by=tuple(c.protected_by),
    )  # fmt: skip


def target_from_report(data: bytes, source: str, manifest: Any) -> Target:
    """A Target from the JSON report a CI job published. The report is unsigned: it is trusted for its digest,
    workspace and the changes it lists, nothing more. The protected changes are re-derived by applying the
    manifest to those changes (the report's own violations can only add to them); a report whose violations
    do not agree with its changes, or that lacks a fact a rule needs, is refused (TfgateError)."""
    from tfgate.catalog import load_catalog
    from tfgate.evaluate import evaluate
    from tfgate.loader import LoadedPlan

    try:
        doc = msgspec.json.decode(data.decode("utf-8-sig"), type=_Report)
    except (UnicodeDecodeError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise TfgateError(f"{source}: not a tfgate JSON report ({exc})") from None
    if not _DIGEST.match(doc.plan.digest):
        raise TfgateError(f"{source}: not a tfgate JSON report (plan.digest is not sha256:<64 hex digits>)")
    by_provider = [r.name for r in manifest.rules if r.match.get("provider") is not None]
    if by_provider and any(c.provider is None and c.mode == "managed" for c in doc.changes):
        raise TfgateError(
            f"{source}: rule {by_provider[0]!r} matches on provider, which this report does not carry for "
            "every change; give the plan itself"
        )
    catalog = load_catalog()
    changes = [_report_change(c, catalog) for c in doc.changes]
    marked = {
        _key(c.address, rule, k, c.deposed)
        for c in changes
        if (k := statement_class(c))
        for rule in c.protected_by
    }
    claimed = {
        _key(v.address, v.rule, "safety_net" if v.class_ == "update" else v.class_, v.deposed): v
        for v in doc.violations
    }
    for keys, what in (
        (marked - claimed.keys(), "marks it protected but lists no violation for it"),
        (claimed.keys() - marked, "lists a violation but not a protected change"),
    ):
        if keys:
            address, rule, klass, _ = min(keys)
            raise TfgateError(
                f"{source}: the report does not hold together (edited?): for the {klass} of {address} "
                f"under rule {rule!r} it {what}"
            )
    p = doc.plan
    info = PlanInfo(
        source=source, input_format=p.input_format, format_version=p.format_version,
        terraform_version=p.terraform_version, digest=p.digest, errored=p.errored, complete=p.complete,
        has_values=p.has_values and p.input_format != "stream",
    )  # fmt: skip
    loaded = LoadedPlan(info=info, changes=tuple(changes), prior_state_empty=None)
    derived = target_from_result(evaluate(loaded, manifest, workspace=doc.workspace))
    violations = {_key(v.address, v.rule, violation_class(v), v.deposed): v for v in derived.violations}
    for key, v in claimed.items():  # the report's own violations can only ask for more
        have = violations.get(key)
        if have is None:
            violations[key] = Violation(
                address=v.address,
                rule=v.rule,
                change_class=ChangeClass.UPDATE if key[2] == "safety_net" else ChangeClass(v.class_),
                reason=v.reason,
                approvals_required=v.approvals_required,
                deposed=v.deposed,
            )
        elif have.approvals_required < v.approvals_required:
            violations[key] = dataclasses.replace(have, approvals_required=v.approvals_required)
    blocking = (*derived.blocking_findings, *(f.code for f in doc.findings if f.severity == "block"))
    return dataclasses.replace(
        derived, violations=tuple(violations.values()), blocking_findings=tuple(dict.fromkeys(blocking))
    )


def target_from_result(result: Any) -> Target:
    return Target(
        source=result.plan.source,
        digest=result.plan.digest,
        workspace=result.workspace,
        changes=destructive(result.changes),
        violations=tuple(result.violations),
        blocking_findings=tuple(f.code for f in result.findings if f.blocks),
    )


@dataclass(frozen=True)
class PlanOptions:
    """How to read the PLAN argument of `approve` and `approvals verify`."""

    plan: str
    manifest: Path | None = None
    workspace: str | None = None
    terraform: str | None = None
    input_format: str | None = None
    workdir: Path = Path(".")


def _read_head(plan: str) -> bytes:
    if plan == "-":
        return b""
    try:
        with open(plan, "rb") as fh:
            return fh.read(1024)
    except OSError:
        return b""


def load_target(opts: PlanOptions, manifest: Any, approvals: Sequence[Path] = ()) -> tuple[Target, Any]:
    """The Target of a plan (any form the core reads) or of a JSON report (judged with MANIFEST); also the
    check Result or None."""
    if opts.input_format is None and is_report(_read_head(opts.plan)):
        target = target_from_report(Path(opts.plan).read_bytes(), opts.plan, manifest)
        if opts.workspace and opts.workspace != target.workspace:
            raise TfgateError(
                f"{opts.plan}: the report is for workspace {target.workspace!r}, not {opts.workspace!r}"
            )
        return target, None
    from tfgate.pipeline import CheckOptions, run_check

    result = run_check(
        CheckOptions(
            plan=opts.plan,
            input_format=opts.input_format,
            terraform=opts.terraform,
            manifest=opts.manifest,
            approvals=tuple(approvals),
            workspace=opts.workspace,
            workdir=opts.workdir,
            state_checks=False,
        )
    )
    return target_from_result(result), result


# --- creating and signing ----------------------------------------------------------------------------------


def make_statement(
    target: Target,
    *,
    signer: str,
    ttl: timedelta,
    reason: str,
    now: datetime,
    only: Sequence[str] = (),
) -> Statement:
    """The statement approving the target's destructive changes (optionally only addresses matching ONLY)."""
    from tfgate.allowed_signers import match_pattern

    if not signer.strip() or any(ch.isspace() for ch in signer):
        raise TfgateError("--signer must be a principal such as alice@example.com (no spaces)")
    if not reason.strip():
        raise TfgateError("a --reason is required (it goes into the statement and the audit log)")
    if ttl <= timedelta(0):
        raise TfgateError("--ttl must be positive")
    changes = target.changes
    if only:
        changes = tuple(c for c in changes if any(match_pattern(c.address, g) for g in only))
        if not changes:
            raise TfgateError(f"--only {', '.join(only)} matches none of the plan's destructive changes")
    if not changes:
        raise TfgateError(f"{target.source}: nothing to approve, the plan destroys or forgets nothing")
    now = now.astimezone(timezone.utc).replace(microsecond=0)
    return Statement(
        plan_digest=target.digest,
        workspace=target.workspace,
        changes=changes,
        signer=signer,
        issued_at=now,
        expires_at=now + ttl,
        reason=reason.strip(),
    )


def describe(target: Target, statement: Statement) -> str:
    """What is being approved, for the confirmation prompt."""
    rules: dict[tuple[str, str, str | None], list[str]] = {}
    for v in target.violations:
        rules.setdefault((v.address, violation_class(v), v.deposed), []).append(
            f"{v.rule}, needs {v.approvals_required}"
        )
    lines = [
        f"Approve plan {statement.plan_digest}",
        f"  workspace:  {statement.workspace}",
        f"  signer:     {statement.signer}",
        f"  valid:      {_rfc3339(statement.issued_at)} to {_rfc3339(statement.expires_at)}",
        f"  reason:     {statement.reason}",
        f"  changes ({len(statement.changes)}):",
    ]
    for c in statement.changes:
        extra = f" (deposed {c.deposed})" if c.deposed else ""
        prot = rules.get((c.address, c.change_class, c.deposed))
        tag = f"  [protected: {'; '.join(prot)}]" if prot else ""
        lines.append(f"    {c.change_class:<10} {c.address}{extra}{tag}")
    if target.blocking_findings:
        lines.append(
            f"  note: the plan is also blocked by {', '.join(target.blocking_findings)}; "
            "approvals do not lift that"
        )
    return "\n".join(lines)


def sign_file(path: Path, key: Path, *, ssh_keygen: str = "ssh-keygen") -> Path:
    """``ssh-keygen -Y sign -n tfgate -f KEY FILE`` (a public KEY signs through ssh-agent); returns FILE.sig.

    ssh-keygen talks to the terminal itself (passphrase, security-key touch); its output never contains
    key material, and tfgate never reads the private key."""
    sig = signature_path(path)
    sig.unlink(missing_ok=True)
    try:
        proc = subprocess.run(
            [ssh_keygen, "-Y", "sign", "-n", NAMESPACE, "-f", str(key), str(path)],
            stdout=subprocess.DEVNULL,  # stderr stays the user's: passphrase and touch prompts
        )
    except OSError as exc:
        raise TfgateError(f"cannot run ssh-keygen: {exc.strerror or exc}") from None
    if proc.returncode != 0 or not sig.is_file():
        raise TfgateError(f"ssh-keygen -Y sign failed (exit {proc.returncode}); see its message above")
    return sig


def parse_ttl(text: str) -> timedelta:
    from tfgate.manifest import parse_duration

    return parse_duration(text, "--ttl")


@dataclass(frozen=True)
class ApproveOptions:
    plan: PlanOptions
    signer: str
    key: Path | None
    ttl: str = "4h"
    reason: str | None = None
    output: Path | None = None
    statement_only: bool = False
    yes: bool = False
    force: bool = False
    only: tuple[str, ...] = ()
    audit_log: str | None = None
    command: tuple[str, ...] = ()


def run_approve(
    opts: ApproveOptions,
    *,
    echo: Callable[[str], None],
    confirm: Callable[[str], bool],
    prompt_reason: Callable[[], str] | None,
    interactive: bool,
    now: datetime | None = None,
) -> int:
    """`tfgate approve`: show, confirm, write the statement, sign it. Returns the exit code."""
    from tfgate import sshsig
    from tfgate.manifest import load_manifest

    if not opts.statement_only and opts.key is None:
        raise TfgateError("--key is required (or --statement-only to sign by hand)")
    if opts.key is not None and not opts.key.is_file():
        raise TfgateError(f"key file not found: {opts.key}")
    ttl = parse_ttl(opts.ttl)
    reason = opts.reason
    if not reason:
        if not interactive or prompt_reason is None:
            raise TfgateError("a --reason is required (it goes into the statement and the audit log)")
        reason = prompt_reason()
    manifest = load_manifest(opts.plan.manifest, cwd=opts.plan.workdir)
    target, _ = load_target(opts.plan, manifest)
    statement = make_statement(
        target, signer=opts.signer, ttl=ttl, reason=reason or "", now=now or datetime.now(timezone.utc),
        only=opts.only,
    )  # fmt: skip
    output = (
        opts.output or opts.plan.workdir / f"approval-{statement.plan_digest[7:19]}-{_slug(opts.signer)}.json"
    )
    if output.exists() and not opts.force:
        raise TfgateError(f"{output} exists (use --force to overwrite, or --output)")
    echo(describe(target, statement))
    if not opts.yes:
        if not interactive:
            raise TfgateError("no terminal to confirm on: review the changes above and pass --yes")
        if not confirm("Sign this approval?"):
            echo("not approved")
            return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(statement.to_json())
    fields: dict[str, Any] = {
        "plan_digest": statement.plan_digest,
        "workspace": statement.workspace,
        "signer": statement.signer,
        "addresses": [c.address for c in statement.changes],
        "reason": statement.reason,
        "issued_at": _rfc3339(statement.issued_at),
        "expires_at": _rfc3339(statement.expires_at),
        "statement": str(output),
    }
    if opts.statement_only:
        signature_path(output).unlink(missing_ok=True)
        echo(f"wrote {output} (unsigned); sign it with: ssh-keygen -Y sign -n {NAMESPACE} -f KEY {output}")
    else:
        assert opts.key is not None
        sig_path = sign_file(output, opts.key)
        key = sshsig.verify(sshsig.parse(sig_path.read_bytes()), output.read_bytes(), NAMESPACE)
        fields["key"] = key.fingerprint
        echo(f"wrote {output} and {sig_path.name} (signed by {key.type} key {key.fingerprint})")
        if manifest.allowed_signers is not None and Path(manifest.allowed_signers).is_file():
            from tfgate import allowed_signers

            auth = allowed_signers.load(Path(manifest.allowed_signers)).authorize(
                key, statement.signer, NAMESPACE, datetime.now(timezone.utc)
            )
            if auth.ok:
                echo(f"verified: {statement.signer} may sign tfgate approvals with this key ({auth.reason})")
            else:
                echo(f"warning: this approval will not count: {auth.kind}: {auth.reason}")
    from tfgate.audit import record_event

    record_event(
        "approve",
        command=list(opts.command) or None,
        log=opts.audit_log,
        cwd=opts.plan.workdir,
        manifest_log=manifest.audit_log,
        signed=not opts.statement_only,
        **fields,
    )
    return 0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:64]


# --- `tfgate approvals verify` -----------------------------------------------------------------------------


def run_verify(
    paths: Sequence[Path], opts: PlanOptions, *, fmt: str = "text", now: datetime | None = None
) -> tuple[str, int]:
    """Explain approval by approval what counts; exit 0 when the plan would then be allowed, else 1."""
    from tfgate.manifest import load_manifest

    now = now or datetime.now(timezone.utc)
    if not paths:
        raise TfgateError("give at least one approval file or directory")
    manifest = load_manifest(opts.manifest, cwd=opts.workdir)
    target, _ = load_target(opts, manifest)
    violations, outcomes = judge(
        paths, target.violations, manifest, digest=target.digest, workspace=target.workspace, now=now
    )
    blocked = [v for v in violations if not v.approved]
    allowed = not blocked and not target.blocking_findings
    if fmt == "json":
        doc = {
            "allowed": allowed,
            "plan_digest": target.digest,
            "workspace": target.workspace,
            "approvals": [
                {"source": o.source, "signer": o.signer, "counted": o.counted, "reason": o.reason,
                 "addresses": list(o.addresses)}
                for o in outcomes
            ],
            "violations": [
                {"address": v.address, "rule": v.rule, "class": violation_class(v),
                 "approvals_required": v.approvals_required, "approved": v.approved,
                 "approved_by": list(v.approved_by), **({"deposed": v.deposed} if v.deposed else {})}
                for v in violations
            ],
            "blocking_findings": list(target.blocking_findings),
        }  # fmt: skip
        return json.dumps(doc, indent=2) + "\n", 0 if allowed else 1
    lines = [f"plan {target.digest}, workspace {target.workspace!r}", "approvals:"]
    for o in outcomes:
        mark = "COUNTS " if o.counted else "REFUSED"
        lines.append(f"  {mark} {o.source}" + (f" ({o.signer})" if o.signer else ""))
        lines.append(f"          {o.reason}")
    if not outcomes:
        lines.append("  (no statement files found)")
    lines.append("protected changes:")
    for v in violations:
        if v.approved:
            state = f"approved by {', '.join(v.approved_by)}"
        else:
            have = sorted(v.counted_by)
            state = f"BLOCKED ({len(have)} of {v.approvals_required}" + (
                f": {', '.join(have)})" if have else ")"
            )
        lines.append(
            f"  {violation_class(v):<10} {v.address} [rule {v.rule}, needs {v.approvals_required}]: {state}"
        )
    if not violations:
        lines.append("  (none)")
    if target.blocking_findings:
        lines.append(f"also blocked by: {', '.join(target.blocking_findings)}")
    lines.append("verdict: " + ("allowed (exit 0)" if allowed else "blocked (exit 1)"))
    return "\n".join(lines) + "\n", 0 if allowed else 1
