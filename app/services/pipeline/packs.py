"""Packs: while a capture records, its segments become the final WebM's clusters, part by part.

Every segment a capture uploads is also rewritten onto the recording's timeline (app.media.webm_compose)
and appended to a local pack. A pack that reaches MEETREC_COMPOSE_PART_BYTES is shipped: the first is
only recorded (the finish uploads it behind the file's head, S3 wanting every part but the last to be at
least 5 MiB), the others are uploaded as parts 2, 3, ... of a multipart upload of the final object and
recorded in `media_packs`. The finish (app.services.pipeline.compose) then uploads two small parts and
completes the upload: no byte of the packed middle moves again, whatever the length.

Packing is an optimisation on top of the segments, which stay the recording's durable copy: a segment
that cannot be packed (a codec WebM cannot hold, a storage outage, a lost lease) never fails the capture.
A resumed capture first packs the segments an earlier attempt uploaded but did not pack (at most about a
pack's worth, fetched back from storage), so the packs stay contiguous across crashes.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, select, update

from app.db import affected
from app.errors import MediaError, StorageError
from app.media import webm_compose
from app.models import MediaPack, Recording, RecordingState, Segment
from app.runtime import Runtime
from app.services.core import recordings

log = logging.getLogger(__name__)

CONTENT_TYPE = "video/webm"


def final_key(recording_id: str) -> str:
    return f"{recordings.object_prefix(recording_id)}recording.webm"


def start_ms(durations: list[float]) -> int:
    """Where the segment after `durations` starts on the recording's timeline, in ms: exact (fsum), so
    the packer and the finish get the same number from the same rows."""
    return round(math.fsum(durations) * 1000)


def sources_digest(segments: list[tuple[int, str]]) -> str:
    """What a pack holds: a digest of its segments' (seq, SHA-256), compared with the rows at the finish."""
    digest = hashlib.sha256()
    for seq, sha256 in segments:
        digest.update(f"{seq}:{sha256};".encode())
    return digest.hexdigest()


def for_recording(rt: Runtime, recording_id: str) -> list[MediaPack]:
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(MediaPack)
                .where(MediaPack.recording_id == recording_id)
                .order_by(MediaPack.part_number)
            )
        )


def forget(rt: Runtime, recording_id: str) -> bool:
    """Drop a recording's pack rows: its finish used them (or went without), its digest is known (or
    given up). False when it had none left (another caller dropped them first)."""
    with rt.db.transaction() as s:
        return bool(affected(s, delete(MediaPack).where(MediaPack.recording_id == recording_id)))


def awaiting_digest(rt: Runtime, limit: int) -> list[str]:
    """Finished recordings whose object the store joined and whose SHA-256 is not known yet."""
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(MediaPack.recording_id)
                .join(Recording, Recording.id == MediaPack.recording_id)
                .where(
                    MediaPack.part_number == 1,
                    Recording.state == RecordingState.FINISHED,
                    Recording.sha256.is_(None),
                )
                .limit(limit)
            )
        )


@dataclass
class _Pending:
    part_number: int
    first_seq: int
    base_ms: int
    signature: str
    path: Path
    size: int = 0
    last_seq: int = 0
    cues: list[list[int]] = field(default_factory=list)
    sources: list[tuple[int, str]] = field(default_factory=list)


