"""State integrity: notice a missing, stale or swapped Terraform state before it turns into a destroy.

Finding codes (stable): missing_state, lineage_mismatch, serial_regression, stale_plan, backend_changed
(block); state_not_versioned, state_not_locked, new_workspace (warn); state_not_checked (info). Each carries its
evidence.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from tfgate.errors import TfgateError
from tfgate.model import ChangeClass, Finding, Protection, Result, Severity
from tfgate.state.backend import configured_backend, differences, initialised_backend
from tfgate.state.ledger import entry, ledger_path, parse_ledger, read_ledger, record, write_ledger
from tfgate.state.ledger import protected as known_protected
from tfgate.state.tfstate import StateInfo, parse_state

__all__ = ["check_state", "current_state", "gather_state", "record_ledger"]

LOCAL = ("local", None)


def _f(code: str, severity: Severity, message: str, **evidence: Any) -> Finding:
    return Finding(code, severity, message, tuple((k, v) for k, v in evidence.items() if v is not None))


def _block(code: str, message: str, **evidence: Any) -> Finding:
    return _f(code, Severity.BLOCK, message, **evidence)


def local_state_path(workdir: Path, workspace: str, config: dict[str, Any] | None = None) -> Path:
    config = config or {}
    if workspace == "default":
        return workdir / str(config.get("path", "terraform.tfstate"))
    return workdir / str(config.get("workspace_dir", "terraform.tfstate.d")) / workspace / "terraform.tfstate"


def _read(path: Path) -> StateInfo | None:
    try:
        return parse_state(path.read_bytes(), str(path))
    except FileNotFoundError:
        return None


def current_state_bytes(workdir: Path, workspace: str) -> tuple[bytes | None, str]:
    """The workspace's current state document (None when there is none or the backend is not one tfgate
    reads: local and s3) and where it is."""
    backend = initialised_backend(workdir) or configured_backend(workdir)
    if backend is None or backend.type == "local":
        path = local_state_path(workdir, workspace, backend.config if backend else None)
        try:
            return path.read_bytes(), str(path)
        except FileNotFoundError:
            return None, str(path)
        except OSError as exc:
            raise TfgateError(f"cannot read {path}: {exc.strerror or exc}") from None
    if backend.type == "s3":
        from tfgate.state.s3 import read_current

        return read_current(backend.config, workspace)
    return None, f"the {backend.type} backend (not read by tfgate)"


def current_state(workdir: Path, workspace: str) -> tuple[StateInfo | None, Any]:
    """The workspace's current state and the evidence object (an S3Evidence for S3 backends)."""
    backend = initialised_backend(workdir) or configured_backend(workdir)
    if backend is None or backend.type == "local":
        return _read(local_state_path(workdir, workspace, backend.config if backend else None)), None
    if backend.type == "s3":
        from tfgate.state.s3 import gather

        evidence = gather(backend.config, workspace)
        return evidence.current, evidence
    return None, backend


def check_state(
    *, workdir: Path, plan: Any, manifest: Any, workspace: str, now: datetime, new_workspace: bool = False
) -> tuple[Finding, ...]:
    """Every state-integrity finding for this plan and working directory; an empty tuple when healthy."""
    return gather_state(
        workdir=workdir,
        plan=plan,
        manifest=manifest,
        workspace=workspace,
        now=now,
        new_workspace=new_workspace,
    )[0]


