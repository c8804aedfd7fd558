"""The O(1) finish: captured segments packed into parts while recording, joined in place at the finish.

Real ffmpeg segments, a real S3 server (which, like MinIO, refuses parts under 5 MiB but the last) and
SQL. Every composed file is downloaded and decoded whole: seekable, complete, on one timeline.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import pytest
from rq.job import Job
from sqlalchemy import select

from app.media import assemble, webm_compose
from app.media.ebml import doc_type, webm_layout
from app.models import MediaPack
from app.queueing import DIGEST
from app.runtime import Runtime
from app.services.core import recordings
from app.services.operations import reconciler
from app.services.pipeline import compose, finalize, leases, packs, segments
from tests.helpers import capture_stopped, capturing, join_room, runtime_on_redis_db, wait_for
from tests.mediaservers import HttpDir

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent
SECONDS = 5.5  # 1 s segments over 5 MiB each and a last one of 0.5 s: with 5 MiB parts, packs 1..5, a tail


def _segments(ffmpeg: str, out: Path, seconds: float, video: list[str], audio: list[str], rate: str) -> list:
    subprocess.run(
        [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=640x360:rate=30{rate}",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            str(seconds),
            "-map",
            "0:v",
            "-map",
            "1:a",
            *video,
            *audio,
            "-force_key_frames",
            "expr:gte(t,n_forced*1)",
            "-f",
            "segment",
            "-segment_format",
            "matroska",
            "-segment_format_options",
            "cluster_time_limit=1000:cluster_size_limit=1048576:flush_packets=1",
            "-segment_time",
            "1",
            "-reset_timestamps",
            "1",
            "-segment_list",
            str(out / "segments.csv"),
            "-segment_list_type",
            "csv",
            str(out / "seg-%06d.mkv"),
        ],  # fmt: skip
        check=True,
        timeout=180,
    )
    with (out / "segments.csv").open() as f:
        return [(out / name, float(end) - float(start)) for name, start, end in csv.reader(f)]


VP8 = ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "16", "-g", "30"]
OPUS = ["-c:a", "libopus", "-b:a", "64k", "-ar", "48000", "-ac", "2"]


@pytest.fixture(scope="module")
def small_segments(tmp_path_factory, config) -> list[tuple[Path, float]]:  # type: ignore[no-untyped-def]
    """Four 1-second VP8/Opus segments cut as a capture cuts them."""
    return _segments(config.ffmpeg_path, tmp_path_factory.mktemp("small"), 4, [*VP8, "-b:v", "1M"], OPUS, "")


@pytest.fixture(scope="module")
def big_segments(tmp_path_factory, config) -> list[tuple[Path, float]]:  # type: ignore[no-untyped-def]
    """Five 1-second VP8/Opus segments over 5 MiB each (noise at 44 Mb/s), so each fills a part, then
    one of half a second."""
    noisy = [*VP8, "-b:v", "44M", "-minrate", "44M", "-maxrate", "44M", "-crf", "4", "-qmax", "10"]
    found = _segments(
        config.ffmpeg_path, tmp_path_factory.mktemp("big"), SECONDS, noisy, OPUS, ",noise=alls=60:allf=t"
    )
    assert all(path.stat().st_size > 5 * MIB for path, _ in found[:-1])
    assert found[-1][0].stat().st_size < 5 * MIB
    return found


@pytest.fixture
def part_rt(rt: Runtime):  # type: ignore[no-untyped-def]
    """The runtime with the smallest parts S3 allows (5 MiB), so each big segment fills one."""
    import dataclasses

    return Runtime(dataclasses.replace(rt.config, compose_part_bytes=5 * MIB))


def compose_locally(files: list[tuple[Path, float]]) -> bytes:
    pieces, durations = [], []
    for path, duration in files:
        pieces.append(webm_compose.rewrite_segment(path.read_bytes(), packs.start_ms(durations)))
        durations.append(duration)
    webm_compose.check_joinable(pieces)
    cues, offset = [], 0
    for piece in pieces:
        cues += [(t, offset + at) for t, at in piece.cues]
        offset += len(piece.data)
    head = webm_compose.build_head(pieces[0].tracks, float(packs.start_ms(durations)), cues, offset)
    return head + b"".join(p.data for p in pieces)


def decoded(path: Path) -> dict[str, list[float]]:
    """Every frame's time (s) per stream kind, decoding the whole file."""
    times: dict[str, list[float]] = {"video": [], "audio": []}
    with av.open(str(path)) as container:
        for frame in container.decode(*container.streams.video, *container.streams.audio):
            kind = "video" if isinstance(frame, av.VideoFrame) else "audio"
            times[kind].append(float(frame.pts * Fraction(frame.time_base)))
    return times


