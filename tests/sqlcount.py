"""Count what a block asks of the database: transactions begun, connections taken from the pool and
statements run (SQLAlchemy events)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event


@dataclass
class Counted:
    transactions: int = 0
    # A read on a pooled DBAPI cursor (app.services.core.display) is a transaction SQLAlchemy never
    # begins; each such read, and each session, takes a connection from the pool.
    checkouts: int = 0
    statements: list[str] = field(default_factory=list)  # each statement's first 120 characters
    # Each statement whole with its parameters, as `before_cursor_execute` hears them (to explain it).
    heard: list[tuple[str, Any]] = field(default_factory=list)
    # Connections given back to the pool inside a transaction: each costs the pool a ROLLBACK (on
    # PostgreSQL a round trip, beside the BEGIN the driver sent).
    left_open: int = 0


@contextmanager
def counting(rt: Any) -> Iterator[Counted]:
    """Count the transactions begun (read sessions included), the pool checkouts and the statements
    run on `rt`'s engine inside the block by the calling thread: background writers of this process
    (the key-use writer, the link audit's) are not the block's work."""
    counted = Counted()
    engine = rt.db.engine
    caller = threading.get_ident()

    def mine() -> bool:
        return threading.get_ident() == caller

    def began(_conn: Any) -> None:
        counted.transactions += mine()

    def checked_out(*_args: Any) -> None:
        counted.checkouts += mine()

    def ran(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if mine():
            counted.statements.append(" ".join(statement.split())[:120])
            counted.heard.append((statement, parameters))

    def reset(dbapi_conn: Any, *_args: Any) -> None:
        if mine():
            counted.left_open += _in_transaction(dbapi_conn)

    event.listen(engine, "begin", began)
    event.listen(engine.pool, "checkout", checked_out)
    event.listen(engine.pool, "reset", reset)
    event.listen(engine, "before_cursor_execute", ran)
    try:
        yield counted
    finally:
        event.remove(engine, "begin", began)
        event.remove(engine.pool, "checkout", checked_out)
        event.remove(engine.pool, "reset", reset)
        event.remove(engine, "before_cursor_execute", ran)


def _in_transaction(dbapi_conn: Any) -> bool:
    """True when the driver holds a transaction open on this DBAPI connection (psycopg: its status is
    not idle; sqlite3: `in_transaction`)."""
    info = getattr(dbapi_conn, "info", None)
    status = getattr(info, "transaction_status", None)
    if status is not None:
        return int(status) != 0  # psycopg.pq.TransactionStatus.IDLE
    return bool(getattr(dbapi_conn, "in_transaction", False))
