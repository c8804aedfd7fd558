"""The reconciler against real Redis and SQL: lost work is re-enqueued, live work is left alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq import Queue
from rq.job import Job
from sqlalchemy import update

from app.models import Recording
from app.services.core import recordings
from app.services.operations import reconciler
from app.services.pipeline import leases
from tests.helpers import join_room


@pytest.fixture
def recording_id(client, auth, rt, request):  # type: ignore[no-untyped-def]
    """A started synthetic pull recording made five minutes ago, with no capture job (Redis lost it)."""
    name = f"rc-{request.node.name[-40:]}"
    room = join_room(client, auth, name, **{"options[media_source]": "push"})
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    rec_id = client.get(f"/rooms/{name}/recordings", headers=auth).get_json()[0]["id"]
    change(
        rt,
        rec_id,
        ingest="pull",
        media_source="synthetic://meeting",
        created_at=rt.now() - timedelta(minutes=5),
    )
    yield rec_id
    recordings.request_stop(rt, rec_id)  # a capture the test caused ends at once


def change(rt, recording_id: str, **values) -> None:  # type: ignore[no-untyped-def]
    with rt.db.transaction() as s:
        s.execute(update(Recording).where(Recording.id == recording_id).values(**values))


def test_a_recording_without_capture_job_gets_one(rt, recording_id):
    assert reconciler.reconcile(rt).captures_resumed >= 1
    job_id = recordings.load(rt, recording_id).job_id
    assert Job.fetch(job_id, connection=rt.redis).func_name == "workers.jobs.capture_recording"


def test_a_held_lease_is_left_alone(rt, recording_id):
    leases.acquire(rt, recording_id, "live-capture")
    reconciler.reconcile(rt)
    assert recordings.load(rt, recording_id).job_id is None


def test_a_job_waiting_for_a_worker_is_left_alone(rt, recording_id):
    waiting = Queue("nobody-listens", connection=rt.redis).enqueue("os.getpid")
    change(rt, recording_id, job_id=waiting.id)
    reconciler.reconcile(rt)
    assert recordings.load(rt, recording_id).job_id == waiting.id


def test_an_expired_lease_gets_a_new_capture(rt, recording_id):
    change(rt, recording_id, lease_owner="dead-worker", lease_expires_at=rt.now() - timedelta(seconds=1))
    reconciler.reconcile(rt)
    assert recordings.load(rt, recording_id).capture_losses == 1


def test_a_handed_over_capture_does_not_count_as_lost(rt, recording_id):
    change(rt, recording_id, capture_attempts=rt.config.max_reconnects + 3)
    assert reconciler.reconcile(rt).captures_resumed >= 1
    assert recordings.load(rt, recording_id).state == "started"


def test_a_capture_lost_too_often_fails_with_a_reason(rt, recording_id):
    change(rt, recording_id, capture_losses=rt.config.max_reconnects)
    assert reconciler.reconcile(rt).captures_failed >= 1
    failed = recordings.load(rt, recording_id)
    assert failed.state == "failed"
    assert "capture was lost" in failed.error


def test_a_stopped_recording_without_finalize_gets_one(rt, recording_id):
    change(rt, recording_id, state="stopped", duration=3.0, stopped_at=rt.now() - timedelta(minutes=1))
    assert reconciler.reconcile(rt).finalizes_enqueued >= 1
    job = Job.fetch(recordings.finalize_job_id(recording_id), connection=rt.redis)
    assert job.func_name == "workers.jobs.finalize_recording"


def test_a_recording_past_its_maximum_duration_is_stopped(rt, recording_id):
    leases.acquire(rt, recording_id, "live-capture")  # running, but far too long
    change(rt, recording_id, created_at=rt.now() - timedelta(seconds=rt.config.max_recording_seconds + 120))
    assert reconciler.reconcile(rt).overdue_stopped >= 1
    stopped = recordings.load(rt, recording_id)
    assert stopped.stop_requested_at is not None
    assert "maximum" in stopped.stop_reason


def half_stopped(rt, recording_id: str, seconds_ago: float) -> None:  # type: ignore[no-untyped-def]
    """The api died between recording a stop request and carrying it out."""
    change(rt, recording_id, stop_requested_at=rt.now() - timedelta(seconds=seconds_ago))


def test_a_half_done_push_stop_is_completed(rt, client, auth, pushed, mediarecorder_stream):
    chunk = client.put(
        f"/recordings/{pushed['id']}/media/0",
        data=mediarecorder_stream,
        headers={**auth, "Content-Type": "video/webm"},
    )
    assert chunk.status_code == 201
    half_stopped(rt, pushed["id"], seconds_ago=60)
    assert reconciler.reconcile(rt).stops_completed >= 1
    stopped = recordings.load(rt, pushed["id"])
    assert stopped.state in ("stopped", "finished")
    assert stopped.duration > 0


def test_a_half_done_push_stop_without_media_fails(rt, pushed):
    half_stopped(rt, pushed["id"], seconds_ago=60)
    reconciler.reconcile(rt)
    failed = recordings.load(rt, pushed["id"])
    assert failed.state == "failed"
    assert "no media" in failed.error


def test_a_push_stop_in_progress_is_left_alone(rt, pushed):
    half_stopped(rt, pushed["id"], seconds_ago=1)
    reconciler.reconcile(rt)
    assert recordings.load(rt, pushed["id"]).state == "started"
