"""The Alembic migrations build exactly the schema the models declare, on the session's database
(SQLite by default, PostgreSQL when DATABASE_URL is set)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text

from app import migrate
from app.models import Base


def test_migrations_match_the_models(rt):
    with rt.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


CHILDREN = ("segments", "session_events", "link_issuances")


def old_database(tmp_path) -> tuple[str, Engine]:  # type: ignore[no-untyped-def]
    """A SQLite database at revision 0005 holding one recording with a row in each child table."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0005")
    engine = create_engine(url)
    with engine.begin() as conn:
        for sql in (
            "INSERT INTO projects (id, name, created_at) VALUES ('p1', 'old', '2026-11-01')",
            "INSERT INTO recordings (id, project_id, state, created_at, ingest) "
            "VALUES ('r1', 'p1', 'finished', '2026-11-01', 'pull')",
            "INSERT INTO segments (recording_id, seq, object_key, size, sha256, created_at) "
            "VALUES ('r1', 0, 'k', 1, 'x', '2026-11-01')",
            "INSERT INTO session_events (recording_id, event_id, type, ts, data) "
            "VALUES ('r1', 'e1', 'click', 1.0, '{}')",
            "INSERT INTO link_issuances (recording_id, project_id, purpose, issued_at, expires_at) "
            "VALUES ('r1', 'p1', 'api', '2026-11-01', '2026-11-01')",
        ):
            conn.execute(text(sql))
    return url, engine


def test_existing_recordings_are_known_by_their_own_id_after_the_upgrade(tmp_path):
    url, engine = old_database(tmp_path)
    migrate.upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT external_id FROM recordings")).scalar_one() == "r1"
    engine.dispose()


def test_upgrading_a_sqlite_table_keeps_the_rows_that_refer_to_it(tmp_path):
    """SQLite alters a table by copying and dropping it: a drop must not cascade to child rows."""
    url, engine = old_database(tmp_path)
    migrate.upgrade(url)
    migrate.downgrade(url, "0005")
    with engine.connect() as conn:
        assert [conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in CHILDREN] == [1, 1, 1]
    engine.dispose()
