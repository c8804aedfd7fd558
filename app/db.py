"""Database engine and sessions.

SQLite runs in WAL mode with a busy timeout so the api and several workers can share one file;
PostgreSQL needs nothing special. Engines are disposed in forked children (RQ forks a work horse per
job) so a pooled connection is never shared across processes.

For the hot paths (a room recording's start and stop, a recording's read, the webhook outbox):
statements built once and run on the DBAPI cursor (`Prepared`) or through Core (`run`) in a session's
transaction, rows made into detached instances without the ORM loader (`CoreRows`), and work queued for
after the commit (`after_commit`). On PostgreSQL a statement that needs no transaction (a read, one of
`app.services.core.fused`'s writes) runs in autocommit (`Database.autocommit`, `Prepared.one_or_none`),
straight on libpq (`_Libpq`).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
import weakref
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import CursorResult, Engine, Executable, Table, create_engine, event, exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, instrumentation, make_transient_to_detached, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.dml import ValuesBase

T = TypeVar("T")

log = logging.getLogger(__name__)

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
        engine = create_engine(url, pool_size=5, max_overflow=10)
        _ping_when_idle(engine)
    _engines.add(engine)
    return engine


# A pooled connection idle longer than this is pinged before use (see `_ping_when_idle`).
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pre-ping, only for connections idle longer than PING_AFTER_IDLE_SECONDS.

    A ping is one more round trip on every checkout, beside the five or six of a start or a stop call
    (BEGIN, three or four statements, COMMIT). A connection given back a moment ago was alive then; one
    that died since (a server restart under load) fails its statement instead, and SQLAlchemy then
    drops every connection as old as it, as a failed ping does. Idle ones (after a quiet spell, a
    restart, an idle-session timeout) are pinged, and on a dead one the pool is renewed before use.
    """
    dialect = engine.dialect

    def checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # fresh, or in use a moment ago
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as e:
            if dialect.is_disconnect(e, dbapi_conn, None):
                raise exc.InvalidatePoolError() from e  # the pool reconnects and renews the others
            raise

    event.listen(engine.pool, "checkin", checked_in)
    event.listen(engine.pool, "checkout", checked_out)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class NotOnLoop(Exception):
    """A read the event loop could not run now (no connection of its own free, or the read failed
    there): run it on a thread, as any other call."""


class LoopReads:
    """Reads run on the api's event loop (one loop a process), for calls so short that the hop to a
    pool thread and back costs more than they do (`Prepared.one_or_none_on_loop`).

    Measured here: `GET /recordings/{id}` served 18-20% more requests/s on PostgreSQL, and 29% more on
    SQLite, with its work on the loop than with the same work on the HTTP pool's thread (the hop: a
    future, the pool's queue, a thread woken, the GIL handed over and back, the loop woken).

    - PostgreSQL: the statement is sent and its result awaited on the loop (libpq's non-blocking calls),
      so the loop serves other sockets meanwhile, on connections of this process's own: autocommit, made
      on first use outside the engine's pool, at most MAX_CONNECTIONS at once. With none free, or the
      read failing there (a broken connection, the server slower than READ_TIMEOUT: the connection is
      closed), `NotOnLoop`: the caller runs it on a thread as before, which answers the failure as usual.
    - SQLite is read in-process, and a reader never waits for a writer in WAL mode: the statement runs
      inline, as short as the Python around it.
    """

    MAX_CONNECTIONS = 4
    READ_TIMEOUT = 2.0  # seconds

    def __init__(self, engine: Engine):
        self.engine = engine
        self._free: list[_LoopConnection] = []
        self._open = 0
        self._pid = os.getpid()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[_LoopConnection]:
        """One of the loop's connections for one statement; NotOnLoop when none can be had or the
        block fails (the connection is then closed)."""
        if self._pid != os.getpid():  # forked: the parent's connections are not this process's
            self._free, self._open, self._pid = [], 0, os.getpid()
        if self._free:
            held = self._free.pop()
        elif self._open < self.MAX_CONNECTIONS:
            self._open += 1
            try:
                held = await self._connect()
            except Exception as e:
                self._open -= 1
                raise NotOnLoop(f"no connection: {e}") from e
        else:
            raise NotOnLoop("every connection of the loop is reading")
        try:
            yield held
        except BaseException as e:  # cancelled too: the statement may still be in flight
            self._open -= 1
            await held.close()
            if isinstance(e, Exception):
                log.debug("a read on the loop failed (its connection closed; read on a thread): %s", e)
                raise NotOnLoop(f"the read failed: {e}") from e
            raise
        self._free.append(held)

    async def _connect(self) -> _LoopConnection:
        from psycopg import AsyncConnection

        args, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
        kwargs.setdefault("connect_timeout", max(2, int(self.READ_TIMEOUT)))
        return _LoopConnection(await AsyncConnection.connect(*args, autocommit=True, **kwargs))

    async def close(self) -> None:
        """Close the connections not in use (at the loop's shutdown)."""
        free, self._free = self._free, []
        for held in free:
            self._open -= 1
            await held.close()


