"""Finalize against real S3 and ffmpeg: one seekable WebM from the segments, idempotent across crashes."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from app.media.ebml import doc_type
from app.models import SessionEvent
from app.runtime import Runtime
from app.services.core import recordings
from app.services.operations import reconciler
from app.services.pipeline import finalize, leases, segments
from tests.helpers import capture_stopped, capturing, wait_for

SEGMENT_SECONDS = 2
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def segment_files(tmp_path_factory, config) -> list[Path]:  # type: ignore[no-untyped-def]
    """Three 2-second VP8/Opus segments, cut the way a capture cuts them."""
    out = tmp_path_factory.mktemp("segments")
    subprocess.run(
        [
            config.ffmpeg_path,
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=15,format=yuv420p",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            str(3 * SEGMENT_SECONDS),
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-g",
            "15",
            "-c:a",
            "libopus",
            "-f",
            "segment",
            "-segment_time",
            str(SEGMENT_SECONDS),
            "-reset_timestamps",
            "1",
            "-segment_format",
            "matroska",
            str(out / "seg-%03d.mkv"),
        ],  # fmt: skip
        check=True,
        timeout=60,
    )
    return sorted(out.glob("seg-*.mkv"))


def stopped_recording(rt, client, auth, name: str, files: list[Path]) -> str:  # type: ignore[no-untyped-def]
    """A recording in `stopped` whose segments are stored, with no finalize job enqueued."""
    recording_id = capturing(rt, client, auth, name)
    assert leases.acquire(rt, recording_id, "test")
    for seq, path in enumerate(files):
        key = segments.object_key(recording_id, seq, "test")
        stored, digest = rt.storage.put_file(key, path, "video/x-matroska")
        segment = segments.NewSegment(seq, key, stored.size, digest, float(SEGMENT_SECONDS))
        assert segments.record_captured(rt, recording_id, "test", segment)
    leases.release(rt, recording_id, "test")  # as a capture does when it ends
    capture_stopped(rt, recording_id, SEGMENT_SECONDS * len(files))
    return recording_id


def keys_of(rt, recording_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(rt.storage.iter_keys(recordings.object_prefix(recording_id)))


def finalize_in_child(config, recording_id: str) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    code = (
        "import sys; from app.config import Config; from app.runtime import Runtime; "
        "from app.services.pipeline.finalize import finalize; "
        "print(finalize(Runtime(Config.from_env()), sys.argv[1]))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, recording_id], cwd=ROOT, env={**os.environ, **config.child_env()}
    )


def test_finalize_joins_the_segments_into_one_webm(rt, client, auth, segment_files, tmp_path):
    recording_id = stopped_recording(rt, client, auth, "fin-join", segment_files)
    assert finalize.finalize(rt, recording_id).startswith("finished")
    final = recordings.load(rt, recording_id)
    assert final.state == "finished"
    assert abs(final.duration - SEGMENT_SECONDS * len(segment_files)) <= 0.5
    assert (
        keys_of(rt, recording_id)
        == [finalize.final_key(recording_id), finalize.poster_key(recording_id)][::-1]
    )
    path = tmp_path / "out.webm"
    rt.storage.download(final.object_key, path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == final.sha256
    assert path.stat().st_size == final.size
    assert [doc_type(p) for p in segment_files] == ["matroska"] * len(segment_files)
    assert doc_type(path) == "webm"  # joined from Matroska segments, it must not stay Matroska


def test_finalize_twice_changes_nothing(rt, client, auth, segment_files):
    recording_id = stopped_recording(rt, client, auth, "fin-twice", segment_files)
    finalize.finalize(rt, recording_id)
    first = recordings.load(rt, recording_id)
    assert finalize.finalize(rt, recording_id).startswith("finished already")
    again = recordings.load(rt, recording_id)
    assert (again.sha256, again.finished_at) == (first.sha256, first.finished_at)


def test_a_tampered_segment_fails_with_a_reason(rt, client, auth, segment_files):
    recording_id = stopped_recording(rt, client, auth, "fin-tampered", segment_files)
    first = segments.for_recording(rt, recording_id)[0]
    rt.storage.put_bytes(first.object_key, b"not the recorded bytes", "video/x-matroska")
    assert finalize.finalize(rt, recording_id) == "failed"
    assert "SHA-256" in recordings.load(rt, recording_id).error


CLICKS, FRAME_BOUND = 7, 3


@pytest.fixture(scope="module")
def bounded_finalize(app, rt, segment_files):  # type: ignore[no-untyped-def]
    """A stopped recording with more clicks waiting for a frame than the bound, finalized by a worker
    whose MEETREC_MAX_FRAME_GRABS is the bound: its result and the clicks' screenshot keys by id."""
    from app.services.access import keys

    client = app.test_client()
    auth = {"Authorization": keys.create_key(rt, keys.create_project(rt, "fin-frames").id)[1]}
    recording_id = stopped_recording(rt, client, auth, "fin-frames", segment_files)
    start = recordings.load(rt, recording_id).created_at.timestamp()
    clicks = [
        {"recording_id": recording_id, "event_id": f"c{i}", "type": "click", "ts": start + 0.5 + i * 0.5}
        for i in range(CLICKS)
    ]
    with rt.db.transaction() as s:  # as a batch of clicks without screenshots, sent while it recorded
        s.execute(insert(SessionEvent), [{**c, "data": {}, "wants_frame": True} for c in clicks])
    bounded = Runtime(dataclasses.replace(rt.config, max_frame_grabs=FRAME_BOUND))
    result = finalize.finalize(bounded, recording_id)
    with rt.db.read() as s:
        shots = dict(
            s.execute(
                select(SessionEvent.event_id, SessionEvent.screenshot_key).where(
                    SessionEvent.recording_id == recording_id
                )
            ).all()
        )
    return {"id": recording_id, "result": result, "shots": shots}


