"""The tamper-evident audit log: one JSON line per check, apply, refusal and guard block, hash-chained.

Every line is a JSON object (sorted keys, no spaces) with ``seq`` (1, 2, ...), ``prev`` (SHA-256 hex of the
previous line's bytes without its newline; for the first line, of the empty string) and ``hash``
(SHA-256 hex of the line's own canonical JSON without the ``hash`` key). Editing, deleting, inserting or
reordering lines breaks the chain; `verify` names the line. Anyone who can write the file can rewrite
the whole chain from some point on, so its head is anchored elsewhere (tfgate.anchor: the ledger after each
gated apply, anchor files, signed checkpoints; or ``--head`` with a hash kept in CI logs).

Appends take an exclusive ``flock`` on the log while they read the last line and write the new one with
a single ``os.write`` on an ``O_APPEND`` descriptor, so concurrent tfgate processes keep the chain intact.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tfgate.errors import TfgateError

DEFAULT_LOG = Path(".tfgate") / "audit.jsonl"
ENV_LOG = "TFGATE_AUDIT_LOG"
GENESIS = hashlib.sha256(b"").hexdigest()
#: Longest violation/approval list kept in one entry (the count is always kept).
MAX_ITEMS = 1000


class AuditError(TfgateError):
    """The audit log cannot be written or read."""


def line_hash(line: bytes) -> str:
    """SHA-256 hex of one log line (without its newline): what the next line's ``prev`` holds."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def _canonical(entry: Mapping[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def resolve_log(
    explicit: str | Path | None = None, *, manifest_log: Path | None = None, cwd: Path | None = None
) -> Path:
    """Where the log is: ``--audit-log``, then ``$TFGATE_AUDIT_LOG``, the manifest's ``audit.log``,
    else ``.tfgate/audit.jsonl`` under cwd."""
    from tfgate import sysconfig

    base = Path(cwd) if cwd else Path.cwd()
    # The system pin's audit log wins; a non-root user's --audit-log / $TFGATE_AUDIT_LOG beside it is refused.
    # (A protected root's agent user cannot write it: its own runs go to the usual place, informational.)
    pinned = sysconfig.resolve(base, audit_log=explicit, pinned_root_required=False, runs_terraform=False)
    if pinned.pin is not None and pinned.pin.audit_log is not None and not sysconfig.is_agent_of(pinned.pin):
        return pinned.pin.audit_log if explicit is None or not sysconfig.is_root() else Path(explicit)
    chosen = explicit or os.environ.get(ENV_LOG) or manifest_log
    path = Path(chosen).expanduser() if chosen else DEFAULT_LOG
    return path if path.is_absolute() else base / path


