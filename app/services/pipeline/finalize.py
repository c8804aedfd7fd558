"""Finalize: join a stopped recording's segments into one seekable WebM and mark it finished.

Stream copy when the segments already carry WebM codecs, a transcode only when they do not. The result
is verified against the segments (streams present, duration within 0.5 s of their sum) before it is
uploaded (multipart, streamed from disk), and the segment objects are deleted only after the recording
is `finished`. Idempotent: the final key is fixed and the output byte-identical, so a rerun after a
crash at any point overwrites the same object and moves the state once; a rerun on a finished
recording only sweeps leftover segments. A finalize holds the recording's lease while it works, so the
reconciler can tell a running finalize (lease renewed) from a dead one (lease expired) and run it again.
A session's events that want frames of its video (app.services.pipeline.frames) get them before it is
finished. A storage outage (StorageError, bounded in time by the storage port) is left to propagate: the
recording stays `stopped` with its segments, the lease is released, and the job is retried on FINALIZE's
schedule, then by the reconciler.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app.errors import MediaError, QueueError
from app.media import assemble
from app.models import Ingest, Recording, RecordingState, Segment
from app.queueing import DIGEST
from app.runtime import Runtime
from app.services.core import recordings
from app.services.ids import new_id
from app.services.pipeline import compose, frames, leases, packs, segments, timeline

log = logging.getLogger(__name__)

S = RecordingState
# The chunks' clock and the remuxed file agree within a frame; a wall-time estimate rarely does.
PUSH_CLOCK_SLACK = 0.1


def final_key(recording_id: str) -> str:
    return packs.final_key(recording_id)


def poster_key(recording_id: str) -> str:
    return f"{recordings.object_prefix(recording_id)}poster.jpg"


def finalize(rt: Runtime, recording_id: str) -> str:
    """Assemble, verify, upload and finish a stopped recording; return what happened (the job result)."""
    recording = recordings.load(rt, recording_id)
    if recording is None:
        return "skipped: unknown recording"
    if recording.state == S.FINISHED:
        rt.storage.delete_prefix(segments.prefix(recording_id))
        return "finished already; leftover segments swept"
    if recording.state == S.STOPPED and recording.ingest == Ingest.NONE:
        recordings.finish_events_only(rt, recording)  # a session without media: nothing to assemble
        return "finished: events only"
    if recording.state != S.STOPPED:
        return f"skipped: {recording.state}"
    parts = segments.for_recording(rt, recording_id)
    if not parts:
        recordings.fail(rt, recording_id, "no media was stored for this recording")
        return "failed: no segments"
    owner = new_id()
    if not leases.acquire_patiently(rt, recording_id, owner, state=S.STOPPED):
        return "skipped: another finalize holds the lease"
    for stale in (rt.config.spool_dir / "finalize").glob(f"{recording_id}-*"):  # crashed runs' leftovers
        shutil.rmtree(stale, ignore_errors=True)
    workdir = rt.config.spool_dir / "finalize" / f"{recording_id}-{owner}"
    workdir.mkdir(parents=True)
    try:
        with leases.Held(rt, recording_id, owner, S.STOPPED) as held:
            return _finalize(rt, recording, parts, workdir, held)
    except MediaError as e:
        log.warning("recording %s: finalize failed: %s", recording_id, e)
        recordings.fail(rt, recording_id, f"the recorded media could not be assembled: {e}")
        return "failed"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _finalize(
    rt: Runtime, recording: Recording, parts: list[Segment], workdir: Path, held: leases.Held
) -> str:
    if recording.ingest != Ingest.PULL:
        return _finish_remuxed(rt, recording, parts, workdir, held)
    with ThreadPoolExecutor(1) as pool:  # the poster comes from one segment, beside the composition
        duration = sum(p.duration or 0.0 for p in parts)
        poster = pool.submit(_poster_from_segments, rt, parts, workdir, workdir / "poster.jpg", duration)
        composed = compose.compose(rt, recording, parts, workdir)
        has_poster = poster.result()
    if composed is not None:
        return _finish_composed(rt, recording, parts, workdir, held, composed, has_poster)
    return _finish_remuxed(rt, recording, parts, workdir, held)


def _finish_composed(
    rt: Runtime,
    recording: Recording,
    parts: list[Segment],
    workdir: Path,
    held: leases.Held,
    composed: compose.Composed,
    has_poster: bool,
) -> str:
    """Finish a recording whose final object was joined from its packs: frames read from storage."""
    poster = workdir / "poster.jpg"
    spans = timeline.from_segments(recording, parts, composed.duration)
    link = rt.storage.presign_internal(composed.stored.key, 3600)
    grabbed, skipped = frames.grab_pending(rt, recording.id, link, spans, composed.duration, workdir)
    if held.lost.is_set():
        return "lease lost: another finalize took over"
    if has_poster:
        rt.storage.put_file(poster_key(recording.id), poster, "image/jpeg")
    moved = recordings.mark_finished(
        rt,
        recording.id,
        key=composed.stored.key,
        size=composed.stored.size,
        sha256=composed.sha256,
        duration=composed.duration,
        poster_key=poster_key(recording.id) if has_poster else None,
        timeline=spans,
    )
    if not moved:
        if recordings.state_of(rt, recording.id) == S.DELETED:
            rt.storage.delete_prefix(recordings.object_prefix(recording.id))
        return "discarded: recording no longer stopped"
    if composed.sha256 is None:
        _enqueue_digest(rt, recording.id)
    else:
        packs.forget(rt, recording.id)
    rt.storage.delete_prefix(segments.prefix(recording.id))
    return (
        f"finished: {composed.duration:.2f} s, joined ({composed.parts} parts in place)"
        + (f", {grabbed} event frames" if grabbed else "")
        + (f", {skipped} skipped over MEETREC_MAX_FRAME_GRABS" if skipped else "")
    )


def _poster_from_segments(
    rt: Runtime, parts: list[Segment], workdir: Path, output: Path, duration: float
) -> bool:
    """The poster 10% in, grabbed from the one segment that holds that moment."""
    target, start = min(duration * 0.1, max(0.0, duration - 0.1)), 0.0
    for part in parts:
        length = part.duration or 0.0
        if start + length > target or part is parts[-1]:
            local = _download(rt, part, workdir, "poster-")
            try:
                assemble.make_poster(rt.config.ffmpeg_path, local, output, length, at=target - start)
            except MediaError as e:
                log.warning("poster failed for segment %s: %s", part.seq, e)
                return False
            return output.exists()
        start += length
    return False


def _finish_remuxed(
    rt: Runtime, recording: Recording, parts: list[Segment], workdir: Path, held: leases.Held
) -> str:
    cfg = rt.config
    local = [_download(rt, part, workdir) for part in parts]
    output = workdir / "recording.webm"
    profile = assemble.TranscodeProfile.from_name(cfg.transcode_profile)
    if recording.ingest == Ingest.PUSH:
        result = assemble.assemble_stream(cfg.ffmpeg_path, local, output, profile=profile, workdir=workdir)
    else:
        result = assemble.assemble_segments(cfg.ffmpeg_path, local, output, profile=profile, workdir=workdir)
    info = assemble.verify(output, result.expected_seconds, expect_audio=result.has_audio)
    poster = workdir / "poster.jpg"
    has_poster = _make_poster(cfg.ffmpeg_path, output, poster, info.duration)
    spans = timeline.from_segments(recording, parts, info.duration)
    grabbed, skipped = frames.grab_pending(rt, recording.id, output, spans, info.duration, workdir)
    if held.lost.is_set():  # a stalled run was presumed dead and another took over: it will finish
        return "lease lost: another finalize took over"
    stored, digest = rt.storage.put_file_multipart(final_key(recording.id), output, "video/webm")
    if has_poster:
        rt.storage.put_file(poster_key(recording.id), poster, "image/jpeg")
    moved = recordings.mark_finished(
        rt,
        recording.id,
        key=stored.key,
        size=stored.size,
        sha256=digest,
        duration=_duration(recording, info.duration),
        poster_key=poster_key(recording.id) if has_poster else None,
        timeline=spans,
    )
    if not moved:  # deleted meanwhile: the deletion removed the prefix before our upload
        if recordings.state_of(rt, recording.id) == S.DELETED:
            rt.storage.delete_prefix(recordings.object_prefix(recording.id))
        return "discarded: recording no longer stopped"
    packs.forget(rt, recording.id)
    rt.storage.delete_prefix(segments.prefix(recording.id))
    mode = "copy" if not result.transcoded else "transcoded"
    return (
        f"finished: {info.duration:.2f} s, {mode}"
        + (f", {grabbed} event frames" if grabbed else "")
        + (f", {skipped} skipped over MEETREC_MAX_FRAME_GRABS" if skipped else "")
    )


def digest_job_id(recording_id: str) -> str:
    return f"digest-{recording_id}"


def digest(rt: Runtime, recording_id: str) -> str:
    """Record the SHA-256 of a finished recording whose object the store joined (nothing read its bytes
    then): one streamed read of it. Its pack rows go with it. A job result, like `finalize`'s."""
    recording = recordings.load(rt, recording_id)
    if recording is None or recording.state != S.FINISHED or not recording.object_key:
        return "skipped: not finished"
    if recording.sha256 is None:
        value, size = rt.storage.sha256_of(recording.object_key)
        if size != recording.size:
            raise MediaError(f"the object holds {size} bytes, the recording says {recording.size}")
        recordings.set_digest(rt, recording_id, recording.object_key, value)
    packs.forget(rt, recording_id)
    return "digested"


