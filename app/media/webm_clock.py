"""How long a live WebM stream (MediaRecorder's) is, from its block timestamps, without decoding it.

A live stream has no Duration: its length is where its last frame ends less where its first begins.
`stream_seconds` reads that off the stream's head (the EBML header through the first blocks) and its
tail (the last Cluster to the end), so a stop can learn a pushed recording's length from a few chunks.
A frame ends at its BlockDuration when it has one, else one frame interval (the gap to the track's
previous frame) after it starts: the end ffmpeg's Matroska muxer writes as the remuxed file's Duration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.media import ebml

_EBML, _SEGMENT, _INFO, _TIMESTAMP_SCALE = 0x1A45DFA3, 0x18538067, 0x1549A966, 0x2AD7B1
_CLUSTER, _TIMECODE, _SIMPLE_BLOCK, _BLOCK_GROUP, _BLOCK, _BLOCK_DURATION = (
    0x1F43B675, 0xE7, 0xA3, 0xA0, 0xA1, 0x9B,
)  # fmt: skip
# Level-1 elements: one of them ends a Cluster of unknown size.
_TOP_LEVEL = {_CLUSTER, _INFO, 0x114D9B74, 0x1654AE6B, 0x1C53BB6B, 0x1254C367, 0x1043A770, 0x1941A469}
CLUSTER_ID = _CLUSTER.to_bytes(4, "big")


@dataclass
class _Clock:
    """Block timestamps seen, in the stream's timestamp units."""

    first: int | None = None
    ends: dict[int, int] = field(default_factory=dict)  # track -> where its last frame ends
    last: dict[int, int] = field(default_factory=dict)  # track -> its last frame's start

    def block(self, track: int, ts: int, duration: int | None) -> None:
        self.first = ts if self.first is None else min(self.first, ts)
        previous = self.last.get(track)
        step = duration if duration is not None else (ts - previous if previous is not None else 0)
        self.last[track] = ts
        self.ends[track] = max(self.ends.get(track, ts), ts + max(step, 0))


def stream_seconds(head: bytes, tail: bytes) -> float | None:
    """Seconds from the first frame of `head` (a stream's first bytes) to the end of the last frame of
    `tail` (its last bytes, from before its last Cluster to the end); None when either is unreadable.
    `head` and `tail` may be the same bytes (a short stream)."""
    start, end = stream_start(head), stream_end(tail)
    if start is None or end is None:
        return None
    scale, first = start
    return max(0, end - first) * scale / 1e9


def stream_start(head: bytes) -> tuple[int, int] | None:
    """(timestamp scale in ns, the first frame's timestamp) from a stream's first bytes; None when they
    are not a WebM stream's start or end before its first frame."""
    try:
        scale, first = _head(head)
    except ValueError:
        return None
    return None if first is None else (scale, first)


def stream_end(tail: bytes) -> int | None:
    """Where the stream's last frame ends (timestamp units) from its last bytes; None when they hold no
    Cluster header that reads to their end (take more bytes from before them)."""
    return _tail(tail)


def _head(data: bytes) -> tuple[int, int | None]:
    """(timestamp scale in ns, the first block's timestamp) from a stream's first bytes."""
    pos, (ident, size) = ebml.header_at(data, 0)
    if ident != _EBML or size is None:
        raise ValueError("no EBML header")
    pos, (ident, _) = ebml.header_at(data, pos + size)
    if ident != _SEGMENT:
        raise ValueError("no Segment")
    scale = 1_000_000
    while pos < len(data):
        at, (ident, size) = ebml.header_at(data, pos)
        if ident == _CLUSTER:
            clock = _Clock()
            _cluster(data, at, size, clock, first_only=True)
            return scale, clock.first
        if size is None:
            raise ValueError("an element of unknown size before the first Cluster")
        if ident == _INFO:
            scale = _info_scale(data[at : at + size]) or scale
        pos = at + size
    return scale, None


def _tail(data: bytes) -> int | None:
    """Where the last frame ends, from bytes that hold the stream's last Cluster header; None when
    they hold none that reads to the end."""
    candidate = len(data)
    while (candidate := data.rfind(CLUSTER_ID, 0, candidate)) >= 0:
        clock = _Clock()
        try:
            _clusters(data, candidate, clock)
        except ValueError:
            continue  # those four bytes were media, not a Cluster: look further back
        if clock.ends:
            return max(clock.ends.values())
    return None


def _clusters(data: bytes, pos: int, clock: _Clock) -> None:
    """Walk Clusters from `pos` to the end of `data`; ValueError when it is not a Cluster there."""
    while pos < len(data):
        at, (ident, size) = ebml.header_at(data, pos)
        if ident != _CLUSTER and not clock.ends:
            raise ValueError("not a Cluster")
        if ident == _CLUSTER:
            pos = _cluster(data, at, size, clock)
        elif ident in _TOP_LEVEL and size is not None:
            pos = at + size  # Cues or Tags after the last Cluster
        else:
            raise ValueError("not a level-1 element")


def _cluster(data: bytes, pos: int, size: int | None, clock: _Clock, *, first_only: bool = False) -> int:
    """Read one Cluster's blocks into `clock`; return where the Cluster ends (or `data` does)."""
    end = len(data) if size is None else min(len(data), pos + size)
    at, (ident, length) = ebml.header_at(data, pos)
    if ident != _TIMECODE or length is None or length > 8:
        raise ValueError("a Cluster starts with its Timecode")
    base = int.from_bytes(data[at : at + length], "big")
    pos = at + length
    while pos < end:
        try:
            at, (ident, length) = ebml.header_at(data, pos)
        except ValueError:
            if size is None and pos + 12 > end:
                return end  # the stream ends inside an element header
            raise
        if size is None and ident in _TOP_LEVEL:
            return pos  # a Cluster of unknown size ends where the next level-1 element starts
        if length is None:
            raise ValueError("an element of unknown size inside a Cluster")
        if ident == _SIMPLE_BLOCK:
            _block(data[at : at + length], base, None, clock)
        elif ident == _BLOCK_GROUP:
            _group(data[at : at + length], base, clock)
        if first_only and clock.first is not None:
            return end
        pos = at + length
    return end


def _group(body: bytes, base: int, clock: _Clock) -> None:
    block, duration, pos = None, None, 0
    while pos < len(body):
        at, (ident, length) = ebml.header_at(body, pos)
        if length is None:
            raise ValueError("an element of unknown size inside a BlockGroup")
        if ident == _BLOCK:
            block = body[at : at + length]
        elif ident == _BLOCK_DURATION:
            duration = int.from_bytes(body[at : at + length], "big")
        pos = at + length
    if block is not None:
        _block(block, base, duration, clock)


def _block(body: bytes, base: int, duration: int | None, clock: _Clock) -> None:
    """A (Simple)Block: its track number, then its timestamp relative to the Cluster's (int16)."""
    if len(body) < 4:
        return  # cut short by the end of the bytes: its timestamp may be cut too
    track, length = ebml.vint_at(body, 0)
    if len(body) < length + 3:
        return
    relative = int.from_bytes(body[length : length + 2], "big", signed=True)
    clock.block(track & ((1 << (7 * length)) - 1), base + relative, duration)


def _info_scale(body: bytes) -> int | None:
    pos = 0
    while pos < len(body):
        at, (ident, length) = ebml.header_at(body, pos)
        if length is None:
            return None
        if ident == _TIMESTAMP_SCALE:
            return int.from_bytes(body[at : at + length], "big") or None
        pos = at + length
    return None
