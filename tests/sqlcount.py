"""Count what a block asks of the database: transactions begun and statements run (SQLAlchemy events)."""

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
    statements: list[str] = field(default_factory=list)  # each statement's first 120 characters


@contextmanager
def counting(rt: Any) -> Iterator[Counted]:
    """Count the transactions begun (read sessions included) and the statements run on `rt`'s engine
    inside the block by the calling thread (a request served by a test client runs on it; background
    threads such as the key-use writer are not the block's doing)."""
    counted = Counted()
    engine = rt.db.engine
    mine = threading.get_ident()

    def began(_conn: Any) -> None:
        if threading.get_ident() == mine:
            counted.transactions += 1

    def ran(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() == mine:
            counted.statements.append(" ".join(statement.split())[:120])

    event.listen(engine, "begin", began)
    event.listen(engine, "before_cursor_execute", ran)
    try:
        yield counted
    finally:
        event.remove(engine, "begin", began)
        event.remove(engine, "before_cursor_execute", ran)
