"""The start and stop of a room recording written the cheap way (Core statements built once, the row
returned by its INSERT, the event built from it, one Redis round trip for the enqueue) keep what the
slower way promised: the event shows the recording as `GET /recordings/{id}` does, each resource numbers
its events from 1 under concurrent changes, the recording returned is the row stored, work queued
for after the commit runs only after one, and an idle PostgreSQL connection is pinged before use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import pytest
from rq.job import Job
from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session

from app import db
from app.errors import NotAcceptable
from app.models import Recording, Room, WebhookDelivery, WebhookEndpoint, WebhookEvent
from app.queueing import capture_spec
from app.services.access import keys
from app.services.core import lifecycle, recordings, room_recordings, rooms, rows
from app.services.ids import new_id
from tests.helpers import join_room, runtime_on_redis_db

SYNTHETIC = "synthetic://meeting"


@pytest.fixture
def project(rt):  # type: ignore[no-untyped-def]
    return keys.create_project(rt, "hot-writes")


def events_of(rt, resource_id: str) -> list[WebhookEvent]:  # type: ignore[no-untyped-def]
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(WebhookEvent).where(WebhookEvent.resource_id == resource_id).order_by(WebhookEvent.seq)
            )
        )


def all_at_once(calls: list[Callable[[], object]]) -> list[object]:
    """Run `calls` on threads released together; their results in order (an exception re-raised)."""
    results: list[object] = [None] * len(calls)
    ready = threading.Barrier(len(calls))

    def run(i: int) -> None:
        ready.wait()
        try:
            results[i] = calls[i]()
        except Exception as e:  # noqa: BLE001 - handed to the test below
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, Exception):
            raise r
    return results


def test_a_starts_event_shows_the_recording_as_get_does(client, rt, auth):
    room = join_room(client, auth, "hot-event", **{"options[media_source]": SYNTHETIC})
    started = client.post(f"/rooms/{room['access_key']}/recording")
    assert started.status_code == 201
    rec_id = started.headers["Location"].rsplit("/", 1)[1]
    try:
        [event] = events_of(rt, rec_id)
        assert (event.seq, event.payload["seq"], event.payload["id"]) == (1, 1, event.id)
        shown = client.get(f"/recordings/{rec_id}", headers=auth).get_json()
        assert shown.pop("events") == []  # the sessions API's interaction events ride along on a GET
        assert event.payload["recording"] == shown
    finally:
        recordings.request_stop(rt, rec_id)


@pytest.mark.parametrize("stopper", ["starter", "other"])  # who stops: who started, or someone else
def test_a_stop_answers_the_recording_as_get_shows_it(client, rt, auth, stopper):
    starter = join_room(client, auth, f"hot-stop-{stopper}", **{"options[media_source]": SYNTHETIC})
    other = join_room(client, auth, f"hot-stop-{stopper}", **{"user[name]": "Other"})
    started = client.post(f"/rooms/{starter['access_key']}/recording")
    rec_id = started.headers["Location"].rsplit("/", 1)[1]
    by = starter if stopper == "starter" else other
    stopped = client.delete(f"/rooms/{by['access_key']}/recording")
    assert stopped.status_code == 200
    shown = client.get(f"/recordings/{rec_id}", headers=auth).get_json()
    shown.pop("events")
    assert stopped.get_json() == shown
    assert shown["user"]["name"] == "Jane Doe" and shown["state"] == "started"  # the capture stops it
    assert recordings.load(rt, rec_id).stop_requested_at is not None
    assert client.delete(f"/rooms/{by['access_key']}/recording").status_code == 404  # the room is free


def test_the_recording_create_returns_is_the_row_as_stored(rt, project):
    with rt.db.transaction() as s:
        made = recordings.create(rt, s, project.id, None, description="as stored")
    stored = recordings.load(rt, made.id)
    assert inspect(made).detached
    for key in rows.RECORDING_ROWS.keys:
        assert getattr(made, key) == getattr(stored, key), key


def test_the_recording_a_room_start_returns_is_the_row_as_stored(rt, project):
    """On PostgreSQL the start does not read its row back (`fused.start`): what it returns is what it
    gave and the table's defaults, and must be what the database stored."""
    joined = rooms.join(rt, project.id, rooms.JoinRequest("Ann", room_key="hot-stored", media_source="push"))
    made = room_recordings.start(rt, joined.access_key)
    stored = recordings.load(rt, made.id)
    assert inspect(made).detached
    for key in rows.RECORDING_ROWS.keys:
        assert getattr(made, key) == getattr(stored, key), key
    room_recordings.stop(rt, joined.access_key)