class _LoopConnection:
    """A psycopg connection of `LoopReads`, with the statements prepared on it and its row loader."""

    __slots__ = ("conn", "prepared", "transformer")

    def __init__(self, conn: Any):
        from psycopg.adapt import Transformer

        self.conn = conn
        self.prepared: set[bytes] = set()
        self.transformer = Transformer(conn)

    async def close(self) -> None:
        try:
            await self.conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection: nothing more to do with it
            pass


class Database:
    """An engine plus a session factory; `transaction()` is the unit of work services use."""

    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.on_loop = LoopReads(self.engine)

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

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """A transaction of `Prepared` statements on a pooled DBAPI connection, without an ORM session
        (measured here: 0.06 ms of CPU less than `transaction()` on SQLite, 0.1-0.15 ms on PostgreSQL).
        Commits on success, rolls back on any exception; what `after_commit` queued runs after the
        commit. For hot calls made of Prepared statements only (a room recording's start and stop)."""
        engine = self.engine
        pooled = engine.raw_connection()
        try:
            if engine._has_events:  # counted as a begun transaction, as a session's is
                for listener in engine.dispatch.begin:
                    listener(None)
            tx = Tx(engine, pooled)
            yield tx
            pooled.commit()
        except BaseException:
            try:
                pooled.rollback()
            except Exception:  # noqa: BLE001 - a broken connection: dropped, the first error raised
                pooled.invalidate()
            raise
        finally:
            pooled.close()  # back to the pool (an invalidated one is discarded)
        _committed(tx)

    @contextmanager
    def autocommit(self) -> Iterator[Tx]:
        """A pooled connection on which each `Prepared` statement commits on its own (PostgreSQL's
        autocommit: no BEGIN, no COMMIT, no ROLLBACK when it goes back to the pool). For calls made of
        reads and at most one statement that writes (`app.services.core.fused`); `after_commit` work
        queued on it is not run."""
        engine = self.engine
        if engine.dialect.name != "postgresql":
            raise NotImplementedError("autocommit: PostgreSQL only")
        with _autocommit(engine) as pooled:
            yield Tx(engine, pooled)


@contextmanager
def _autocommit(engine: Engine) -> Iterator[Any]:
    """A pooled connection of a PostgreSQL `engine` in the driver's autocommit, set back as it returns to
    the pool (a flag of the driver's: no round trip either way)."""
    pooled = engine.raw_connection()
    dbapi: Any = pooled.dbapi_connection
    dbapi.autocommit = True
    try:
        yield pooled
    finally:
        if not dbapi.closed:  # a connection that broke is dropped by the pool's reset
            dbapi.autocommit = False
        pooled.close()


def after_commit(s: InTransaction, key: str, item: Any, run: Callable[[list[Any]], object]) -> None:
    """Call `run` with the items queued under `key` once `s`'s transaction commits (one call per key,
    items in the order queued); a rollback drops them. For what must follow a commit and never
    precede it: a job that must find the rows, a log line of a change that happened."""
    queued = s.info.setdefault(_AFTER_COMMIT, {})
    if key not in queued:
        queued[key] = (run, [])
    queued[key][1].append(item)


_AFTER_COMMIT = "meetrec.after_commit"


def _committed(session: InTransaction) -> None:
    for run, items in (session.info.pop(_AFTER_COMMIT, None) or {}).values():
        run(items)


def _rolled_back(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)


# Once for every session of the process: a listener added per session cost more than the SQL it
# followed, and a session made outside `Database` runs its queued work all the same.
event.listen(Session, "after_commit", _committed)
event.listen(Session, "after_rollback", _rolled_back)


