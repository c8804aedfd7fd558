"""Capture: record a pull source into segments uploaded while recording, until asked to stop.

A capture job first takes the recording's lease (only the holder writes segments; RQ may run a job
twice). ffmpeg writes short, independently decodable segments into a spool directory and lists each one
as it closes; every closed segment is uploaded at once as its own object and recorded in SQL, then
deleted locally. A crash therefore loses at most the open segment: a rerun adopts what an earlier run
closed but did not upload, and continues the numbering.

Stop is honoured within a second: Redis is checked every 0.2 s and SQL, the truth, every 2 s. The
capture then ends ffmpeg gracefully (the last segment closes), uploads what is left, and moves the
recording to `stopped` with the recorded duration, which enqueues finalize.

A source that drops is reconnected into new segments (the gap is recorded on the recording) up to
`MEETREC_MAX_RECONNECTS` times; after that, or when ffmpeg makes no progress for `MEETREC_STALL_SECONDS`,
the recording fails with the reason.

A worker shutting down sets `draining` (SIGTERM, see `workers/shutdown.py`): the capture ends ffmpeg
gracefully as for a stop, uploads every segment including the one that was open, releases the lease and
enqueues a new capture job, so another worker continues the recording, which stays `started`.
"""

from __future__ import annotations

import enum
import logging
import shutil
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from app.errors import LeaseLost, MediaError, QueueError, StorageError
from app.media.commands import (
    SegmentOptions,
    choose_mode,
    relay_reader_argv,
    relay_writer_argv,
    segment_capture_argv,
)
from app.media.egress import Egress
from app.media.probe import MediaInfo
from app.media.relay import Relay
from app.media.segments import ClosedSegment, SegmentList
from app.media.sources import MediaSource, parse_source
from app.models import Ingest, Recording, RecordingState
from app.runtime import Runtime
from app.services.core import recordings
from app.services.ids import new_id
from app.services.pipeline import leases, packs, segments
from webhooks.urlsafety import UnsafeURL

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
SQL_CHECK_SECONDS = 2.0
RECONNECT_DELAY_SECONDS = 1.0
# After stop, storage that is down is retried this long before the job gives up (and RQ or the
# reconciler runs it again: the spool keeps the segments, a rerun adopts them).
FINAL_UPLOAD_PATIENCE_SECONDS = 600.0
LIVE_SCHEMES = {"srt", "rtmp", "rtmps", "rtsp", "rtsps"}  # end of stream means the source dropped
RESTARTABLE = {"source_lost", "source_unreachable"}  # failure kinds worth a reconnect


class Outcome(enum.StrEnum):
    """How one ffmpeg run ended, and so what the capture does next."""

    STOPPED = "stopped"  # a stop was asked for: upload what is left, then stopped
    ENDED = "ended"  # the source or the maximum duration ended it: as stopped
    LEASE_LOST = "lease_lost"  # another job holds the recording now: leave it alone
    INTERRUPTED = "interrupted"  # the source dropped: reconnect into a new segment sequence
    FAILED = "failed"  # nothing more will come of it: the recording fails
    DRAINING = "draining"  # the worker shuts down: hand the recording over to another one


@dataclass
class Attempt:
    """How one ffmpeg run ended."""

    kind: Outcome
    reason: str = ""


@dataclass
class _Run:
    rt: Runtime
    recording: Recording
    owner: str
    source: MediaSource
    spool: Path
    next_seq: int = 0
    attempts: int = 0
    lost_at: float = 0.0  # monotonic time the last attempt stopped making progress (began: made none)
    mode: str = ""  # "copy" or "transcode", decided by each attempt from what its connection carries
    gaps: list[dict[str, object]] = field(default_factory=list)
    draining: threading.Event = field(default_factory=threading.Event)  # set: the worker shuts down
    egress: Egress | None = None  # the latest attempt's way to the source (what it refused)
    # This job continues a recording an earlier job recorded: "handover" (it shut down and released
    # the lease) or "lost" (it died holding it); "" for the first capture. See `_note_resume_gap`.
    resuming: str = ""
    packer: packs.Packer | None = None  # the segments as the final file's clusters (O(1) finish)

    @property
    def recording_id(self) -> str:
        return self.recording.id


