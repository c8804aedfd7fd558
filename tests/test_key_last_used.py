"""An API key's `last_used_at`: written when it authenticates, at most once per key every five minutes
per process, so requests do not write SQL per request; a failed write never fails the request."""

from __future__ import annotations

import dataclasses
import secrets
import threading
from datetime import datetime, timedelta

from sqlalchemy import event, text

from app import migrate
from app.models import utcnow
from app.runtime import Runtime
from app.services.access import key_use, keys
from tests.sqlcount import counting


def fresh_key(rt: Runtime) -> str:
    """A new project's new key; returns the raw key."""
    project = keys.create_project(rt, "last-used-" + secrets.token_hex(3))
    return keys.create_key(rt, project.id)[1]


def last_used(rt: Runtime, raw: str) -> datetime | None:
    """The key's `last_used_at` as SQL holds it once this process's noted uses are written."""
    key_use.flush()
    key = keys.by_secret(rt, raw)
    assert key is not None
    return key.last_used_at


def test_a_new_key_was_never_used(rt):
    assert last_used(rt, fresh_key(rt)) is None


def test_authenticating_records_when_the_key_was_used(rt):
    raw = fresh_key(rt)
    before = utcnow()
    assert keys.authenticate(rt, raw) is not None
    used = last_used(rt, raw)
    assert used is not None and before <= used <= utcnow()


def test_a_use_within_five_minutes_writes_nothing_even_when_the_key_is_read_again(rt):
    raw = fresh_key(rt)
    key = keys.authenticate(rt, raw)
    key_use.flush()
    keys.forget_cached(key.id)  # the next use reads the key from SQL again
    with counting(rt) as again:
        assert keys.authenticate(rt, raw) is not None
    assert [s for s in again.statements if not s.startswith("SELECT")] == [], again.statements


def test_the_use_is_written_by_the_writer_thread_not_the_request(rt):
    raw = fresh_key(rt)
    writers: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("UPDATE api_keys"):
            writers.append(threading.current_thread().name)

    event.listen(rt.db.engine, "before_cursor_execute", seen)
    try:
        assert keys.authenticate(rt, raw) is not None
        key_use.flush()
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", seen)
    assert writers == ["key-use-writer"]


def test_a_use_after_five_minutes_is_recorded_again(rt):
    raw = fresh_key(rt)
    keys.authenticate(rt, raw)
    later = utcnow() + key_use.RECORD_EVERY + timedelta(seconds=1)
    assert keys.authenticate(Runtime(rt.config, clock=lambda: later), raw) is not None
    assert last_used(rt, raw) == later


def test_a_recent_use_recorded_by_another_process_is_not_written_over(rt):
    raw = fresh_key(rt)
    keys.authenticate(rt, raw)
    recorded = last_used(rt, raw)
    key_use.forget()  # as a process that never saw the key
    keys.authenticate(Runtime(rt.config, clock=lambda: recorded + timedelta(minutes=1)), raw)
    assert last_used(rt, raw) == recorded


def test_a_failed_write_does_not_fail_authentication(rt, tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'refusing.db'}"
    migrate.upgrade(url)
    refusing = Runtime(dataclasses.replace(rt.config, database_url=url))
    raw = fresh_key(refusing)
    with refusing.db.transaction() as s:  # the database refuses every write of last_used_at
        s.execute(
            text(
                "CREATE TRIGGER refuse_last_used BEFORE UPDATE OF last_used_at ON api_keys "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    assert keys.authenticate(refusing, raw) is not None
    assert last_used(refusing, raw) is None
    assert "could not record that API key" in caplog.text
    refusing.db.engine.dispose()
