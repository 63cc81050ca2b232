"""The plan digest: what an approval is bound to, one hash for a saved plan, its ``show -json`` and a
pretty-printed copy of it.

It covers, in (address, deposed) order, each change's record (address, deposed key, actions, reason, previous
address, import id) and its ``before``, ``after`` and ``after_unknown`` values without insignificant
whitespace, then the configuration block. Compact documents (as Terraform writes them) are hashed as they
are; the values of other documents are normalised first, so both hash the same.

The hashing runs on a worker thread in blocks of about a megabyte (hashlib releases the GIL for large
blocks), so on a machine with a second core it overlaps the classification of the changes.
"""

from __future__ import annotations

import hashlib
import queue
import re
import threading
from collections.abc import Callable
from typing import Any

import msgspec

from tfgate.model import Change

HEAD = b"tfgate-plan-digest-v1\n"
RS = b"\x1e"
_BLOCK = 1 << 20  # bytes per block handed to the hashing thread
_encode = msgspec.json.encode


def change_record(change: Change) -> bytes:
    """What the digest covers of a change besides its values, with its separator."""
    record = (
        change.address,
        change.deposed,
        change.actions,
        change.action_reason,
        change.previous_address,
        change.import_id,
    )
    return _encode(record) + RS


# The record's tail after the address for a change with no deposed key, reason, move or import (nearly all):
# the same bytes change_record gives, without encoding the tuple each time.
_PLAIN_TAIL: dict[tuple[str, ...], bytes] = {}


def _plain_tail(actions: tuple[str, ...]) -> bytes:
    tail = _PLAIN_TAIL[actions] = b"," + _encode((None, actions, None, None, None))[1:] + RS
    return tail


def is_compact(data: Any) -> bool:
    """Whether a JSON document was written without insignificant whitespace, as Terraform writes it.

    One document comes from one serializer, so its head tells its style: whitespace outside its strings
    means a pretty printer (jq, json.dumps, PowerShell)."""
    head = _STRINGS.sub(b'""', data[:65536])
    head = head[: head.rfind(b'"')]  # the tail may end inside a string
    return _SPACE.search(head) is None


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SPACE = re.compile(rb"[ \t\r\n]")


def normalised(raw: Any, compact: bool) -> Any:
    """A JSON value without insignificant whitespace (formatting a compact value leaves it unchanged)."""
    if not raw:
        return b"null"
    return raw if compact else msgspec.json.format(raw, indent=-1)


class PlanDigest:
    """The digest of a show-json plan, fed change by change (in order) and then the configuration.

    What is added is handed to the hashing thread in blocks of about a megabyte, as a list of the pieces: the
    thread joins them (``bytes.join`` of a large block releases the GIL, as hashlib does) and hashes them.
    ``consumed`` is the furthest position of the document the thread has copied: pages before it may go.

    For the split loop of tfgate.plan.changes: with `sink`, blocks are joined and handed to it instead of
    hashed (the child's half, written for the parent); ``add_later(source)`` has the hashing thread run
    ``source(feed)`` after the blocks before it, to feed it the bytes that follow them (the child's half).

    Use as a context manager: leaving it stops the hashing thread, also when the plan turns out unreadable."""

    def __init__(
        self,
        compact: bool,
        *,
        sink: Callable[[bytes, int], None] | None = None,
    ) -> None:
        self._compact = compact
        self._hash = hashlib.sha256(HEAD)
        self._parts: list[Any] = []
        self._size = 0
        self._sink = sink
        self._queue: queue.Queue[tuple[Any, int] | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        #: The `upto` of the last block the hashing thread has copied (see flush).
        self.consumed = 0

    def __enter__(self) -> PlanDigest:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def add(self, change: Change, before: Any, after: Any, unknown: Any, size: int) -> None:
        """One change's share: its record, then its before/after/after_unknown values (a no-op's after, the
        same bytes as its before, is normalised once). `size`: the change's length in the document, which
        bounds what it adds."""
        if self._compact:  # as they are (an absent value is null)
            before, after, unknown = before or b"null", after or b"null", unknown or b"null"
        else:
            same = after == before
            before = normalised(before, False)
            after = before if same else normalised(after, False)
            unknown = normalised(unknown, False)
        if (
            change.deposed is None
            and change.action_reason is None
            and change.previous_address is None
            and change.import_id is None
        ):
            actions = change.actions
            tail = _PLAIN_TAIL.get(actions) or _plain_tail(actions)
            self._parts += (b"[", _encode(change.address), tail, before, RS, after, RS, unknown, RS)
        else:
            self._parts += (change_record(change), before, RS, after, RS, unknown, RS)
        self._size += size
        if self._size >= _BLOCK:
            self.flush()

    def flush(self, upto: int = 0) -> None:
        """Hand what was added so far to the hashing thread; `upto` (the document position it covers) becomes
        ``consumed`` once the thread has copied it."""
        if not self._parts:
            return
        block, self._parts, self._size = self._parts, [], 0
        if self._sink is not None:
            self._sink(b"".join(block), upto)
            self.consumed = upto
            return
        self._put(block, upto)

    def add_later(self, source: Callable[[Callable[[bytes, int], None]], None]) -> None:
        """What follows the changes added so far: ``source(feed)`` feeds it, on the hashing thread."""
        self.flush()
        self._put(source, 0)

    def _put(self, item: Any, upto: int) -> None:
        if self._queue is None:
            self._queue = queue.Queue(maxsize=8)  # at most a few megabytes in flight
            self._thread = threading.Thread(target=self._run, name="tfgate-digest", daemon=True)
            self._thread.start()
        self._queue.put((item, upto))

    def _feed(self, block: bytes, upto: int) -> None:
        self._hash.update(block)
        if upto > self.consumed:
            self.consumed = upto

    def _run(self) -> None:
        assert self._queue is not None
        get, update, join = self._queue.get, self._hash.update, b"".join
        try:
            while (item := get()) is not None:
                block, upto = item
                if callable(block):
                    block(self._feed)
                    continue
                update(join(block))
                if upto > self.consumed:
                    self.consumed = upto
        except BaseException as exc:  # kept for hexdigest to raise; the queue is still drained (no hang)
            self._error = exc
            while get() is not None:
                pass

    def _stop(self) -> None:
        if self._thread is not None and self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = self._queue = None

    def hexdigest(self, configuration: Any) -> str:
        """The digest, with the configuration block (what the apply runs besides the changes: provisioner
        commands, provider settings; an approval of the plan is an approval of it too)."""
        self.flush()
        self._stop()
        if self._error is not None:
            raise RuntimeError(f"the plan digest could not be computed: {self._error!r}") from self._error
        self._hash.update(b"".join((RS, b"configuration", RS, normalised(configuration, self._compact), RS)))
        return "sha256:" + self._hash.hexdigest()
