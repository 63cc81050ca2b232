"""`tfgate approve` (show, confirm, write and sign a statement) and `tfgate approvals verify`."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tfgate.approvals.judge import judge
from tfgate.approvals.statement import (
    NAMESPACE,
    Statement,
    _rfc3339,
    describe_state,
    signature_path,
    violation_class,
)
from tfgate.approvals.target import PlanOptions, Target, load_target
from tfgate.errors import TfgateError
from tfgate.policy.evaluate import apply_counts


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
    from tfgate.approvals.allowed_signers import match_pattern

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
    b = target.binding
    if not b.known or b.root is None:
        raise TfgateError(f"{target.source}: cannot approve: {b.problem or 'the root cannot be identified'}")
    now = now.astimezone(timezone.utc).replace(microsecond=0)
    return Statement(
        root=b.root,
        state=(b.lineage, b.serial or 0) if b.lineage else None,
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
        f"  root:       {statement.root}",
        f"  state:      {describe_state(statement.state)} (from the {target.binding.source})",
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


def sign_file(path: Path, key: Path, *, ssh_keygen: str = "ssh-keygen", namespace: str = NAMESPACE) -> Path:
    """``ssh-keygen -Y sign -n tfgate -f KEY FILE`` (a public KEY signs through ssh-agent); returns FILE.sig.

    ssh-keygen talks to the terminal itself (passphrase, security-key touch); its output never contains
    key material, and tfgate never reads the private key."""
    sig = signature_path(path)
    sig.unlink(missing_ok=True)
    try:
        proc = subprocess.run(
            [ssh_keygen, "-Y", "sign", "-n", namespace, "-f", str(key), str(path)],
            stdout=subprocess.DEVNULL,  # stderr stays the user's: passphrase and touch prompts
        )
    except OSError as exc:
        raise TfgateError(f"cannot run ssh-keygen: {exc.strerror or exc}") from None
    if proc.returncode != 0 or not sig.is_file():
        raise TfgateError(f"ssh-keygen -Y sign failed (exit {proc.returncode}); see its message above")
    return sig


def parse_ttl(text: str) -> timedelta:
    from tfgate.policy.manifest import parse_duration

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
    #: --output names a directory (it ended in /): the statement goes inside it.
    output_is_dir: bool = False


def statement_path(opts: ApproveOptions, digest: str) -> Path:
    """Where the statement goes: --output FILE; inside --output DIR (existing, or given as DIR/); by default
    inside WORKDIR/approvals/ when that exists (what `tfgate init` makes), else the working directory."""
    name = f"approval-{digest[7:19]}-{_slug(opts.signer)}.json"
    if opts.output is not None and not opts.output_is_dir and not opts.output.is_dir():
        output = opts.output
    elif opts.output is not None:
        output = opts.output / name
    else:
        default = opts.plan.workdir / "approvals"
        output = (default if default.is_dir() else opts.plan.workdir) / name
    for path in (output, signature_path(output)):
        if path.is_dir():
            raise TfgateError(
                f"{path} is a directory: give --output a file name, or DIR/ to write inside DIR"
            )
    return output


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
    from tfgate import sysconfig
    from tfgate.approvals import sshsig

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
    manifest = sysconfig.gate_manifest(opts.plan.manifest, opts.plan.workdir)[0]  # the system pin, if any
    signers = usable_signers(manifest, opts.signer, opts.key, now or datetime.now(timezone.utc))
    check_ttl(ttl, manifest)
    target, _ = load_target(opts.plan, manifest)
    statement = make_statement(
        target, signer=opts.signer, ttl=ttl, reason=reason or "", now=now or datetime.now(timezone.utc),
        only=opts.only,
    )  # fmt: skip
    check_approver(target, manifest, statement)
    output = statement_path(opts, statement.plan_digest)
    if output.exists() and not opts.force:
        raise TfgateError(f"{output} exists (use --force to overwrite, or --output)")
    echo(describe(target, statement))
    if not opts.yes:
        if not interactive:
            raise TfgateError("no terminal to confirm on: review the changes above and pass --yes")
        if not confirm("Sign this approval?"):
            echo("not approved")
            return 1
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(statement.to_json())
    except OSError as exc:
        raise TfgateError(f"cannot write {output}: {exc.strerror or exc}") from None
    fields: dict[str, Any] = {
        "plan_digest": statement.plan_digest,
        "workspace": statement.workspace,
        "root": statement.root,
        "state": target.binding.state,
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
        auth = signers.authorize(key, statement.signer, NAMESPACE, datetime.now(timezone.utc))
        if not auth.ok:  # the key could not be told before signing (no .pub beside it): undo, refuse
            output.unlink(missing_ok=True)
            sig_path.unlink(missing_ok=True)
            raise TfgateError(_not_listed(statement.signer, key, signers, f"{auth.kind}: {auth.reason}"))
        echo(f"wrote {output} and {sig_path.name} (signed by {key.type} key {key.fingerprint})")
        echo(f"verified: {statement.signer} may sign tfgate approvals with this key ({auth.reason})")
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


def usable_signers(
    manifest: Any, signer: str, key: Path | None, now: datetime, namespace: str = NAMESPACE
) -> Any:
    """The manifest's allowed signers, refusing (TfgateError, exit 2, with the fix) when no approval by
    SIGNER with KEY could ever count: no `approvals:` section, no usable file, SIGNER (or KEY, when its
    public half is known) not listed for namespace tfgate."""
    from tfgate.approvals import allowed_signers

    line = f"{signer} {_namespaces(namespace)} <public key, e.g. ssh-ed25519 AAAA...>"
    if manifest.path is None:
        raise TfgateError(
            "no manifest (tfgate.yaml or --manifest): nothing says who may approve, so no approval could "
            "count; write a tfgate.yaml with `protect:` rules and `approvals: {allowed_signers: allowed_signers}`"
        )
    if manifest.allowed_signers is None:
        raise TfgateError(
            f"{manifest.path} has no usable `approvals:` section, so no approval could count: add "
            f"`approvals: {{allowed_signers: allowed_signers}}` and list each approver's key there, e.g. {line}"
        )
    signers = allowed_signers.load(Path(manifest.allowed_signers))
    if not signers.lines_for_principal(signer, namespace):
        raise TfgateError(
            f"{signer} is not listed in {manifest.allowed_signers} for namespace {namespace!r}, so this "
            f"{_what(namespace)} could not count: add a line {line} (or sign as a principal listed there)"
        )
    public = _public_key(key) if key is not None else None
    if public is not None:
        auth = signers.authorize(public, signer, namespace, now)
        if not auth.ok:
            raise TfgateError(_not_listed(signer, public, signers, f"{auth.kind}: {auth.reason}", namespace))
    return signers


def check_ttl(ttl: timedelta, manifest: Any) -> None:
    from tfgate.approvals.statement import max_ttl

    if ttl > max_ttl(manifest):
        raise TfgateError(
            f"--ttl {ttl} is longer than the manifest allows ({max_ttl(manifest)}, approvals: {{max_ttl}}): "
            "such an approval would not count; use a shorter --ttl"
        )


def _namespaces(namespace: str) -> str:
    """The `namespaces=` option an allowed-signers line needs for NAMESPACE: approvers sign plan and shim
    approvals alike; any other (tfgate-audit, checkpoints) only itself."""
    approvals = namespace in (NAMESPACE, "tfgate-shim")
    return f'namespaces="{NAMESPACE},tfgate-shim"' if approvals else f'namespaces="{namespace}"'


def _what(namespace: str) -> str:
    return "approval" if namespace in (NAMESPACE, "tfgate-shim") else "signature"


def _not_listed(signer: str, key: Any, signers: Any, why: str, namespace: str = NAMESPACE) -> str:
    return (
        f"this {_what(namespace)} could not count ({why}): list key {key.fingerprint} for {signer} in "
        f"{signers.path} (`{signer} {_namespaces(namespace)} {key.type} ...`), or sign with the key listed there"
    )


def _public_key(key: Path) -> Any:
    """The public half of KEY when it can be known without unlocking it: KEY itself (a public key for
    ssh-agent) or KEY.pub beside it; None otherwise (then checked right after signing)."""
    from tfgate.approvals.sshsig import PublicKey, SignatureError

    for candidate in (key, Path(f"{key}.pub")):
        try:
            text = candidate.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if text.lstrip().startswith(("ssh-", "ecdsa-", "sk-")):
            try:
                return PublicKey.from_openssh(text.strip())
            except SignatureError:
                continue
    return None


def check_approver(target: Target, manifest: Any, statement: Statement) -> None:
    """Refuse (exit 2) a statement whose signer approves for none of the rules protecting its changes."""
    from tfgate.approvals.allowed_signers import match_pattern

    approvers = {r.name: tuple(r.approvers) for r in manifest.rules}
    rules = {v.rule for v in target.violations if statement.covers(v)}
    if not rules:
        return  # nothing protected among them: the approval documents the destroy, it need not count
    if any(
        not approvers.get(r) or any(match_pattern(statement.signer, a) for a in approvers[r]) for r in rules
    ):
        return
    listed = "; ".join(f"{r}: {', '.join(approvers[r])}" for r in sorted(rules))
    raise TfgateError(
        f"{statement.signer} is not an approver of any rule protecting these changes ({listed}), so this "
        "approval could not count: sign as one of them, or add the signer to the rule's `approvers:`"
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:64]


# --- `tfgate approvals verify` -----------------------------------------------------------------------------


def run_verify(
    paths: Sequence[Path], opts: PlanOptions, *, fmt: str = "text", now: datetime | None = None
) -> tuple[str, int]:
    """Explain approval by approval what counts; exit 0 when the plan would then be allowed, else 1."""
    from tfgate import sysconfig

    now = now or datetime.now(timezone.utc)
    if not paths:
        raise TfgateError("give at least one approval file or directory")
    manifest = sysconfig.gate_manifest(opts.manifest, opts.workdir)[0]  # the system pin, if any
    target, _ = load_target(opts, manifest)
    counted = judge(
        paths, target.violations, manifest, digest=target.digest, workspace=target.workspace, now=now,
        binding=target.binding,
    )  # fmt: skip
    violations, outcomes = apply_counts(target.violations, counted), counted.outcomes
    blocked = [v for v in violations if not v.approved]
    allowed = not blocked and not target.blocking_findings
    if fmt == "json":
        doc = {
            "allowed": allowed,
            "plan_digest": target.digest,
            "workspace": target.workspace,
            "binding": target.binding.as_dict() if target.binding is not None else None,
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
    b = target.binding
    lines = [
        f"plan {target.digest}, workspace {target.workspace!r}",
        f"bound to: root {b.root}, {describe_state(b.state and (b.lineage, b.serial))} (from the {b.source})"
        if b.known
        else f"approvals cannot count: {b.problem}",
        "approvals:",
    ]
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