def assert_continuous(times: list[float], step: float) -> None:
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) > 0, "timestamps go back"
    assert max(gaps) < 2.5 * step, f"a hole of {max(gaps):.3f} s"


# -- the pure composition -------------------------------------------------------------------------------


def test_composed_segments_make_one_seekable_webm(small_segments, tmp_path):
    out = tmp_path / "joined.webm"
    out.write_bytes(compose_locally(small_segments))
    total = sum(d for _, d in small_segments)
    info = assemble.verify(out, total, expect_audio=True)
    assert abs(info.duration - total) < 0.05
    assert doc_type(out) == "webm"
    layout = webm_layout(out)
    assert layout.seekable and layout.duration == pytest.approx(total, abs=0.01)


def test_composed_file_holds_every_frame_on_one_timeline(small_segments, tmp_path):
    out = tmp_path / "joined.webm"
    out.write_bytes(compose_locally(small_segments))
    times = decoded(out)
    each = [decoded(path) for path, _ in small_segments]
    assert len(times["video"]) == sum(len(t["video"]) for t in each)
    assert len(times["audio"]) == sum(len(t["audio"]) for t in each)
    assert_continuous(times["video"], 1 / 30)
    assert_continuous(times["audio"], 0.02)
    assert times["video"][-1] == pytest.approx(sum(d for _, d in small_segments) - 1 / 30, abs=0.05)


def test_composed_file_seeks_to_any_keyframe_through_its_cues(small_segments, tmp_path):
    out = tmp_path / "joined.webm"
    out.write_bytes(compose_locally(small_segments))
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        for target in (2.5, 0.5, 3.2):
            container.seek(int(target / stream.time_base), stream=stream)
            frame = next(container.decode(stream))
            assert target - 1.05 <= float(frame.pts * stream.time_base) <= target


def test_segments_whose_codec_webm_cannot_hold_are_not_composed(tmp_path, config):
    h264 = _segments(
        config.ffmpeg_path, tmp_path, 1, ["-c:v", "libx264", "-preset", "ultrafast"], ["-an"], ""
    )
    with pytest.raises(webm_compose.NotComposable):
        webm_compose.rewrite_segment(h264[0][0].read_bytes(), 0)


def test_segments_with_other_tracks_are_not_joined(small_segments, tmp_path, config):
    silent = _segments(config.ffmpeg_path, tmp_path, 1, [*VP8, "-b:v", "1M"], ["-an"], "")
    pieces = [
        webm_compose.rewrite_segment(small_segments[0][0].read_bytes(), 0),
        webm_compose.rewrite_segment(silent[0][0].read_bytes(), 1000),
    ]
    with pytest.raises(webm_compose.NotComposable):
        webm_compose.check_joinable(pieces)


# -- packed while capturing, joined at the finish ---------------------------------------------------------


def capture_segments(rt, recording_id: str, owner: str, files, tmp_path: Path, start: int = 0) -> None:  # type: ignore[no-untyped-def]
    """Upload and record `files` from seq `start` as a capture holding the lease, packing each."""
    assert leases.acquire(rt, recording_id, owner)
    packer = packs.Packer(rt, recording_id, owner, tmp_path)
    for seq, (path, duration) in enumerate(files, start):
        key = segments.object_key(recording_id, seq, owner)
        stored, digest = rt.storage.put_file(key, path, "video/x-matroska")
        assert segments.record_captured(
            rt, recording_id, owner, segments.NewSegment(seq, key, stored.size, digest, duration)
        )
        packer.add(seq, path, duration, digest)
    assert packer.disabled is None
    leases.release(rt, recording_id, owner)


def packs_of(rt, recording_id: str) -> list[MediaPack]:  # type: ignore[no-untyped-def]
    with rt.db.read() as s:
        return list(s.scalars(select(MediaPack).where(MediaPack.recording_id == recording_id)))