def capture(
    rt: Runtime, recording_id: str, owner: str | None = None, draining: threading.Event | None = None
) -> str:
    """Run the capture of `recording_id` to its end, or until `draining` is set (then hand it over);
    return what happened (for the job's result)."""
    owner = owner or new_id()
    recording = recordings.load(rt, recording_id)
    if recording is None or recording.state != RecordingState.STARTED:
        return "skipped: not started"
    if recording.ingest != Ingest.PULL or recording.media_source is None:
        return "skipped: nothing to pull"
    resuming = ""
    if recording.capture_attempts:  # an earlier job recorded it: it released its lease, or it died
        resuming = "handover" if recording.lease_owner is None else "lost"
    if not leases.acquire_patiently(rt, recording_id, owner):
        return "skipped: another capture holds the lease"
    run = _Run(
        rt,
        recording,
        owner,
        parse_source(recording.media_source),
        rt.config.spool_dir / recording_id,
        next_seq=segments.next_seq(rt, recording_id),
        gaps=list(recording.gaps or []),
        draining=draining or threading.Event(),
        resuming=resuming,
    )
    run.packer = packs.Packer(rt, recording_id, owner, run.spool)
    try:
        return _capture(run)
    finally:
        leases.release(rt, recording_id, owner)


def _capture(run: _Run) -> str:
    rt = run.rt
    _adopt_spooled(run)
    while True:
        if recordings.stop_requested(rt, run.recording_id):
            outcome = Attempt(Outcome.STOPPED)
        elif run.draining.is_set():
            outcome = Attempt(Outcome.DRAINING)
        else:
            _note_resume_gap(run)
            outcome = _record_once(run)
        if outcome.kind == Outcome.LEASE_LOST:
            return "lease lost: another capture took over"
        if outcome.kind in (Outcome.STOPPED, Outcome.ENDED):
            return _finish(run, outcome)
        if outcome.kind == Outcome.DRAINING:
            return _hand_over(run)
        if outcome.kind == Outcome.INTERRUPTED and run.attempts <= rt.config.max_reconnects:
            if _wait_to_reconnect(run, outcome.reason):
                continue
            if run.draining.is_set():
                return _hand_over(run)
            return _finish(run, Attempt(Outcome.STOPPED))
        if outcome.kind == Outcome.INTERRUPTED:
            reason = f"the capture was interrupted {run.attempts} times, giving up: {outcome.reason}"
        else:
            reason = outcome.reason
        if run.egress is not None and run.egress.refusals:
            reason = f"the source led to a host that is not allowed ({run.egress.refusals[-1]}); {reason}"
        recordings.fail(rt, run.recording_id, reason)
        return f"failed: {reason}"


