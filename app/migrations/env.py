"""Alembic environment: migrations run against the URL the caller configured (see app.migrate)."""

from alembic import context
from sqlalchemy import event

from app.db import make_engine
from app.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(connection=connectable, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    if engine.dialect.name == "sqlite":
        # SQLite alters a table by copying it and dropping the original; with foreign keys on, that
        # DROP cascades to every child row (segments, events, the link audit). Off for migrations only.
        event.listen(engine, "connect", _foreign_keys_off)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()  # one-shot: keep no connection after migrating


def _foreign_keys_off(dbapi_conn, _record) -> None:
    dbapi_conn.execute("PRAGMA foreign_keys=OFF")


run_migrations_online()
