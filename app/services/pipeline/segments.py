"""Segments: the pieces of a recording's media stored while it records.

A pull capture's segments are written only by the lease holder, in the same transaction that proves it
still holds the lease. Push chunks are idempotent per sequence number: the same bytes again are a no-op,
other bytes for a stored number are a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.db import affected
from app.errors import ChunksClosed, SegmentConflict
from app.models import Recording, RecordingState, Segment
from app.runtime import Runtime

STARTED = RecordingState.STARTED


@dataclass(frozen=True)
class NewSegment:
    seq: int
    object_key: str
    size: int
    sha256: str
    duration: float | None
    # When its media ended (a capture segment's close); None: now. The row keeps it as `created_at`,
    # which the timeline and the gap of a resumed capture read as the wall time the media ends.
    ended_at: datetime | None = None


def prefix(recording_id: str) -> str:
    return f"recordings/{recording_id}/segments/"


def object_key(recording_id: str, seq: int, writer: str, extension: str = "mkv") -> str:
    """Where segment `seq` goes. The writer is part of the key, so a capture that lost its lease can
    never overwrite the object of the job that took the lease over."""
    return f"{prefix(recording_id)}{seq:06d}-{writer[:12]}.{extension}"


def record_captured(rt: Runtime, recording_id: str, owner: str, segment: NewSegment) -> bool:
    """Record an uploaded capture segment if `owner` still holds the lease (renewing it); else False."""
    with rt.db.transaction() as s:
        held = affected(
            s,
            update(Recording)
            .where(Recording.id == recording_id, Recording.lease_owner == owner, Recording.state == STARTED)
            .values(lease_expires_at=rt.now() + timedelta(seconds=rt.config.capture_lease_seconds)),
        )
        if not held:
            return False
        s.add(_row(rt, recording_id, segment))
    return True


def record_pushed(rt: Runtime, recording_id: str, segment: NewSegment) -> bool:
    """Record a pushed chunk while the recording takes chunks; True when stored now, False when the same
    chunk was already stored.

    Raises `ChunksClosed` when a stop was requested first, `SegmentConflict` when that number holds
    other bytes. The row is written in the transaction that proves the recording still takes chunks,
    under the recording row's write lock (a no-op UPDATE takes it): a stop's UPDATE waits for it, so
    every chunk recorded here is committed before the stop is, and the stop sees it.
    """
    try:
        with rt.db.transaction() as s:
            taking = affected(
                s,
                update(Recording)
                .where(
                    Recording.id == recording_id,
                    Recording.state == STARTED,
                    Recording.stop_requested_at.is_(None),
                )
                .values(state=STARTED),
            )
            if not taking:
                raise ChunksClosed("the recording takes no more chunks: a stop was requested")
            s.add(_row(rt, recording_id, segment))
            s.flush()  # the unique (recording, seq) check, inside the transaction
        return True
    except IntegrityError:
        existing = find(rt, recording_id, segment.seq)
        if existing is not None and existing.sha256 == segment.sha256:
            return False
        raise SegmentConflict(f"chunk {segment.seq} was already stored with other content") from None


def find(rt: Runtime, recording_id: str, seq: int) -> Segment | None:
    with rt.db.read() as s:
        return s.scalar(select(Segment).where(Segment.recording_id == recording_id, Segment.seq == seq))


def for_recording(rt: Runtime, recording_id: str) -> list[Segment]:
    """A recording's segments in order."""
    with rt.db.read() as s:
        return list(
            s.scalars(select(Segment).where(Segment.recording_id == recording_id).order_by(Segment.seq))
        )


def next_seq(rt: Runtime, recording_id: str) -> int:
    with rt.db.read() as s:
        current = s.scalar(select(func.max(Segment.seq)).where(Segment.recording_id == recording_id))
    return 0 if current is None else current + 1


def last_ended_at(rt: Runtime, recording_id: str) -> datetime | None:
    """When the media of the recording's latest segment ended (None before the first)."""
    with rt.db.read() as s:
        return s.scalar(
            select(Segment.created_at)
            .where(Segment.recording_id == recording_id)
            .order_by(Segment.seq.desc())
            .limit(1)
        )


def recorded_seconds(rt: Runtime, recording_id: str) -> float:
    with rt.db.read() as s:
        return float(
            s.scalar(
                select(func.coalesce(func.sum(Segment.duration), 0.0)).where(
                    Segment.recording_id == recording_id
                )
            )
        )


def _row(rt: Runtime, recording_id: str, segment: NewSegment) -> Segment:
    return Segment(
        recording_id=recording_id,
        seq=segment.seq,
        object_key=segment.object_key,
        size=segment.size,
        sha256=segment.sha256,
        duration=segment.duration,
        created_at=segment.ended_at or rt.now(),
    )
