"""`app.db.Prepared`: hot-path statements run straight on the DBAPI cursor behave as Core runs them, on
SQLite and PostgreSQL: Python defaults filled in, rows named, rowcounts, SQLAlchemy's errors."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import datetime

import pytest
from sqlalchemy import bindparam, exc, func, insert, select, update

from app.db import LoopReads, NotOnLoop, Prepared, _Libpq, after_commit, table_of
from app.models import Project, Recording
from app.services.access import keys
from app.services.core import rows
from app.services.ids import new_id
from tests.helpers import make_recording
from tests.sqlcount import counting

PROJECTS = table_of(Project)
INSERT_PROJECT = Prepared(insert(PROJECTS).returning(PROJECTS.c.id, PROJECTS.c.name, PROJECTS.c.created_at))
RENAME = Prepared(update(PROJECTS).where(PROJECTS.c.id == bindparam("project")).values(name=bindparam("to")))
NAMED = Prepared(select(PROJECTS.c.name.label("project__name")).where(PROJECTS.c.id == bindparam("project")))


def test_a_column_left_out_gets_its_python_default(rt):
    with rt.db.transaction() as s:
        row = INSERT_PROJECT.run(s, {"id": new_id(), "name": "defaults"}).one()
    assert isinstance(row.created_at, datetime) and row.created_at.tzinfo is not None
    with rt.db.read() as s:
        assert s.get(Project, row.id).created_at == row.created_at


def test_rows_are_named_after_their_columns_and_labels(rt):
    project_id = new_id()
    with rt.db.transaction() as s:
        assert INSERT_PROJECT.run(s, {"id": project_id, "name": "named"}).one().name == "named"
        assert NAMED.first(s, {"project": project_id}).project__name == "named"


def test_an_update_counts_the_rows_it_changed(rt):
    project_id = new_id()
    with rt.db.transaction() as s:
        INSERT_PROJECT.run(s, {"id": project_id, "name": "before"})
        assert RENAME.run(s, {"project": project_id, "to": "after"}).rowcount == 1
        assert RENAME.run(s, {"project": "no-such-project", "to": "never"}).rowcount == 0
    with rt.db.read() as s:
        assert s.get(Project, project_id).name == "after"


def test_a_rolled_back_transaction_keeps_nothing_it_ran(rt):
    project_id = new_id()
    with pytest.raises(RuntimeError), rt.db.transaction() as s:
        INSERT_PROJECT.run(s, {"id": project_id, "name": "gone"})
        raise RuntimeError("rolled back")
    with rt.db.read() as s:
        assert s.get(Project, project_id) is None


def test_a_duplicate_key_raises_sqlalchemys_integrity_error(rt):
    project_id = new_id()
    with rt.db.transaction() as s:
        INSERT_PROJECT.run(s, {"id": project_id, "name": "first"})
    with pytest.raises(exc.IntegrityError), rt.db.transaction() as s:
        INSERT_PROJECT.run(s, {"id": project_id, "name": "second"})


def test_a_default_that_reads_the_execution_context_is_refused(rt):
    """A recording's external id defaults to its own id, read off the statement's parameters."""
    prepared = Prepared(insert(table_of(Recording)))
    with pytest.raises(NotImplementedError, match="execution context"), rt.db.transaction() as s:
        prepared.run(s, {"id": new_id(), "project_id": secrets.token_hex(4)})


def test_a_read_on_its_own_connection_sees_what_was_committed(rt):
    project_id = new_id()
    with rt.db.transaction() as s:
        INSERT_PROJECT.run(s, {"id": project_id, "name": "committed"})
    assert NAMED.one_or_none(rt.db.engine, {"project": project_id}) == ("committed",)
    assert NAMED.one_or_none(rt.db.engine, {"project": "no-such-project"}) is None


# --- Database.tx: a transaction of Prepared statements without a session ---------------------------


def test_a_session_free_transaction_commits_what_it_ran(rt):
    project_id = new_id()
    with rt.db.tx() as tx:
        INSERT_PROJECT.run(tx, {"id": project_id, "name": "committed"})
        assert NAMED.first(tx, {"project": project_id}).project__name == "committed"
    with rt.db.read() as s:
        assert s.get(Project, project_id).name == "committed"


def test_a_session_free_transaction_rolls_back_on_an_error_and_runs_nothing_queued(rt):
    project_id, ran = new_id(), []
    with pytest.raises(RuntimeError), rt.db.tx() as tx:
        INSERT_PROJECT.run(tx, {"id": project_id, "name": "gone"})
        after_commit(tx, "test", "item", ran.append)
        raise RuntimeError("rolled back")
    with rt.db.read() as s:
        assert s.get(Project, project_id) is None
    assert ran == []


def test_what_a_session_free_transaction_queued_runs_once_after_its_commit(rt):
    project_id, seen = new_id(), []

    def check(items: list[str]) -> None:
        with rt.db.read() as s:  # after the commit: another connection sees the row
            seen.append((items, s.get(Project, project_id) is not None))

    with rt.db.tx() as tx:
        INSERT_PROJECT.run(tx, {"id": project_id, "name": "queued"})
        after_commit(tx, "test", "a", check)
        after_commit(tx, "test", "b", check)
        assert seen == []
    assert seen == [(["a", "b"], True)]


def test_a_session_free_transaction_leaves_its_connection_idle_in_the_pool(rt):
    with counting(rt) as counted, rt.db.tx() as tx:
        RENAME.run(tx, {"project": "no-such-project", "to": "never"})
    assert (counted.transactions, counted.checkouts, counted.left_open) == (1, 1, 0)


def test_a_recordings_read_is_planned_on_its_primary_key_even_as_a_generic_plan(rt):
    """PostgreSQL plans a statement psycopg prepared once for any values; given the project too, that
    plan once took the project's index and filtered the project's every recording by id."""
    dialect = rt.db.engine.dialect
    sql = str(rows.BY_ID.statement.compile(dialect=dialect))
    connection = rt.db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        if dialect.name == "postgresql":
            cursor.execute("SET plan_cache_mode = force_generic_plan")
            cursor.execute(f"PREPARE by_id(varchar) AS {sql.replace('%(recording_id)s', '$1')}")
            cursor.execute("EXPLAIN EXECUTE by_id('f00d')")
            plan = "\n".join(r[0] for r in cursor.fetchall())
            cursor.execute("DEALLOCATE by_id")
            cursor.execute("RESET plan_cache_mode")
            assert "Index Scan using recordings_pkey on recordings" in plan, plan
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", ("f00d",))
            plan = "\n".join(str(r[-1]) for r in cursor.fetchall())
            assert "SEARCH recordings USING INDEX sqlite_autoindex_recordings_1 (id=?)" in plan, plan
    finally:
        connection.close()


# --- Database.autocommit (PostgreSQL): each statement on its own, through libpq ---------------------


@pytest.fixture
def autocommit(rt):  # type: ignore[no-untyped-def]
    """`rt.db.autocommit`, which only PostgreSQL has (SQLite runs the same calls as transactions)."""
    if rt.db.engine.dialect.name != "postgresql":
        pytest.skip("autocommit statements are PostgreSQL's (app.services.core.fused)")
    return rt.db.autocommit


def test_in_autocommit_a_statement_answers_as_in_a_transaction_and_commits_on_its_own(rt, autocommit):
    project_id = new_id()
    with autocommit() as c:
        row = INSERT_PROJECT.run(c, {"id": project_id, "name": "before"}).one()
        assert row.id == project_id and row.created_at.tzinfo is not None
        with rt.db.read() as s:  # another connection sees it at once
            assert s.get(Project, project_id).name == "before"
        assert RENAME.run(c, {"project": project_id, "to": "after"}).rowcount == 1
        assert RENAME.run(c, {"project": "no-such-project", "to": "never"}).rowcount == 0
        assert NAMED.first(c, {"project": project_id}).project__name == "after"
    assert NAMED.one_or_none(rt.db.engine, {"project": project_id}) == ("after",)


def test_in_autocommit_a_duplicate_key_raises_sqlalchemys_integrity_error(rt, autocommit):
    project_id = new_id()
    with autocommit() as c:
        INSERT_PROJECT.run(c, {"id": project_id, "name": "first"})
        with pytest.raises(exc.IntegrityError):
            INSERT_PROJECT.run(c, {"id": project_id, "name": "second"})
        assert NAMED.first(c, {"project": project_id}).project__name == "first"  # the connection goes on


def test_a_connection_the_server_dropped_fails_its_statement_and_is_not_pooled_again(rt, autocommit):
    project_id = new_id()
    with autocommit() as c:
        INSERT_PROJECT.run(c, {"id": project_id, "name": "kept"})
        dbapi = c.connection.dbapi_connection
        with rt.db.engine.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({dbapi.info.backend_pid})")
        with pytest.raises(exc.DBAPIError):
            NAMED.first(c, {"project": project_id})
    assert dbapi.closed
    for _ in range(rt.db.engine.pool.checkedin() + 1):  # the pool hands out the oldest idle first
        assert NAMED.one_or_none(rt.db.engine, {"project": project_id}) == ("kept",)


def test_a_statement_psycopg_deallocated_is_prepared_again(rt, autocommit):
    """psycopg deallocates every prepared statement of a session after a ROLLBACK."""
    project_id = new_id()
    with autocommit() as c:
        INSERT_PROJECT.run(c, {"id": project_id, "name": "again"})
        assert NAMED.first(c, {"project": project_id}).project__name == "again"  # prepared
        c.connection.dbapi_connection.execute("DEALLOCATE ALL")
        assert NAMED.first(c, {"project": project_id}).project__name == "again"


def test_statements_are_numbered_for_libpq_each_name_once_and_percent_signs_unescaped():
    assert _Libpq("SELECT %(a)s, %(b)s, %(a)s, 'x%%'").sql == b"SELECT $1, $2, $1, 'x%'"
    assert _Libpq("SELECT %(a)s, %(b)s, %(a)s").order == ("a", "b")


# --- reads on the event loop (LoopReads) -----------------------------------------------------------


def on_loop(reads: LoopReads, statement: Prepared, params: dict):  # type: ignore[no-untyped-def]
    return asyncio.run(statement.one_or_none_on_loop(reads, params))


@pytest.fixture
def reads(rt) -> Iterator[LoopReads]:  # type: ignore[no-untyped-def]
    """Reads on the loop for `rt`'s engine, with connections of their own, closed after the test."""
    loop_reads = LoopReads(rt.db.engine)
    yield loop_reads
    asyncio.run(loop_reads.close())