def test_each_recording_numbers_its_events_from_one_under_concurrent_changes(client, rt, auth):
    access_keys = [
        join_room(client, auth, f"hot-seq-{i}", **{"options[media_source]": SYNTHETIC})["access_key"]
        for i in range(6)
    ]
    started = all_at_once([partial(lambda k: room_recordings.start(rt, k).id, k) for k in access_keys])
    # A stop and a failure race on each recording: the failure moves it either way (a stopped one
    # fails too), the stop only when it comes first.
    races: list[Callable[[], object]] = []
    for rec_id in started:
        races.append(partial(recordings.fail, rt, rec_id, "raced"))
        races.append(partial(lifecycle.move, rt, lifecycle.STOP, rec_id, duration=1.0, stopped_at=rt.now()))
    moved = all_at_once(races)
    for i, rec_id in enumerate(started):
        events = events_of(rt, rec_id)
        states = ["started", "stopped", "failed"] if moved[2 * i + 1] else ["started", "failed"]
        assert [e.payload["recording"]["state"] for e in events] == states
        seqs = list(range(1, len(states) + 1))
        assert [e.seq for e in events] == [e.payload["seq"] for e in events] == seqs


def created(rt, project_id: str) -> str:  # type: ignore[no-untyped-def]
    """A recording of events only, made by `recordings.create` in a session's transaction."""
    with rt.db.transaction() as s:
        return recordings.create(rt, s, project_id, None).id


def room_started(rt, project_id: str) -> str:  # type: ignore[no-untyped-def]
    """A room recording started by its access key (on PostgreSQL one fused statement, `fused.start`)."""
    joined = rooms.join(
        rt, project_id, rooms.JoinRequest("Ann", room_key="hot-" + new_id(), media_source="push")
    )
    return room_recordings.start(rt, joined.access_key).id


@pytest.mark.parametrize("write", [created, room_started])
def test_an_event_gets_one_pending_delivery_per_enabled_endpoint_subscribed_to_its_type(rt, project, write):
    other = keys.create_project(rt, "hot-writes-other")

    def endpoint(project_id: str, types: str, disabled: bool = False) -> str:
        key = keys.create_key(rt, project_id)[0]
        with rt.db.transaction() as s:
            s.add(
                WebhookEndpoint(
                    id=new_id(),
                    project_id=project_id,
                    api_key_id=key.id,
                    url="http://127.0.0.1:9/hook",
                    types=types,
                    eyeson_key_sealed="-",
                    secret_sealed="-",
                    disabled_at=rt.now() if disabled else None,
                )
            )
        with rt.db.read() as s:
            return str(s.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.api_key_id == key.id)))

    wanted = [endpoint(project.id, "recording_update"), endpoint(project.id, "room_update,recording_update")]
    endpoint(project.id, "room_update")
    endpoint(project.id, "recording_update", disabled=True)
    endpoint(other.id, "recording_update")
    rec_id = write(rt, project.id)
    [event] = events_of(rt, rec_id)
    with rt.db.read() as s:
        written = list(s.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event.id)))
    # A webhook pump of the session's workers may have tried the first attempts already (port 9 refuses)
    # and scheduled second ones: those are its rows, not the write's.
    deliveries = [d for d in written if d.attempt == 1]
    assert all(d.attempt == 2 and d.endpoint_id in wanted for d in written if d.attempt != 1)
    assert sorted(d.endpoint_id for d in deliveries) == sorted(wanted)
    # pending, or already claimed (and maybe failed) by a webhook pump of the session's workers
    assert {(d.attempt, d.manual) for d in deliveries} == {(1, False)}
    assert {d.state for d in deliveries} <= {"pending", "sending", "failed"}
    assert {d.created_at for d in deliveries} == {event.created_at} and len({d.id for d in deliveries}) == 2
    assert all(len(d.id) == 24 and int(d.id, 16) >= 0 for d in deliveries)  # as `new_id` makes them


