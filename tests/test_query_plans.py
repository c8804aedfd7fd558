"""The hot calls (a room recording's start, stop and end, a recording's read) and the pollers that run all
day (the webhook pump's claim, the retention sweep) find their rows in the tables that grow with use
through an index: rooms are meeting instances and recordings, events and deliveries pile up for weeks,
so a table read whole would make each call slower as the deployment ages (a stop once freed its room by
scanning every room ever opened).

Each statement the calls run is captured as the engine heard it (SQL and parameters, `tests.sqlcount`)
and explained on the same database: PostgreSQL with sequential scans switched off, so a scan left in the
plan is one no index could serve; SQLite's query plan, where such a read is a `SCAN` of the table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.services.access import keys
from app.services.core import display, recordings, retention, room_recordings, rooms
from app.services.outbox import claims
from tests.sqlcount import counting

# The tables that grow with use (per meeting, recording, event or delivery). The others (projects, keys,
# endpoints, signing keys) hold a few rows per project and may be read whole.
GROWING = frozenset(
    {
        "rooms", "participants", "recordings", "segments", "session_events", "webhook_events",
        "webhook_deliveries", "link_issuances", "recording_views", "replay_blocks", "replay_summaries",
    }
)  # fmt: skip


def full_scans(rt, statement: str, parameters: Any) -> list[str]:  # type: ignore[no-untyped-def]
    """The tables `statement` reads whole, by its plan on `rt`'s database."""
    raw = rt.db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if rt.db.engine.dialect.name == "postgresql":
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("EXPLAIN " + statement, parameters)
            lines = [r[0].strip() for r in cursor.fetchall()]
            return [line for line in lines if _scanned(line, "Seq Scan on ")]
        cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        return [r[-1] for r in cursor.fetchall() if _scanned(r[-1], "SCAN ")]
    finally:
        raw.rollback()
        raw.close()


def _scanned(line: str, marker: str) -> bool:
    """True when a plan line (`Seq Scan on rooms ...`, `SCAN rooms`) reads a growing table whole."""
    if marker not in line:
        return False
    table = line.split(marker, 1)[1].split()[0]
    return table in GROWING


def scans_in(rt, call: Callable[[], object]) -> list[str]:  # type: ignore[no-untyped-def]
    """The full scans of growing tables in the plans of the statements `call` runs."""
    with counting(rt) as counted:
        call()
    assert counted.heard, "the call ran no statement"
    found = []
    for statement, parameters in counted.heard:
        found += [f"{statement[:80]!r}: {line}" for line in full_scans(rt, statement, parameters)]
    return found


@pytest.fixture
def access_key(rt):  # type: ignore[no-untyped-def]
    """A participant's access key in a room of pushed media (nothing to capture), among other rooms."""
    project = keys.create_project(rt, "plans")
    for key in ("other-1", "other-2", "planned"):
        joined = rooms.join(rt, project.id, rooms.JoinRequest("Ann", room_key=key, media_source="push"))
    return joined.access_key


def test_a_room_recording_start_reads_no_table_whole(rt, access_key):
    assert scans_in(rt, lambda: room_recordings.start(rt, access_key)) == []


def test_a_room_recording_stop_reads_no_table_whole(rt, access_key):
    room_recordings.start(rt, access_key)
    assert scans_in(rt, lambda: room_recordings.stop(rt, access_key)) == []


def test_a_stop_by_recording_id_frees_its_room_through_an_index(rt, access_key):
    recording = room_recordings.start(rt, access_key)

    def ask() -> None:
        with rt.db.transaction() as s:
            assert recordings.ask_stop(rt, s, recording.id)

    assert scans_in(rt, ask) == []


def test_a_recording_that_fails_frees_its_room_through_an_index(rt, access_key):
    recording = room_recordings.start(rt, access_key)
    assert scans_in(rt, lambda: recordings.fail(rt, recording.id, "drill")) == []


def test_a_recordings_read_reads_no_table_whole(rt, access_key):
    recording = room_recordings.start(rt, access_key)
    assert scans_in(rt, lambda: display.recording(rt, recording.project_id, recording.id)) == []


def test_the_webhook_pumps_claim_reads_no_table_whole(rt):
    def claim() -> None:  # limit 0: the statement is planned and run, nothing is taken from other tests
        with rt.db.transaction() as s:
            claims.claim(rt, s, limit=0, per_endpoint=1)

    assert scans_in(rt, claim) == []


def test_the_retention_sweep_reads_no_growing_table_whole(rt):
    assert scans_in(rt, lambda: retention.expired_ids(rt)) == []
