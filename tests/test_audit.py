"""The hash-chained audit log: every kind of tampering is detected; concurrent appends keep the chain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tfgate import audit


def _log(tmp_path: Path, n: int = 5) -> Path:
    log = tmp_path / "audit.jsonl"
    for k in range(n):
        audit.record_event("guard", command=f"terraform apply #{k}", log=log, verdict="block", reason="r")
    return log


def _lines(log: Path) -> list[bytes]:
    return log.read_bytes().splitlines(keepends=True)


def _write(log: Path, lines: list[bytes]) -> None:
    log.write_bytes(b"".join(lines))


def test_chain_intact(tmp_path: Path) -> None:
    log = _log(tmp_path)
    report = audit.verify(log)
    assert report.ok and report.entries == 5
    entries = [json.loads(line) for line in _lines(log)]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev"] == audit.GENESIS
    for before, after in zip(_lines(log)[:-1], entries[1:], strict=True):
        assert after["prev"] == audit.line_hash(before)
    assert report.head == audit.line_hash(_lines(log)[-1])
    assert {"time", "user", "host", "command", "verdict", "event", "ci"} <= set(entries[0])


def test_edited_line(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = _lines(log)
    lines[2] = lines[2].replace(b'"verdict":"block"', b'"verdict":"allow"')
    _write(log, lines)
    report = audit.verify(log)
    assert not report.ok
    assert [p.line for p in report.problems] == [3]
    assert "edited" in report.problems[0].message


def test_edited_line_with_recomputed_own_hash(tmp_path: Path) -> None:
    """A careful forger fixes the line's own hash: the next line's `prev` still exposes it."""
    import hashlib

    log = _log(tmp_path)
    lines = _lines(log)
    entry = json.loads(lines[1])
    entry.pop("hash")
    entry["verdict"] = "allow"
    entry["hash"] = hashlib.sha256(audit._canonical(entry).encode()).hexdigest()
    lines[1] = audit._canonical(entry).encode() + b"\n"
    _write(log, lines)
    report = audit.verify(log)
    assert [p.line for p in report.problems] == [2]
    assert "edited" in report.problems[0].message


def test_deleted_line(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = _lines(log)
    del lines[2]
    _write(log, lines)
    report = audit.verify(log)
    assert [p.line for p in report.problems] == [3]
    assert "deleted" in report.problems[0].message


def test_deleted_first_line(tmp_path: Path) -> None:
    log = _log(tmp_path)
    _write(log, _lines(log)[1:])
    report = audit.verify(log)
    assert [p.line for p in report.problems] == [1]
    assert "deleted" in report.problems[0].message


def test_inserted_forged_line(tmp_path: Path) -> None:
    """An inserted line that is itself well-formed and chained to its predecessor."""
    import hashlib

    log = _log(tmp_path)
    lines = _lines(log)
    forged = json.loads(lines[1])
    forged.pop("hash")
    forged.update(seq=3, prev=audit.line_hash(lines[1]), command="terraform destroy", verdict="allow")
    forged["hash"] = hashlib.sha256(audit._canonical(forged).encode()).hexdigest()
    lines.insert(2, audit._canonical(forged).encode() + b"\n")
    _write(log, lines)
    report = audit.verify(log)
    assert [p.line for p in report.problems] == [3]
    assert "inserted" in report.problems[0].message


def test_replayed_line(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = _lines(log)
    lines.insert(4, lines[1])
    _write(log, lines)
    report = audit.verify(log)
    assert 5 in [p.line for p in report.problems]
    assert not report.ok


def test_reordered_lines(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = _lines(log)
    lines[1], lines[2] = lines[2], lines[1]
    _write(log, lines)
    report = audit.verify(log)
    assert 2 in [p.line for p in report.problems]
    assert all("out of order" in p.message for p in report.problems)


def test_truncated_tail_detected_with_head(tmp_path: Path) -> None:
    log = _log(tmp_path)
    head = audit.verify(log).head
    _write(log, _lines(log)[:-1])
    assert audit.verify(log).ok  # a chain alone cannot see a cut tail ...
    report = audit.verify(log, head=head)  # ... a head kept elsewhere can
    assert not report.ok and "truncated" in report.problems[0].message


def test_torn_last_line(tmp_path: Path) -> None:
    log = _log(tmp_path, 2)
    log.write_bytes(log.read_bytes()[:-10])
    report = audit.verify(log)
    assert [p.line for p in report.problems] == [2, 2]


def test_ci_run_from_env() -> None:
    gh = audit.ci_run(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_RUN_ID": "42",
            "GITHUB_REPOSITORY": "acme/infra",
            "GITHUB_SERVER_URL": "https://github.example.com",
        }
    )
    assert gh["url"] == "https://github.example.com/acme/infra/actions/runs/42"
    assert gh["provider"] == "github"
    assert audit.ci_run({"GITLAB_CI": "true", "CI_JOB_URL": "https://gl/j/1"})["url"] == "https://gl/j/1"
    assert audit.ci_run({"BUILDKITE": "true", "BUILDKITE_BUILD_URL": "u"})["url"] == "u"
    assert audit.ci_run({"JENKINS_URL": "x", "BUILD_URL": "j"})["provider"] == "jenkins"
    assert audit.ci_run({"CIRCLECI": "true", "CIRCLE_BUILD_URL": "c"})["url"] == "c"
    assert audit.ci_run({}) is None


def test_resolve_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(audit.ENV_LOG, raising=False)
    assert audit.resolve_log(None, cwd=tmp_path) == tmp_path / ".tfgate" / "audit.jsonl"
    assert audit.resolve_log(None, manifest_log=tmp_path / "m.jsonl", cwd=tmp_path) == tmp_path / "m.jsonl"
    monkeypatch.setenv(audit.ENV_LOG, "env.jsonl")
    assert audit.resolve_log(None, manifest_log=tmp_path / "m.jsonl", cwd=tmp_path) == tmp_path / "env.jsonl"
    assert audit.resolve_log("x.jsonl", cwd=tmp_path) == tmp_path / "x.jsonl"


_WRITER = """
import sys
from pathlib import Path
from tfgate import audit
log, who, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for k in range(n):
    audit.record_event("guard", command=f"{who}-{k}", log=log, verdict="block", reason="x" * (k * 97 % 5000))
