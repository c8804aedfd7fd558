"""When each API key was last used, kept off the request path.

Every API request authenticates, and a request must not wait on a SQL write (issue 17: a GET writes
nothing on the request path; on SQLite a write would also queue reads behind its single writer). So a
key's use is written at most once every RECORD_EVERY per key per process, an in-process note of the
last write deciding, and the write is handed to this process's writer thread: one conditional UPDATE
(`last_used_at IS NULL OR last_used_at < now - RECORD_EVERY`, so other processes' recent writes make it
a no-op) in its own short transaction. `last_used_at` is therefore exact to within RECORD_EVERY (and
the few writes a crashing process had not made yet). A failed write is logged and forgotten: the key's
next use after the interval tries again.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import SQLAlchemyError

from app.models import ApiKey
from app.runtime import Runtime

log = logging.getLogger(__name__)

RECORD_EVERY = timedelta(minutes=5)
MAX_NOTED = 10_000  # keys remembered per process; past it the notes start over (a write each, no harm)
_noted: dict[tuple[str, str], datetime] = {}
_lock = threading.Lock()
_writes: queue.Queue[tuple[Runtime, str, datetime]] = queue.Queue()
_writer_pid = 0  # the process whose writer thread is running (a forked child starts its own)


def note(rt: Runtime, key_id: str) -> None:
    """Record that `key_id` authenticated now, unless this process did within RECORD_EVERY."""
    now = rt.now()
    slot = (rt.config.database_url, key_id)
    last = _noted.get(slot)
    if last is not None and abs(now - last) < RECORD_EVERY:
        return
    with _lock:
        last = _noted.get(slot)
        if last is not None and abs(now - last) < RECORD_EVERY:
            return  # another thread of this process is writing it
        if len(_noted) >= MAX_NOTED:
            _noted.clear()
        _noted[slot] = now
        _start_writer()
    _writes.put((rt, key_id, now))


def flush() -> None:
    """Wait until every use this process noted so far is written."""
    if _writer_pid == os.getpid():
        _writes.join()


def _start_writer() -> None:
    global _writer_pid, _writes
    if _writer_pid != os.getpid():
        if _writer_pid:  # forked: the parent's queue may hold a lock a dead thread took
            _writes = queue.Queue()
        _writer_pid = os.getpid()
        threading.Thread(target=_write_forever, name="key-use-writer", daemon=True).start()


def _write_forever() -> None:
    while True:
        rt, key_id, now = _writes.get()
        try:
            _write(rt, key_id, now)
        finally:
            _writes.task_done()


def _write(rt: Runtime, key_id: str, now: datetime) -> None:
    """Set the key's `last_used_at` unless it was set within RECORD_EVERY; never raises a DB error."""
    stale = or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - RECORD_EVERY)
    try:
        with rt.db.transaction() as s:
            s.execute(update(ApiKey).where(ApiKey.id == key_id, stale).values(last_used_at=now))
    except SQLAlchemyError as e:
        log.warning("could not record that API key %s was used: %s", key_id, e)


def forget() -> None:
    """Forget every write this process made, as a process that has not seen any key yet."""
    with _lock:
        _noted.clear()
