"""The approvals judge: counts valid signed statements toward each protected change (a Violation).

It decides nothing about the verdict: it returns what it counted (``Counted``), and evaluation decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tfgate.approvals.statement import (
    CLOCK_SKEW,
    DEFAULT_MAX_TTL,
    MAX_STATEMENT_BYTES,
    NAMESPACE,
    Statement,
    StatementError,
    _rfc3339,
    describe_state,
    lifetime_problem,
    max_ttl,
    signature_path,
    statement_files,
)
from tfgate.errors import TfgateError
from tfgate.model import ApprovalOutcome, Counted, StateBinding, Violation


@dataclass(frozen=True)
class _Valid:
    source: str
    statement: Statement
    key_id: str  # fingerprint of the signing key
    person: int  # allowed_signers: the first line of the lines that are this one person
    lines: tuple[int, ...] = ()  # every allowed_signers line of that person


@dataclass
class _Tally:
    counted_for: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # kind -> detail


def load_signers(manifest: Any) -> Any:
    """The manifest's allowed-signers file, parsed (TfgateError when not configured or unreadable)."""
    from tfgate.approvals import allowed_signers

    path = getattr(manifest, "allowed_signers", None)
    if path is None:
        where = getattr(manifest, "path", None) or "no manifest"
        raise TfgateError(
            f"approvals given but the manifest ({where}) names no `approvals: {{allowed_signers: PATH}}`"
        )
    return allowed_signers.load(Path(path))


def check_statement(
    source: Path, signers: Any, *, digest: str, workspace: str, now: datetime, binding: StateBinding,
    limit: timedelta = DEFAULT_MAX_TTL,
) -> tuple[_Valid | None, ApprovalOutcome | None]:  # fmt: skip
    """Everything about one statement that does not depend on the other statements."""
    from tfgate.approvals import sshsig

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
    if problem := binding_problem(statement, binding):
        return refuse(problem, signer)
    if too_long := lifetime_problem(statement.issued_at, statement.expires_at, limit):
        return refuse(too_long, signer)
    if now >= statement.expires_at:
        return refuse(f"expired: at {_rfc3339(statement.expires_at)}", signer)
    if statement.issued_at > now + CLOCK_SKEW:
        return refuse(f"not yet valid: issued_at {_rfc3339(statement.issued_at)} is in the future", signer)
    person = signers.person(auth.line)
    return _Valid(name, statement, key.fingerprint, person, signers.lines_of(person)), None


def binding_problem(statement: Any, binding: StateBinding) -> str | None:
    """Why a statement's root and prior state are not this plan's (the refusal reason), or None."""
    if not binding.known:
        return f"state unknown: {binding.problem}"
    if statement.root != binding.root:
        return f"other root: approves {statement.root}, this plan's root is {binding.root}"
    here = (binding.lineage, binding.serial) if binding.lineage else None
    if statement.state != here:
        why = (
            "the state changed since it was approved: re-plan and approve again"
            if statement.state and here and statement.state[0] == here[0]
            else "another state (another lineage): a different or re-created state"
        )
        return (
            f"other state: approves {describe_state(statement.state)}, this plan was made against "
            f"{describe_state(here)} ({why})"
        )
    return None


def _other_commands(statement: Any, v: Violation) -> str | None:
    """Why a statement naming V's provisioner commands does not approve them: it names other commands."""
    if v.subject is None:
        return None
    for c in statement.changes:
        if (c.address, c.change_class, c.deposed) == (v.address, "provisioner", v.deposed):
            return (
                f"approves provisioner commands {c.commands or '(none named)'} for {v.address}, the plan runs "
                f"{v.subject}: the commands changed since it was approved (re-approve)"
            )
    return None


def judge(
    paths: Sequence[Path],
    violations: tuple[Violation, ...],
    manifest: Any,
    *,
    digest: str,
    workspace: str,
    now: datetime,
    binding: StateBinding,
) -> Counted:
    """Count valid statements toward each violation (the principals counted, by ``Violation.key``); one
    ApprovalOutcome per statement judged. Whether that approves a violation is evaluation's decision."""
    from tfgate.approvals.allowed_signers import match_pattern

    signers = load_signers(manifest)
    files = statement_files(paths)
    results: dict[str, ApprovalOutcome | None] = {}
    valid: list[_Valid] = []
    for f in files:
        ok, outcome = check_statement(
            f, signers, digest=digest, workspace=workspace, now=now, binding=binding, limit=max_ttl(manifest)
        )
        results[str(f)] = outcome
        if ok is not None:
            valid.append(ok)

    approvers = {r.name: tuple(r.approvers) for r in getattr(manifest, "rules", ())}
    tallies = {v.source: _Tally() for v in valid}
    counted: dict[tuple[str, str, str, str | None], tuple[str, ...]] = {}
    for v in violations:
        allowed = approvers.get(v.rule, v.approvers or ())
        people: dict[int, tuple[str, str]] = {}  # person -> (principal counted, source)
        for s in valid:
            tally = tallies[s.source]
            if not s.statement.covers(v):
                if other := _other_commands(s.statement, v):
                    tally.refused.setdefault("other commands", other)
                continue
            who = s.statement.signer
            if allowed and not any(match_pattern(who, a) for a in allowed):
                tally.refused.setdefault(
                    "signer not an approver",
                    f"{who} is not an approver of rule {v.rule!r} ({', '.join(allowed)}) for {v.address}",
                )
            elif s.person in people:
                name, first = people[s.person]
                lines = ", ".join(map(str, s.lines))
                tally.refused.setdefault(
                    "same signer twice",
                    f"{who} (key {s.key_id}) is the same person as {name}, already counted for {v.address} "
                    f"by {first} (allowed_signers line(s) {lines} share a key or a principal: one approver)",
                )
            else:
                people[s.person] = (who, s.source)
                tally.counted_for.append(v.address)
        counted[v.key] = tuple(name for name, _ in people.values())

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
    return Counted(counted, tuple(o for o in results.values() if o is not None))


def _some(addresses: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(addresses[:limit])
    return shown if len(addresses) <= limit else f"{shown} and {len(addresses) - limit} more"
