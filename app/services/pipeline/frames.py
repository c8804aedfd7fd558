"""Screenshots for interaction events, grabbed from the session's video at their timestamps.

Events that asked for a frame (by default the clicks of a session with video that came without a
screenshot) get one during finalize, before the recording is marked finished: a receiver of the
`finished` webhook finds every screenshot in place. The video is read once (app.media.frames: one
decode pass in time order, seeking over long stretches without targets), from local disk or from a
presigned URL, and the JPEGs go from memory to storage on a few threads while the decoder runs on. A
finalize that dies meanwhile is run again and grabs them again (same keys, so nothing doubles).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

from app.errors import MediaError
from app.media import frames as media_frames
from app.runtime import Runtime
from app.services.interactions import event_store
from app.services.interactions.event_store import StoredEvent
from app.services.pipeline import timeline

log = logging.getLogger(__name__)

# Puts of ~50-150 KB JPEGs are round trips, not bandwidth: a few at once keep the decoder ahead.
UPLOAD_THREADS = 4
UPLOADS_IN_FLIGHT = 16  # bounds the JPEGs held in memory
JPEG = "image/jpeg"


def grab_pending(
    rt: Runtime,
    recording_id: str,
    video: Path | str,
    spans: Sequence[Sequence[float]],
    duration: float,
    workdir: Path,
) -> tuple[int, int]:
    """Grab the frames the recording's events wait for from `video` (a local file, or an http(s) URL
    such as a presigned GET of the final object); return how many were stored and how many events
    that asked for one were skipped over the bound.

    At most MEETREC_MAX_FRAME_GRABS of them, evenly spread over the events that asked (see
    `event_store.frames_to_grab`), all from one pass over the video; the others keep no screenshot,
    and how many is logged. A frame that cannot be produced is logged and skipped (the event keeps no
    screenshot); a storage error propagates, so the finalize fails and is retried. `workdir` is not
    used: the frames never touch the disk."""
    plan = event_store.frames_to_grab(rt, recording_id, rt.config.max_frame_grabs)
    if plan.skipped:
        log.warning(
            "recording %s: %d events asked for a frame; %d get none (MEETREC_MAX_FRAME_GRABS is %d)",
            recording_id,
            plan.wanted,
            plan.skipped,
            rt.config.max_frame_grabs,
        )
    if not plan.events:
        return 0, plan.skipped
    times = [timeline.video_offset(spans, event.ts) or 0.0 for event in plan.events]
    answered: set[int] = set()
    grabbed, failure = 0, None
    with closing(media_frames.grab_jpegs(video, times, duration)) as grabs:
        try:
            grabbed = _store(rt, recording_id, plan.events, _noting(grabs, answered))
        except MediaError as e:  # the video failed part way: the frames stored so far stand
            failure = e
    _log_missing(recording_id, [e for i, e in enumerate(plan.events) if i not in answered], failure)
    return grabbed, plan.skipped


def _noting(grabs: Iterable[media_frames.Grab], answered: set[int]) -> Iterable[media_frames.Grab]:
    for grab in grabs:
        answered.update(grab.indices)
        yield grab


def _store(
    rt: Runtime, recording_id: str, events: list[StoredEvent], grabs: Iterable[media_frames.Grab]
) -> int:
    """Upload each grab under its events' screenshot keys and point the events at them; how many
    events got one. Puts run on a pool; the database writes stay on this thread."""
    stored = 0
    with ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="frames") as pool:
        puts: deque[tuple[StoredEvent, Future[str]]] = deque()
        try:
            for grab in grabs:
                for i in grab.indices:
                    event = events[i]
                    puts.append((event, pool.submit(_put, rt, recording_id, event, grab.jpeg)))
                while len(puts) > UPLOADS_IN_FLIGHT:
                    stored += _attach(rt, *puts.popleft())
        finally:  # after a media failure too: what was decoded is stored; a StorageError propagates
            while puts:
                stored += _attach(rt, *puts.popleft())
    return stored


def _put(rt: Runtime, recording_id: str, event: StoredEvent, jpeg: bytes) -> str:
    key = event_store.screenshot_key(recording_id, event.event_id, JPEG)
    rt.storage.put_bytes(key, jpeg, JPEG)
    return key


def _attach(rt: Runtime, event: StoredEvent, put: Future[str]) -> int:
    return int(event_store.attach_screenshot(rt, event.pk, put.result()))


def _log_missing(recording_id: str, missing: list[StoredEvent], failure: MediaError | None) -> None:
    if not missing:
        return
    shown = ", ".join(e.event_id for e in missing[:5]) + (", ..." if len(missing) > 5 else "")
    reason = str(failure) if failure is not None else "the video has no frame there"
    log.warning("recording %s: no frame for %d events (%s): %s", recording_id, len(missing), shown, reason)