def test_finalize_grabs_no_more_frames_than_the_bound(rt, bounded_finalize):
    assert bounded_finalize["result"].startswith("finished"), bounded_finalize["result"]
    grabbed = [key for key in bounded_finalize["shots"].values() if key]
    assert len(grabbed) == FRAME_BOUND
    assert [k for k in keys_of(rt, bounded_finalize["id"]) if "/screenshots/" in k] == sorted(grabbed)


def test_finalize_says_how_many_frames_it_skipped_over_the_bound(bounded_finalize):
    assert f"{FRAME_BOUND} event frames, {CLICKS - FRAME_BOUND} skipped" in bounded_finalize["result"]


def test_the_bounded_frames_are_spread_over_the_clicks_from_the_first(bounded_finalize):
    assert sorted(e for e, key in bounded_finalize["shots"].items() if key) == ["c0", "c3", "c5"]


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [0.3, 0.9, 1.6])
def test_killed_finalize_then_rerun_gives_one_correct_object(
    rt, client, auth, segment_files, config, kill_after
):
    recording_id = stopped_recording(rt, client, auth, f"fin-kill-{kill_after}", segment_files)
    child = finalize_in_child(config, recording_id)
    time.sleep(kill_after)
    child.kill()
    child.wait()
    assert recordings.load(rt, recording_id).state in ("stopped", "finished")
    assert finalize.finalize(rt, recording_id).startswith("finished")
    final = recordings.load(rt, recording_id)
    assert keys_of(rt, recording_id) == sorted(
        [finalize.final_key(recording_id), finalize.poster_key(recording_id)]
    )
    stored = rt.storage.stat(final.object_key)
    assert stored is not None and stored.size == final.size


@pytest.mark.slow
def test_a_killed_finalize_is_finished_by_the_reconciler(rt, client, auth, segment_files, config, workers):
    recording_id = stopped_recording(rt, client, auth, "fin-reconciled", segment_files)
    child = finalize_in_child(config, recording_id)
    time.sleep(0.5)
    child.kill()  # it held the lease: the reconciler waits for it to expire, then enqueues a finalize
    child.wait()

    def reconciled():  # type: ignore[no-untyped-def]
        reconciler.reconcile(rt)
        return recordings.load(rt, recording_id).state == "finished"

    wait_for(reconciled, timeout=90, interval=1.0)
    assert keys_of(rt, recording_id) == sorted(
        [finalize.final_key(recording_id), finalize.poster_key(recording_id)]
    )
