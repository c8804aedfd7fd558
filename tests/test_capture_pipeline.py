"""The segment pipeline against real workers, Redis, S3 and ffmpeg: uploads while recording, one writer
per recording, and nothing uploaded is lost when ffmpeg or the worker is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from app.media.ebml import doc_type, webm_layout
from app.media.probe import probe
from app.models import Recording
from app.services.core import recordings
from app.services.pipeline import capture, segments
from tests.helpers import join_room, wait_for
from tests.mediaservers import FFMPEG, H264_AAC, HlsServer, HttpDir, RtmpServer, SrtServer

pytestmark = pytest.mark.slow

SYNTHETIC = {"options[media_source]": "synthetic://meeting"}


def start_recording(client, auth, room_id: str, **options: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Join `room_id` and start its recording; return (access key, recording id)."""
    room = join_room(client, auth, room_id, **(options or SYNTHETIC))
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    recording = client.get(f"/rooms/{room_id}/recordings", headers=auth).get_json()[0]
    return room["access_key"], recording["id"]


def segment_count(rt, recording_id: str) -> int:  # type: ignore[no-untyped-def]
    return len(segments.for_recording(rt, recording_id))


def state(rt, recording_id: str) -> str:  # type: ignore[no-untyped-def]
    return recordings.load(rt, recording_id).state


def wait_final(rt, recording_id: str, timeout: float = 90) -> Recording:  # type: ignore[no-untyped-def]
    return wait_for(
        lambda: (r := recordings.load(rt, recording_id)).state in ("finished", "failed") and r,
        timeout=timeout,
    )