def _record_once(run: _Run) -> Attempt:
    """Run one capture attempt, uploading segments as they close, until stop, the end, or a failure.

    The attempt opens a pull source once: a reader ffmpeg holds the connection and describes the
    source, and the writer, started once the codecs are known, records what the reader relays to it
    (`app.media.relay`). The synthetic meeting needs no connection: one ffmpeg generates and records it.
    """
    rt, cfg = run.rt, run.rt.config
    remaining = cfg.max_recording_seconds - segments.recorded_seconds(rt, run.recording_id)
    if remaining < 1:
        return Attempt(Outcome.ENDED, "the maximum recording duration was reached")
    run.attempts += 1
    # An attempt is lost from its start until its media advances (as `Relay.seconds_since_progress`
    # counts): one that ends before ffmpeg runs (its source's name does not resolve) leaves this, so its
    # gap is measured from it, not from an earlier attempt's loss or from 0.0 (the machine's uptime).
    run.lost_at = time.monotonic()
    spool = run.spool / f"{run.owner}-{run.attempts:04d}"  # sorted names keep the order for adoption
    spool.mkdir(parents=True, exist_ok=True)
    options: SegmentOptions = {
        "segment_seconds": cfg.segment_seconds,
        "start_number": run.next_seq,
        "size": cfg.synthetic_size,
        "rate": cfg.synthetic_rate,
        "max_seconds": int(remaining),
    }
    # The source's host is checked again for every attempt (a resume may come hours later) and ffmpeg
    # reaches it only at the checked address (app.media.egress).
    run.egress = Egress(run.source, cfg.url_allowlist, cfg.source_ca_file)
    with ExitStack() as stack:
        try:
            egress = stack.enter_context(run.egress)
        except UnsafeURL as e:
            if e.unresolvable:  # DNS trouble, or the name is gone for a while: like a dropped source
                return Attempt(Outcome.INTERRUPTED, f"the source is unreachable: {e}")
            return Attempt(Outcome.FAILED, f"the source's host is not allowed: {e}")
        return _run_attempt(run, egress, spool, options, remaining)


def _run_attempt(
    run: _Run, egress: Egress, spool: Path, options: SegmentOptions, remaining: float
) -> Attempt:
    rt, cfg = run.rt, run.rt.config
    if run.source.kind == "synthetic":
        argv = segment_capture_argv(cfg.ffmpeg_path, run.source, spool, mode=_mode(run, None), **options)
        process = Relay.single(argv)
    else:
        process = Relay(
            lambda info: relay_writer_argv(cfg.ffmpeg_path, spool, mode=_mode(run, info), **options)
        ).start(relay_reader_argv(cfg.ffmpeg_path, egress.source), env=egress.env)
    listing = SegmentList(spool)
    log.debug("recording %s: ffmpeg %s capturing into %s", run.recording_id, process.pids, spool)
    last_sql = last_renew = time.monotonic()
    try:
        while process.alive:
            process.advance()  # the writer starts once the reader has described the source
            now = time.monotonic()
            lost = not _upload_closed(run, listing)
            if not lost and now - last_renew >= cfg.capture_lease_seconds / 3:
                last_renew = now
                lost = not leases.renew(rt, run.recording_id, run.owner)
            if lost:
                # Another job records now; what this one spooled would land out of order: drop it.
                process.kill()
                shutil.rmtree(spool, ignore_errors=True)
                return Attempt(Outcome.LEASE_LOST)
            check_sql = now - last_sql >= SQL_CHECK_SECONDS
            if check_sql:
                last_sql = now
            if _stop_asked(rt, run.recording_id, check_sql):
                process.stop()
                return Attempt(Outcome.STOPPED)
            if run.draining.is_set():
                process.stop()  # the open segment is closed and listed
                return Attempt(Outcome.DRAINING)
            if process.seconds_since_progress > cfg.stall_seconds:
                process.kill()
                return Attempt(Outcome.FAILED, f"the capture made no progress for {cfg.stall_seconds} s")
            time.sleep(POLL_SECONDS)
        process.wait()
    finally:
        if process.alive:
            process.kill()
    run.lost_at = time.monotonic() - process.seconds_since_progress
    if egress.refusals:  # the source tried to lead ffmpeg elsewhere: reconnecting would only repeat it
        return Attempt(Outcome.FAILED, _classify_exit(run, process, remaining).reason)
    return _classify_exit(run, process, remaining)


def _classify_exit(run: _Run, process: Relay, remaining: float) -> Attempt:
    failure = process.failure()  # ffmpeg exits 0 on a read error too: this tells them apart
    if failure is None and process.returncode == 0:
        if process.out_seconds >= remaining - run.rt.config.segment_seconds:
            return Attempt(Outcome.ENDED, "the maximum recording duration was reached")
        if run.source.scheme in LIVE_SCHEMES:
            return Attempt(Outcome.INTERRUPTED, "the source ended the stream")
        return Attempt(Outcome.ENDED, "the source ended")
    failure = failure or MediaError(f"ffmpeg exited with {process.returncode}")
    if (process.returncode or 0) < 0 or failure.kind in RESTARTABLE:
        return Attempt(Outcome.INTERRUPTED, str(failure))  # killed from outside, or the source dropped
    return Attempt(Outcome.FAILED, str(failure))


