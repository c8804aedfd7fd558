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


def test_a_webhook_of_a_key_revoked_before_the_upgrade_is_disabled_with_its_pending_deliveries(tmp_path):
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    migrate.upgrade(url, "0008")
    engine = create_engine(url)
    at = "'2026-11-01 00:00:00.000000'"
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO projects (id, name, created_at) VALUES ('p1', 'old', {at})"))
        for key, revoked in (("k1", at), ("k2", "NULL")):
            conn.execute(
                text(
                    "INSERT INTO api_keys (id, project_id, name, prefix, key_hash, scopes, created_at, "
                    f"revoked_at) VALUES ('{key}', 'p1', 'k', 'mr_', 'h{key}', 'webhook:write', {at}, "
                    f"{revoked})"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO webhook_endpoints (id, project_id, api_key_id, url, types, "
                    "eyeson_key_sealed, secret_sealed, created_at, updated_at) "
                    f"VALUES ('e{key}', 'p1', '{key}', 'http://x', "
                    f"'recording_update', 's', 's', {at}, {at})"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, attempt, manual, state, "
                    f"created_at, due_at) VALUES ('d{key}', 'e{key}', 'ev', 1, 0, 'pending', {at}, {at})"
                )
            )
        conn.execute(
            text(
                "INSERT INTO webhook_events (id, project_id, type, resource_id, seq, payload, created_at) "
                f"VALUES ('ev', 'p1', 'recording_update', 'r1', 1, '{{}}', {at})"
            )
        )
    migrate.upgrade(url)
    with engine.connect() as conn:
        endpoints = dict(
            conn.execute(text("SELECT api_key_id, disabled_reason FROM webhook_endpoints")).all()
        )
        states = dict(conn.execute(text("SELECT id, state FROM webhook_deliveries")).all())
    engine.dispose()
    assert endpoints == {"k1": "its API key was revoked", "k2": None}
    assert states == {"dk1": "cancelled", "dk2": "pending"}


def test_replays_stored_before_the_upgrade_are_marked_for_their_facts(tmp_path):
    url = f"sqlite:///{tmp_path / 'replays.db'}"
    migrate.upgrade(url, "0009")
    engine = create_engine(url)
    at = "'2026-11-01 00:00:00.000000'"
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO projects (id, name, created_at) VALUES ('p1', 'old', {at})"))
        conn.execute(
            text(
                "INSERT INTO recordings (id, project_id, external_id, state, created_at, ingest) "
                f"VALUES ('r1', 'p1', 'tab-1', 'finished', {at}, 'none')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO replay_summaries (recording_id, project_id, next_sequence, events, blocks, "
                f"bytes, created_at, last_ingest_at) VALUES ('r1', 'p1', 11, 10, 1, 100, {at}, {at})"
            )
        )
    migrate.upgrade(url)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT facts_complete, click_count, activity FROM replay_summaries")).one()
    assert (bool(row[0]), row[1], row[2]) == (False, 0, "[]")
    engine.dispose()