def ffmpeg_pids_for(recording_id: str) -> list[int]:
    """The ffmpeg processes writing this recording's spool (found through /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and b"ffmpeg" in Path(cmdline[0].decode(errors="replace")).name.encode():
            if any(recording_id.encode() in part for part in cmdline):
                pids.append(int(entry.name))
    return pids


def test_segments_are_uploaded_while_recording(client, auth, rt, workers, tmp_path):
    access_key, recording_id = start_recording(client, auth, "seg-live")
    try:
        wait_for(lambda: segment_count(rt, recording_id) >= 2, timeout=40)
        assert state(rt, recording_id) == "started"
        stored = [rt.storage.stat(s.object_key) for s in segments.for_recording(rt, recording_id)]
        assert all(obj is not None and obj.size > 0 for obj in stored)
        first = segments.for_recording(rt, recording_id)[0]
        rt.storage.download(first.object_key, tmp_path / "segment.mkv")
        assert doc_type(tmp_path / "segment.mkv") == "matroska"  # segments are Matroska, the result WebM
    finally:
        client.delete(f"/rooms/{access_key}/recording")


def test_a_recording_ends_as_one_webm_and_its_segments_are_removed(client, auth, rt, workers, tmp_path):
    access_key, recording_id = start_recording(client, auth, "seg-finish")
    wait_for(lambda: segment_count(rt, recording_id) >= 2, timeout=40)
    client.delete(f"/rooms/{access_key}/recording")
    final = wait_final(rt, recording_id)
    assert final.state == "finished", final.error
    # Segment objects go right after the move to finished (never before: they are the only copy).
    wait_for(lambda: list(rt.storage.iter_keys(segments.prefix(recording_id))) == [], timeout=20)
    path = tmp_path / "final.webm"
    rt.storage.download(final.object_key, path)
    assert doc_type(path) == "webm"
    info = probe(path)
    assert info.format_name.startswith("matroska")
    assert info.has_video and info.has_audio
    assert final.poster_key and rt.storage.stat(final.poster_key) is not None


def test_only_the_lease_holder_writes_segments(client, auth, rt, workers):
    """RQ may run one capture twice: a second run of the job never writes."""
    access_key, recording_id = start_recording(client, auth, "seg-twice")
    try:
        wait_for(lambda: segment_count(rt, recording_id) >= 1, timeout=40)
        assert (
            capture.capture(rt, recording_id, owner="second-run")
            == "skipped: another capture holds the lease"
        )
        wait_for(lambda: segment_count(rt, recording_id) >= 3, timeout=40)
        writers = {Path(s.object_key).stem.split("-", 1)[1] for s in segments.for_recording(rt, recording_id)}
        assert len(writers) == 1 and "second-run"[:12] not in writers
    finally:
        client.delete(f"/rooms/{access_key}/recording")


def test_a_capture_that_loses_its_lease_stops_writing(client, auth, rt):
    """Two captures in this process: the first is pushed out by a takeover and stops at once."""
    room = join_room(client, auth, "seg-takeover", **{"options[media_source]": "push"})
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    recording_id = client.get("/rooms/seg-takeover/recordings", headers=auth).get_json()[0]["id"]
    with rt.db.transaction() as s:  # make it a synthetic pull recording nobody else captures
        s.execute(
            update(Recording)
            .where(Recording.id == recording_id)
            .values(ingest="pull", media_source="synthetic://meeting")
        )
    result: dict[str, str] = {}
    thread = threading.Thread(
        target=lambda: result.update(a=capture.capture(rt, recording_id, owner="job-a"))
    )
    thread.start()
    try:
        wait_for(lambda: segment_count(rt, recording_id) >= 1, timeout=40)
        with rt.db.transaction() as s:
            s.execute(update(Recording).where(Recording.id == recording_id).values(lease_owner="job-b"))
        thread.join(timeout=30)
        assert result["a"] == "lease lost: another capture took over"
        count = segment_count(rt, recording_id)
        assert ffmpeg_pids_for(recording_id) == []
        assert segment_count(rt, recording_id) == count
    finally:
        recordings.request_stop(rt, recording_id)
        thread.join(timeout=30)


@pytest.mark.critical
def test_killing_ffmpeg_keeps_every_uploaded_segment(client, auth, rt, workers):
    access_key, recording_id = start_recording(client, auth, "seg-kill-ffmpeg")
    wait_for(lambda: segment_count(rt, recording_id) >= 2, timeout=40)
    before = [s.object_key for s in segments.for_recording(rt, recording_id)]
    for pid in ffmpeg_pids_for(recording_id):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: segment_count(rt, recording_id) >= len(before) + 2, timeout=40)  # recording goes on
    client.delete(f"/rooms/{access_key}/recording")
    final = wait_final(rt, recording_id)
    assert final.state == "finished", final.error
    assert final.reconnects >= 1
    kept = wait_for(lambda: recordings.load(rt, recording_id).duration, timeout=5)
    assert kept >= 2 * rt.config.segment_seconds * 0.9


@pytest.mark.critical
def test_killing_the_worker_keeps_every_uploaded_segment(client, auth, rt, workers):
    """A capture machine dies (worker, work horse and ffmpeg at once); the recording resumes elsewhere."""
    access_key, recording_id = start_recording(client, auth, "seg-kill-worker")
    wait_for(lambda: segment_count(rt, recording_id) >= 2, timeout=40)
    before = {s.seq: s.sha256 for s in segments.for_recording(rt, recording_id)}
    workers.crash("capture-1", "capture-2")
    wait_for(lambda: ffmpeg_pids_for(recording_id) == [], timeout=10)
    workers.start("capture-1", "capture")
    workers.start("capture-2", "capture")
    assert recordings.resume_capture(rt, recording_id)  # what the reconciler does for a lost job
    wait_for(lambda: segment_count(rt, recording_id) >= len(before) + 2, timeout=60)
    client.delete(f"/rooms/{access_key}/recording")
    final = wait_final(rt, recording_id)
    assert final.state == "finished", final.error
    after = {s.seq: s.sha256 for s in segments.for_recording(rt, recording_id)}
    assert all(after[seq] == sha for seq, sha in before.items())
    assert final.duration >= len(before) * rt.config.segment_seconds * 0.9


def test_an_h264_srt_source_finishes_as_a_seekable_webm(client, auth, rt, workers, tmp_path):
    with SrtServer("h264") as source:
        access_key, recording_id = start_recording(
            client, auth, "srt-h264", **{"options[media_source]": source.url}
        )
        wait_for(lambda: segment_count(rt, recording_id) >= 2, timeout=60)
        client.delete(f"/rooms/{access_key}/recording")
        final = wait_final(rt, recording_id)
    assert final.state == "finished", final.error
    path = tmp_path / "srt.webm"
    rt.storage.download(final.object_key, path)
    info = probe(path)
    assert info.codecs("video") == ["vp8"] and info.codecs("audio") == ["opus"]
    assert webm_layout(path).seekable and doc_type(path) == "webm"


def test_a_dropped_srt_source_is_reconnected_and_the_gap_recorded(client, auth, rt, workers):
    with SrtServer("h264") as source:
        access_key, recording_id = start_recording(
            client, auth, "srt-drop", **{"options[media_source]": source.url}
        )
        wait_for(lambda: segment_count(rt, recording_id) >= 2, timeout=60)
        before = segment_count(rt, recording_id)
        source.interrupt()
        wait_for(lambda: recordings.load(rt, recording_id).reconnects >= 1, timeout=60)
        wait_for(lambda: segment_count(rt, recording_id) >= before + 2, timeout=60)
        client.delete(f"/rooms/{access_key}/recording")
        final = wait_final(rt, recording_id)
    assert final.state == "finished", final.error
    assert final.gaps[0]["after_seq"] >= before - 1
    assert final.gaps[0]["seconds"] > 0


def test_a_source_gone_for_good_fails_with_a_reason(client, auth, rt, workers):
    with SrtServer("h264") as source:
        access_key, recording_id = start_recording(
            client, auth, "srt-gone", **{"options[media_source]": source.url}
        )
        wait_for(lambda: segment_count(rt, recording_id) >= 1, timeout=60)
        source.drop()
        final = wait_final(rt, recording_id, timeout=120)
    assert final.state == "failed"
    assert "interrupted" in final.error
    assert segment_count(rt, recording_id) >= 1  # what was recorded stays stored


def test_a_live_hls_source_finishes(client, auth, rt, workers):
    with HlsServer() as source:
        access_key, recording_id = start_recording(
            client, auth, "hls-live", **{"options[media_source]": source.url}
        )
        wait_for(lambda: segment_count(rt, recording_id) >= 2, timeout=60)
        client.delete(f"/rooms/{access_key}/recording")
        final = wait_final(rt, recording_id)
    assert final.state == "finished", final.error
    assert final.duration >= 2 * rt.config.segment_seconds * 0.9


# One connection per capture attempt: a source serving one caller must be recorded whole.

RECORD_SECONDS = 16.0
# From the start request to the first recorded media: the capture job's pickup, the SRT handshake and
# the reader's analysis of the MPEG-TS stream (the media read during it is recorded, not lost).
START_ALLOWANCE_SECONDS = 4.0


def test_a_one_caller_srt_listener_is_recorded_whole(client, auth, rt, workers, tmp_path):
    """An encoder in SRT listener mode serves one caller and ends its stream when that caller leaves:
    a capture that connects twice (to probe, then to record) records nothing."""
    with SrtServer("h264", one_shot=True) as source:
        started = time.monotonic()
        access_key, recording_id = start_recording(
            client, auth, "srt-one-caller", **{"options[media_source]": source.url}
        )
        time.sleep(RECORD_SECONDS)
        assert client.delete(f"/rooms/{access_key}/recording").status_code < 300
        wall = time.monotonic() - started
        final = wait_final(rt, recording_id)
    assert final.state == "finished", final.error
    assert final.reconnects == 0 and not final.gaps
    assert wall - START_ALLOWANCE_SECONDS <= final.duration <= wall + 2, (final.duration, wall)
    path = tmp_path / "one-caller.webm"
    rt.storage.download(final.object_key, path)
    info = probe(path)
    assert info.has_video and info.has_audio


def test_a_one_client_rtmp_server_is_recorded(client, auth, rt, workers, tmp_path):
    """ffmpeg's RTMP server (`-listen 1`) serves one client: a probe before the capture would take it."""
    with RtmpServer() as source:
        access_key, recording_id = start_recording(
            client, auth, "rtmp-one-client", **{"options[media_source]": source.url}
        )
        wait_for(lambda: segment_count(rt, recording_id) >= 3, timeout=60)
        client.delete(f"/rooms/{access_key}/recording")
        final = wait_final(rt, recording_id)
    assert final.state == "finished", final.error
    assert final.reconnects == 0 and final.duration >= 3 * rt.config.segment_seconds * 0.9


