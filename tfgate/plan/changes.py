"""The change loop of a ``show -json`` plan: every resource change decoded, classified and digested, in order.

Large plans are split between two processes (Linux, two or more CPUs, from SPLIT_AT changes and up to
SPLIT_MAX_BYTES): this process classifies the first half while a forked child classifies the second. The
digest stays the one sequential sha256 of tfgate.plan.digest: the child writes its half's digest input to a
memory file, which this process's hashing thread hashes after this half's, following it as it grows; the
child's changes come in a second memory file as one msgpack message, decoded back into the same immutable
Change structs. The split is only a shortcut: a half out of order, an error in either half, a child that
fails or lies about what it wrote, or a fork that cannot be made, and the whole plan is read again in one
process, which gives the answer (and the first error in document order) exactly as before.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from tfgate.errors import PlanError
from tfgate.model import Change
from tfgate.plan.classify import Classifier, rc_decoder
from tfgate.plan.common import sort_key
from tfgate.plan.digest import PlanDigest

#: Changes from which the loop is split between two processes (below it a fork costs more than it saves).
SPLIT_AT = 20_000
#: Documents up to this size only: while both halves run, the child's digest input and changes wait in
#: memory files (about half the document's size), on top of this process's peak.
SPLIT_MAX_BYTES = 1 << 30
_RELEASE_EVERY = 4096  # changes between two hand-backs of the plan pages already read


class _Half(msgspec.Struct, gc=False):
    """What one run over a range of changes found: the changes, and whether their keys ascend."""

    changes: list[Change]
    in_order: bool = True
    first: tuple[str, str] | None = None
    last: tuple[str, str] | None = None


def classify_changes(
    raws: list[msgspec.Raw], data: Any, label: str, classify: Classifier, compact: bool, configuration: Any
) -> tuple[list[Change], str]:
    """The plan's changes, classified in document order, and the plan digest."""
    if len(raws) >= SPLIT_AT and len(data) <= SPLIT_MAX_BYTES and _can_split():
        done = _split(raws, data, label, classify, compact, configuration)
        if done is not None:
            return done
    return _sequential(raws, data, label, classify, compact, configuration)


def _can_split() -> bool:
    """Fork only where it is safe and pays: Linux, no other thread running (Python's or any other), a second
    CPU to run on, the child's exit status ours to read (with SIGCHLD ignored, as a parent may leave it across
    exec, the kernel reaps the child: no status, and its pid free for reuse), and not turned off
    (``TFGATE_SPLIT=0``: the answer is the same either way)."""
    if (
        not sys.platform.startswith("linux")
        or threading.active_count() != 1
        or os.environ.get("TFGATE_SPLIT") == "0"
    ):
        return False
    if signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:
        return False
    try:
        if _threads() != 1:  # a thread Python's threading does not know of
            return False
        return len(os.sched_getaffinity(0)) >= 2
    except (AttributeError, OSError):
        return (os.cpu_count() or 1) >= 2


def _threads() -> int:
    """The process's threads, as the kernel counts them (threads C code started included)."""
    return len(os.listdir("/proc/self/task"))