def gather_state(
    *, workdir: Path, plan: Any, manifest: Any, workspace: str, now: datetime, new_workspace: bool = False
) -> tuple[tuple[Finding, ...], Protection]:
    """The state-integrity findings, and what evaluation needs to follow protected objects by identity: the
    ledger's protected objects and (where the plan needs them) the objects of the working directory's state."""
    findings: list[Finding] = []
    configured = configured_backend(workdir)
    initialised = initialised_backend(workdir)

    # The backend in the configuration vs the one `terraform init` set up.
    if configured is not None and configured.type == "local" and initialised is not None:
        if diff := differences(configured, initialised):  # e.g. s3 -> local, or another local path
            findings.append(
                _block(
                    "backend_changed",
                    "the backend in the configuration differs from the one this directory was initialised with",
                    **{f"{k} (configured, initialised)": list(v) for k, v in diff.items()},
                )
            )
    elif configured is not None and configured.type != "local":
        if initialised is None:
            findings.append(
                _block(
                    "missing_state",
                    f"the configuration declares a {configured.type} backend but this directory is not "
                    "initialised for it: Terraform would plan against an empty local state",
                    configured_backend=configured.type,
                    backend_file=configured.source,
                )
            )
        elif diff := differences(configured, initialised):
            findings.append(
                _block(
                    "backend_changed",
                    "the backend in the configuration differs from the one this directory was initialised with",
                    **{f"{k} (configured, initialised)": list(v) for k, v in diff.items()},
                )
            )
    elif configured is None and initialised is not None and initialised.type != "local":
        findings.append(
            _block(
                "backend_changed",
                f"the directory was initialised with a {initialised.type} backend the configuration no longer "
                "declares: Terraform would switch to a local state",
                initialised_backend=initialised.type,
            )
        )

    current, evidence = (
        current_state(workdir, workspace) if not any(f.blocks for f in findings) else (None, None)
    )
    remote = evidence is not None and not hasattr(evidence, "type")
    if evidence is not None and hasattr(evidence, "type"):
        findings.append(
            _f(
                "state_not_checked",
                Severity.INFO,
                f"the {evidence.type} backend's state cannot be read by tfgate: only the plan, the ledger and "
                "the backend configuration were checked",
                backend=evidence.type,
            )
        )

    # Ledger: what earlier allowed runs saw.
    ledger_file, data = _load_ledger(workdir, manifest, evidence if remote else None)
    seen = entry(data, workspace)
    if seen:
        if current is None or current.empty:
            if seen.get("resources", 0) > 0:
                findings.append(
                    _block(
                        "missing_state",
                        f"workspace {workspace} managed {seen['resources']} resources at the last allowed run, "
                        "but its state is now missing or empty",
                        ledger=str(ledger_file),
                        ledger_lineage=seen.get("lineage"),
                        ledger_serial=seen.get("serial"),
                        ledger_time=seen.get("time"),
                        current_state=current.source if current else "absent",
                    )
                )
        elif seen.get("lineage") and current.lineage != seen["lineage"]:
            findings.append(
                _block(
                    "lineage_mismatch",
                    "the current state is a different state (another lineage) than the one seen before for "
                    f"workspace {workspace}: another workspace's or a re-created state was put in place",
                    current_lineage=current.lineage,
                    ledger_lineage=seen["lineage"],
                    state=current.source,
                    ledger=str(ledger_file),
                )
            )
        elif current.serial is not None and current.serial < seen.get("max_serial", 0):
            findings.append(
                _block(
                    "serial_regression",
                    "the current state is older than one seen before: an old copy was put back",
                    current_serial=current.serial,
                    highest_serial_seen=seen["max_serial"],
                    lineage=current.lineage,
                    state=current.source,
                    ledger=str(ledger_file),
                )
            )

    # Local backup without its state: the state file was removed (or never copied to this machine) while
    # Terraform's own backup of it, with resources, is still there.
    if current is None and evidence is None and not any(f.code == "missing_state" for f in findings):
        backend = initialised or configured
        if backend is None or backend.type == "local":
            path = local_state_path(workdir, workspace, backend.config if backend else None)
            backup = _read(Path(str(path) + ".backup"))
            if backup and not backup.empty:
                findings.append(
                    _block(
                        "missing_state",
                        f"there is no state file, but its backup holds {backup.resources} resources: the state "
                        "was removed or not copied here (planning now would create duplicates)",
                        state=str(path),
                        backup=backup.source,
                        backup_lineage=backup.lineage,
                        backup_serial=backup.serial,
                    )
                )

    # Local backup: terraform.tfstate.backup is the state before the last write.
    if current is not None and evidence is None:
        backup = _read(Path(current.source + ".backup"))
        if backup and backup.lineage == current.lineage and (backup.serial or 0) > (current.serial or 0):
            findings.append(
                _block(
                    "serial_regression",
                    "the state is older than its own backup: an old copy was put back",
                    current_serial=current.serial,
                    backup_serial=backup.serial,
                    lineage=current.lineage,
                    state=current.source,
                )
            )
        elif (
            backup and not seen and backup.lineage and not backup.empty and backup.lineage != current.lineage
        ):
            # No ledger yet to compare with, but Terraform's own backup is another state than the current
            # one: a state from elsewhere (another workspace's) was put in place of this one.
            findings.append(
                _block(
                    "lineage_mismatch",
                    "the state is a different state (another lineage) than its own backup, which holds "
                    f"{backup.resources} resource(s): another workspace's or a re-created state was put in "
                    "place (if the old state was retired on purpose, remove its backup)",
                    current_lineage=current.lineage,
                    backup_lineage=backup.lineage,
                    state=current.source,
                    backup=backup.source,
                )
            )

    if remote:
        findings += _s3_findings(evidence, seen)

    # The state inside a saved binary plan vs the state now.
    readable = not (evidence is not None and hasattr(evidence, "type")) and not any(
        f.blocks for f in findings
    )
    findings += _plan_findings(plan, current, manifest, now, current_readable=readable)

    # A protected resource planned for plain create against an empty prior state: its state is missing.
    # A stream carries no prior state: the working directory's (what Terraform planned against) stands in.
    prior_empty = plan.prior_state_empty
    if prior_empty is None and plan.info.input_format == "stream" and readable:
        prior_empty = current is None or current.empty
    if prior_empty:
        protected = [
            c.address
            for c in plan.changes
            if c.change_class is ChangeClass.CREATE and c.mode == "managed" and manifest.rules_for(c)
        ]
        other_evidence = any(f.blocks for f in findings)
        if protected and new_workspace and not other_evidence:
            # A human says this workspace is new: the first creation of its protected resources. Only
            # this signal is set aside; any other evidence of an earlier state still blocks.
            findings.append(
                _f(
                    "new_workspace",
                    Severity.WARN,
                    f"the plan starts from an empty state and creates {len(protected)} protected resource(s); "
                    "accepted as a new workspace (--new-workspace)",
                    protected_creates=protected[:20],
                    prior_state="empty",
                )
            )
        elif protected:
            findings.append(
                _block(
                    "missing_state",
                    f"the plan starts from an empty state yet creates {len(protected)} protected resource(s): "
                    "the real state is probably missing (applying would create duplicates). If this "
                    "workspace really is new, a human runs the first apply with --new-workspace",
                    protected_creates=protected[:20],
                    prior_state="empty",
                )
            )
    if plan.info.input_format == "stream":
        findings.append(
            _f(
                "state_not_checked",
                Severity.INFO,
                "a plan -json stream carries no prior state: only the working directory's state was checked",
            )
        )
    from tfgate.state import objects

    known = known_protected(data, workspace)
    current_objects = objects.needed(plan, manifest, current, known, readable)
    if current is not None and readable:
        findings += objects.coverage(manifest, current_objects, plan)
    return tuple(_dedupe(findings)), objects.protection(known, current_objects, plan)


