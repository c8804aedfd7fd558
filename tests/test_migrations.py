"""The Alembic migrations build exactly the schema the models declare, on the session's database
(SQLite by default, PostgreSQL when DATABASE_URL is set)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from app import migrate
from app.models import Base


def test_migrations_match_the_models(rt):
    with rt.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_existing_recordings_are_known_by_their_own_id_after_the_upgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0005")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO projects (id, name, created_at) VALUES ('p1', 'old', '2026-11-01')"))
        conn.execute(
            text(
                "INSERT INTO recordings (id, project_id, state, created_at, ingest) "
                "VALUES ('r1', 'p1', 'finished', '2026-11-01', 'pull')"
            )
        )
    migrate.upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT external_id FROM recordings")).scalar_one() == "r1"
    engine.dispose()