@pytest.fixture
def pg_loop(rt, reads: LoopReads) -> LoopReads:  # type: ignore[no-untyped-def]
    """`reads` where they hold connections of their own (PostgreSQL; SQLite reads inline)."""
    if rt.db.engine.dialect.name != "postgresql":
        pytest.skip("the loop's own connections are PostgreSQL's (SQLite is read inline)")
    return reads


def test_a_read_on_the_loop_answers_as_one_or_none(rt, reads):
    project_id = new_id()
    with rt.db.transaction() as s:
        INSERT_PROJECT.run(s, {"id": project_id, "name": "looped"})
    assert on_loop(reads, NAMED, {"project": project_id}) == NAMED.one_or_none(
        rt.db.engine, {"project": project_id}
    )
    assert on_loop(reads, NAMED, {"project": project_id}).project__name == "looped"
    assert on_loop(reads, NAMED, {"project": "nobody"}) is None


def test_a_recordings_read_on_the_loop_is_the_same_row_with_its_values_loaded(rt, reads, project_key):
    rec_id = make_recording(rt, keys.authenticate(rt, project_key).project_id, state="finished")
    params = {"recording_id": rec_id}
    assert on_loop(reads, rows.BY_ID, params) == rows.BY_ID.one_or_none(rt.db.engine, params)


