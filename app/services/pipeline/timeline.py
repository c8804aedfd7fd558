"""Where wall-clock time lands in a recording's final video, so interaction events line up with it.

A pull capture uploads each segment as it closes, so a segment's row time is (within an upload's
latency) the wall time its media ends. Consecutive segments form one span; a reconnect gap, which the
final video skips, starts a new one. A pushed recording is one span from its start: the meeting app's
recorder does not say when its first chunk began.

A timeline is `[[wall_start_unix, video_start, seconds], ...]`, stored on the recording at finalize.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.models import Ingest, Recording, Segment

# Segments whose estimated start is within this of the previous one's end belong to the same span.
CONTIGUOUS_SECONDS = 0.75

Span = list[float]


def from_segments(recording: Recording, parts: Sequence[Segment], duration: float) -> list[Span]:
    """The timeline of a recording assembled from `parts` into a video of `duration` seconds."""
    if recording.ingest != Ingest.PULL or any(p.duration is None for p in parts):
        return [[recording.created_at.timestamp(), 0.0, duration]]
    spans: list[Span] = []
    video = 0.0
    for part in parts:
        seconds = float(part.duration or 0.0)
        start = part.created_at.timestamp() - seconds
        last = spans[-1] if spans else None
        if last is not None and abs(start - (last[0] + last[2])) <= CONTIGUOUS_SECONDS:
            last[2] += seconds
        else:
            spans.append([start, video, seconds])
        video += seconds
    return [[round(a, 3), round(b, 3), round(c, 3)] for a, b, c in spans]


def video_offset(timeline: Sequence[Sequence[float]] | None, ts: float) -> float | None:
    """Seconds into the video where wall time `ts` (Unix seconds) was recorded; None without a video.

    A moment inside a gap maps to where the video resumes; before the start to 0; after the end to the
    end."""
    if not timeline:
        return None
    for wall, video, seconds in timeline:
        if ts < wall:
            return round(video, 3)
        if ts <= wall + seconds:
            return round(video + (ts - wall), 3)
    wall, video, seconds = timeline[-1]
    return round(video + seconds, 3)
