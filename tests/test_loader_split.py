"""The split change loop (tfgate.plan.changes: a forked child classifies the second half of a large plan) gives
exactly what the one-process loop gives, refuses what it refuses with the same message, and falls back to it
whenever the split cannot vouch for its answer.

Every plan here is read both ways: SPLIT_AT lowered so that even a 2-change plan is split, and raised so that
nothing is. The split really runs (its answer is recorded), and no child process is left behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import tfgate.plan.changes as changes_mod
from tfgate.errors import PlanError
from tfgate.plan.loader import load_plan
from tfgate.policy.catalog import load_catalog

from .conftest import CORPUS
from .test_loader_fast_paths import rc as fast_paths_rc

PLANS = sorted((CORPUS / "plans").glob("*.json")) if CORPUS.exists() else []


@pytest.fixture
def split(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Split every plan of 2 or more changes; the list records, per split tried, whether it answered."""
    answered: list[bool] = []
    real = changes_mod._split

    def recording(*args: object) -> object:
        out = real(*args)  # type: ignore[arg-type]
        answered.append(out is not None)
        return out

    monkeypatch.setattr(changes_mod, "SPLIT_AT", 2)
    monkeypatch.setattr(changes_mod, "_can_split", lambda: True)
    monkeypatch.setattr(changes_mod, "_split", recording)
    return answered


def _both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """(split, one-process) results of loading `path`: the loaded plan, or the PlanError's message."""

    def load() -> object:
        try:
            return load_plan(path, catalog=load_catalog())
        except PlanError as exc:
            return f"PlanError: {exc}"

    first = load()
    with monkeypatch.context() as m:
        m.setattr(changes_mod, "SPLIT_AT", 1 << 60)
        second = load()
    return first, second


def _no_children() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def rc(address: str, actions: list, before: object = None, after: object = None, **extra: object) -> dict:
    out = fast_paths_rc(address, actions, before, after)
    out["change"]["after_unknown"] = {}
    return {**out, **extra}


def write(path: Path, changes: list[dict], indent: int | None = None) -> Path:
    doc = {"format_version": "1.2", "resource_changes": changes, "configuration": {"root_module": {}}}
    path.write_text(json.dumps(doc, indent=indent, separators=None if indent else (",", ":")))
    return path


def _plan(n: int) -> list[dict]:
    db = {"id": "db", "deletion_protection": True, "tags": {"Environment": "production"}}
    out = []
    for i in range(n):
        kind = i % 5
        address = f'module.m["k.{i % 7}"].aws_db_instance.d[{i}]'
        if kind == 0:
            out.append(rc(address, ["delete"], db, None))
        elif kind == 1:
            out.append(rc(address, ["update"], db, {**db, "deletion_protection": False}))
        elif kind == 2:
            out.append(
                rc(address, ["delete", "create"], db, db, action_reason="replace_because_cannot_update")
            )
        elif kind == 3:
            out.append(rc(address, ["no-op"], db, db, previous_address=f"aws_db_instance.old[{i}]"))
        else:
            out.append(rc(address, ["create"], None, db))
    return sorted(out, key=lambda c: c["address"])


@pytest.mark.skipif(not PLANS, reason="../shared/corpus not present")
def test_every_corpus_plan_reads_the_same_split(split: list[bool], monkeypatch: pytest.MonkeyPatch) -> None:
    for path in PLANS:
        a, b = _both(path, monkeypatch)
        assert a == b, path.name
    assert sum(split) >= 80, "the split answered for every sorted corpus plan of 2 changes or more"
    assert _no_children()


@pytest.mark.parametrize("indent", [None, 2])
def test_generated_plans_read_the_same_split(
    tmp_path: Path, split: list[bool], monkeypatch: pytest.MonkeyPatch, indent: int | None
) -> None:
    a, b = _both(write(tmp_path / "p.json", _plan(3001), indent), monkeypatch)
    assert not isinstance(a, str)
    assert a == b and split == [True]
    assert sum(bool(c.safety_nets) for c in a.changes) == 600  # type: ignore[attr-defined]
    assert _no_children()