"""


def test_concurrent_appends_keep_the_chain(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    n, writers = 150, 3
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(log), f"w{w}", str(n)]) for w in range(writers)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    report = audit.verify(log)
    assert report.ok, report.problems[:5]
    assert report.entries == n * writers
    commands = {json.loads(line)["command"] for line in _lines(log)}
    assert len(commands) == n * writers


def test_cli_verify(tmp_path: Path) -> None:
    log = _log(tmp_path, 3)
    run = [sys.executable, "-m", "tfgate", "audit", "verify", str(log)]
    ok = subprocess.run(run, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "3 entries" in ok.stdout
    lines = _lines(log)
    del lines[1]
    _write(log, lines)
    bad = subprocess.run(run, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "line 2" in bad.stdout + bad.stderr
    missing = subprocess.run([*run[:-1], str(tmp_path / "nope.jsonl")], capture_output=True, text=True)
    assert missing.returncode == 2


def test_empty_log_cannot_be_verified_and_a_fresh_log_still_appends(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_bytes(b"")
    report = audit.verify(log)
    assert not report.ok and report.entries == 0 and "empty" in report.problems[0].message
    run = [sys.executable, "-m", "tfgate", "audit", "verify", str(log)]
    empty = subprocess.run(run, capture_output=True, text=True)
    assert empty.returncode == 1, empty.stdout + empty.stderr
    assert "the log is empty" in empty.stdout and "cannot be verified" in empty.stdout
    missing = subprocess.run([*run[:-1], str(tmp_path / "nope.jsonl")], capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.jsonl" in missing.stderr
    # An append to the empty (or a missing) log starts the chain as usual.
    audit.record_event("guard", command="terraform apply", log=log, verdict="block")
    audit.record_event("guard", command="terraform apply", log=tmp_path / "new" / "a.jsonl", verdict="block")
    for path in (log, tmp_path / "new" / "a.jsonl"):
        assert audit.verify(path).ok and audit.verify(path).entries == 1
    assert subprocess.run(run, capture_output=True, text=True).returncode == 0