def _plan_findings(
    plan: Any, current: StateInfo | None, manifest: Any, now: datetime, *, current_readable: bool = True
) -> list[Finding]:
    out: list[Finding] = []
    if manifest.max_plan_age is not None and plan.info.timestamp:
        try:
            made = datetime.fromisoformat(plan.info.timestamp.replace("Z", "+00:00"))
        except ValueError:
            raise TfgateError(f"plan timestamp {plan.info.timestamp!r} is not a time") from None
        if now - made > manifest.max_plan_age:
            out.append(
                _block(
                    "stale_plan",
                    f"the plan is older than the manifest's max_plan_age ({manifest.max_plan_age})",
                    plan_timestamp=plan.info.timestamp,
                    checked_at=now.isoformat(timespec="seconds"),
                )
            )
    if plan.info.input_format != "binary" or plan.path is None:
        return out
    from tfgate.state.planfile import plan_states

    planned, _ = plan_states(plan.path)
    if planned is not None and planned.never_saved and (current is None or current.empty):
        return out  # planned against no state at all (a new workspace); its data sources and imports only
    if planned is not None and not planned.empty and current_readable and (current is None or current.empty):
        # The plan manages resources but this directory's backend holds none: the plan belongs to another
        # working directory (its manifest and state are elsewhere), or this state is missing.
        out.append(
            _block(
                "missing_state",
                f"the saved plan was made against a state with {planned.resources} resource(s), but this "
                "working directory's state is absent or empty: apply a plan from its own working directory",
                plan_lineage=planned.lineage,
                plan_serial=planned.serial,
                plan_resources=planned.resources,
                current_state=current.source if current else "absent",
            )
        )
        return out
    if planned is None or current is None or (planned.empty and current.empty):
        return out
    if planned.lineage != current.lineage:
        out.append(
            _block(
                "lineage_mismatch",
                "the saved plan was made against a different state (another lineage) than the current one",
                plan_lineage=planned.lineage,
                current_lineage=current.lineage,
                state=current.source,
            )
        )
    elif planned.serial != current.serial:
        out.append(
            _block(
                "stale_plan",
                "the state changed after the plan was saved: re-plan before applying",
                plan_serial=planned.serial,
                current_serial=current.serial,
                lineage=current.lineage,
            )
        )
    elif lost := _not_in_plan_state(planned, current, plan):
        shown = ", ".join(lost[:5]) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
        out.append(
            _block(
                "plan_state_mismatch",
                f"the state inside the saved plan lacks {len(lost)} object(s) the current state (same lineage and "
                f"serial) holds: {shown}. Terraform applies the plan onto the state inside it, so applying it would "
                "drop or rewrite them in the state. The plan file was edited, or the objects were deleted outside Terraform "
                "(then review and apply a `terraform plan -refresh-only` first)",
                objects=lost,
                lineage=current.lineage,
                serial=current.serial,
            )
        )
    return out