def _mode(run: _Run, info: MediaInfo | None) -> str:
    """How to record what this attempt's connection carries (`info`; None for the synthetic meeting).

    Copy a source whose codecs are WebM's already (about 1% of a core against 20-30% for a live VP8
    encode at 720p30); transcode others live, so finalize stays a copy of seconds, unless the operator
    moved the transcode to finalize (MEETREC_TRANSCODE_AT=finalize: Matroska holds any codec). The
    synthetic meeting is generated raw and always encoded. Each attempt decides from its own connection,
    so a source that comes back with other codecs is still recorded as WebM's."""
    if info is None:
        mode = "transcode"
    else:
        mode = choose_mode(info)
        if mode == "transcode" and run.rt.config.transcode_at == "finalize":
            mode = "copy"
    if mode != run.mode:
        described = f"{info.format_name} source ({info.streams})" if info else "synthetic source"
        log.info("recording %s: %s: %s", run.recording_id, described, mode)
    run.mode = mode
    return mode


def _stop_asked(rt: Runtime, recording_id: str, check_sql: bool) -> bool:
    if check_sql:
        return recordings.stop_requested(rt, recording_id)
    try:
        return rt.jobs.stop_signalled(recording_id)
    except QueueError:  # Redis down: SQL is checked on the next slow tick
        return False


def _upload_closed(run: _Run, listing: SegmentList) -> bool:
    """Upload every closed, not yet uploaded segment in order. False when the lease is lost.

    A storage error leaves the rest in the spool for the next tick: an outage delays uploads, the
    recording goes on.
    """
    for closed in listing.closed():
        if not closed.path.exists():
            continue  # uploaded already
        try:
            if not _upload(run, closed):
                return False
        except StorageError as e:
            log.warning("recording %s: segment upload failed, will retry: %s", run.recording_id, e)
            break
    return True


def _upload(run: _Run, closed: ClosedSegment) -> bool:
    rt = run.rt
    seq = run.next_seq
    key = segments.object_key(run.recording_id, seq, run.owner)
    ended_at = datetime.fromtimestamp(closed.path.stat().st_mtime, UTC)  # its last cluster's flush
    stored, digest = rt.storage.put_file(key, closed.path, "video/x-matroska")
    segment = segments.NewSegment(seq, key, stored.size, digest, closed.duration, ended_at)
    if not segments.record_captured(rt, run.recording_id, run.owner, segment):
        rt.storage.delete_prefix(key)  # no row will ever name it: do not leave it behind
        return False
    if run.packer is not None:
        run.packer.add(seq, closed.path, closed.duration, digest)
    closed.path.unlink(missing_ok=True)
    run.next_seq = seq + 1
    return True


def _adopt_spooled(run: _Run) -> None:
    """Upload segments an earlier run on this machine closed but did not upload (it crashed)."""
    if not run.spool.exists():
        return
    for directory in sorted(p for p in run.spool.iterdir() if p.is_dir()):
        listing = SegmentList(directory)
        for closed in listing.closed():
            if closed.path.exists():
                _upload_patiently(run, closed)
        shutil.rmtree(directory, ignore_errors=True)


