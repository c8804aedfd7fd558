"""Screenshots for interaction events, grabbed from the session's video at their timestamps.

Events that asked for a frame (by default the clicks of a session with video that came without a
screenshot) get one during finalize, from the assembled file on local disk, before the recording is
marked finished: a receiver of the `finished` webhook finds every screenshot in place. A finalize that
dies meanwhile is run again and grabs them again (same keys, so nothing doubles).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from app.errors import MediaError
from app.media import assemble
from app.runtime import Runtime
from app.services.interactions import event_store
from app.services.pipeline import timeline

log = logging.getLogger(__name__)


def grab_pending(
    rt: Runtime,
    recording_id: str,
    video: Path,
    spans: Sequence[Sequence[float]],
    duration: float,
    workdir: Path,
) -> tuple[int, int]:
    """Grab the frames the recording's events wait for from `video`; return how many were stored and
    how many events that asked for one were skipped over the bound.

    At most MEETREC_MAX_FRAME_GRABS of them (one ffmpeg run each), evenly spread over the events that
    asked (see `event_store.frames_to_grab`); the others keep no screenshot, and how many is logged.
    A frame ffmpeg cannot produce is logged and skipped (the event keeps no screenshot); a storage
    error propagates, so the finalize fails and is retried."""
    plan = event_store.frames_to_grab(rt, recording_id, rt.config.max_frame_grabs)
    if plan.skipped:
        log.warning(
            "recording %s: %d events asked for a frame; %d get none (MEETREC_MAX_FRAME_GRABS is %d)",
            recording_id,
            plan.wanted,
            plan.skipped,
            rt.config.max_frame_grabs,
        )
    grabbed = 0
    for event in plan.events:
        at = timeline.video_offset(spans, event.ts) or 0.0
        out = workdir / f"frame-{event.pk}.jpg"
        try:
            assemble.grab_frame(rt.config.ffmpeg_path, video, out, at, duration)
        except MediaError as e:
            log.warning("recording %s: no frame for event %s: %s", recording_id, event.event_id, e)
            continue
        key = event_store.screenshot_key(recording_id, event.event_id, "image/jpeg")
        rt.storage.put_file(key, out, "image/jpeg")
        if event_store.attach_screenshot(rt, event.pk, key):
            grabbed += 1
        out.unlink(missing_ok=True)
    return grabbed, plan.skipped