def _other_object(planned: tuple[str, ...], current: tuple[str, ...]) -> bool:
    """Identity keys of one kind (id, arn, resource identity) that both have, with different values (a refresh
    may fill in a key the state lacked, never change one)."""
    kinds = {k.split("=", 1)[0]: k for k in planned}
    return any(kinds.get(k.split("=", 1)[0], k) != k for k in current)


def _not_in_plan_state(planned: StateInfo, current: StateInfo, plan: Any) -> list[str]:
    """Objects (address, deposed) of the current state that the saved plan's prior state does not hold (at
    the address a `moved` block gave it), or holds under other identity keys (id, arn, resource identity: a
    refresh does not change who an object is)."""
    from tfgate.state.objects import state_objects

    moves = {c.previous_address: c.address for c in plan.changes if c.moved}
    have = {(o.change.address, o.change.deposed): o.keys for o in state_objects(planned)}
    out = []
    for o in state_objects(current):
        where = (moves.get(o.change.address, o.change.address), o.change.deposed)
        name = o.change.address + (f" (deposed {o.change.deposed})" if o.change.deposed else "")
        if where not in have:
            out.append(name)
        elif _other_object(have[where], o.keys):
            out.append(f"{name} (as another object: {', '.join(have[where]) or 'no id'})")
    return out


def _s3_findings(ev: Any, seen: dict[str, Any] | None) -> list[Finding]:
    out: list[Finding] = []
    where = f"s3://{ev.bucket}/{ev.key}"
    if ev.versioning != "Enabled":
        out.append(
            _f(
                "state_not_versioned",
                Severity.WARN,
                f"bucket {ev.bucket} has no versioning: an overwritten or deleted state cannot be recovered",
                bucket=ev.bucket,
                versioning=ev.versioning or "never enabled",
            )
        )
    if ev.locking is None:
        out.append(
            _f(
                "state_not_locked",
                Severity.WARN,
                "no state locking is configured (use_lockfile or dynamodb_table): concurrent runs can "
                "overwrite each other's state",
                state=where,
            )
        )
    earlier = [(vid, when, st) for vid, when, st in ev.history if st is not None and not st.empty]
    if ev.current is None or ev.current.empty:
        if earlier:
            vid, when, st = earlier[0]
            out.append(
                _block(
                    "missing_state",
                    f"{where} is missing or empty now, but its version history holds a state with "
                    f"{st.resources} resources",
                    state=where,
                    current_version=ev.current_version,
                    earlier_version=vid,
                    earlier_modified=when,
                    earlier_serial=st.serial,
                    earlier_lineage=st.lineage,
                )
            )
        return out
    same = [(vid, when, st) for vid, when, st in earlier if st.lineage == ev.current.lineage]
    if same:
        vid, when, st = max(same, key=lambda e: e[2].serial or 0)
        if (st.serial or 0) > (ev.current.serial or 0):
            out.append(
                _block(
                    "serial_regression",
                    f"{where} is older than an earlier version of itself: an old copy was put back",
                    current_serial=ev.current.serial,
                    current_version=ev.current_version,
                    newer_version=vid,
                    newer_serial=st.serial,
                    newer_modified=when,
                    lineage=ev.current.lineage,
                )
            )
    elif earlier and not seen:
        vid, when, st = earlier[0]
        out.append(
            _block(
                "lineage_mismatch",
                f"{where} now holds a different state (another lineage) than its previous version",
                current_lineage=ev.current.lineage,
                previous_lineage=st.lineage,
                previous_version=vid,
                previous_modified=when,
            )
        )
    return out


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        if (f.code, f.message) not in seen:
            seen.add((f.code, f.message))
            out.append(f)
    return out