def _enqueue_digest(rt: Runtime, recording_id: str) -> None:
    try:
        rt.jobs.enqueue(DIGEST, recording_id, job_id=digest_job_id(recording_id))
    except QueueError as e:  # the reconciler enqueues it once Redis answers
        log.warning("recording %s: digest not enqueued: %s", recording_id, e)


def _duration(recording: Recording, measured: float) -> float:
    """The finished recording's duration: a push recording keeps the one its stop read off the chunks'
    timestamps (one value from stop to finish) unless that was the wall-time estimate and is off."""
    stopped = recording.duration
    if recording.ingest != Ingest.PUSH or stopped is None:
        return measured
    return stopped if abs(stopped - measured) <= PUSH_CLOCK_SLACK else measured


def _download(rt: Runtime, part: Segment, workdir: Path, prefix: str = "part-") -> Path:
    path = workdir / f"{prefix}{part.seq:06d}{Path(part.object_key).suffix}"
    rt.storage.download(part.object_key, path)
    if _sha256(path) != part.sha256:
        raise MediaError(f"segment {part.seq} does not match its recorded SHA-256")
    return path


def _make_poster(ffmpeg: str, media: Path, output: Path, duration: float) -> bool:
    try:
        assemble.make_poster(ffmpeg, media, output, duration)
    except MediaError as e:  # a recording without a poster is still a recording
        log.warning("poster failed for %s: %s", media, e)
        return False
    return output.exists()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
