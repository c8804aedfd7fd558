"""A capture machine dies with closed segments it could not upload yet: the next capture adopts them.

Worker A records while the S3 server is out of its reach (its S3 endpoint is a closed loopback port),
so every segment ffmpeg closes stays in the spool. A is SIGKILLed with its work horse and ffmpeg, as if
its machine died. Worker B, on the same machine with storage back, resumes the recording: it uploads
A's closed segments first, in order and numbered from 0, then records on from the next number. The
open segment A was writing is the only media lost, and the time without capture is a gap. The
processes use a Redis database of their own.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from app.config import Config
from app.factory import create_app
from app.media.commands import SEGMENT_LIST
from app.runtime import Runtime
from app.services.access import keys
from app.services.core import recordings
from app.services.pipeline import segments
from tests.helpers import descendants, free_port, join_room, wait_for
from tests.test_production_roles import Roles, redis_db, role_env

pytestmark = pytest.mark.slow
SPOOLED = 3  # closed segments A leaves behind


def listed(rt: Runtime, recording_id: str) -> int:
    """Closed segments in the recording's spool (ffmpeg lists a segment the moment it closes it)."""
    lists = (rt.config.spool_dir / recording_id).glob(f"*/{SEGMENT_LIST}")
    return sum(len(path.read_text().splitlines()) for path in lists)


def sigkill_tree(pid: int) -> None:
    for each in [pid, *descendants(pid)]:
        try:
            os.kill(each, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def adopted(config, rt, tmp_path_factory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("adoption")
    cfg = Config.from_env(
        {**config.child_env(), "REDIS_URL": redis_db(config.redis_url, 8), "MEETREC_DATA_DIR": str(base)}
    )
    own = Runtime(cfg)
    own.redis.flushdb()
    client = create_app(runtime=own).test_client()
    project = keys.create_project(own, "adoption")
    auth = {"Authorization": keys.create_key(own, project.id)[1]}
    room = join_room(client, auth, "adopt-room", **{"options[media_source]": "synthetic://meeting"})
    unreachable = role_env(cfg, S3_ENDPOINT=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    cut_off, roles = Roles(unreachable, base), Roles(role_env(cfg), base)
    try:
        assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
        rec_id = client.get("/rooms/adopt-room/recordings", headers=auth).get_json()[0]["id"]
        began = time.time()
        worker_a = cut_off.start("capture-a", "worker", "capture")
        wait_for(lambda: listed(own, rec_id) >= SPOOLED, timeout=60)
        killed_at = time.time()
        sigkill_tree(worker_a.pid)
        worker_a.wait(10)
        spooled = listed(own, rec_id)
        uploaded_before = segments.for_recording(own, rec_id)
        roles.start("capture-b", "worker", "capture")
        roles.start("media", "worker", "media", "webhooks", "default")
        assert recordings.resume_capture(own, rec_id)  # what the reconciler does for a lost capture
        wait_for(lambda: len(segments.for_recording(own, rec_id)) >= spooled + 2, timeout=60)
        resumed = segments.for_recording(own, rec_id)
        client.delete(f"/rooms/{room['access_key']}/recording")
        stopped_at = time.time()
        final = wait_for(
            lambda: (r := recordings.load(own, rec_id)).state in ("finished", "failed") and r, timeout=120
        )
        yield {
            "began": began,
            "killed_at": killed_at,
            "stopped_at": stopped_at,
            "spooled": spooled,
            "uploaded_before": uploaded_before,
            "resumed": resumed,
            "final": final,
            "segment_seconds": cfg.segment_seconds,
        }
    finally:
        cut_off.stop_all()
        roles.stop_all()
        own.redis.flushdb()


def test_nothing_was_uploaded_before_the_kill(adopted):
    assert adopted["uploaded_before"] == []
    assert adopted["spooled"] >= SPOOLED


def test_the_spooled_segments_are_uploaded_first_numbered_from_zero(adopted):
    first = adopted["resumed"][: adopted["spooled"]]
    assert [s.seq for s in first] == list(range(adopted["spooled"]))
    assert all(s.created_at.timestamp() <= adopted["killed_at"] for s in first)  # media from before


def test_the_numbering_goes_on_without_a_hole(adopted):
    seqs = [s.seq for s in adopted["resumed"]]
    assert seqs == list(range(len(seqs)))


def test_the_adopted_media_is_in_the_duration(adopted):
    final, seconds = adopted["final"], adopted["segment_seconds"]
    assert final.state == "finished", final.error
    after_resume = len(adopted["resumed"]) - adopted["spooled"]
    assert final.duration >= (adopted["spooled"] + after_resume) * seconds * 0.9


def test_the_time_without_capture_is_a_gap(adopted):
    final = adopted["final"]
    (gap,) = final.gaps
    assert gap["after_seq"] == adopted["spooled"] - 1
    assert "lost" in gap["reason"]
    # From the end of the last adopted segment to the resume: the open segment A lost, and the wait.
    assert 0 < gap["seconds"] < time.time() - adopted["began"]
    assert final.capture_attempts == 2


def test_duration_and_gaps_account_for_the_wall_time(adopted):
    final = adopted["final"]
    wall = adopted["stopped_at"] - adopted["began"]
    accounted = final.duration + sum(g["seconds"] for g in final.gaps)
    # ffmpeg's start-up before the first frame and the last segment cut at the stop are not in either.
    assert wall - 8 <= accounted <= wall + 2, (wall, final.duration, final.gaps)