def _s3_ledger(manifest: Any, evidence: Any) -> bool:
    return manifest.ledger is None and evidence is not None and hasattr(evidence, "bucket")


def ledger_document(workdir: Path, manifest: Any, workspace: str) -> tuple[str, dict[str, Any]]:
    """(where, contents) of the ledger this working directory's runs write (the S3 object for S3 backends)."""
    _, evidence = current_state(workdir, workspace)
    return _load_ledger(workdir, manifest, evidence if hasattr(evidence, "bucket") else None)


def _load_ledger(workdir: Path, manifest: Any, evidence: Any) -> tuple[str, dict[str, Any]]:
    """The ledger: the manifest's path, else an object next to an S3 state, else .tfgate/ledger.json."""
    if _s3_ledger(manifest, evidence):
        from tfgate.state import s3

        where = f"s3://{evidence.bucket}/{s3.ledger_key(evidence)}"
        backend = initialised_backend(workdir) or configured_backend(workdir)
        return where, parse_ledger(s3.read_ledger_object(backend.config, evidence), where)
    path = ledger_path(workdir, manifest.ledger)
    return str(path), read_ledger(path)


def _protected_now(
    current: StateInfo, manifest: Any, data: dict[str, Any], workspace: str, seen: dict[str, Any],
    applied: tuple[Any, ...],
) -> dict[str, Any]:  # fmt: skip
    """The protected objects of the state now, plus those the ledger knew and ``applied`` (the changes of the
    gated apply just done) did not destroy (all of them when this state is not a continuation of the one the
    ledger saw: nothing is forgotten then)."""
    from tfgate.policy.catalog import load_catalog
    from tfgate.state.objects import destroyed_keys, protected_entries, state_objects

    previous = known_protected(data, workspace)
    if not manifest.rules and not previous:
        return {}
    keep = current.empty or (bool(seen.get("lineage")) and seen.get("lineage") != current.lineage)
    destroyed = destroyed_keys(applied)
    return protected_entries(state_objects(current), manifest, load_catalog(), previous, keep, destroyed)


def record_ledger(
    *, workdir: Path, plan: Any, manifest: Any, workspace: str, result: Result, audit_head: Any = None,
    applied: tuple[Any, ...] = (),
) -> None:  # fmt: skip
    """After an allowed run, remember this workspace's state identity for the next run (and, after a gated
    apply, the audit log's head: ``audit_head`` is a tfgate.anchor.Head, and ``applied`` the changes it
    carried out: only the objects it destroyed leave the ledger's protected map)."""
    try:
        current, evidence = current_state(workdir, workspace)
    except TfgateError:
        return  # evidence unreadable now: nothing trustworthy to record
    if current is None:
        return
    where, data = _load_ledger(workdir, manifest, evidence)
    seen = entry(data, workspace) or {}
    record(
        data,
        workspace,
        lineage=current.lineage,
        serial=current.serial,
        resources=current.resources,
        digest=result.plan.digest,
        protected=_protected_now(current, manifest, data, workspace, seen, applied),
    )
    if audit_head is not None:
        from tfgate.state.ledger import record_audit_head

        record_audit_head(data, log=audit_head.log, seq=audit_head.seq, head=audit_head.hash)
    if _s3_ledger(manifest, evidence):
        from tfgate.state import s3

        backend = initialised_backend(workdir) or configured_backend(workdir)
        s3.write_ledger_object(backend.config, evidence, json.dumps(data, indent=1, sort_keys=True).encode())
    else:
        write_ledger(Path(where), data)
