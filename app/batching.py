"""Group commit: concurrent callers of one process share a write, each still waiting for its own.

A durable append (an XADD, an INSERT) costs one round trip whatever it carries. `GroupCommit.submit`
returns only once the item it was given is written, as a direct write would, but a caller that arrives
while another caller's write is in flight queues its item instead of starting a write of its own; when
that write returns, one of the waiting callers writes everything queued meanwhile in one call. With
one caller at a time nothing changes (one write each, no added wait); under load the writes per item
fall with the concurrency, and no item waits for more than the write in flight and its own.

A failed write fails every item it carried: each caller gets the exception, as from a direct write,
and decides what to do (retry, fall back, answer an error).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Slot:
    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = False
        self.error: BaseException | None = None


class GroupCommit(Generic[T]):
    """Items handed to `submit` from any thread, written by `write` in batches of whatever queued while
    the previous batch was being written (a batch holds at most one item per waiting thread)."""

    def __init__(self, write: Callable[[list[T]], None]):
        self._write = write
        self._changed = threading.Condition()
        self._queued: list[tuple[T, _Slot]] = []
        self._writing = False

    def submit(self, item: T) -> None:
        """Return once `item` is written; raise what its batch's write raised."""
        slot = _Slot()
        with self._changed:
            self._queued.append((item, slot))
            while self._writing and not slot.done:
                self._changed.wait()
            if not slot.done:  # no write in flight carries it: this caller writes the queue
                self._writing = True
                batch, self._queued = self._queued, []
        if not slot.done:
            self._run(batch)
        if slot.error is not None:
            raise slot.error

    def _run(self, batch: list[tuple[T, _Slot]]) -> None:
        error: BaseException | None = None
        try:
            self._write([item for item, _ in batch])
        except BaseException as e:  # handed to every caller of the batch, re-raised by each
            error = e
        with self._changed:
            for _, slot in batch:
                slot.done, slot.error = True, error
            self._writing = False
            self._changed.notify_all()
