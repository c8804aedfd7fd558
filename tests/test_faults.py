"""Kill things, and no recording is lost: real worker processes, the S3 server and ffmpeg.

The module runs its own S3 server (and its own Redis database and workers), whatever the session uses:
it stops that server, which it could not do to an external one, so these tests never skip. A Redis
restart is drilled against `meetrec up` in tests/test_drills.py, which recovers without help.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest

from app.config import Config
from app.embedded.servers import S3Server
from app.factory import create_app
from app.queueing import RECONCILE
from app.runtime import Runtime
from app.services.core import recordings
from app.services.ids import new_id
from app.services.operations import reconciler
from app.services.pipeline import segments
from tests.conftest import WorkerProcesses
from tests.helpers import descendants, free_weed_ports, join_room, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.critical]


@dataclass
class Stack:
    """What the fault tests break: an S3 server of their own, a runtime and workers on it."""

    s3: S3Server
    rt: Runtime
    workers: WorkerProcesses
    client: Any  # a Flask test client on `rt`


@pytest.fixture(scope="module")
def stack(config: Config, rt: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("faults")
    access, secret = "AK" + secrets.token_hex(8), secrets.token_hex(20)
    s3 = S3Server(free_weed_ports(), base / "s3", access, secret)
    s3.start()
    s3.wait_ready(60)
    redis_base, _, _ = config.redis_url.rpartition("/")
    own = Runtime(
        replace(
            config,
            s3_endpoint=s3.endpoint,
            s3_public_endpoint=s3.endpoint,
            s3_access_key=access,
            s3_secret_key=secret,
            redis_url=f"{redis_base}/12",
            data_dir=(base / "data").resolve(),
        )
    )
    own.redis.flushdb()
    own.storage.ensure_bucket()
    procs = WorkerProcesses(own.config, base)
    procs.start("capture-1", "capture")
    procs.start("capture-2", "capture")
    procs.start("media", "media", "webhooks", "default")
    try:
        yield Stack(s3, own, procs, create_app(runtime=own).test_client())
    finally:
        procs.stop()
        own.redis.flushdb()
        s3.stop()


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


def test_a_killed_capture_worker_is_resumed_by_the_reconciler(stack, auth):
    client, rt, workers = stack.client, stack.rt, stack.workers
    access_key, recording_id = start_recording(client, auth, "fault-worker")
    wait_for(lambda: count(rt, recording_id) >= 2, timeout=40)
    before = {s.seq: s.sha256 for s in segments.for_recording(rt, recording_id)}
    attempts = recordings.load(rt, recording_id).capture_attempts
    workers.crash("capture-1", "capture-2")
    workers.start("capture-1", "capture")
    workers.start("capture-2", "capture")
    reconciling_until(rt, lambda: count(rt, recording_id) >= len(before) + 2, timeout=120)
    client.delete(f"/rooms/{access_key}/recording")
    final = reconciling_until(rt, lambda: finished(rt, recording_id), timeout=90)
    assert final.state == "finished", final.error
    after = {s.seq: s.sha256 for s in segments.for_recording(rt, recording_id)}
    assert all(after[seq] == sha for seq, sha in before.items())
    assert final.capture_attempts == attempts + 1  # resumed once


def test_a_storage_outage_delays_uploads_and_loses_nothing(stack, auth):
    client, rt, s3 = stack.client, stack.rt, stack.s3
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


def test_a_dead_rq_scheduler_is_started_again(stack):
    """RQ's scheduler (it moves jobs enqueued for later, such as webhook retries, to their queues) runs in
    a child of the worker and dies when Redis goes away. The worker starts it again within a minute or
    so, not at RQ's default ten-minute maintenance, so a retry is delayed, never stranded."""
    rt, worker = stack.rt, stack.workers.procs["media"]
    wait_for(lambda: descendants(worker.pid), timeout=30)  # its scheduler child is up
    for pid in descendants(worker.pid):  # idle: the only child is the scheduler
        os.kill(pid, signal.SIGKILL)
    job = rt.jobs.enqueue_at(RECONCILE, rt.now() + timedelta(seconds=1), job_id="scheduler-" + new_id())
    assert wait_for(lambda: job.get_status(refresh=True) == "finished", timeout=150)
    assert worker.poll() is None  # the same worker process: it restarted its scheduler