def _run(
    raws: list[msgspec.Raw],
    start: int,
    stop: int,
    classify: Classifier,
    digest: PlanDigest,
    pages: _Pages,
    label: str,
    read: int,
) -> _Half:
    """Classify ``raws[start:stop]``. The digest runs over changes in (address, deposed) order. Terraform writes
    them in that order, so they are hashed as they come, and each key greater than the one before proves them
    unique; after the first key that is not, the rest are checked against a set of keys instead (the caller
    hashes them again, sorted). `read`: the document position the range starts from, at least."""
    changes: list[Change] = []
    in_order, last, first = True, ("", ""), None
    seen: set[tuple[str, str]] = set()
    decode, append = rc_decoder.decode, changes.append
    for i in range(start, stop):
        raw = raws[i]
        try:
            rc = decode(raw)
        except msgspec.ValidationError as exc:
            where = str(exc).replace("at `$", f"at `$.resource_changes[{i}]")
            raise PlanError(f"{label}: not a Terraform JSON plan: {where}") from None
        try:
            change = classify(rc)
        except (UnicodeDecodeError, RecursionError) as exc:
            raise PlanError(f"{label}: {rc.address}: unreadable values ({type(exc).__name__})") from None
        key = (change.address, change.deposed or "")
        size = len(raw)
        if in_order and key > last:
            last = key
            values = rc.change
            digest.add(change, values.before, values.after, values.after_unknown, size)
        else:
            if in_order:
                in_order = False
                seen.update(sort_key(c) for c in changes)
            if key in seen:
                raise PlanError(f"{label}: duplicate resource change for address {change.address}")
            seen.add(key)
        if first is None:
            first = key
        append(change)
        read += size
        if i % _RELEASE_EVERY == 0:
            digest.flush(read)
            pages.release(digest.consumed)  # only the pages whose values the digest has copied
    digest.flush(read)
    return _Half(changes, in_order, first, last)


def _sequential(
    raws: list[msgspec.Raw], data: Any, label: str, classify: Classifier, compact: bool, configuration: Any
) -> tuple[list[Change], str]:
    with PlanDigest(compact) as digest:
        half = _run(raws, 0, len(raws), classify, digest, _Pages(data), label, 0)
        if half.in_order:
            return half.changes, digest.hexdigest(configuration)
    changes = half.changes
    with PlanDigest(compact) as digest:  # a document in another order: hashed again, sorted
        for i in sorted(range(len(changes)), key=lambda i: sort_key(changes[i])):
            values = rc_decoder.decode(raws[i]).change
            digest.add(changes[i], values.before, values.after, values.after_unknown, len(raws[i]))
        return changes, digest.hexdigest(configuration)


def _split(
    raws: list[msgspec.Raw], data: Any, label: str, classify: Classifier, compact: bool, configuration: Any
) -> tuple[list[Change], str] | None:
    """The changes and digest, the second half classified by a forked child; None when the split did not give
    an answer that the sequential loop is certain to give too.

    The child writes its half's digest input to one anonymous file (a memfd), then its changes (msgpack) and
    a trailer with both lengths to another: nothing is shared while both run, and no pipe needs draining.
    This process classifies and hashes the first half meanwhile, then hashes the child's digest input, as it
    grows, once its own is hashed."""
    mid = len(raws) // 2
    fds: list[int] = []
    try:
        fds += [os.memfd_create("tfgate-split-digest", os.MFD_CLOEXEC)]
        fds += [os.memfd_create("tfgate-split-changes", os.MFD_CLOEXEC)]
        # Signals wait until the child is inside its own handler (which exits) and this side is past fork:
        # an interrupt must never unwind the child through this process's callers.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    except (AttributeError, OSError):
        for fd in fds:
            os.close(fd)
        return None
    if pid == 0:  # the child: never returns
        _child(fds, raws, mid, data, label, classify, compact, mask, parent)
    hashed_fd, changes_fd = fds
    child_done = threading.Event()
    hashed: list[int] = []  # the digest input's length, once the child has said it
    answered = False
    try:
        with PlanDigest(compact) as digest, _setting(child_done):
            mine = _run(raws, 0, mid, classify, digest, _Pages(data), label, 0)
            if not mine.in_order:
                return None
            digest.add_later(lambda feed: _follow(hashed_fd, child_done, hashed, feed))
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:  # reaped by someone else: no status, and the pid is no longer ours
                status = -1
            pid = 0
            size = os.fstat(changes_fd).st_size
            if status != 0 or size < _TRAILER.size:
                return None
            length, sent, magic = _TRAILER.unpack(os.pread(changes_fd, _TRAILER.size, size - _TRAILER.size))
            if magic != _MAGIC or sent + _TRAILER.size != size or os.fstat(hashed_fd).st_size != length:
                return None
            hashed.append(length)
            child_done.set()
            theirs = msgspec.msgpack.decode(os.pread(changes_fd, sent, 0), type=_Half)
            hexdigest = digest.hexdigest(configuration)
        if not (
            theirs.in_order
            and mine.last is not None
            and theirs.first is not None
            and mine.last < theirs.first
            and len(theirs.changes) == len(raws) - mid
        ):
            return None
        answered = True
        return mine.changes + theirs.changes, hexdigest
    except (PlanError, RuntimeError, OSError, msgspec.MsgspecError):
        return None  # the sequential loop names the first error in document order
    finally:
        if pid:
            if not answered:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)  # SIGKILL
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        for fd in fds:
            os.close(fd)


