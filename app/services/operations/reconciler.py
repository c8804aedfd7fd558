"""The reconciler: rebuild lost work from SQL, so no recording gets stuck.

SQL is the truth and Redis only carries work. Work in progress holds the recording's lease (renewed every
few seconds), so "is anyone on it?" is a column read: a live lease means yes. Each pass:

- a `started` pull recording nobody holds (lease expired, or never taken and no job waiting for a
  worker) gets a new capture job, which resumes into new segments; after `MEETREC_MAX_RECONNECTS` lost
  captures it fails with the reason;
- a `stopped` recording nobody finalizes, and whose finalize job is not waiting, gets a finalize job;
- a recording finished by joining its parts in the store whose SHA-256 is still unknown, and whose
  digest job is neither waiting nor running, gets a digest job; one whose digest job RQ gave up on (it
  failed on every retry) keeps no SHA-256: its pack rows go, and one ERROR says so;
- a recording running past the maximum duration (plus a minute) is stopped;
- a pushed or events-only recording whose stop was asked for but never carried out (the api died between
  the two steps of its stop) is stopped now; a capture carries out its own stop.

After Redis restarts empty, one pass re-enqueues everything in flight. Safe to run concurrently with
itself and with the jobs: leases make duplicate jobs harmless, and transitions are conditional.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from app.db import affected
from app.models import Ingest, Recording, RecordingState
from app.queueing import DIGEST, JobState
from app.runtime import Runtime
from app.services.core import recordings
from app.services.interactions import replays
from app.services.pipeline import finalize, packs

log = logging.getLogger(__name__)

S = RecordingState
WAITING = {"queued", "scheduled", "deferred"}  # a job that a worker will pick up
BATCH = 500
OVERDUE_SLACK_SECONDS = 60
# A stop request older than this on a recording without a capture was left half-done.
STOP_SLACK_SECONDS = 10


@dataclass
class Report:
    captures_resumed: int = 0
    captures_failed: int = 0
    finalizes_enqueued: int = 0
    digests_enqueued: int = 0
    digests_given_up: int = 0
    overdue_stopped: int = 0
    stops_completed: int = 0
    idle_replays_finished: int = 0


def reconcile(rt: Runtime) -> Report:
    """One pass over the recordings in flight; returns what it did."""
    report = Report()
    _stop_overdue(rt, report)
    _complete_stops(rt, report)
    _revive_captures(rt, report)
    _revive_finalizes(rt, report)
    _revive_digests(rt, report)
    report.idle_replays_finished = len(replays.finish_idle(rt, rt.config.replay_idle_seconds))
    if any(vars(report).values()):  # each action is logged where it is taken: this is the tally
        log.debug("reconcile: %s", report)
    return report


def _unheld(now: datetime):
    return or_(Recording.lease_owner.is_(None), Recording.lease_expires_at < now)


def _revive_captures(rt: Runtime, report: Report) -> None:
    now = rt.now()
    grace = now - timedelta(seconds=rt.config.capture_lease_seconds)
    with rt.db.read() as s:
        rows = s.execute(
            select(Recording.id, Recording.job_id, Recording.lease_owner, Recording.capture_losses)
            .where(
                Recording.state == S.STARTED,
                Recording.ingest == "pull",
                _unheld(now),
                Recording.created_at < grace,  # a job just enqueued has a moment to take its lease
            )
            .limit(BATCH)
        ).all()
    for row in rows:
        job = rt.jobs.job(row.job_id)
        status = job.status if job else None
        if status in WAITING or (status == "started" and row.lease_owner is None and not _stale(rt, job)):
            continue  # a worker will take it, or has just taken it
        if row.capture_losses >= rt.config.max_reconnects:
            if recordings.fail(rt, row.id, f"the capture was lost {row.capture_losses + 1} times; giving up"):
                report.captures_failed += 1
            continue
        if _count_loss(rt, row.id, row.capture_losses) and recordings.resume_capture(rt, row.id):
            log.warning("recording %s: capture lost (job %s: %s); resumed", row.id, row.job_id, status)
            report.captures_resumed += 1


def _revive_finalizes(rt: Runtime, report: Report) -> None:
    now = rt.now()
    with rt.db.read() as s:
        ids = s.scalars(
            select(Recording.id)
            .where(
                Recording.state == S.STOPPED,
                _unheld(now),
                Recording.stopped_at < now - timedelta(seconds=5),
            )
            .limit(BATCH)
        ).all()
    for recording_id in ids:
        job_id = recordings.finalize_job_id(recording_id)
        if rt.jobs.job_status(job_id) in WAITING:
            continue
        rt.jobs.forget_job(job_id)  # so the same id can be enqueued again
        recordings.enqueue_finalize(rt, recording_id)
        log.warning("recording %s: finalize lost; enqueued again", recording_id)
        report.finalizes_enqueued += 1


def _revive_digests(rt: Runtime, report: Report) -> None:
    """A recording joined in the store whose digest job was lost (Redis lost it, or refused it) gets one
    again. One whose job failed on every retry is given up: run again, it would fail again, every pass.
    The recording stays finished and playable, its SHA-256 unknown (null, as the API allows), and its
    pack rows go, so it is no longer awaiting a digest; the failed job stays in RQ's failed registry
    (DIGEST's failure TTL) with its exception, which the worker's log also holds."""
    for recording_id in packs.awaiting_digest(rt, BATCH):
        job_id = finalize.digest_job_id(recording_id)
        status = rt.jobs.job_status(job_id)
        if status in {*WAITING, "started"}:
            continue
        if status == "failed":
            if packs.forget(rt, recording_id):  # once, even when two passes run at the same time
                log.error(
                    "recording %s: its SHA-256 stays unknown: digest job %s failed on every retry "
                    "(its exception is in the worker's log and RQ's failed registry)",
                    recording_id,
                    job_id,
                )
                report.digests_given_up += 1
            continue
        rt.jobs.forget_job(job_id)
        rt.jobs.enqueue(DIGEST, recording_id, job_id=job_id)
        log.warning("recording %s: digest %s; enqueued again", recording_id, status or "lost")
        report.digests_enqueued += 1


def _stop_overdue(rt: Runtime, report: Report) -> None:
    limit = rt.now() - timedelta(seconds=rt.config.max_recording_seconds + OVERDUE_SLACK_SECONDS)
    with rt.db.read() as s:
        ids = s.scalars(
            select(Recording.id)
            .where(
                Recording.state == S.STARTED,
                Recording.stop_requested_at.is_(None),
                Recording.created_at < limit,
            )
            .limit(BATCH)
        ).all()
    for recording_id in ids:
        recordings.stop_recording(rt, recording_id, reason="the maximum recording duration was reached")
        report.overdue_stopped += 1


def _complete_stops(rt: Runtime, report: Report) -> None:
    asked_before = rt.now() - timedelta(seconds=STOP_SLACK_SECONDS)
    with rt.db.read() as s:
        ids = s.scalars(
            select(Recording.id)
            .where(
                Recording.state == S.STARTED,
                Recording.ingest.in_([Ingest.PUSH, Ingest.NONE]),
                Recording.stop_requested_at < asked_before,
            )
            .limit(BATCH)
        ).all()
    for recording_id in ids:
        recordings.stop_recording(rt, recording_id)  # idempotent: the transitions are conditional
        log.warning("recording %s: its stop was left half-done; completed", recording_id)
        report.stops_completed += 1


def _count_loss(rt: Runtime, recording_id: str, seen: int) -> bool:
    """Count one more lost capture; False when another reconciler pass counted it first."""
    with rt.db.transaction() as s:
        return bool(
            affected(
                s,
                update(Recording)
                .where(Recording.id == recording_id, Recording.capture_losses == seen)
                .values(capture_losses=seen + 1),
            )
        )


def _stale(rt: Runtime, job: JobState | None) -> bool:
    """A started job whose heartbeat stopped: its worker died (RQ notices only much later)."""
    if job is None:
        return True
    beat = job.last_beat
    if beat is None:
        return False
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=rt.now().tzinfo)
    return rt.now() - beat > timedelta(seconds=max(90, 3 * rt.config.capture_lease_seconds))