def test_a_progressive_http_source_is_fetched_once(client, auth, rt, workers, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    graph = "testsrc2=size=320x240:rate=15[out0];sine=frequency=440:sample_rate=48000[out1]"
    run_ffmpeg = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i", graph]
    subprocess.run(
        [*run_ffmpeg, "-t", "6", *H264_AAC, "-g", "15", "-f", "mpegts", str(www / "talk.ts")], check=True
    )
    with HttpDir(www) as http:
        _, recording_id = start_recording(
            client, auth, "http-once", **{"options[media_source]": http.url("talk.ts")}
        )
        final = wait_final(rt, recording_id)
        fetched = http.requests.count("/talk.ts")
    assert final.state == "finished", final.error
    assert final.duration >= 5
    assert fetched == 1


def test_a_live_hls_capture_fetches_each_media_segment_once(client, auth, rt, workers):
    with HlsServer() as source:
        access_key, recording_id = start_recording(
            client, auth, "hls-once", **{"options[media_source]": source.url}
        )
        wait_for(lambda: segment_count(rt, recording_id) >= 2, timeout=60)
        client.delete(f"/rooms/{access_key}/recording")
        final = wait_final(rt, recording_id)
        fetched = [path for path in source.http.requests if path.endswith(".ts")]
    assert final.state == "finished", final.error
    assert fetched and len(fetched) == len(set(fetched)), fetched
