"""Shim approvals: a human's signed approval of one exact state-changing Terraform command, held to the same
rules as plan approvals.

The statement (namespace ``tfgate-shim``; ``tfgate shim approve`` writes and signs it)::

    {"tfgate": "shim-approval", "version": 2,
     "command": "state rm aws_db_instance.main",   # the Terraform arguments after the program name (shell-quoted)
     "workspace": "default", "root": "local:/srv/orders",
     "state": {"lineage": "5ef7...", "serial": 12},  # the state `terraform state pull` showed; null: none
     "signer": "alice@example.com",
     "issued_at": "2025-01-01T10:00:00Z", "expires": "2025-01-01T14:00:00Z",   # required; at most max_ttl
     "reason": "drop the record of the retired database (CHG-42)"}

The command is approved when, for every manifest rule matching an address it touches (whatever the rule's
actions: a state edit is outside any plan), ``approvals`` statements count from distinct people among the
rule's ``approvers``; a command touching no protected address needs one statement from any listed signer.
A statement counts when its signature verifies in namespace ``tfgate-shim`` by a key the allowed-signers
file lists for its ``signer``, it names exactly this command, workspace, root and state, and it is within
its lifetime (``expires`` at most the manifest's ``approvals: {max_ttl}`` after ``issued_at``, 24 h by
default). What a command touches: the addresses it names (``state rm|mv``, ``import``, ``taint``,
``untaint``; a module or resource address covers its instances); every address in the state for the rest
(``state push``, ``state replace-provider``, ``force-unlock``, ``workspace delete``, ``refresh``, ...).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tfgate.approvals.statement import (
    CLOCK_SKEW,
    MAX_STATEMENT_BYTES,
    StatementError,
    _rfc3339,
    _state,
    _time,
    lifetime_problem,
    require_fields,
)
from tfgate.errors import TfgateError
from tfgate.model import Change, ChangeClass, StateBinding
from tfgate.strict import json_loads

NAMESPACE = "tfgate-shim"
KIND = "shim-approval"
FORMAT_VERSION = 2
_KEYS = (
    "tfgate",
    "version",
    "command",
    "workspace",
    "root",
    "state",
    "signer",
    "issued_at",
    "expires",
    "reason",
)
#: Commands that name the addresses they touch (positional arguments after the subcommand words).
_NAMED = {"state rm": None, "state mv": None, "import": 1, "taint": 1, "untaint": 1}


@dataclass(frozen=True)
class ShimStatement:
    command: str
    workspace: str
    root: str
    state: tuple[str, int] | None
    signer: str
    issued_at: datetime
    expires: datetime
    reason: str

    def to_json(self) -> bytes:
        doc = {
            "tfgate": KIND, "version": FORMAT_VERSION, "command": self.command, "workspace": self.workspace,
            "root": self.root,
            "state": {"lineage": self.state[0], "serial": self.state[1]} if self.state else None,
            "signer": self.signer, "issued_at": _rfc3339(self.issued_at), "expires": _rfc3339(self.expires),
            "reason": self.reason,
        }  # fmt: skip
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def parse(cls, data: bytes) -> ShimStatement:
        try:
            doc = json_loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise StatementError(f"not JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("tfgate") != KIND:
            raise StatementError(f'not a shim approval ("tfgate": "{KIND}" missing)')
        if doc.get("version") != FORMAT_VERSION or isinstance(doc.get("version"), bool):
            raise StatementError(
                f"not a version {FORMAT_VERSION} shim approval: earlier ones were bound to no workspace, root or "
                "state and needed no expiry; approve again with `tfgate shim approve`"
            )
        require_fields(
            doc, _KEYS, ("command", "workspace", "root", "signer", "issued_at", "expires", "reason")
        )
        issued, expires = _time(doc["issued_at"], "issued_at"), _time(doc["expires"], "expires")
        if expires <= issued:
            raise StatementError("expires is not after issued_at")
        return cls(
            doc["command"], doc["workspace"], doc["root"], _state(doc["state"]), doc["signer"], issued, expires,
            doc["reason"],
        )  # fmt: skip


# --- what a command is and touches -----------------------------------------------------------------------


@dataclass(frozen=True)
class Protection:
    rule: str
    approvals: int
    approvers: tuple[str, ...]
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class CommandTarget:
    """One state-changing command as far as approving it goes."""

    command: str  # shell-quoted arguments after the program name
    workspace: str
    binding: StateBinding
    touched: tuple[str, ...]  # addresses; ("*",) when it is the whole state and the state is empty
    protections: tuple[Protection, ...]


def _instances(state: dict[str, Any]) -> list[tuple[str, Change]]:
    """(address, Change for rule matching) of every resource instance in a state document."""
    from tfgate.policy.catalog import load_catalog

    catalog = load_catalog()
    out = []
    for r in state.get("resources") or []:
        if not isinstance(r, dict):
            continue
        mode, rtype, name, module = r.get("mode"), str(r.get("type")), str(r.get("name")), r.get("module")
        head = ("data." if mode == "data" else "") + f"{rtype}.{name}"
        base = f"{module}.{head}" if module else head
        for inst in r.get("instances") or [{}]:
            key = inst.get("index_key") if isinstance(inst, dict) else None
            suffix = "" if key is None else f"[{json.dumps(key)}]" if isinstance(key, str) else f"[{key}]"
            attrs = inst.get("attributes") if isinstance(inst, dict) else None
            prior = {
                k: attrs[k]
                for k in ("tags", "tags_all", "labels", "id")
                if isinstance(attrs, dict) and k in attrs
            }
            out.append((base + suffix, _change(base + suffix, mode, rtype, name, module, prior, catalog)))
    return out


def _change(address: str, mode: Any, rtype: str, name: str, module: Any, prior: dict, catalog: Any) -> Change:
    entry = catalog.lookup(rtype) if mode == "managed" else None
    return Change(
        address=address, mode="data" if mode == "data" else "managed", type=rtype, name=name,
        module_address=module or None, index=None, provider=None, actions=(), change_class=ChangeClass.FORGET,
        prior=tuple(prior.items()), catalog_classes=entry.classes if entry else (),
        catalog_kind=entry.kind if entry else None,
    )  # fmt: skip


def _covers(named: str, address: str) -> bool:
    return address == named or address.startswith((named + "[", named + "."))


def touched(
    args: Sequence[str], sub: str, index: int, state: dict[str, Any] | None
) -> list[tuple[str, Change, bool]]:
    """(address, Change, tags known) of everything the command touches."""
    from tfgate.plan.address import parse_address
    from tfgate.policy.catalog import load_catalog

    instances = _instances(state or {})
    if sub not in _NAMED:
        return [(a, c, True) for a, c in instances]
    words = len(sub.split())
    rest = [a for a in args[index + words :] if a != "--"]
    positional = [a for a in rest if not a.startswith("-")]
    limit = _NAMED[sub]
    named = positional[:limit] if limit else positional
    out = []
    for n in named:
        hits = [(a, c, True) for a, c in instances if _covers(n, a)]
        if not hits:  # not in the state (import, or a typo): judged by its address, tags unknown
            try:
                p = parse_address(n)
            except TfgateError:
                hits = [(n, _change(n, "managed", "", "", None, {}, load_catalog()), False)]
            else:
                hits = [(n, _change(n, p.mode, p.type, p.name, p.module, {}, load_catalog()), False)]
        out.extend(hits)
    return out


def pull_state(real: Sequence[str], workdir: Path, workspace: str | None = None) -> dict[str, Any] | None:
    """`terraform state pull` (of WORKSPACE when given): the state document, or None when there is none."""
    import subprocess

    from tfgate.errors import TerraformError
    from tfgate.plan.terraform import clean_env

    env = clean_env()
    if workspace:
        env["TF_WORKSPACE"] = workspace
    proc = subprocess.run(
        [*real, "state", "pull"], cwd=workdir, capture_output=True, stdin=subprocess.DEVNULL, env=env
    )
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = next((line.strip(" │╷╵") for line in err if "Error" in line), err[-1] if err else "")
        raise TerraformError(f"terraform state pull failed (exit {proc.returncode}): {detail}")
    if not proc.stdout.strip():
        return None
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise TfgateError("terraform state pull did not print a state") from None
    return doc if isinstance(doc, dict) else None


def command_target(
    args: Sequence[str], sub: str, index: int, *, workdir: Path, manifest: Any, real: Sequence[str]
) -> CommandTarget:
    """What approving this command means here: its workspace, root, state, and the rules protecting it."""
    from tfgate.pipeline import resolve_workspace
    from tfgate.state.binding import root_identity

    workspace = resolve_workspace(workdir, None)
    other = None
    if sub == "workspace delete":
        other = next((a for a in args[index + 2 :] if not a.startswith("-")), None)
        workspace = other or workspace
    root = root_identity(workdir)
    try:
        state = pull_state(real, workdir, other)
    except TfgateError as exc:
        binding = StateBinding(root, None, None, "state", f"the state cannot be read: {exc}")
        state = None
    else:
        lineage = state.get("lineage") if state else None
        serial = state.get("serial") if state else None
        if state and (
            not isinstance(lineage, str) or not isinstance(serial, int) or isinstance(serial, bool)
        ):
            binding = StateBinding(
                root, None, None, "state", "terraform state pull printed no lineage and serial"
            )
        elif lineage:
            binding = StateBinding(root, lineage, serial, "state")
        else:
            binding = StateBinding(root, None, None, "state")
    hits = touched(args, sub, index, state)
    rules: dict[str, Protection] = {}
    for address, change, known in hits:
        for r in manifest.rules_for(change, tags_known=known):
            have = rules.get(r.name)
            addresses = (*(have.addresses if have else ()), address)
            rules[r.name] = Protection(r.name, r.approvals, tuple(r.approvers), addresses)
    return CommandTarget(
        shlex.join(args), workspace, binding, tuple(a for a, _, _ in hits) or ("*",), tuple(rules.values())
    )


# --- judging ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShimVerdict:
    approved: bool
    reason: str
    signers: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()


def files(spec: str) -> list[Path]:
    """Statement files named by TFGATE_APPROVALS (``:``-separated files and directories)."""
    out: list[Path] = []
    for part in spec.split(os.pathsep):
        p = Path(part) if part else None
        if p is None:
            continue
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.is_file() and not f.name.endswith(".sig")))
        elif p.is_file():
            out.append(p.with_name(p.name[:-4]) if p.name.endswith(".sig") else p)
    return list(dict.fromkeys(out))


def judge_command(target: CommandTarget, paths: Sequence[Path], signers: Any, *, now: datetime,
                  limit: timedelta) -> ShimVerdict:  # fmt: skip
    """Count the statements toward every rule protecting the command; approved when each has enough."""
    from tfgate.approvals import sshsig
    from tfgate.approvals.allowed_signers import match_pattern
    from tfgate.approvals.judge import binding_problem

    reasons: list[str] = []
    valid: list[tuple[str, str, int]] = []  # (source, signer, person)
    b = target.binding
    for path in paths:
        name = path.name

        def refuse(why: str, name: str = name) -> None:
            reasons.append(f"{name}: {why}")

        try:
            if path.stat().st_size > MAX_STATEMENT_BYTES:
                refuse("unreadable: larger than 16 MiB")
                continue
            data = path.read_bytes()
            stmt = ShimStatement.parse(data)
        except OSError as exc:
            refuse(f"unreadable: {exc.strerror or exc}")
            continue
        except StatementError as exc:
            refuse(f"unreadable: {exc}")
            continue
        if stmt.command != target.command:
            refuse(f"other command: approves `{stmt.command}`, not `{target.command}`")
            continue
        try:
            key = sshsig.verify(sshsig.parse(path.with_name(name + ".sig").read_bytes()), data, NAMESPACE)
        except FileNotFoundError:
            refuse(f"unsigned: no signature file {name}.sig")
            continue
        except (OSError, sshsig.SignatureError) as exc:
            refuse(f"bad signature: {exc}")
            continue
        auth = signers.authorize(key, stmt.signer, NAMESPACE, now)
        if not auth.ok:
            refuse(f"{auth.kind}: {auth.reason}")
            continue
        if stmt.workspace != target.workspace:
            refuse(f"other workspace: approves workspace {stmt.workspace!r}, this is {target.workspace!r}")
            continue
        problem = binding_problem(stmt, b)
        if problem:
            refuse(problem)
            continue
        if too_long := lifetime_problem(stmt.issued_at, stmt.expires, limit):
            refuse(too_long)
            continue
        if now >= stmt.expires:
            refuse(f"expired: at {_rfc3339(stmt.expires)}")
            continue
        if stmt.issued_at > now + CLOCK_SKEW:
            refuse(f"not yet valid: issued_at {_rfc3339(stmt.issued_at)} is in the future")
            continue
        valid.append((str(path), stmt.signer, signers.person(auth.line)))
    needs = target.protections or (Protection("(no rule protects it)", 1, (), target.touched),)
    short: list[str] = []
    counted: dict[int, tuple[str, str]] = {}
    for p in needs:
        people: dict[int, tuple[str, str]] = {}
        for source, who, person in valid:
            if (not p.approvers or any(match_pattern(who, a) for a in p.approvers)) and person not in people:
                people[person] = (who, source)
        if len(people) < p.approvals:
            whom = f" from {', '.join(p.approvers)}" if p.approvers else ""
            have = f": {', '.join(w for w, _ in people.values())}" if people else ""
            short.append(
                f"rule {p.rule!r} protects {', '.join(p.addresses[:5])} and needs {p.approvals} approval(s){whom} "
                f"by distinct people, {len(people)} counted{have}"
            )
        counted.update(people)
    used = {source for _, source in counted.values()}
    for source, who, person in valid:
        if source in used:
            continue
        twin = next((w for p, (w, _) in counted.items() if p == person), None)
        reasons.append(
            f"{Path(source).name}: same signer twice: {who} is the same person as {twin}"
            if twin
            else f"{Path(source).name}: signer not an approver: {who} approves for no rule protecting this command"
        )
    if short:
        return ShimVerdict(False, "; ".join(short + (reasons or ["no approval statements found"])))
    return ShimVerdict(
        True, "approved", tuple(w for w, _ in counted.values()), tuple(s for _, s in counted.values())
    )


# --- `tfgate shim approve` -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShimApproveOptions:
    args: tuple[str, ...]  # the Terraform arguments after the program name
    signer: str
    key: Path
    reason: str
    workdir: Path = Path(".")
    ttl: str = "4h"
    output: Path | None = None
    manifest: Path | None = None
    terraform: str | None = None
    yes: bool = False
    force: bool = False
    audit_log: str | None = None


def run_shim_approve(
    opts: ShimApproveOptions, *, echo: Any, confirm: Any, interactive: bool, now: datetime | None = None
) -> int:
    """Show what the command touches and who must approve it, confirm, write the statement, sign it."""
    from datetime import timezone

    from tfgate.agents.programs import classify_terraform
    from tfgate.approvals import sshsig
    from tfgate.approvals.allowed_signers import match_pattern
    from tfgate.approvals.commands import _not_listed, _slug, check_ttl, parse_ttl, sign_file, usable_signers
    from tfgate.approvals.statement import describe_state
    from tfgate.plan.terraform import find_terraform
    from tfgate.policy.manifest import load_manifest

    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    args = list(opts.args)
    what = classify_terraform(args)
    if what.sub == "refresh":
        what = what._replace(kind="state")
    if what.kind not in ("state", "test"):
        raise TfgateError(
            f"`{shlex.join(args)}` is not a command the shim asks approval for ({what.kind}): apply and destroy "
            "go through the gate (tfgate apply, with plan approvals); read-only commands need none"
        )
    if not opts.reason.strip():
        raise TfgateError("a --reason is required (it goes into the statement and the audit log)")
    chdir = next((a.split("=", 1)[1] for a in args[: what.index] if a.startswith("-chdir=")), None)
    workdir = opts.workdir / chdir if chdir else opts.workdir
    manifest = load_manifest(opts.manifest, cwd=workdir)
    signers = usable_signers(manifest, opts.signer, opts.key, now, namespace=NAMESPACE)
    ttl = parse_ttl(opts.ttl)
    check_ttl(ttl, manifest)
    target = command_target(args, what.sub, what.index, workdir=workdir, manifest=manifest,
                            real=find_terraform(opts.terraform))  # fmt: skip
    b = target.binding
    if not b.known or b.root is None:
        raise TfgateError(f"cannot approve `{target.command}`: {b.problem}")
    if target.protections and not any(
        not p.approvers or any(match_pattern(opts.signer, a) for a in p.approvers) for p in target.protections
    ):
        listed = "; ".join(f"{p.rule}: {', '.join(p.approvers)}" for p in target.protections)
        raise TfgateError(
            f"{opts.signer} is not an approver of any rule protecting what `{target.command}` touches ({listed}), "
            "so this approval could not count"
        )
    stmt = ShimStatement(target.command, target.workspace, b.root, (b.lineage, b.serial or 0) if b.lineage else None,
                         opts.signer, now, now + ttl, opts.reason.strip())  # fmt: skip
    lines = [
        f"Approve `terraform {stmt.command}`",
        f"  workspace:  {stmt.workspace}", f"  root:       {stmt.root}", f"  state:      {describe_state(stmt.state)}",
        f"  signer:     {stmt.signer}", f"  valid:      {_rfc3339(stmt.issued_at)} to {_rfc3339(stmt.expires)}",
        f"  reason:     {stmt.reason}", f"  touches:    {', '.join(target.touched[:10])}"
        + (f" and {len(target.touched) - 10} more" if len(target.touched) > 10 else ""),
    ]  # fmt: skip
    for p in target.protections or (Protection("(none)", 1, (), ()),):
        lines.append(
            f"  rule {p.rule}: needs {p.approvals} approval(s) from {', '.join(p.approvers) or 'any signer'}"
        )
    echo("\n".join(lines))
    output = opts.output or workdir / f"shim-approval-{_slug(stmt.command)[:40]}-{_slug(opts.signer)}.json"
    if output.is_dir():
        output = output / f"shim-approval-{_slug(stmt.command)[:40]}-{_slug(opts.signer)}.json"
    if output.exists() and not opts.force:
        raise TfgateError(f"{output} exists (use --force to overwrite, or --output)")
    if not opts.yes:
        if not interactive:
            raise TfgateError("no terminal to confirm on: review the command above and pass --yes")
        if not confirm("Sign this approval?"):
            echo("not approved")
            return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(stmt.to_json())
    sig = sign_file(output, opts.key, namespace=NAMESPACE)
    key = sshsig.verify(sshsig.parse(sig.read_bytes()), output.read_bytes(), NAMESPACE)
    auth = signers.authorize(key, stmt.signer, NAMESPACE, datetime.now(timezone.utc))
    if not auth.ok:
        output.unlink(missing_ok=True)
        sig.unlink(missing_ok=True)
        raise TfgateError(_not_listed(stmt.signer, key, signers, f"{auth.kind}: {auth.reason}"))
    echo(f"wrote {output} and {sig.name} (signed by {key.type} key {key.fingerprint}); "
         f"run it with TFGATE_APPROVALS={output}")  # fmt: skip
    from tfgate.audit import record_event

    record_event(
        "approve", log=opts.audit_log, cwd=workdir, manifest_log=manifest.audit_log, kind="shim",
        approved_command=stmt.command, workspace=stmt.workspace, root=stmt.root, state=b.state,
        signer=stmt.signer, key=key.fingerprint, reason=stmt.reason, issued_at=_rfc3339(stmt.issued_at),
        expires=_rfc3339(stmt.expires), statement=str(output),
    )  # fmt: skip
    return 0