def _upload_patiently(run: _Run, closed: ClosedSegment) -> None:
    deadline = time.monotonic() + FINAL_UPLOAD_PATIENCE_SECONDS
    delay = 0.5
    while True:
        try:
            if not _upload(run, closed):
                raise LeaseLost()
            return
        except StorageError:
            if time.monotonic() > deadline:
                raise
            log.warning("recording %s: storage unavailable, retrying in %.1f s", run.recording_id, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _finish(run: _Run, outcome: Attempt) -> str:
    """Upload what is left, then move the recording to stopped (finalize is enqueued by that move)."""
    rt = run.rt
    try:
        _adopt_spooled(run)
    except LeaseLost:
        return "lease lost: another capture took over"
    seconds = segments.recorded_seconds(rt, run.recording_id)
    if seconds <= 0:
        reason = "nothing was recorded before the stop" if outcome.kind == Outcome.STOPPED else outcome.reason
        recordings.fail(rt, run.recording_id, reason or "nothing was recorded")
        return "failed: nothing recorded"
    moved = recordings.mark_stopped(
        rt,
        run.recording_id,
        seconds,
        reason=outcome.reason or None,
        gaps=run.gaps,
    )
    if moved:
        shutil.rmtree(run.spool, ignore_errors=True)
        return outcome.kind.value
    shutil.rmtree(run.spool, ignore_errors=True)
    if recordings.state_of(rt, run.recording_id) == RecordingState.DELETED:
        rt.storage.delete_prefix(recordings.object_prefix(run.recording_id))  # uploaded after the delete
    return "discarded: recording no longer started"


def _hand_over(run: _Run) -> str:
    """The worker shuts down: upload what ffmpeg closed (the open segment included, as `stop()` closed
    it), give the lease up and enqueue a new capture job; the recording stays started. A stop that came
    meanwhile is finished here instead."""
    rt = run.rt
    try:
        _adopt_spooled(run)
    except LeaseLost:
        return "lease lost: another capture took over"
    if recordings.stop_requested(rt, run.recording_id):
        return _finish(run, Attempt(Outcome.STOPPED))
    leases.release(rt, run.recording_id, run.owner)  # the next job need not wait for it to expire
    try:
        recordings.resume_capture(rt, run.recording_id)
    except Exception as e:  # noqa: BLE001 - Redis down: the reconciler re-enqueues it from SQL
        log.warning("recording %s: could not enqueue the next capture (%s)", run.recording_id, e)
    log.info(
        "recording %s: worker shutting down, capture handed over at segment %s",
        run.recording_id,
        run.next_seq,
    )
    return "handed over: the worker is shutting down"


RESUME_REASONS = {
    "handover": "the worker recording it shut down; another worker continued",
    "lost": "the capture was lost (its worker died or its job vanished) and resumed",
}


def _note_resume_gap(run: _Run) -> None:
    """Once, as a job that continues a recording starts recording: the time since the media of the
    earlier job ended (its last uploaded or adopted segment) is a gap of the recording, with why."""
    if not run.resuming:
        return
    why, run.resuming = RESUME_REASONS[run.resuming], ""
    ended = segments.last_ended_at(run.rt, run.recording_id)
    if ended is None:
        return  # the earlier job recorded nothing: the recording starts late, nothing is cut out of it
    seconds = round(max(0.0, (run.rt.now() - ended).total_seconds()), 3)
    run.gaps.append({"after_seq": run.next_seq - 1, "seconds": seconds, "reason": why})
    recordings.note_gaps(run.rt, run.recording_id, run.gaps)
    log.warning("recording %s: resumed after %.1f s without capture (%s)", run.recording_id, seconds, why)


def _wait_to_reconnect(run: _Run, reason: str) -> bool:
    """Wait before reconnecting, noting the gap; False when a stop (or a drain) came meanwhile."""
    log.warning("recording %s: capture interrupted (%s); reconnecting", run.recording_id, reason)
    deadline = time.monotonic() + RECONNECT_DELAY_SECONDS * min(run.attempts, 5)
    while time.monotonic() < deadline:
        if _stop_asked(run.rt, run.recording_id, check_sql=True) or run.draining.is_set():
            return False
        time.sleep(POLL_SECONDS)
    gap = round(time.monotonic() - run.lost_at, 3)
    run.gaps.append({"after_seq": run.next_seq - 1, "seconds": gap, "reason": reason[:300]})
    recordings.note_gaps(run.rt, run.recording_id, run.gaps)
    return True