def test_reads_on_the_loop_take_turns_on_one_connection(rt, pg_loop):
    for _ in range(3):
        assert on_loop(pg_loop, NAMED, {"project": "nobody"}) is None
    assert (pg_loop._open, len(pg_loop._free)) == (1, 1)


def test_a_read_on_the_loop_with_every_connection_reading_is_not_run_there(rt, pg_loop):
    async def all_busy() -> None:
        async with AsyncExitStack() as stack:
            for _ in range(LoopReads.MAX_CONNECTIONS):
                await stack.enter_async_context(pg_loop.connection())
            with pytest.raises(NotOnLoop, match="every connection"):
                await NAMED.one_or_none_on_loop(pg_loop, {"project": "nobody"})

    asyncio.run(all_busy())
    assert len(pg_loop._free) == LoopReads.MAX_CONNECTIONS  # given back, all usable
    assert on_loop(pg_loop, NAMED, {"project": "nobody"}) is None


def test_a_loop_connection_the_server_dropped_fails_its_read_and_is_replaced(rt, pg_loop):
    assert on_loop(pg_loop, NAMED, {"project": "nobody"}) is None
    [held] = pg_loop._free
    with rt.db.engine.connect() as other:
        other.exec_driver_sql(f"SELECT pg_terminate_backend({held.conn.info.backend_pid})")
    with pytest.raises(NotOnLoop, match="the read failed"):
        on_loop(pg_loop, NAMED, {"project": "nobody"})
    assert held.conn.closed and pg_loop._open == 0
    assert on_loop(pg_loop, NAMED, {"project": "nobody"}) is None  # on a new connection
    assert pg_loop._free[0] is not held


def test_a_read_on_the_loop_slower_than_its_timeout_gives_up_and_closes_its_connection(
    rt, pg_loop, monkeypatch
):
    monkeypatch.setattr(LoopReads, "READ_TIMEOUT", 0.2)
    slow = Prepared(select(func.pg_sleep(bindparam("seconds"))))
    with pytest.raises(NotOnLoop):
        on_loop(pg_loop, slow, {"seconds": 2})
    assert (pg_loop._open, pg_loop._free) == (0, [])