class Packer:
    """Packs one capture's segments in order; `add` after each segment is uploaded and recorded."""

    def __init__(self, rt: Runtime, recording_id: str, owner: str, spool: Path):
        self.rt, self.recording_id, self.owner = rt, recording_id, owner
        self.spool = spool
        self.part_bytes = rt.config.compose_part_bytes
        self.disabled: str | None = None  # why packing stopped for this capture
        self._loaded = False
        self._next_seq = 0
        self._durations: list[float] = []  # of every packed segment, in order
        self._last_part = 0
        self._upload_id: str | None = None
        self._pending: _Pending | None = None

    def add(self, seq: int, path: Path, duration: float, sha256: str) -> None:
        """Pack segment `seq` (uploaded and recorded already); never raises: packing only saves time."""
        if self.disabled:
            return
        try:
            self._load()
            if seq < self._next_seq:
                return  # packed already (an adopted segment a resumed capture uploaded again)
            self._catch_up(seq)
            self._append(seq, path.read_bytes(), duration, sha256)
        except (MediaError, OSError) as e:
            self._disable(f"segment {seq} cannot be packed: {e}")
        except StorageError as e:  # the segment is stored; the next one tries again
            log.warning("recording %s: packing waits for storage: %s", self.recording_id, e)

    def _load(self) -> None:
        if self._loaded:
            return
        packs = for_recording(self.rt, self.recording_id)
        if packs:
            self._last_part = packs[-1].part_number
            self._next_seq = packs[-1].last_seq + 1
            self._upload_id = next((p.upload_id for p in packs if p.upload_id), None)
            with self.rt.db.read() as s:
                self._durations = [
                    d or 0.0
                    for d in s.scalars(
                        select(Segment.duration)
                        .where(Segment.recording_id == self.recording_id, Segment.seq < self._next_seq)
                        .order_by(Segment.seq)
                    )
                ]
        self._loaded = True

    def _catch_up(self, seq: int) -> None:
        """Pack the recorded segments before `seq` that are not packed yet (an earlier attempt's)."""
        if seq == self._next_seq:
            return
        with self.rt.db.read() as s:
            missed = list(
                s.scalars(
                    select(Segment)
                    .where(
                        Segment.recording_id == self.recording_id,
                        Segment.seq >= self._next_seq,
                        Segment.seq < seq,
                    )
                    .order_by(Segment.seq)
                )
            )
        for segment in missed:
            if segment.duration is None:
                raise MediaError(f"segment {segment.seq} has no duration")
            data = self.rt.storage.get_bytes(segment.object_key)
            self._append(segment.seq, data, segment.duration, segment.sha256)

    def _append(self, seq: int, data: bytes, duration: float, sha256: str) -> None:
        base = start_ms(self._durations)
        clusters = webm_compose.rewrite_segment(data, base)
        pending = self._pending
        if pending is None:
            number = self._last_part + 1
            pending = _Pending(number, seq, base, clusters.signature, self.spool / f"pack-{number:05d}.part")
            pending.path.unlink(missing_ok=True)
            self._pending = pending
        elif clusters.signature != pending.signature:
            raise webm_compose.NotComposable("the tracks changed between segments")
        with pending.path.open("ab") as f:
            f.write(clusters.data)
        pending.cues += [[time, pending.size + at] for time, at in clusters.cues]
        pending.size += len(clusters.data)
        pending.last_seq = seq
        pending.sources.append((seq, sha256))
        self._durations.append(duration)
        self._next_seq = seq + 1
        if pending.size >= self.part_bytes:
            self._ship(pending)

    def _ship(self, pending: _Pending) -> None:
        """Upload a full pack as its part (part 1 waits for the finish) and record it, lease permitting."""
        etag: str | None = None
        if pending.part_number > 1:
            key = final_key(self.recording_id)
            if self._upload_id is None:
                self._upload_id = self.rt.storage.create_upload(key, CONTENT_TYPE)
            etag = self.rt.storage.upload_part(
                key, self._upload_id, pending.part_number, pending.path.read_bytes()
            )
        row = MediaPack(
            recording_id=self.recording_id,
            part_number=pending.part_number,
            first_seq=pending.first_seq,
            last_seq=pending.last_seq,
            base_ms=pending.base_ms,
            size=pending.size,
            sources=sources_digest(pending.sources),
            signature=pending.signature,
            upload_id=self._upload_id if etag else None,
            etag=etag,
            cues=pending.cues,
        )
        if not self._record(row):
            self._disable("the capture lost its lease")
            return
        pending.path.unlink(missing_ok=True)
        self._last_part = pending.part_number
        self._pending = None

    def _record(self, row: MediaPack) -> bool:
        with self.rt.db.transaction() as s:
            held = affected(
                s,
                update(Recording)
                .where(
                    Recording.id == self.recording_id,
                    Recording.lease_owner == self.owner,
                    Recording.state == RecordingState.STARTED,
                )
                .values(
                    lease_expires_at=self.rt.now() + timedelta(seconds=self.rt.config.capture_lease_seconds)
                ),
            )
            if held:
                s.add(row)
        return bool(held)

    def _disable(self, reason: str) -> None:
        log.info("recording %s: packing stops (the finish remuxes instead): %s", self.recording_id, reason)
        self.disabled = reason
        if self._pending is not None:
            self._pending.path.unlink(missing_ok=True)
            self._pending = None
