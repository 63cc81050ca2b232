"""Signed audit checkpoints (namespace ``tfgate-audit``) and `tfgate audit verify`: the chain, then every
anchor of its head (tfgate.anchor: the ledger's, anchor files, signed checkpoints)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tfgate.anchor import Head, _head, check, head, read_anchor
from tfgate.audit import resolve_log, verify
from tfgate.errors import TfgateError

NAMESPACE = "tfgate-audit"
_CHECKPOINT_KEYS = ("tfgate", "version", "log", "seq", "head", "signer", "time")


def make_checkpoint(log: Path, *, signer: str, key: Path, output: Path | None, manifest: Any) -> Path:
    """Write and sign (namespace tfgate-audit) a checkpoint of the log's current head; returns the file."""
    from tfgate.approvals.commands import sign_file, usable_signers

    h = head(log)
    if h is None:
        raise TfgateError(f"audit log {log} is missing or empty: nothing to checkpoint")
    report = verify(log)
    if not report.ok:
        raise TfgateError(
            f"audit log {log} does not verify ({report.problems[0].message}): not checkpointing it"
        )
    signers = usable_signers(manifest, signer, key, datetime.now(timezone.utc), namespace=NAMESPACE)
    out = output or log.parent / f"audit-checkpoint-{h.seq}.json"
    if out.is_dir():
        out = out / f"audit-checkpoint-{h.seq}.json"
    now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    doc = {"tfgate": "audit-checkpoint", "version": 1, "log": h.log, "seq": h.seq, "head": h.hash,
           "signer": signer, "time": now}  # fmt: skip
    out.write_text(json.dumps(doc, indent=2) + "\n")
    sig = sign_file(out, key, namespace=NAMESPACE)
    problem = _checkpoint_problem(out, signers)
    if problem:
        out.unlink(missing_ok=True)
        sig.unlink(missing_ok=True)
        raise TfgateError(problem)
    return out


def _checkpoint_problem(path: Path, signers: Any) -> str | None:
    from tfgate.approvals import sshsig

    try:
        data = path.read_bytes()
        doc = json.loads(data)
        sig = Path(f"{path}.sig").read_bytes()
    except (OSError, ValueError) as exc:
        return f"checkpoint {path}: unreadable ({exc})"
    if (
        not isinstance(doc, dict)
        or doc.get("tfgate") != "audit-checkpoint"
        or set(doc) != set(_CHECKPOINT_KEYS)
    ):
        return f"checkpoint {path}: not a tfgate audit checkpoint (fields {', '.join(_CHECKPOINT_KEYS)})"
    try:
        key = sshsig.verify(sshsig.parse(sig), data, NAMESPACE)
    except sshsig.SignatureError as exc:
        return f"checkpoint {path}: bad signature: {exc}"
    auth = signers.authorize(key, str(doc["signer"]), NAMESPACE, datetime.now(timezone.utc))
    return None if auth.ok else f"checkpoint {path}: {auth.kind}: {auth.reason}"


# --- `tfgate audit verify` -----------------------------------------------------------------------------------


def main_verify(
    log: Path | None,
    *,
    head_hash: str | None = None,
    manifest: Path | None = None,
    workdir: Path = Path("."),
    workspace: str | None = None,
    anchors: Sequence[Path] = (),
    checkpoints: Sequence[Path] = (),
) -> int:
    """The chain, then every anchor of its head (ledger, anchor files, signed checkpoints). Prints the
    outcome; 0 intact, 1 tampered or empty; TfgateError (exit 2) for what cannot be read."""
    import sys

    from tfgate.pipeline import resolve_workspace
    from tfgate.policy.manifest import load_manifest
    from tfgate.state import ledger_document
    from tfgate.state.ledger import audit_heads

    m = load_manifest(manifest, cwd=workdir)
    path = resolve_log(log, manifest_log=m.audit_log, cwd=workdir)
    report = verify(path, head=head_hash)
    problems = [f"line {p.line}: {p.message}" for p in report.problems]
    held: list[str] = []

    def judge(h: Head, name: str) -> None:
        problem = check(path, h, name)
        if problem:
            problems.append(problem)
        else:
            held.append(name)

    key = str(path.resolve())
    where, data = ledger_document(workdir, m, resolve_workspace(workdir, workspace))
    found = audit_heads(data).get(key)
    if found is not None:
        if not isinstance(found, dict):
            raise TfgateError(f"{where}: its audit entry for {key} is not a mapping (edited?)")
        h = _head({**found, "log": key}, where)
        judge(h, f"the ledger {where}")
    for f in anchors:
        h = read_anchor(f)
        judge(h, f"anchor {f}")
    if checkpoints:
        from tfgate.approvals.judge import load_signers

        signers = load_signers(m)
        for f in checkpoints:
            bad = _checkpoint_problem(f, signers)
            if bad:
                problems.append(bad)
                continue
            h = _head(json.loads(f.read_bytes()), str(f))
            judge(h, f"checkpoint {f}")
    out = sys.stdout
    if not problems:
        out.write(f"audit log {path}: intact, {report.entries} entries, head sha256:{report.head}\n")
        out.write(
            f"anchored heads present: {', '.join(held)}\n"
            if held
            else "not anchored: no ledger entry, --anchor or --checkpoint names this log's head\n"
        )
        return 0
    for problem in problems:
        out.write(f"{path}: {problem}\n")
    verdict = "TAMPERED" if report.entries else "EMPTY, cannot be verified"
    out.write(f"audit log {path}: {verdict} ({len(problems)} problem(s) in {report.entries} lines)\n")
    return 1