def check_final(rt, recording_id: str, files, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    final = recordings.load(rt, recording_id)
    assert final.state == "finished"
    path = tmp_path / "final.webm"
    rt.storage.download(final.object_key, path)
    assert path.stat().st_size == final.size
    total = sum(d for _, d in files)
    assert final.duration == pytest.approx(total, abs=0.15)  # a remux measures the last audio frame too
    assemble.verify(path, total, expect_audio=True)
    times = decoded(path)
    assert len(times["video"]) == sum(len(decoded(p)["video"]) for p, _ in files)
    assert_continuous(times["video"], 1 / 30)
    return path


def test_a_long_capture_is_finished_from_parts_uploaded_while_recording(
    part_rt, client, auth, big_segments, tmp_path
):
    recording_id = capturing(part_rt, client, auth, "compose-parts")
    capture_segments(part_rt, recording_id, "cap-1", big_segments, tmp_path)
    rows = sorted(packs_of(part_rt, recording_id), key=lambda p: p.part_number)
    assert [r.part_number for r in rows] == [1, 2, 3, 4, 5]  # one segment a pack; the last one waits
    assert rows[0].etag is None and all(r.etag for r in rows[1:])  # part 1 goes behind the head
    capture_stopped(part_rt, recording_id, 6.0)
    result = finalize.finalize(part_rt, recording_id)
    assert result.startswith("finished") and "joined (4 parts in place)" in result, result
    path = check_final(part_rt, recording_id, big_segments, tmp_path)
    assert segments.for_recording(part_rt, recording_id)  # rows stay; the objects are swept
    assert not list(part_rt.storage.iter_keys(segments.prefix(recording_id)))
    assert finalize.digest(part_rt, recording_id) == "digested"  # the job the finish enqueued
    assert recordings.load(part_rt, recording_id).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert packs_of(part_rt, recording_id) == []


def test_a_joined_recording_whose_digest_job_was_lost_gets_one_from_the_reconciler(
    part_rt, client, auth, big_segments, tmp_path
):
    recording_id = capturing(part_rt, client, auth, "compose-digest")
    capture_segments(part_rt, recording_id, "cap-1", big_segments, tmp_path)
    capture_stopped(part_rt, recording_id, 6.0)
    with runtime_on_redis_db(part_rt, 12) as lost:  # the finish enqueued its digest where no one reads
        assert "joined" in finalize.finalize(lost, recording_id)
        assert recordings.load(lost, recording_id).sha256 is None
        lost.redis.flushdb()  # ... and Redis lost it
        assert reconciler.reconcile(lost).digests_enqueued == 1
        assert lost.jobs.job_status(finalize.digest_job_id(recording_id)) == "queued"
        assert reconciler.reconcile(lost).digests_enqueued == 0  # one is waiting: none more
        assert finalize.digest(lost, recording_id) == "digested"
    assert recordings.load(part_rt, recording_id).sha256 is not None


def run_worker_once(rt: Runtime, queue: str) -> None:
    """A real `meetrec worker --burst` on `rt`'s Redis database: it runs what waits in `queue`, then exits."""
    worker = [sys.executable, "-m", "app.cli", "worker", "--burst", queue]
    env = {**os.environ, **rt.config.child_env()}
    subprocess.run(worker, cwd=ROOT, env=env, check=True, timeout=120, capture_output=True)


def test_a_joined_recording_whose_digest_job_failed_for_good_is_given_up_once(
    part_rt, client, auth, big_segments, tmp_path, caplog
):
    recording_id = capturing(part_rt, client, auth, "compose-digest-failed")
    capture_segments(part_rt, recording_id, "cap-1", big_segments, tmp_path)
    capture_stopped(part_rt, recording_id, 6.0)
    job_id = finalize.digest_job_id(recording_id)
    with runtime_on_redis_db(part_rt, 12) as own:
        assert "joined" in finalize.finalize(own, recording_id)
        # The object no longer holds what the row says, so the job fails however often it runs; a real
        # worker runs it with no retry left, as after DIGEST's last one: RQ gives up on it.
        own.storage.put_bytes(packs.final_key(recording_id), b"other bytes", "video/webm")
        own.jobs.forget_job(job_id)
        own.jobs.enqueue(dataclasses.replace(DIGEST, retry_intervals=()), recording_id, job_id=job_id)
        run_worker_once(own, "media")
        assert own.jobs.job_status(job_id) == "failed"
        caplog.set_level(logging.INFO, logger=reconciler.__name__)
        passes = [reconciler.reconcile(own) for _ in range(3)]
        assert own.jobs.job_status(job_id) == "failed"  # never enqueued again; kept for the operator
    assert [(p.digests_given_up, p.digests_enqueued) for p in passes] == [(1, 0), (0, 0), (0, 0)]
    said = [r for r in caplog.records if r.name == reconciler.__name__ and recording_id in r.getMessage()]
    assert [r.levelname for r in said] == ["ERROR"] and job_id in said[0].getMessage()
    assert packs_of(part_rt, recording_id) == []
    final = recordings.load(part_rt, recording_id)
    assert final.state == "finished" and final.sha256 is None


def test_a_resumed_capture_packs_what_the_crashed_one_left_unpacked(
    part_rt, client, auth, big_segments, tmp_path
):
    recording_id = capturing(part_rt, client, auth, "compose-resume")
    # The first capture packs three segments; its process dies with the third's pack unrecorded.
    assert leases.acquire(part_rt, recording_id, "cap-1")
    first = packs.Packer(part_rt, recording_id, "cap-1", tmp_path / "a")
    (tmp_path / "a").mkdir()
    first.part_bytes = 2 * len(big_segments[0][0].read_bytes()) + 1  # pack 1 takes three segments
    for seq, (path, duration) in enumerate(big_segments[:3]):
        key = segments.object_key(recording_id, seq, "cap-1")
        stored, digest = part_rt.storage.put_file(key, path, "video/x-matroska")
        segments.record_captured(
            part_rt, recording_id, "cap-1", segments.NewSegment(seq, key, stored.size, digest, duration)
        )
        if seq < 2:
            first.add(seq, path, duration, digest)  # the third segment is stored but never packed
    leases.release(part_rt, recording_id, "cap-1")
    assert packs_of(part_rt, recording_id) == []
    # The next capture continues at seq 3 and first packs 0..2 back from storage.
    (tmp_path / "b").mkdir()
    capture_segments(part_rt, recording_id, "cap-2", big_segments[3:], tmp_path / "b", start=3)
    rows = sorted(packs_of(part_rt, recording_id), key=lambda p: p.part_number)
    assert (rows[0].first_seq, rows[1].first_seq) == (0, 1)
    capture_stopped(part_rt, recording_id, 6.0)
    assert "joined" in finalize.finalize(part_rt, recording_id)
    check_final(part_rt, recording_id, big_segments, tmp_path)


def test_an_expired_upload_is_finished_by_remuxing_the_segments(
    part_rt, client, auth, big_segments, tmp_path
):
    recording_id = capturing(part_rt, client, auth, "compose-expired")
    capture_segments(part_rt, recording_id, "cap-1", big_segments, tmp_path)
    rows = packs_of(part_rt, recording_id)
    upload_id = next(r.upload_id for r in rows if r.upload_id)
    part_rt.storage.abort_upload(packs.final_key(recording_id), upload_id)  # as MinIO does after 24 h
    capture_stopped(part_rt, recording_id, 6.0)
    result = finalize.finalize(part_rt, recording_id)
    assert result.startswith("finished") and "copy" in result, result
    check_final(part_rt, recording_id, big_segments, tmp_path)


def test_a_part_overwritten_by_a_stale_capture_is_not_joined(part_rt, client, auth, big_segments, tmp_path):
    recording_id = capturing(part_rt, client, auth, "compose-stale")
    capture_segments(part_rt, recording_id, "cap-1", big_segments, tmp_path)
    row = next(r for r in packs_of(part_rt, recording_id) if r.part_number == 3)
    key = packs.final_key(recording_id)
    part_rt.storage.upload_part(key, row.upload_id, 3, big_segments[0][0].read_bytes())  # other bytes
    capture_stopped(part_rt, recording_id, 6.0)
    result = finalize.finalize(part_rt, recording_id)
    assert "copy" in result, result
    check_final(part_rt, recording_id, big_segments, tmp_path)


def test_a_finish_that_died_after_joining_goes_on_with_the_joined_object(
    part_rt, client, auth, big_segments, tmp_path
):
    recording_id = capturing(part_rt, client, auth, "compose-rerun")
    capture_segments(part_rt, recording_id, "cap-1", big_segments, tmp_path)
    capture_stopped(part_rt, recording_id, 6.0)
    recording = recordings.load(part_rt, recording_id)
    parts = segments.for_recording(part_rt, recording_id)
    first = compose.compose(part_rt, recording, parts, tmp_path)  # joined; then the worker died
    assert first is not None and first.parts == 4
    again = compose.compose(part_rt, recording, parts, tmp_path)
    assert again is not None and again.stored.size == first.stored.size
    assert "joined" in finalize.finalize(part_rt, recording_id)
    check_final(part_rt, recording_id, big_segments, tmp_path)


def test_a_short_capture_is_finished_in_one_upload_with_its_digest(
    rt, client, auth, small_segments, tmp_path
):
    recording_id = capturing(rt, client, auth, "compose-short")
    capture_segments(rt, recording_id, "cap-1", small_segments, tmp_path)
    assert packs_of(rt, recording_id) == []  # far below a part
    capture_stopped(rt, recording_id, 6.0)
    result = finalize.finalize(rt, recording_id)
    assert "joined (0 parts in place)" in result, result
    path = check_final(rt, recording_id, small_segments, tmp_path)
    assert recordings.load(rt, recording_id).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# -- a real capture packs while it records ----------------------------------------------------------------


@pytest.fixture
def packing_stack(rt, base_dir, tmp_path):  # type: ignore[no-untyped-def]
    """An api client and capture + media workers of their own (Redis database 11) with 5 MiB parts."""
    import dataclasses

    from app.factory import create_app
    from tests.conftest import WorkerProcesses

    with runtime_on_redis_db(rt, 11) as other:
        small_parts = Runtime(dataclasses.replace(other.config, compose_part_bytes=5 * MIB))
        workers = WorkerProcesses(small_parts.config, tmp_path)
        workers.start("capture", "capture")
        workers.start("media", "media", "default")
        app = create_app(runtime=small_parts)
        app.testing = True
        try:
            yield small_parts, app.test_client()
        finally:
            workers.stop()


def test_a_capture_uploads_parts_while_recording_and_its_finish_joins_them(
    packing_stack, auth, big_segments, tmp_path
):
    small_parts, client = packing_stack
    www = tmp_path / "www"
    www.mkdir()
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"file '{path}'\n" for path, _ in big_segments))
    subprocess.run(
        [
            small_parts.config.ffmpeg_path,
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-c",
            "copy",
            str(www / "talk.webm"),
        ],  # fmt: skip
        check=True,
        timeout=60,
    )
    with HttpDir(www) as http:
        room = join_room(client, auth, "compose-capture", **{"options[media_source]": http.url("talk.webm")})
        assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
        recording_id = client.get("/rooms/compose-capture/recordings", headers=auth).get_json()[0]["id"]
        final = wait_for(
            lambda: (r := recordings.load(small_parts, recording_id)).state in ("finished", "failed") and r,
            timeout=120,
        )
    assert final.state == "finished", final.error
    finish = Job.fetch(recordings.finalize_job_id(recording_id), connection=small_parts.redis)
    joined = re.search(r"joined \((\d+) parts in place\)", str(finish.return_value()))
    assert joined and int(joined[1]) >= 1, f"no part was uploaded while recording: {finish.return_value()}"
    path = tmp_path / "final.webm"
    small_parts.storage.download(final.object_key, path)
    assemble.verify(path, final.duration, expect_audio=True)
    assert_continuous(decoded(path)["video"], 1 / 30)
    # Joined by the store, so nothing read its bytes at the finish: the worker's digest job does, once.
    digest = wait_for(lambda: recordings.load(small_parts, recording_id).sha256, timeout=60)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert packs_of(small_parts, recording_id) == []


def test_deleting_a_recording_aborts_the_upload_of_its_parts(part_rt, client, auth, big_segments, tmp_path):
    recording_id = capturing(part_rt, client, auth, "compose-deleted")
    capture_segments(part_rt, recording_id, "cap-1", big_segments[:3], tmp_path)
    upload_id = next(r.upload_id for r in packs_of(part_rt, recording_id) if r.upload_id)
    key = packs.final_key(recording_id)
    assert part_rt.storage.parts(key, upload_id)
    recording = recordings.load(part_rt, recording_id)
    recordings.delete(part_rt, recording.project_id, recording_id)
    assert part_rt.storage.parts(key, upload_id) is None