def ci_run(env: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The CI run this process belongs to, from the standard CI environment variables (None outside CI)."""
    e = os.environ if env is None else env

    def pick(**keys: str) -> dict[str, str]:
        return {k: e[v] for k, v in keys.items() if e.get(v)}

    if e.get("GITHUB_ACTIONS") == "true" or e.get("GITHUB_RUN_ID"):
        info = {"provider": "github", **pick(run_id="GITHUB_RUN_ID", attempt="GITHUB_RUN_ATTEMPT",
                                             repository="GITHUB_REPOSITORY", actor="GITHUB_ACTOR",
                                             sha="GITHUB_SHA", ref="GITHUB_REF", workflow="GITHUB_WORKFLOW")}  # fmt: skip
        if e.get("GITHUB_RUN_ID") and e.get("GITHUB_REPOSITORY"):
            server = e.get("GITHUB_SERVER_URL", "https://github.com")
            info["url"] = f"{server}/{e['GITHUB_REPOSITORY']}/actions/runs/{e['GITHUB_RUN_ID']}"
        return info
    if e.get("GITLAB_CI"):
        return {"provider": "gitlab", **pick(url="CI_JOB_URL", run_id="CI_PIPELINE_ID", job_id="CI_JOB_ID",
                                             repository="CI_PROJECT_PATH", actor="GITLAB_USER_LOGIN",
                                             sha="CI_COMMIT_SHA")}  # fmt: skip
    if e.get("BUILDKITE"):
        return {"provider": "buildkite", **pick(url="BUILDKITE_BUILD_URL", run_id="BUILDKITE_BUILD_NUMBER",
                                                repository="BUILDKITE_REPO", sha="BUILDKITE_COMMIT",
                                                actor="BUILDKITE_BUILD_CREATOR")}  # fmt: skip
    if e.get("CIRCLECI"):
        return {"provider": "circleci", **pick(url="CIRCLE_BUILD_URL", run_id="CIRCLE_BUILD_NUM",
                                               repository="CIRCLE_PROJECT_REPONAME", sha="CIRCLE_SHA1",
                                               actor="CIRCLE_USERNAME")}  # fmt: skip
    if e.get("TF_BUILD") == "True" and e.get("BUILD_BUILDID"):  # Azure Pipelines (Team Foundation)
        info = {"provider": "azure", **pick(run_id="BUILD_BUILDID", repository="BUILD_REPOSITORY_NAME",
                                            sha="BUILD_SOURCEVERSION", actor="BUILD_REQUESTEDFOR")}  # fmt: skip
        if e.get("SYSTEM_COLLECTIONURI") and e.get("SYSTEM_TEAMPROJECT"):
            info["url"] = (f"{e['SYSTEM_COLLECTIONURI']}{e['SYSTEM_TEAMPROJECT']}/_build/results?"
                           f"buildId={e['BUILD_BUILDID']}")  # fmt: skip
        return info
    if e.get("BITBUCKET_BUILD_NUMBER"):
        info = {"provider": "bitbucket", **pick(run_id="BITBUCKET_BUILD_NUMBER",
                                                repository="BITBUCKET_REPO_FULL_NAME", sha="BITBUCKET_COMMIT")}  # fmt: skip
        if e.get("BITBUCKET_REPO_FULL_NAME"):
            info["url"] = (f"https://bitbucket.org/{e['BITBUCKET_REPO_FULL_NAME']}/pipelines/results/"
                           f"{e['BITBUCKET_BUILD_NUMBER']}")  # fmt: skip
        return info
    if e.get("JENKINS_URL") or e.get("BUILD_URL"):
        return {"provider": "jenkins", **pick(url="BUILD_URL", run_id="BUILD_NUMBER", job="JOB_NAME",
                                              sha="GIT_COMMIT")}  # fmt: skip
    if e.get("TRAVIS"):
        return {"provider": "travis", **pick(url="TRAVIS_BUILD_WEB_URL", run_id="TRAVIS_BUILD_ID",
                                             repository="TRAVIS_REPO_SLUG", sha="TRAVIS_COMMIT")}  # fmt: skip
    if e.get("TFC_RUN_ID"):
        return {"provider": "terraform-cloud", "run_id": e["TFC_RUN_ID"]}
    if e.get("SPACELIFT") or e.get("TF_VAR_spacelift_run_id"):
        return {"provider": "spacelift", **pick(run_id="TF_VAR_spacelift_run_id")}
    if e.get("CI", "").lower() in ("true", "1", "yes"):
        return {"provider": "unknown"}
    return None


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry, no USER variable
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _last_line(fd: int) -> bytes | None:
    """The file's last complete-or-partial line (without newline), None for an empty file."""
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return None
    end = size
    if os.pread(fd, 1, size - 1) == b"\n":
        end -= 1
    chunks: list[bytes] = []
    pos = end
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        chunk = os.pread(fd, step, pos)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            chunks.append(chunk[nl + 1 :])
            break
        chunks.append(chunk)
    return b"".join(reversed(chunks))


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


def _host() -> str:
    """The host name (uname's node name, what gethostname returns, without importing socket at start-up)."""
    try:
        return os.uname().nodename
    except AttributeError:  # pragma: no cover - not POSIX
        import socket

        return socket.gethostname()


def append(event: str, fields: Mapping[str, Any], *, log: Path) -> dict[str, Any]:
    """Append one entry (event + fields + who/where/when + chain fields) to the log; returns the entry."""
    entry: dict[str, Any] = {
        "v": 1,
        "event": event,
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "user": _user(),
        "host": _host(),
        "pid": os.getpid(),
        "cwd": str(Path.cwd()),
        "ci": ci_run(),
    }
    entry.update({k: v for k, v in fields.items() if k not in ("seq", "prev", "hash")})
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise AuditError(f"cannot open audit log {log}: {exc.strerror or exc}") from exc
    try:
        _lock(fd)
        last = _last_line(fd)
        prefix = b""
        if last is None:
            entry["seq"], entry["prev"] = 1, GENESIS
        else:
            size = os.lseek(fd, 0, os.SEEK_END)
            if os.pread(fd, 1, size - 1) != b"\n":
                prefix = b"\n"  # a torn last line: keep it (verify reports it) and start a new one
            try:
                seq = int(json.loads(last)["seq"]) + 1
            except (ValueError, KeyError, TypeError):
                seq = 0  # the previous line is damaged; verify reports it
            entry["seq"], entry["prev"] = seq, line_hash(last)
        entry["hash"] = hashlib.sha256(_canonical(entry).encode()).hexdigest()
        data = prefix + _canonical(entry).encode() + b"\n"
        written = os.write(fd, data)
        if written != len(data):
            raise AuditError(f"short write to audit log {log}")
        with contextlib.suppress(OSError):
            os.fsync(fd)
    except OSError as exc:
        raise AuditError(f"cannot write audit log {log}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)  # closing releases the lock
    return entry


# --- what the commands record --------------------------------------------------------------------------


def _command(command: Sequence[str] | str | None) -> str | list[str] | None:
    return command if command is None or isinstance(command, str) else list(command)


def result_fields(result: Any) -> dict[str, Any]:
    """The parts of a check Result that go into the log (digest, verdict, violations, approvals)."""
    violations = [
        {
            "address": v.address,
            "rule": v.rule,
            "class": getattr(v.change_class, "value", v.change_class),
            "approved": v.approved,
            "approved_by": list(v.approved_by),
        }
        for v in result.violations[:MAX_ITEMS]
    ]
    approvals = [
        {"source": a.source, "signer": a.signer, "counted": a.counted, "reason": a.reason}
        for a in result.approvals[:MAX_ITEMS]
        if a.counted
    ]
    return {
        "plan_digest": result.plan.digest,
        "plan_sha256": result.plan.file_sha256,
        "plan_source": result.plan.source,
        "workspace": result.workspace,
        "manifest": result.manifest,
        "verdict": getattr(result.verdict, "value", result.verdict),
        "violations": violations,
        "violation_count": len(result.violations),
        "blocking_findings": [f.code for f in result.findings if f.blocks],
        "approvals": approvals,
    }


def record_check(
    result: Any,
    *,
    command: Sequence[str] | str | None = None,
    log: str | Path | None = None,
    event: str = "check",
    cwd: Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record a check (or a gated apply's check) of a plan; `log` None resolves the default location."""
    path = resolve_log(log, manifest_log=_manifest_log(result, cwd), cwd=cwd)
    fields = {"command": _command(command), **result_fields(result), **(extra or {})}
    return append(event, fields, log=path)


def record_event(
    event: str,
    *,
    command: Sequence[str] | str | None = None,
    log: str | Path | None = None,
    cwd: Path | None = None,
    manifest_log: Path | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Record an apply, a refusal, a guard block or a shim decision."""
    path = resolve_log(log, manifest_log=manifest_log, cwd=cwd)
    return append(event, {"command": _command(command), **fields}, log=path)


def _manifest_log(result: Any, cwd: Path | None) -> Path | None:
    if os.environ.get(ENV_LOG) or not getattr(result, "manifest", None):
        return None
    from tfgate.policy.manifest import load_manifest

    try:
        return load_manifest(Path(result.manifest), cwd=cwd or Path.cwd()).audit_log
    except TfgateError:
        return None


# --- verification --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    line: int
    message: str


@dataclass(frozen=True)
class VerifyReport:
    path: Path
    entries: int
    problems: tuple[Problem, ...]
    head: str | None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(path: Path, *, head: str | None = None) -> VerifyReport:
    """Check the whole chain; every problem names its 1-based line number. An empty log is a problem:
    appends never leave one, and it cannot be told apart from a log whose lines were all deleted."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AuditError(f"cannot read audit log {path}: {exc.strerror or exc}") from exc
    lines = raw.split(b"\n")
    problems: list[Problem] = []
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        problems.append(
            Problem(len(lines), "the last line is incomplete (no newline): a torn or edited write")
        )
    if not lines:
        problems.append(
            Problem(1, "the log is empty: nothing to verify (a log with every line deleted looks the same)")
        )
    hashes = [line_hash(line) for line in lines]
    where = {h: n for n, h in enumerate(hashes, 1)}
    entries: list[dict[str, Any] | None] = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        entries.append(entry if isinstance(entry, dict) else None)

    def prev_of(n: int) -> Any:
        entry = entries[n - 1]
        return entry.get("prev") if entry else None

    flagged: set[int] = set()

    def flag(n: int, message: str) -> None:
        flagged.add(n)
        problems.append(Problem(n, message))

    seen_seq: dict[int, int] = {}
    prev_seq = 0
    for n, entry in enumerate(entries, 1):
        if entry is None:
            flag(n, "not a valid JSON entry (edited or corrupted)")
            prev_seq += 1
            continue
        entry = dict(entry)
        seq, prev, own = entry.get("seq"), entry.get("prev"), entry.pop("hash", None)
        if own != hashlib.sha256(_canonical(entry).encode()).hexdigest():
            flag(n, "content does not match its hash: this line was edited")
        expected_prev = hashes[n - 2] if n > 1 else GENESIS
        seq_ok = isinstance(seq, int) and seq == prev_seq + 1
        if prev != expected_prev:
            other = where.get(prev) if isinstance(prev, str) else None
            if (
                other is not None
                and other == n - 2
                and prev_of(n - 1) == (hashes[n - 3] if n > 2 else GENESIS)
            ):
                flag(n - 1, "this line was inserted (the next line's predecessor is the line before it)")
            elif other is not None and other != n - 1:
                flag(n, f"out of order: in the chain it follows line {other} (lines reordered)")
            elif isinstance(seq, int) and seq in seen_seq:
                flag(n, f"repeats entry seq {seq} of line {seen_seq[seq]}: inserted or replayed")
            elif n == 1 and isinstance(seq, int) and seq > 1:
                flag(1, f"{seq - 1} line(s) deleted before line 1 (the log starts at seq {seq})")
            elif isinstance(seq, int) and seq > prev_seq + 1:
                flag(
                    n,
                    f"{seq - prev_seq - 1} line(s) deleted before this line (seq jumps {prev_seq} -> {seq})",
                )
            elif seq_ok and n > 1:
                if n - 1 not in flagged:
                    flag(n - 1, f"this line was edited (line {n} records a different predecessor)")
            else:
                flag(n, "the hash chain is broken here")
        elif not seq_ok:
            flag(n, f"sequence number {seq} where {prev_seq + 1} was expected")
        if isinstance(seq, int):
            seen_seq.setdefault(seq, n)
            prev_seq = seq
        else:
            prev_seq += 1
    last = hashes[-1] if hashes else None
    if head is not None:
        wanted = head.removeprefix("sha256:")
        if wanted not in where:
            problems.append(
                Problem(len(lines), f"the expected head {head} is not in the log (truncated or rewritten)")
            )
    problems.sort(key=lambda p: p.line)
    return VerifyReport(path, len(lines), tuple(dict.fromkeys(problems)), last)
