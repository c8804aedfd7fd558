"""A pushed recording's length at its stop: the media's, read off its chunks' block timestamps.

The stop reads the stream's first chunks (up to the first frame) and its last ones (back to the last
Cluster, which MediaRecorder starts at least every 32.7 s), never the whole recording, and decodes
nothing. Finalize measures the remuxed file and keeps this value when they agree (see
`app.services.pipeline.finalize`), so the duration is the same at stop and at finish.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select

from app.errors import StorageError
from app.media.webm_clock import stream_end, stream_start
from app.models import Segment
from app.runtime import Runtime

log = logging.getLogger(__name__)

HEAD_BYTES = 1 << 20  # the EBML header, Tracks and the first frame are a few kilobytes
TAIL_BYTES = 32 << 20  # a last Cluster of 32.7 s at 8 Mbit/s; past it the stream is not MediaRecorder's


def media_seconds(rt: Runtime, recording_id: str) -> float | None:
    """Seconds of media in a push recording's stored chunks; None when they do not read as a live WebM
    stream (or storage fails): the caller then estimates."""
    with rt.db.read() as s:
        keys = list(
            s.scalars(
                select(Segment.object_key).where(Segment.recording_id == recording_id).order_by(Segment.seq)
            )
        )
    fetched: dict[int, bytes] = {}

    def chunk(i: int) -> bytes:
        if i not in fetched:
            fetched[i] = rt.storage.get_bytes(keys[i])
        return fetched[i]

    try:
        return _seconds(keys, chunk)
    except StorageError as e:
        log.warning("recording %s: chunks unreadable at stop (%s); duration estimated", recording_id, e)
        return None


def _seconds(keys: list[str], chunk: Callable[[int], bytes]) -> float | None:
    head, i = b"", 0
    while i < len(keys) and len(head) < HEAD_BYTES:
        head += chunk(i)
        i += 1
    start = stream_start(head)
    if start is None:
        return None
    scale, first = start
    tail = b""
    for j in reversed(range(len(keys))):
        tail = chunk(j) + tail
        end = stream_end(tail)
        if end is not None:
            return max(0, end - first) * scale / 1e9
        if len(tail) > TAIL_BYTES:
            break
    return None
