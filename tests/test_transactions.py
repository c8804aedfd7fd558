"""Round trips of the hot paths, on SQLite and PostgreSQL: a start and a stop each run in at most two SQL
transactions (the read that finds the room or recording included; a room recording's start and stop in
one each), and the capture's enqueue happens after the commit, its job id already on the row, so a lost
enqueue is rebuilt by the reconciler. A recording's read is one statement outside any transaction."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from rq.job import Job
from sqlalchemy import update

from app.errors import Unavailable
from app.models import Recording
from app.runtime import Runtime
from app.services.core import recordings, room_recordings, rooms
from app.services.operations import reconciler
from tests.helpers import free_port, join_room
from tests.sqlcount import counting

SYNTHETIC = "synthetic://meeting"


# (transactions begun, pool checkouts, statements) of a room recording's start and of its stop.
ROOM_CALLS = {
    # start: the access key's room, the claim, the recording, its event (returning who subscribed);
    # stop: the access key's room, the stop asked (returning the recording), the room freed
    "sqlite": ((1, 1, 4), (1, 1, 3)),
    # fused (app.services.core.fused), in autocommit: start, the access key's room then one statement
    # writing the rest; stop, one statement
    "postgresql": ((0, 1, 2), (0, 1, 1)),
}


def test_a_room_recordings_start_and_stop_take_one_transaction_each(client, rt, auth):
    room = join_room(client, auth, "tx-room", **{"options[media_source]": SYNTHETIC})
    path = f"/rooms/{room['access_key']}/recording"
    with counting(rt) as start:
        assert client.post(path).status_code == 201
    with counting(rt) as stop:
        assert client.delete(path).status_code == 200
    started, stopped = ROOM_CALLS[rt.db.engine.dialect.name]
    assert (start.transactions, start.checkouts, len(start.statements)) == started, start.statements
    assert (stop.transactions, stop.checkouts, len(stop.statements)) == stopped, stop.statements
    assert start.left_open == stop.left_open == 0  # no ROLLBACK as the connections went back


def test_a_recordings_read_is_one_statement_leaving_no_transaction_to_roll_back(client, rt, auth):
    room = join_room(client, auth, "tx-read", **{"options[media_source]": SYNTHETIC})
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    rec_id = client.get("/rooms/tx-read/recordings", headers=auth).get_json()[0]["id"]
    with counting(rt) as read:
        assert client.get(f"/recordings/{rec_id}", headers=auth).get_json()["id"] == rec_id
    # on PostgreSQL in autocommit: no BEGIN before it, no ROLLBACK when its connection goes back
    assert (read.checkouts, len(read.statements), read.left_open) == (1, 1, 0), read.statements
    recordings.request_stop(rt, rec_id)


def test_a_sessions_start_and_stop_take_at_most_two_transactions_each(client, rt, auth):
    client.get("/active_sessions", headers=auth)  # the key is authenticated once, then cached
    with counting(rt) as start:
        resp = client.post("/recordings", json={"media_source": SYNTHETIC}, headers=auth)
    assert resp.status_code == 201, resp.get_json()
    with counting(rt) as stop:
        assert (
            client.post(f"/recordings/{resp.get_json()['session_id']}/stop", headers=auth).status_code == 200
        )
    assert max(start.transactions, start.checkouts) <= 2, start.statements
    assert max(stop.transactions, stop.checkouts) <= 2, stop.statements


def test_the_capture_is_enqueued_under_the_job_id_the_row_names(client, rt, auth):
    room = join_room(client, auth, "tx-job", **{"options[media_source]": SYNTHETIC})
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    rec_id = client.get("/rooms/tx-job/recordings", headers=auth).get_json()[0]["id"]
    job_id = recordings.load(rt, rec_id).job_id
    assert job_id == recordings.capture_job_id(rec_id)
    assert Job.fetch(job_id, connection=rt.redis).args == (rec_id,)
    recordings.request_stop(rt, rec_id)


def test_a_capture_whose_enqueue_was_lost_after_the_commit_is_rebuilt_by_the_reconciler(client, rt, auth):
    room = join_room(client, auth, "tx-lost", **{"options[media_source]": SYNTHETIC})
    participant = rooms.by_access_key(rt, room["access_key"])
    # The start's transaction committed and the api died before its enqueue: no job was ever queued (so
    # none of the session's workers can take it), and the capture's lease grace has passed.
    with rt.db.transaction() as s:
        rec_id = recordings.create(
            rt, s, participant.room.project_id, SYNTHETIC, room=participant.room, participant=participant
        ).id
        s.execute(
            update(Recording).where(Recording.id == rec_id).values(created_at=rt.now() - timedelta(minutes=1))
        )
    assert recordings.load(rt, rec_id).job_id == recordings.capture_job_id(rec_id)
    try:
        reconciler.reconcile(rt)  # (the session's scheduler may have run one first: either resumes it)
        # resume_capture answers True only once its job is enqueued; the row names that job. (A worker of
        # the session may run it at once, so its hash is not read here.)
        assert recordings.load(rt, rec_id).job_id.startswith(recordings.capture_job_id(rec_id) + "-")
    finally:
        recordings.request_stop(rt, rec_id)


def test_with_redis_down_a_start_answers_503_and_leaves_no_recording_running(client, rt, config, auth):
    room = join_room(client, auth, "tx-down", **{"options[media_source]": SYNTHETIC})
    offline = Runtime(dataclasses.replace(config, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    offline.__dict__.update(db=rt.db)
    with pytest.raises(Unavailable):
        room_recordings.start(offline, room["access_key"])
    [failed] = client.get("/rooms/tx-down/recordings", headers=auth).get_json()
    assert failed["state"] == "failed"
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201  # the room is free
    recordings.request_stop(rt, client.get("/rooms/tx-down/recordings", headers=auth).get_json()[0]["id"])