def affected(s: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE in `s`; return how many rows it changed (0: a guard said no)."""
    return cast("CursorResult[Any]", s.execute(statement)).rowcount


def run(s: Session, statement: Executable, params: Any = None) -> CursorResult[Any]:
    """Run a Core statement (built once, with bind parameters) on `s`'s connection, in its transaction.

    For the hot paths: none of the ORM's bookkeeping (no identity map, no unit of work, no syncing of
    loaded objects after an UPDATE), which costs more than the SQL itself. Objects `s` holds are not
    updated to match.
    """
    return s.connection().execute(statement, params)


def table_of(cls: type[Any]) -> Table:
    """The table a mapped class is mapped to, typed for Core's insert() and update()."""
    return cast(Table, cls.__table__)


class CoreRows(Generic[T]):
    """The columns of a mapped class, to select (or return) its rows with Core and make instances of
    them as a session that loaded them and closed would leave them: detached, nothing to flush, for a
    small part of the ORM loader's cost (for the hot paths)."""

    def __init__(self, cls: type[T]):
        attrs = sa_inspect(cls).column_attrs
        self.cls = cls
        self.keys = tuple(a.key for a in attrs)
        self.columns = tuple(a.columns[0] for a in attrs)

    def labelled(self, prefix: str) -> list[Any]:
        """The columns labelled `<prefix>__<key>`, to select beside another table's."""
        return [c.label(f"{prefix}__{key}") for key, c in zip(self.keys, self.columns, strict=True)]

    def load(self, row: Sequence[Any], at: int = 0, **related: Any) -> T:
        """An instance holding the columns of `row` from position `at`, and the `related` objects."""
        obj = self.shown(row, at, **related)
        make_transient_to_detached(obj)  # relationships not given are expired: reading one raises
        return obj

    def shown(self, row: Sequence[Any], at: int = 0, **related: Any) -> T:
        """`load`'s instance left transient: nothing tracks it, so it is fit to be shaped and shown and
        never to be added to a session or changed; a relationship not given reads as None. Cheaper than
        `load` by the identity key and the expiry (for a read that only shows the row)."""
        obj: T = instrumentation.manager_of_class(self.cls).new_instance()
        obj.__dict__.update(zip(self.keys, row[at : at + len(self.keys)], strict=True))
        for name, value in related.items():
            set_committed_value(obj, name, value)
        return obj


