"""Capture leases: only one job may write a recording's segments."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from app.models import Recording
from app.runtime import Runtime
from app.services.access import keys
from app.services.core import recordings
from app.services.pipeline import leases, segments
from tests.helpers import add_recording, join_room


@pytest.fixture
def recording_id(client, auth, request):  # type: ignore[no-untyped-def]
    """A started recording (pushed, so no capture job competes for its lease)."""
    room = join_room(client, auth, f"lease-{request.node.name[-40:]}", **{"options[media_source]": "push"})
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    return client.get(f"/rooms/{room['room']['id']}/recordings", headers=auth).get_json()[0]["id"]


def expire_lease(rt, recording_id):  # type: ignore[no-untyped-def]
    with rt.db.transaction() as s:
        s.execute(
            update(Recording)
            .where(Recording.id == recording_id)
            .values(lease_expires_at=rt.now() - timedelta(seconds=1))
        )


def a_segment(recording_id: str, seq: int, owner: str) -> segments.NewSegment:
    return segments.NewSegment(seq, segments.object_key(recording_id, seq, owner), 10, "0" * 64, 2.0)


def test_first_job_takes_the_lease(rt, recording_id):
    assert leases.acquire(rt, recording_id, "job-a")


def test_second_job_is_refused_while_the_lease_is_held(rt, recording_id):
    leases.acquire(rt, recording_id, "job-a")
    assert not leases.acquire(rt, recording_id, "job-b")


def test_holder_may_take_its_lease_again(rt, recording_id):
    leases.acquire(rt, recording_id, "job-a")
    assert leases.acquire(rt, recording_id, "job-a")


def test_an_expired_lease_is_taken_over(rt, recording_id):
    leases.acquire(rt, recording_id, "job-a")
    expire_lease(rt, recording_id)
    assert leases.acquire(rt, recording_id, "job-b")
    assert not leases.renew(rt, recording_id, "job-a")


def test_a_released_lease_is_free_at_once(rt, recording_id):
    leases.acquire(rt, recording_id, "job-a")
    leases.release(rt, recording_id, "job-a")
    assert leases.acquire(rt, recording_id, "job-b")


def test_no_lease_on_a_stopped_recording(rt, recording_id):
    recordings.request_stop(rt, recording_id)
    recordings.fail(rt, recording_id, "test")
    assert not leases.acquire(rt, recording_id, "job-a")


def test_only_the_holder_records_segments(rt, recording_id):
    leases.acquire(rt, recording_id, "job-a")
    assert not segments.record_captured(rt, recording_id, "job-b", a_segment(recording_id, 0, "job-b"))
    assert segments.record_captured(rt, recording_id, "job-a", a_segment(recording_id, 0, "job-a"))
    assert [s.object_key for s in segments.for_recording(rt, recording_id)] == [
        segments.object_key(recording_id, 0, "job-a")
    ]


def test_segment_keys_name_their_writer(rt):
    assert segments.object_key("r1", 3, "job-a") != segments.object_key("r1", 3, "job-b")


def test_a_held_lease_on_a_stopped_recording_is_renewed_while_finalize_works(rt, project_key):
    """finalize holds a stopped recording's lease for the whole assembly: it must not expire under it."""
    fast = Runtime(dataclasses.replace(rt.config, capture_lease_seconds=1))
    fast.__dict__.update(db=rt.db, storage=rt.storage, redis=rt.redis)
    project_id = keys.authenticate(rt, project_key).project_id
    rec = add_recording(rt, project_id, state="stopped")
    assert leases.acquire(fast, rec, "finalizer", state="stopped")
    with leases.Held(fast, rec, "finalizer", "stopped") as held:
        time.sleep(2.5)  # the lease alone would have expired twice over
        assert not held.lost.is_set()
        assert recordings.load(rt, rec).lease_expires_at > fast.now()


def test_each_capture_taking_the_lease_counts_one_attempt(rt, recording_id):
    leases.acquire(rt, recording_id, "first-job")
    leases.acquire(rt, recording_id, "first-job")  # renewing its own take is not another attempt
    leases.release(rt, recording_id, "first-job")
    leases.acquire(rt, recording_id, "second-job")
    assert recordings.load(rt, recording_id).capture_attempts == 2
