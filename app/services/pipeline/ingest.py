"""Push ingest: the meeting app uploads its own media (MediaRecorder WebM chunks) while it records.

Chunks are pieces of one byte stream, numbered by the client from 0. A chunk is stored as its own object
and row at once; sending the same bytes again for a number is a no-op (a retry after a lost response),
other bytes for a stored number are a conflict. Stop closes the recording to chunks; finalize joins the
bytes in order and remuxes them into a seekable WebM.

Acknowledged means in the recording: a chunk is answered 201 only once its row is committed in the
transaction that proves no stop came first (`segments.record_pushed`), and a stop sees every such row.
A chunk that loses that race to a stop is refused (409) and its object removed: the meeting app should
send the stop after the last chunk's answer.
"""

from __future__ import annotations

import hashlib

from app.errors import ChunksClosed, Conflict, SegmentConflict
from app.models import Ingest, Recording, RecordingState
from app.runtime import Runtime
from app.services.core import recordings
from app.services.pipeline import segments

MAX_SEQ = 10_000_000


def put_chunk(rt: Runtime, project_id: str, recording_id: str, seq: int, data: bytes) -> tuple[bool, str]:
    """Store chunk `seq`; return (stored now, sha256). 404 unknown, 409 not taking chunks or conflict.

    The same bytes again for a stored number answer (False, sha256) even after the stop: a retry of a
    chunk whose answer was lost learns that it is in the recording.
    """
    recording = recordings.get(rt, project_id, recording_id)
    if recording.ingest != Ingest.PUSH:
        raise Conflict("this recording captures its media source; it takes no uploaded chunks")
    digest = hashlib.sha256(data).hexdigest()
    existing = segments.find(rt, recording_id, seq)
    if existing is not None:
        if existing.sha256 == digest:
            return False, digest
        raise Conflict(f"chunk {seq} was already stored with other content")
    if recording.state != RecordingState.STARTED or recording.stop_requested_at is not None:
        raise ChunksClosed(f"the recording is {_state(recording)}; it takes no more chunks")
    # The digest is part of the key: two racing uploads of different bytes never share an object.
    key = segments.object_key(recording_id, seq, digest, "webm")
    stored = rt.storage.put_bytes(key, data, "video/webm")
    try:
        created = segments.record_pushed(
            rt, recording_id, segments.NewSegment(seq, key, stored.size, digest, None)
        )
    except SegmentConflict:
        rt.storage.delete_prefix(key)  # another upload won the number with other bytes: ours is unused
        raise
    except ChunksClosed:
        return _refused(rt, recording_id, seq, key, digest)
    return created, digest


def _refused(rt: Runtime, recording_id: str, seq: int, key: str, digest: str) -> tuple[bool, str]:
    """A stop came between the check and the row: the chunk is not in the recording, and its object
    goes, unless an upload of the same bytes was recorded before the stop (it shares the key)."""
    existing = segments.find(rt, recording_id, seq)
    if existing is not None and existing.sha256 == digest:
        return False, digest
    rt.storage.delete_prefix(key)
    raise ChunksClosed("the recording was stopped while this chunk was uploaded; it is not part of it")


def _state(recording: Recording) -> str:
    return "stopping" if recording.state == RecordingState.STARTED else recording.state
