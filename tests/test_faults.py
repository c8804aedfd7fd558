"""Kill things, and no recording is lost: real worker processes, Redis, the S3 server and ffmpeg."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest

from app.queueing import RECONCILE
from app.services.core import recordings
from app.services.ids import new_id
from app.services.operations import reconciler
from app.services.pipeline import segments
from tests.helpers import descendants, join_room, wait_for

pytestmark = pytest.mark.slow


def start_recording(client, auth, room_id: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    room = join_room(client, auth, room_id, **{"options[media_source]": "synthetic://meeting"})
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    return room["access_key"], client.get(f"/rooms/{room_id}/recordings", headers=auth).get_json()[0]["id"]


def count(rt, recording_id: str) -> int:  # type: ignore[no-untyped-def]
    return len(segments.for_recording(rt, recording_id))


def reconciling_until(rt, predicate, timeout: float):  # type: ignore[no-untyped-def]
    """Run reconciler passes (as the scheduler does every few seconds) until `predicate` holds."""

    def check():  # type: ignore[no-untyped-def]
        reconciler.reconcile(rt)
        return predicate()

    return wait_for(check, timeout=timeout, interval=1.0)


def finished(rt, recording_id: str):  # type: ignore[no-untyped-def]
    return (r := recordings.load(rt, recording_id)).state in ("finished", "failed") and r


def test_a_killed_capture_worker_is_resumed_by_the_reconciler(client, auth, rt, workers):
    access_key, recording_id = start_recording(client, auth, "fault-worker")
    wait_for(lambda: count(rt, recording_id) >= 2, timeout=40)
    before = {s.seq: s.sha256 for s in segments.for_recording(rt, recording_id)}
    workers.crash("capture-1", "capture-2")
    workers.start("capture-1", "capture")
    workers.start("capture-2", "capture")
    reconciling_until(rt, lambda: count(rt, recording_id) >= len(before) + 2, timeout=120)
    client.delete(f"/rooms/{access_key}/recording")
    final = reconciling_until(rt, lambda: finished(rt, recording_id), timeout=90)
    assert final.state == "finished", final.error
    after = {s.seq: s.sha256 for s in segments.for_recording(rt, recording_id)}
    assert all(after[seq] == sha for seq, sha in before.items())
    assert final.capture_attempts == 1


def test_a_storage_outage_delays_uploads_and_loses_nothing(client, auth, rt, workers, embedded):
    s3 = embedded.get("s3")
    if s3 is None:
        pytest.skip("S3_ENDPOINT names a server this session cannot stop")
    access_key, recording_id = start_recording(client, auth, "fault-s3")
    wait_for(lambda: count(rt, recording_id) >= 1, timeout=40)
    began = time.monotonic()
    s3.stop()
    try:
        time.sleep(12)  # segments close into the spool meanwhile
        during = count(rt, recording_id)
    finally:
        s3.start()
        s3.wait_ready(60)
    wait_for(lambda: count(rt, recording_id) > during + 2, timeout=60)  # the backlog went up
    client.delete(f"/rooms/{access_key}/recording")
    recorded_for = time.monotonic() - began
    final = wait_for(lambda: finished(rt, recording_id), timeout=90)
    assert final.state == "finished", final.error
    assert final.duration >= recorded_for - 2 * rt.config.segment_seconds


def test_a_redis_restart_loses_no_recording(client, auth, rt, workers, embedded):
    redis = embedded.get("redis")
    if redis is None:
        pytest.skip("REDIS_URL names a server this session cannot restart")
    access_key, recording_id = start_recording(client, auth, "fault-redis")
    wait_for(lambda: count(rt, recording_id) >= 2, timeout=40)
    redis.stop()
    redis.start()  # empty: not persisted
    redis.wait_ready(15)
    grows = count(rt, recording_id) + 2
    reconciling_until(
        rt, lambda: workers.revive() is not None and count(rt, recording_id) >= grows, timeout=60
    )
    client.delete(f"/rooms/{access_key}/recording")
    final = reconciling_until(
        rt, lambda: workers.revive() is not None and finished(rt, recording_id), timeout=90
    )
    assert final.state == "finished", final.error


def test_a_dead_rq_scheduler_is_started_again(rt, workers):
    """RQ's scheduler (it moves jobs enqueued for later, such as webhook retries, to their queues) runs in
    a child of the worker and dies when Redis goes away. The worker starts it again within a minute or
    so, not at RQ's default ten-minute maintenance, so a retry is delayed, never stranded."""
    worker = workers.procs["media"]
    wait_for(lambda: descendants(worker.pid), timeout=30)  # its scheduler child is up
    for pid in descendants(worker.pid):  # idle: the only child is the scheduler
        os.kill(pid, signal.SIGKILL)
    job = rt.jobs.enqueue_at(RECONCILE, rt.now() + timedelta(seconds=1), job_id="scheduler-" + new_id())
    assert wait_for(lambda: job.get_status(refresh=True) == "finished", timeout=150)
    assert worker.poll() is None  # the same worker process: it restarted its scheduler
