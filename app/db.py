"""Database engine and sessions.

SQLite runs in WAL mode with a busy timeout so the api and several workers can share one file;
PostgreSQL needs nothing special. Engines are disposed in forked children (RQ forks a work horse per
job) so a pooled connection is never shared across processes.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Executable, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _dispose_in_child() -> None:
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_in_child)


def make_engine(url: str) -> Engine:
    """An engine for `url`; for SQLite the file's directory is created and WAL is switched on."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    _engines.add(engine)
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Database:
    """An engine plus a session factory; `transaction()` is the unit of work services use."""

    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any exception."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads only."""
        with self.sessions() as session:
            yield session


def affected(s: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE in `s`; return how many rows it changed (0: a guard said no)."""
    return cast("CursorResult[Any]", s.execute(statement)).rowcount
