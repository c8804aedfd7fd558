"""Graceful shutdown of a capture worker: SIGTERM to a real `meetrec worker capture` process.

RQ's warm shutdown waits for the running job, and a capture runs until its recording stops, so the worker
asks its work horse to drain: ffmpeg ends gracefully (the open segment closes), every segment is uploaded,
the lease is released, a new capture job is queued, and the worker exits 0. A second worker continues the
recording, which then stops and finishes. The processes use a Redis database of their own.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from rq.job import Job

from app.config import Config
from app.factory import create_app
from app.media.segments import _NUMBER
from app.runtime import Runtime
from app.services.access import keys
from app.services.core import recordings
from app.services.pipeline import segments
from tests.helpers import join_room, wait_for
from tests.test_production_roles import Roles, redis_db, role_env

pytestmark = [pytest.mark.slow, pytest.mark.critical]
HANDOVER_PAUSE = 3.0


def spooled_numbers(spool: Path) -> set[int]:
    """The numbers of the segment files in a recording's spool now (the highest one is being written)."""
    return {int(m.group(1)) for p in spool.glob("*/seg-*.mkv") if (m := _NUMBER.match(p.name))}


def seqs(rt: Runtime, recording_id: str) -> list[int]:
    return [s.seq for s in segments.for_recording(rt, recording_id)]


@pytest.fixture(scope="module")
def drained(config, rt, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Record with worker A, SIGTERM it mid-capture, let worker B continue, stop, finish."""
    base = tmp_path_factory.mktemp("shutdown")
    cfg = Config.from_env(
        {
            **config.child_env(),
            "REDIS_URL": redis_db(config.redis_url, 5),
            "MEETREC_DATA_DIR": str(base / "data"),
        }
    )
    own = Runtime(cfg)
    own.redis.flushdb()
    client = create_app(runtime=own).test_client()
    project = keys.create_project(own, "shutdown")
    auth = {"Authorization": keys.create_key(own, project.id)[1]}
    room = join_room(client, auth, "drain-room", **{"options[media_source]": "synthetic://meeting"})
    roles = Roles(role_env(cfg), base)
    try:
        assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
        rec_id = client.get("/rooms/drain-room/recordings", headers=auth).get_json()[0]["id"]
        first_job = recordings.load(own, rec_id).job_id
        worker_a = roles.start("capture-a", "worker", "capture")
        spool = cfg.spool_dir / rec_id
        wait_for(lambda: len(seqs(own, rec_id)) >= 2, timeout=60)
        before = {"seqs": set(seqs(own, rec_id)), "spooled": spooled_numbers(spool)}
        worker_a.send_signal(signal.SIGTERM)
        exit_code = worker_a.wait(90)
        after = {
            "seqs": seqs(own, rec_id),
            "spooled": spooled_numbers(spool),
            "recording": recordings.load(own, rec_id),
        }
        after["stored"] = {  # (row size, object size) per seq, read before finalize deletes the segments
            seg.seq: (seg.size, getattr(own.storage.stat(seg.object_key), "size", None))
            for seg in segments.for_recording(own, rec_id)
        }
        job = Job.fetch(after["recording"].job_id, connection=own.redis)
        after["job"] = (job.id, job.get_status(refresh=True))
        time.sleep(HANDOVER_PAUSE)  # no worker records meanwhile: the recording has a gap this long
        roles.start("capture-b", "worker", "capture")
        roles.start("media", "worker", "media", "webhooks", "default")
        wait_for(lambda: max(seqs(own, rec_id)) > max(after["seqs"]), timeout=60)
        client.delete(f"/rooms/{room['access_key']}/recording")
        final = wait_for(
            lambda: (r := recordings.load(own, rec_id)).state in ("finished", "failed") and r, timeout=120
        )
        yield {
            "exit_code": exit_code,
            "first_job": first_job,
            "before": before,
            "after": after,
            "final": final,
            "final_seqs": seqs(own, rec_id),
            "log": roles.log_lines("capture-a"),
        }
    finally:
        roles.stop_all()
        own.redis.flushdb()


def test_worker_exits_zero_on_sigterm(drained):
    assert drained["exit_code"] == 0


def test_the_open_segment_was_uploaded_before_the_worker_exited(drained):
    open_segment = max(drained["before"]["spooled"])  # being written when SIGTERM came
    assert open_segment not in drained["before"]["seqs"]
    assert open_segment in drained["after"]["seqs"]


def test_nothing_is_left_in_the_spool(drained):
    assert drained["after"]["spooled"] == set()


def test_no_uploaded_segment_was_lost(drained):
    after = drained["after"]["seqs"]
    assert drained["before"]["seqs"] <= set(after)
    assert after == list(range(len(after)))


def test_every_segment_row_names_a_stored_object_of_its_size(drained):
    stored = drained["after"]["stored"]
    assert stored and all(row == size for row, size in stored.values()), stored


def test_recording_stays_started_with_its_lease_released(drained):
    recording = drained["after"]["recording"]
    assert recording.state == "started"
    assert recording.lease_owner is None


def test_a_new_capture_job_waits_for_another_worker(drained):
    job_id, status = drained["after"]["job"]
    assert job_id != drained["first_job"]
    assert getattr(status, "value", status) == "queued"


def test_the_capture_job_says_it_handed_over(drained):
    assert any("handed over" in line["msg"] for line in drained["log"])


def test_another_worker_continues_the_numbering_and_the_recording_finishes(drained):
    assert drained["final"].state == "finished", drained["final"].error
    assert drained["final_seqs"] == list(range(len(drained["final_seqs"])))
    assert len(drained["final_seqs"]) > len(drained["after"]["seqs"])


def test_the_handover_is_a_gap_of_the_recording(drained):
    final = drained["final"]
    (gap,) = final.gaps
    assert gap["after_seq"] == max(drained["after"]["seqs"])
    assert HANDOVER_PAUSE <= gap["seconds"] < HANDOVER_PAUSE + 30
    assert "shut down" in gap["reason"]
    assert final.reconnects == 1


def test_both_capture_jobs_are_counted(drained):
    assert drained["final"].capture_attempts == 2