def test_a_start_in_a_room_recording_already_writes_nothing(client, rt, auth):
    """Two starts in one room: the second is refused (406) and leaves no recording, event or delivery."""
    room = join_room(client, auth, "hot-twice", **{"options[media_source]": SYNTHETIC})
    path = f"/rooms/{room['access_key']}/recording"
    assert client.post(path).status_code == 201
    with rt.db.read() as s:
        before = [s.scalar(select(func.count()).select_from(t)) for t in (Recording, WebhookEvent)]
    refused = client.post(path)
    assert refused.status_code == 406, refused.get_json()
    with rt.db.read() as s:
        assert [s.scalar(select(func.count()).select_from(t)) for t in (Recording, WebhookEvent)] == before
    assert client.delete(path).status_code == 200


def test_of_concurrent_starts_in_one_room_one_wins(client, rt, auth):
    room = join_room(client, auth, "hot-race", **{"options[media_source]": SYNTHETIC})
    access_key = room["access_key"]

    def start() -> str | None:
        try:
            return room_recordings.start(rt, access_key).id
        except NotAcceptable:
            return None  # refused: a recording is already running

    outcomes = all_at_once([start] * 6)
    won = [o for o in outcomes if o is not None]
    assert len(won) == 1, outcomes
    with rt.db.read() as s:
        ids = s.scalars(select(Recording.id).join(Room).where(Room.key == "hot-race")).all()
    assert ids == won
    room_recordings.stop(rt, access_key)


def test_work_for_after_the_commit_runs_after_it_and_never_after_a_rollback(rt):
    ran: list[list[int]] = []
    with rt.db.transaction() as s:
        db.after_commit(s, "one", 1, ran.append)
        db.after_commit(s, "two", 2, ran.append)
        db.after_commit(s, "one", 3, ran.append)
        assert ran == []
    assert ran == [[1, 3], [2]]
    with pytest.raises(RuntimeError), rt.db.transaction() as s:
        db.after_commit(s, "one", 4, ran.append)
        raise RuntimeError("rolled back")
    with rt.db.transaction():
        pass
    assert ran == [[1, 3], [2]]
    with Session(rt.db.engine) as s, s.begin():  # a session made anywhere
        db.after_commit(s, "one", 5, ran.append)
    assert ran == [[1, 3], [2], [5]]


def test_a_capture_is_enqueued_as_rq_enqueues_a_job(rt):
    spec = capture_spec(600)
    with runtime_on_redis_db(rt, 15) as own:
        own.jobs.enqueue(spec, "rec-1", job_id="capture-rec-1")
        job = Job.fetch("capture-rec-1", connection=own.redis)
        assert (job.func_name, job.args, job.origin) == (spec.func, ("rec-1",), "capture")
        assert (job.timeout, job.result_ttl, job.failure_ttl) == (
            spec.timeout,
            spec.result_ttl,
            spec.failure_ttl,
        )
        assert (job.retries_left, job.retry_intervals) == (
            len(spec.retry_intervals),
            list(spec.retry_intervals),
        )
        assert job.get_status() == "queued"
        assert own.jobs.queue("capture").job_ids == ["capture-rec-1"]
        assert own.redis.sismember("rq:queues", "rq:queue:capture")


def test_an_idle_postgresql_connection_is_pinged_and_a_dead_one_replaced(rt, monkeypatch):
    if rt.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite connections are files: nothing to ping")
    engine = db.make_engine(rt.config.database_url)
    pings: list[object] = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(conn) or ping(conn))

    def backend() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

    try:
        first = backend()
        assert backend() == first and pings == []  # in use a moment ago: no ping
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
        assert backend() == first and len(pings) == 1
        with rt.db.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            other.commit()
        assert backend() != first  # the dead one failed its ping and was replaced before use
    finally:
        engine.dispose()


def test_a_started_row_sets_the_columns_the_fused_start_names(rt, project):
    """`fused.start`'s INSERT names `STARTED_COLUMNS` (and the room's two): a column `started_row` set
    beyond them would never be written."""
    for source in ("synthetic://meeting", "push", None):
        row = recordings.started_row(rt, project.id, source, new_id(), "ext", "a description")
        assert row.keys() == recordings.STARTED_COLUMNS