class Prepared:
    """A statement compiled once per dialect and run straight on a DBAPI cursor: no Core `Connection`
    execution, result object or per-call compilation, only each bound value's and each returned column's
    processor. Through Core one statement costs ~0.1 ms of CPU here, on the cursor ~0.03 ms.

    For the hot paths' statements, built once as module constants: SELECTs, and INSERTs and UPDATEs
    (with RETURNING or not). An INSERT or UPDATE is compiled per set of parameter names, as Core does;
    the Python defaults of the columns it leaves out are filled in (a default that reads the execution
    context is not supported). DBAPI errors leave as SQLAlchemy's (`IntegrityError`...), and the
    engine's `before_cursor_execute` listeners still hear each statement (tests count them).
    """

    def __init__(self, statement: Executable):
        self.statement = statement
        self._by_names = isinstance(statement, ValuesBase)  # its SQL depends on the parameters given
        self._compiled: dict[tuple[str, ...], _Compiled] = {}

    def one_or_none(self, engine: Engine, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row on a connection of `engine`'s pool, outside any session (a read of its own).

        One statement sees one snapshot, so on PostgreSQL it runs in autocommit: one round trip, not the
        driver's BEGIN, the SELECT and the pool's ROLLBACK (the server's work per read falls by ~2/3)."""
        if engine.dialect.name == "postgresql":
            with _autocommit(engine) as connection:
                return self._execute(engine, connection, params).first()
        connection = engine.raw_connection()
        try:
            return self._execute(engine, connection, params).first()
        finally:
            connection.close()  # back to the pool, rolled back as a Core connection would be

    def first(self, s: InTransaction, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row in `s`'s transaction (on its connection, begun if it was not)."""
        return self.run(s, params).first()

    def run(self, s: InTransaction, params: dict[str, Any]) -> Ran:
        """Run the statement in `s`'s transaction (on its connection, begun if it was not). Objects a
        session holds are not updated to match (see `run`)."""
        if type(s) is Tx:
            return self._execute(s.engine, s.connection, params)
        connection = cast(Session, s).connection()
        return self._execute(connection.engine, connection.connection, params)

    async def one_or_none_on_loop(self, reads: LoopReads, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """`one_or_none` on the running event loop, for a read too short to be worth a thread's hop
        (`LoopReads`). Raises `NotOnLoop` when it could not run there: run it on a thread instead."""
        engine = reads.engine
        compiled = self._for(engine, params)
        if compiled.libpq is None:
            if engine.dialect.name != "sqlite":  # a driver without libpq's non-blocking calls
                raise NotOnLoop(f"no read on the loop through {engine.dialect.driver}")
            try:  # in-process SQLite: as short as the Python around it
                return self.one_or_none(engine, params)
            except Exception as e:
                raise NotOnLoop(f"the read failed: {e}") from e
        async with reads.connection() as held:
            return compiled.ran(*await compiled.libpq.run_on_loop(engine, compiled, held, params)).first()

    def _execute(self, engine: Engine, connection: Any, params: dict[str, Any]) -> Ran:
        return self._for(engine, params).execute(engine, connection, params)

    def _for(self, engine: Engine, params: dict[str, Any]) -> _Compiled:
        dialect = engine.dialect
        slot = (dialect.name, dialect.driver, *(params if self._by_names else ()))
        compiled = self._compiled.get(slot)
        if compiled is None:
            compiled = self._compiled[slot] = _Compiled(self.statement, dialect, list(params))
        return compiled


class Tx:
    """`Database.tx()`'s transaction: the engine and the pooled DBAPI connection `Prepared` runs on."""

    __slots__ = ("engine", "connection", "info")

    def __init__(self, engine: Engine, connection: Any):
        self.engine, self.connection = engine, connection
        self.info: dict[str, Any] = {}  # as a session's: what `after_commit` queued


# Where a hot statement runs: a session's transaction, or a session-free one (`Database.tx`).
InTransaction = Session | Tx


class Ran:
    """What a `Prepared` statement answered: its rows (named tuples) and how many rows it changed."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int):
        self.rows, self.rowcount = rows, rowcount

    def first(self) -> Any:
        """The first row, or None."""
        return self.rows[0] if self.rows else None

    def one(self) -> Any:
        """The only row; NoResultFound or MultipleResultsFound otherwise."""
        if len(self.rows) != 1:
            raise exc.NoResultFound("no row") if not self.rows else exc.MultipleResultsFound("rows")
        return self.rows[0]

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        return self.rows[0][0] if self.rows else None


class _Compiled:
    """One statement compiled for one dialect (and one set of parameter names)."""

    def __init__(self, statement: Executable, dialect: Any, names: list[str]):
        compiled = cast(Any, statement).compile(dialect=dialect, column_keys=names)
        if compiled.update_prefetch:
            raise NotImplementedError("Prepared: a column's onupdate default is not filled in")
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise NotImplementedError("Prepared: values rendered at execution (IN lists, literal_execute)")
        if compiled.escaped_bind_names:
            raise NotImplementedError("Prepared: bind names the driver's paramstyle needs escaped")
        self.sql = str(compiled)
        self.dialect = dialect
        self.order = tuple(compiled.positiontup or ()) if compiled.positional else None
        self.fixed = {  # the statement's own values (literals, constants)
            name: bind.effective_value
            for name, bind in compiled.binds.items()
            if not bind.required and name not in names
        }
        self.defaults = [(c.key, _python_default(c)) for c in compiled.insert_prefetch]
        self.binds = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        self.types = [c.type.dialect_impl(dialect) for c in cast(Any, statement).exported_columns]
        # Made on the first execution that returns rows: some drivers' processors depend on the type
        # codes it reports, and the rows' names are the cursor's.
        self.processors: tuple[tuple[int, Callable[[Any], Any]], ...] = ()  # (column index, processor)
        self.row: Any = None  # the rows' namedtuple class
        self.returns: bool | None = None  # whether it answers rows: known after its first execution
        self.libpq = _Libpq(self.sql) if dialect.driver == "psycopg" else None

    def bound(self, params: dict[str, Any]) -> Any:
        """The values to send for `params`: the statement's own and its defaults added, each bind
        processor run, in the driver's paramstyle."""
        values = {**self.fixed, **params}
        for name, default in self.defaults:
            values[name] = default()
        for name, processor in self.binds.items():
            values[name] = processor(values[name])
        return tuple(values[name] for name in self.order) if self.order is not None else values

    def execute(self, engine: Engine, connection: Any, params: dict[str, Any]) -> Ran:
        bound = self.bound(params)
        if self.libpq is not None:
            dbapi = connection.dbapi_connection
            if dbapi.autocommit:  # nothing to BEGIN: libpq runs it (see `_Libpq`)
                return self.ran(*self._on_libpq(engine, dbapi, cast(dict[str, Any], bound)))
        cursor = connection.cursor()
        try:
            if engine._has_events:
                self.heard(engine, cursor, bound)
            try:
                cursor.execute(self.sql, bound)
                returns = self.returns
                if returns is None:  # learnt once: psycopg makes `description` anew on every read
                    returns = cursor.description is not None
                    if returns:
                        self._describe(cursor.description)
                    self.returns = returns  # last: a thread that reads it finds the rows' shape made
                raw = cursor.fetchall() if returns else []
            except self.dialect.loaded_dbapi.Error as e:
                raise self.wrapped(e, bound) from e
            rowcount = cursor.rowcount
        finally:
            cursor.close()
        return self.ran(raw, rowcount)

    def _on_libpq(self, engine: Engine, dbapi: Any, bound: dict[str, Any]) -> tuple[list[Any], int]:
        """Run on the connection's libpq handle (`_Libpq`): its raw rows and row count."""
        libpq = cast(_Libpq, self.libpq)
        if engine._has_events:
            self.heard(engine, None, bound)
        try:
            result, transformer = libpq.run(dbapi, bound)
        except self.dialect.loaded_dbapi.Error as e:
            raise self.wrapped(e, bound) from e
        return self.loaded(result, transformer)

    def loaded(self, result: Any, transformer: Any) -> tuple[list[Any], int]:
        """A libpq result's raw rows (loaded by `transformer`, set to it) and row count."""
        rowcount = result.command_tuples
        if self.returns is None:
            returns = result.nfields > 0
            if returns:
                self._describe([(result.fname(i).decode(), result.ftype(i)) for i in range(result.nfields)])
            self.returns = returns
        raw = transformer.load_rows(0, result.ntuples, tuple) if self.returns else []
        return raw, -1 if rowcount is None else rowcount

    def heard(self, engine: Engine, cursor: Any, bound: Any) -> None:
        """Tell the engine's `before_cursor_execute` listeners of this execution, as Core would."""
        for listener in engine.dispatch.before_cursor_execute:
            listener(None, cursor, self.sql, bound, None, False)

    def wrapped(self, error: Exception, bound: Any) -> exc.StatementError:
        """A DBAPI error as SQLAlchemy raises it (`IntegrityError`, `OperationalError`...)."""
        return exc.DBAPIError.instance(
            self.sql, bound, error, self.dialect.loaded_dbapi.Error, dialect=self.dialect
        )

    def ran(self, raw: list[Any], rowcount: int) -> Ran:
        """The rows as `Ran` holds them: each column's processor run, made named tuples."""
        if not raw:
            return Ran([], rowcount)
        make, processors = self.row._make, self.processors
        if not processors:
            return Ran([make(r) for r in raw], rowcount)
        made = []
        for r in raw:
            row = list(r)
            for at, processor in processors:  # only the columns that have one (a few of dozens)
                row[at] = processor(row[at])
            made.append(make(row))
        return Ran(made, rowcount)

    def _describe(self, description: Sequence[Any]) -> None:
        codes = [d[1] for d in description]
        found = (t.result_processor(self.dialect, code) for t, code in zip(self.types, codes, strict=True))
        self.processors = tuple((at, p) for at, p in enumerate(found) if p is not None)
        self.row = namedtuple("Row", [d[0] for d in description], rename=True)  # type: ignore[misc]


def with_defaults(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """`values` for every column of `table`: the Python-side INSERT default of each column not given
    (None for one without), as `Prepared` fills them in. For a statement that names every column
    itself (an INSERT from a SELECT)."""
    return {c.key: values[c.key] if c.key in values else _python_default(c)() for c in table.columns}


class _Libpq:
    """A statement run on psycopg's libpq handle (`Connection.pgconn`) when the connection is in
    autocommit: the same statement, the same loaders, without the cursor.

    psycopg's cursor costs ~60 us of CPU a statement here beside libpq's own work (its execute generators,
    query conversion, a cursor and a result object each time): as much as the SQL of a read by id. In
    autocommit there is no transaction for psycopg to BEGIN, so nothing it tracks is skipped. The statement
    is prepared once per connection, its parameters untyped (the server infers them as for a literal: the
    SQL casts those it could not) and sent as text; rows are loaded by a psycopg `Transformer`, as the
    cursor loads them. libpq releases the GIL while it waits for the server.
    """

    _names = itertools.count(1)

    def __init__(self, sql: str):
        self.name = f"meetrec_{next(self._names)}".encode()
        order: dict[str, int] = {}

        def numbered(found: re.Match[str]) -> str:
            if found.group(0) == "%%":
                return "%"
            return f"${order.setdefault(found.group(1), len(order) + 1)}"

        self.sql = re.sub(r"%\((\w+)\)s|%%", numbered, sql).encode()
        self.order = tuple(order)  # the parameters' names by their number

    def run(self, dbapi: Any, bound: dict[str, Any]) -> tuple[Any, Any]:
        """The statement's result on `dbapi` (a psycopg connection in autocommit) and a transformer set
        to load its rows. A failure raises the psycopg error the cursor would."""
        from psycopg import errors, pq
        from psycopg.adapt import Transformer

        state = dbapi.__dict__.get("_meetrec_libpq")
        if state is None:  # a new connection: nothing prepared on it yet
            state = dbapi.__dict__["_meetrec_libpq"] = (set(), Transformer(dbapi))
        prepared, transformer = state
        pgconn = dbapi.pgconn
        if self.name not in prepared:
            self._prepare(dbapi, errors, pq)
            prepared.add(self.name)
        dumped = self._dumped(transformer, bound)
        result = pgconn.exec_prepared(self.name, dumped)
        if result.status == pq.ExecStatus.FATAL_ERROR and result.error_field(_SQLSTATE) == _NO_SUCH_STATEMENT:
            # psycopg deallocates every prepared statement of the session after a ROLLBACK (as when the
            # pool resets a connection a session used), ours with its own.
            self._prepare(dbapi, errors, pq)
            result = pgconn.exec_prepared(self.name, dumped)
        self._check(result, dbapi, errors, pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
        transformer.set_pgresult(result)
        return result, transformer

    async def run_on_loop(
        self, engine: Engine, compiled: _Compiled, held: _LoopConnection, params: dict[str, Any]
    ) -> tuple[list[Any], int]:
        """`run` on a connection of the running event loop's (`LoopReads`), waiting for the server there
        (libpq's non-blocking calls): the raw rows and the row count. A failure raises psycopg's error."""
        from psycopg import errors, generators, pq

        bound = compiled.bound(params)
        if engine._has_events:
            compiled.heard(engine, None, bound)
        conn = held.conn
        pgconn = conn.pgconn
        if self.name not in held.prepared:
            pgconn.send_prepare(self.name, self.sql)
            done = await conn.wait(generators.execute(pgconn), timeout=LoopReads.READ_TIMEOUT)
            self._check(done[-1], conn, errors, pq.ExecStatus.COMMAND_OK)
            held.prepared.add(self.name)
        pgconn.send_query_prepared(self.name, self._dumped(held.transformer, bound))
        result = (await conn.wait(generators.execute(pgconn), timeout=LoopReads.READ_TIMEOUT))[-1]
        self._check(result, conn, errors, pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
        held.transformer.set_pgresult(result)
        return compiled.loaded(result, held.transformer)

    def _dumped(self, transformer: Any, bound: dict[str, Any]) -> Any:
        """The parameters in their numbered order, dumped as text by `transformer`."""
        from psycopg.adapt import PyFormat

        values = [bound[name] for name in self.order]
        return transformer.dump_sequence(values, [PyFormat.TEXT] * len(values))

    def _prepare(self, dbapi: Any, errors: Any, pq: Any) -> None:
        self._check(dbapi.pgconn.prepare(self.name, self.sql), dbapi, errors, pq.ExecStatus.COMMAND_OK)

    @staticmethod
    def _check(result: Any, dbapi: Any, errors: Any, *ok: Any) -> None:
        if result.status not in ok:
            raise errors.error_from_result(result, encoding=dbapi.info.encoding)


# libpq's diagnostic field of the SQLSTATE (PG_DIAG_SQLSTATE), and the state of a prepared statement the
# session does not have (invalid_sql_statement_name).
_SQLSTATE = ord("C")
_NO_SUCH_STATEMENT = b"26000"


def _python_default(column: Any) -> Callable[[], Any]:
    """A column's Python-side INSERT default as a function of nothing."""
    default = column.default
    if default is None:
        return lambda: None
    if default.is_scalar:
        return lambda: default.arg
    if default.is_callable and getattr(default, "_fn", None) is not default.arg:  # wrapped: takes no context
        return lambda: default.arg(None)
    raise NotImplementedError(f"Prepared: the default of {column} reads the execution context")