@contextlib.contextmanager
def _setting(event: threading.Event) -> Iterator[None]:
    """Set `event` on the way out (before the digest's thread is joined: it may be following the child)."""
    try:
        yield
    finally:
        event.set()


#: Held across fork (see _split); the names a platform has.
_HELD = {getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, n)}
_TRAILER = struct.Struct("<QQ8s")  # the child's digest input length, its changes' length, _MAGIC
_MAGIC = b"tfgsplit"
_CHUNK = 4 << 20


def _follow(fd: int, done: threading.Event, length: list[int], feed: Callable[[bytes, int], None]) -> None:
    """Hash the child's digest input as it grows, and to the length the child gave once it is done (on the
    hashing thread: reading and hashing chunks this size release the GIL)."""
    at = 0
    while True:
        finished = done.is_set()
        if finished and not length:
            raise OSError("the split's child gave no answer")
        end = length[0] if finished else os.fstat(fd).st_size
        while at < end:
            chunk = os.pread(fd, min(_CHUNK, end - at), at)
            if not chunk:
                raise OSError("the split's digest input ended early")
            feed(chunk, 0)
            at += len(chunk)
        if finished:
            return
        done.wait(0.001)


def _child(
    fds: list[int],
    raws: list[msgspec.Raw],
    start: int,
    data: Any,
    label: str,
    classify: Classifier,
    compact: bool,
    mask: set[signal.Signals],
    parent: int,
) -> None:
    """Classify ``raws[start:]``; write the digest input to the first file, the changes and the trailer to the
    second; exit (signals held by the parent across fork are let through here, where they end the child)."""
    code = 1
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        hashed_fd, changes_fd = fds
        length = 0

        def sink(block: bytes, upto: int) -> None:
            nonlocal length
            # Orphaned (the parent was killed): stop, and let go of the files it left open.
            if os.getppid() != parent:
                os._exit(1)
            _write(hashed_fd, block)
            length += len(block)

        read = sum(len(raws[i]) for i in range(start))
        with PlanDigest(compact, sink=sink) as digest:
            half = _run(raws, start, len(raws), classify, digest, _Pages(data), label, read)
        sent = msgspec.msgpack.encode(half)
        _write(changes_fd, sent)
        _write(changes_fd, _TRAILER.pack(length, len(sent), _MAGIC))
        code = 0
    except BaseException:  # whatever went wrong, the parent reads the plan again itself
        pass
    finally:
        os._exit(code)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Pages:
    """Hands the pages of a memory-mapped plan already read back to the kernel as the changes are
    classified, so that the plan file and its 100,000 classified changes are not resident at once (peak
    memory). Only a hint: a page touched again is read back from the file; a plan in memory is left alone."""

    def __init__(self, data: Any) -> None:
        self._map = data if isinstance(data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED") else None
        self._done = 0

    def release(self, read: int) -> None:
        """Release the pages wholly within the first `read` bytes (the changes read so far, no more than
        where the next one starts)."""
        end = read - read % mmap.PAGESIZE
        if self._map is not None and end > self._done:
            self._map.madvise(mmap.MADV_DONTNEED, self._done, end - self._done)
            self._done = end