def test_an_unsorted_plan_falls_back_and_hashes_sorted(
    tmp_path: Path, split: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    changes = _plan(400)
    a, b = _both(write(tmp_path / "u.json", changes[::-1]), monkeypatch)
    assert a == b and split == [False]
    ordered = load_plan(write(tmp_path / "s.json", changes))
    assert split == [False, True]
    assert a.info.digest == ordered.info.digest  # type: ignore[attr-defined]


@pytest.mark.parametrize("where", ["first", "second", "boundary"])
def test_errors_in_either_half_are_the_one_process_errors(
    tmp_path: Path, split: list[bool], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    changes = _plan(400)
    if where == "boundary":  # each half in order, the same address on both sides of the middle
        changes[200] = {**changes[199]}
    else:
        bad = 10 if where == "first" else 390
        changes[bad]["change"]["actions"] = ["explode"]
    a, b = _both(write(tmp_path / "e.json", changes), monkeypatch)
    assert isinstance(a, str) and a == b
    assert ("duplicate resource change" if where == "boundary" else "unknown action list") in a
    assert split == [False] and _no_children()


@pytest.mark.parametrize("failure", ["exit", "trailer", "short", "values"])
def test_a_child_that_fails_or_lies_is_not_believed(
    tmp_path: Path, split: list[bool], monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """The child exits nonzero, writes a bad trailer, a short file, or changes that cannot be decoded back
    (an integer past msgpack's 64 bits): the one-process loop answers, the same answer."""
    changes = _plan(300)
    if failure == "values":
        changes[250]["change"]["before"] = {"id": 1 << 70, "tags": {"Environment": "production"}}
        changes[250]["change"]["actions"] = ["delete"]
    real_write = changes_mod._write
    if failure == "exit":
        monkeypatch.setattr(changes_mod, "_run", _dies_in_child(changes_mod._run))
    elif failure == "trailer":
        monkeypatch.setattr(changes_mod, "_MAGIC", b"tfgsplit")
        monkeypatch.setattr(
            changes_mod, "_write", lambda fd, data: real_write(fd, data.replace(b"tfgsplit", b"tfgsplot"))
        )
    elif failure == "short":
        monkeypatch.setattr(changes_mod, "_write", lambda fd, data: real_write(fd, data[:-1]))
    a, b = _both(write(tmp_path / "f.json", changes), monkeypatch)
    assert not isinstance(a, str) and a == b
    assert split == [False] and _no_children()


def _dies_in_child(real: object) -> object:
    parent = os.getpid()

    def run(*args: object) -> object:
        if os.getpid() != parent:
            os._exit(3)
        return real(*args)  # type: ignore[operator]

    return run


def test_no_split_with_another_thread_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python thread beside the loop: no fork (a child would inherit whatever locks it holds). Counted
    from the threads already running here (pytest-xdist's workers run some of their own)."""
    real, already = threading.active_count, threading.active_count()
    monkeypatch.setattr(threading, "active_count", lambda: real() - already + 1)
    monkeypatch.setattr(changes_mod, "_threads", lambda: 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert changes_mod._can_split() is True
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert changes_mod._can_split() is False
    finally:
        stop.set()
        other.join()


def test_tfgate_split_0_turns_the_split_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading, "active_count", lambda: 1)  # pytest-xdist's workers run threads
    monkeypatch.setattr(changes_mod, "_threads", lambda: 1)
    monkeypatch.setattr(changes_mod.sys, "platform", "linux")
    monkeypatch.setattr(changes_mod.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert changes_mod._can_split() is True
    monkeypatch.setenv("TFGATE_SPLIT", "0")
    assert changes_mod._can_split() is False
    monkeypatch.setenv("TFGATE_SPLIT", "1")
    monkeypatch.setattr(changes_mod.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert changes_mod._can_split() is False  # one CPU: nothing to run the child on


@contextlib.contextmanager
def _sigchld_ignored() -> Iterator[None]:
    old = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGCHLD, old)


def test_no_split_where_sigchld_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGCHLD ignored (as a parent can leave it: the disposition survives exec): the kernel reaps the child,
    its exit status is lost and its pid free for reuse before this process would kill it. No fork then."""
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setattr(changes_mod, "_threads", lambda: 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert changes_mod._can_split() is True
    with _sigchld_ignored():
        assert changes_mod._can_split() is False


@pytest.mark.parametrize("bad", [None, 10])
def test_a_child_reaped_by_the_kernel_is_not_believed(
    tmp_path: Path, split: list[bool], monkeypatch: pytest.MonkeyPatch, bad: int | None
) -> None:
    """The split forced with SIGCHLD ignored: waitpid finds no child (ECHILD). The one-process answer, the
    same error for a bad first half: not a ChildProcessError (a good plan was exit 2)."""
    changes = _plan(300)
    if bad is not None:
        changes[bad]["change"]["actions"] = ["explode"]
    path = write(tmp_path / "r.json", changes)
    with _sigchld_ignored():
        a, b = _both(path, monkeypatch)
    assert a == b and split == [False]
    assert isinstance(a, str) == (bad is not None)


def test_an_interrupt_while_the_child_runs_leaves_nothing_behind(
    tmp_path: Path, split: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted while waiting for a child that is still classifying (the hashing thread following its
    memory file): the interrupt comes through at once, the child is killed and reaped, the hashing thread
    stopped, both memory files closed."""
    parent, real = os.getpid(), changes_mod._run

    def run(*args: object) -> object:
        if os.getpid() != parent:
            time.sleep(60)
        return real(*args)  # type: ignore[arg-type]

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(changes_mod, "_run", run)
    path = write(tmp_path / "i.json", _plan(300))
    fds, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
    old = signal.signal(signal.SIGALRM, interrupt)
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            load_plan(path)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert time.monotonic() - start < 10
    assert _no_children() and threading.active_count() == threads
    assert len(os.listdir("/proc/self/fd")) == fds


def test_no_split_with_a_thread_python_does_not_know_of(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread started below `threading` (as a C extension may) is not in threading.active_count(): the
    kernel's list of the process's threads is what counts."""
    import _thread

    before, known = changes_mod._threads(), threading.active_count()
    stop = threading.Lock()
    stop.acquire()
    _thread.start_new_thread(stop.acquire, ())
    try:
        assert threading.active_count() == known and changes_mod._threads() == before + 1
    finally:
        stop.release()
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(changes_mod, "_threads", lambda: 1)
    assert changes_mod._can_split() is True
    monkeypatch.setattr(changes_mod, "_threads", lambda: 2)
    assert changes_mod._can_split() is False


def test_signals_are_held_across_the_fork(
    tmp_path: Path, split: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt arriving at fork waits until each side is where it is handled: the child inside its own
    handler (which exits), this side past the fork. Nothing stays held afterwards."""
    real_fork, held = os.fork, []

    def fork() -> int:
        held.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        return real_fork()

    monkeypatch.setattr(os, "fork", fork)
    a, b = _both(write(tmp_path / "s.json", _plan(300)), monkeypatch)
    assert a == b and split == [True]
    assert held and {signal.SIGINT, signal.SIGTERM} <= held[0]
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_a_child_whose_parent_is_killed_stops(tmp_path: Path) -> None:
    """SIGKILL the parent mid-split: the child, orphaned, stops at its next block instead of running on with
    the files it inherited open (a privileged apply's lock among them)."""
    import subprocess
    import sys

    plan, pids = write(tmp_path / "k.json", _plan(300)), tmp_path / "child.pid"
    script = f"""
import os, time
import tfgate.plan.changes as ch, tfgate.plan.digest as dg
from tfgate.plan.loader import load_plan
ch.SPLIT_AT, ch._can_split, dg._BLOCK = 2, lambda: True, 1
parent, real = os.getpid(), ch._write
def slow(fd, data):
    if os.getpid() != parent:
        with open({str(pids)!r}, "a") as f:
            f.write(f"{{os.getpid()}}\\n")
        time.sleep(0.05)
    real(fd, data)
ch._write = slow
load_plan({str(plan)!r})
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    deadline = time.monotonic() + 30
    while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.01)
    child = int(pids.read_text().split()[0])
    proc.kill()
    proc.wait()

    def running(pid: int) -> bool:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False
        return "State:\tZ" not in status and "State:\tX" not in status

    deadline = time.monotonic() + 5
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not running(child), "the orphaned child kept running"
