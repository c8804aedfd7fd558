"""Compose one seekable WebM from capture segments by moving bytes, not by running ffmpeg.

A capture segment is a Matroska file of its own (`commands.segment_capture_argv`), its timestamps reset
to 0. `rewrite_segment` turns one into *clusters on the recording's timeline*: its Cluster elements with
every Cluster's Timecode moved by where the segment starts in the recording (CRC-32 and Position children
dropped: both would be wrong after the move), plus the cue points of its video keyframes. Such bytes
concatenate: the final file is `build_head(...)` followed by every segment's rewritten clusters, in order.
The head (EBML header, Segment, SeekHead, Info with the Duration, Tracks, Cues) is the only part that
depends on the whole recording, and it is small: so a finish can upload the head and let the object store
join the clusters already uploaded (multipart), whatever the length.

Every number whose value is known only at the end is written at a fixed width (8 bytes), so the head's
size is known before its content. Only WebM codecs (VP8, VP9, AV1, Opus, Vorbis) at Matroska's default
timestamp scale (1 ms) are composed; anything else raises `NotComposable` and finalize remuxes instead.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.errors import MediaError
from app.media import ebml

EBML, SEGMENT, SEEKHEAD, SEEK, SEEK_ID, SEEK_POSITION = (
    0x1A45DFA3, 0x18538067, 0x114D9B74, 0x4DBB, 0x53AB, 0x53AC,
)  # fmt: skip
INFO, TIMESTAMP_SCALE, DURATION, MUXING_APP, WRITING_APP = 0x1549A966, 0x2AD7B1, 0x4489, 0x4D80, 0x5741
TRACKS, TRACK_ENTRY, TRACK_NUMBER, TRACK_TYPE, CODEC_ID, CODEC_PRIVATE = (
    0x1654AE6B, 0xAE, 0xD7, 0x83, 0x86, 0x63A2,
)  # fmt: skip
VIDEO, AUDIO = 0xE0, 0xE1
CLUSTER, TIMECODE, SIMPLE_BLOCK, BLOCK_GROUP, BLOCK, REFERENCE_BLOCK = (
    0x1F43B675,
    0xE7,
    0xA3,
    0xA0,
    0xA1,
    0xFB,
)
POSITION, PREV_SIZE, CRC32, VOID = 0xA7, 0xAB, 0xBF, 0xEC
CUES, CUE_POINT, CUE_TIME, CUE_TRACK_POSITIONS, CUE_TRACK, CUE_CLUSTER_POSITION = (
    0x1C53BB6B, 0xBB, 0xB3, 0xB7, 0xF7, 0xF1,
)  # fmt: skip
_EBML_VERSION, _EBML_READ_VERSION, _MAX_ID_LENGTH, _MAX_SIZE_LENGTH = 0x4286, 0x42F7, 0x42F2, 0x42F3
_DOC_TYPE, _DOC_TYPE_VERSION, _DOC_TYPE_READ_VERSION = 0x4282, 0x4287, 0x4285

MILLISECOND = 1_000_000  # Matroska's default TimestampScale (ns per tick): the only one composed
WEBM_CODECS = frozenset({"V_VP8", "V_VP9", "V_AV1", "A_OPUS", "A_VORBIS"})
APP = b"meetrec"
_VIDEO_TYPE = 1


class NotComposable(MediaError):
    """These segments cannot be joined by moving bytes (codecs, timestamp scale, tracks): remux instead."""


@dataclass(frozen=True)
class Clusters:
    """One segment's clusters moved onto the recording's timeline."""

    data: bytes  # Cluster elements, ready to be concatenated after the previous segment's
    cues: list[tuple[int, int]]  # (time in ms, offset of the Cluster in `data`) of each video keyframe
    tracks: bytes  # the segment's Tracks element (CRC-32 dropped), for the head
    signature: str  # what must match between segments joined by bytes: tracks, codecs and their setup


def base_ms(durations: Iterable[float]) -> int:
    """Where a segment starts on the recording's timeline (ms): the sum of the spans before it.

    Summed as floats and rounded once, so everyone who computes it from the same rows gets the same
    number (a pack built while capturing and the finish that joins it)."""
    return round(sum(durations) * 1000)


def rewrite_segment(data: bytes, start_ms: int) -> Clusters:
    """Move one capture segment's clusters so its first frame lands at `start_ms`; NotComposable when
    the segment is not WebM-compatible Matroska at a 1 ms timestamp scale."""
    try:
        return _rewrite(data, start_ms)
    except (ValueError, IndexError, struct.error) as e:
        raise NotComposable(f"the segment is not readable Matroska: {e}") from e


def build_head(
    tracks: bytes, duration_ms: float, cues: Sequence[tuple[int, int]], clusters_size: int
) -> bytes:
    """The file's start: EBML header, Segment header, SeekHead, Info (Duration), Tracks and Cues.

    `cues` are (time ms, offset of the Cluster from the first Cluster); the clusters (`clusters_size`
    bytes in all) follow the head directly. The size depends only on `tracks` and `len(cues)`.
    """
    video = _video_track(tracks)
    info = _element(
        INFO,
        _uint(TIMESTAMP_SCALE, MILLISECOND, 4)
        + _element(MUXING_APP, APP)
        + _element(WRITING_APP, APP)
        + _element(DURATION, struct.pack(">d", duration_ms)),
    )
    info_at = len(_seekhead(0, 0, 0))  # fixed widths: the size does not depend on the positions
    tracks_at = info_at + len(info)
    cues_at = tracks_at + len(tracks)
    clusters_at = cues_at + len(_cues(video, cues[:1], 0)) + max(0, len(cues) - 1) * _cue_point_size(video)
    body = _seekhead(info_at, tracks_at, cues_at) + info + tracks + _cues(video, cues, clusters_at)
    segment = _id(SEGMENT) + _size(len(body) + clusters_size, 8)
    return ebml_header() + segment + body


def ebml_header() -> bytes:
    return _element(
        EBML,
        _uint(_EBML_VERSION, 1, 1)
        + _uint(_EBML_READ_VERSION, 1, 1)
        + _uint(_MAX_ID_LENGTH, 4, 1)
        + _uint(_MAX_SIZE_LENGTH, 8, 1)
        + _element(_DOC_TYPE, b"webm")
        + _uint(_DOC_TYPE_VERSION, 4, 1)
        + _uint(_DOC_TYPE_READ_VERSION, 2, 1),
    )


def check_joinable(pieces: Sequence[Clusters]) -> None:
    """NotComposable unless every piece has the first one's tracks (so one Tracks describes them all)."""
    if not pieces:
        raise NotComposable("there are no segments to join")
    first = pieces[0].signature
    for at, piece in enumerate(pieces[1:], 1):
        if piece.signature != first:
            raise NotComposable(f"segment {at} has other tracks than segment 0 (a codec or stream changed)")


# -- reading a segment --------------------------------------------------------------------------------


def _rewrite(data: bytes, start_ms: int) -> Clusters:
    pos, (ident, size) = _header(data, 0)
    if ident != EBML or size is None:
        raise ValueError("no EBML header")
    pos, (ident, size) = _header(data, pos + size)
    if ident != SEGMENT:
        raise ValueError("no Segment")
    end = len(data) if size is None else min(len(data), pos + size)
    tracks: bytes | None = None
    clusters: list[tuple[int, int]] = []  # (body start, body end)
    while pos < end:
        at, (ident, size) = _header(data, pos)
        if size is None:
            raise ValueError("an element of unknown size (a live stream, not a closed segment)")
        if ident == INFO:
            scale = _child_uint(data[at : at + size], TIMESTAMP_SCALE, MILLISECOND)
            if scale != MILLISECOND:
                raise NotComposable(f"timestamp scale {scale} ns, not 1 ms")
        elif ident == TRACKS:
            tracks = _element(TRACKS, _without(data[at : at + size], {CRC32, VOID}))
        elif ident == CLUSTER:
            clusters.append((at, at + size))
        pos = at + size
    if tracks is None:
        raise ValueError("no Tracks")
    signature, video = _signature(tracks)
    if not clusters:
        raise ValueError("no Cluster")
    shift = start_ms - _first_timestamp(data, *clusters[0])
    out = bytearray()
    cues: list[tuple[int, int]] = []
    for body, body_end in clusters:
        children, timecode, key_at = _cluster(data, body, body_end, video)
        moved = timecode + shift
        if moved < 0:
            raise NotComposable("a cluster would start before the recording")
        if key_at is not None:
            cues.append((moved + key_at, len(out)))
        out += _element(CLUSTER, _uint(TIMECODE, moved, 8) + children, size_width=8)
    return Clusters(bytes(out), cues, tracks, signature)


def _cluster(data: bytes, pos: int, end: int, video: int | None) -> tuple[bytes, int, int | None]:
    """(the Cluster's children but Timecode, CRC-32, Position and PrevSize; its Timecode; the relative
    time of its first video keyframe or None)."""
    timecode: int | None = None
    key_at: int | None = None
    kept: list[bytes] = []
    while pos < end:
        at, (ident, size) = _header(data, pos)
        if size is None:
            raise ValueError("an element of unknown size inside a Cluster")
        if ident == TIMECODE:
            timecode = int.from_bytes(data[at : at + size], "big")
        elif ident not in (CRC32, POSITION, PREV_SIZE, VOID):
            kept.append(data[pos : at + size])
            if key_at is None and video is not None:
                key_at = _keyframe_time(data[at : at + size], ident, video)
        pos = at + size
    if timecode is None:
        raise ValueError("a Cluster without a Timecode")
    return b"".join(kept), timecode, key_at


def _keyframe_time(body: bytes, ident: int, video: int) -> int | None:
    """The relative timestamp of a video keyframe block, or None for any other element."""
    if ident == SIMPLE_BLOCK:
        track, length = ebml.vint_at(body, 0)
        if track & ((1 << (7 * length)) - 1) == video and body[length + 2] & 0x80:
            return int.from_bytes(body[length : length + 2], "big", signed=True)
        return None
    if ident == BLOCK_GROUP:
        children = dict(_children(body))
        block = children.get(BLOCK)
        if block is None or REFERENCE_BLOCK in children:
            return None
        track, length = ebml.vint_at(block, 0)
        if track & ((1 << (7 * length)) - 1) == video:
            return int.from_bytes(block[length : length + 2], "big", signed=True)
    return None


def _first_timestamp(data: bytes, pos: int, end: int) -> int:
    """The earliest block timestamp of the first Cluster (what the concat demuxer calls its start)."""
    timecode, first = 0, None
    while pos < end:
        at, (ident, size) = _header(data, pos)
        if size is None:
            raise ValueError("an element of unknown size inside a Cluster")
        if ident == TIMECODE:
            timecode = int.from_bytes(data[at : at + size], "big")
        block = (
            data[at : at + size]
            if ident == SIMPLE_BLOCK
            else dict(_children(data[at : at + size])).get(BLOCK)
            if ident == BLOCK_GROUP
            else None
        )
        if block:
            _, length = ebml.vint_at(block, 0)
            relative = int.from_bytes(block[length : length + 2], "big", signed=True)
            first = relative if first is None else min(first, relative)
        pos = at + size
    return timecode + (first or 0)


def _signature(tracks: bytes) -> tuple[str, int | None]:
    """(a digest of what joined segments must share, the video track's number)."""
    _, (ident, size) = _header(tracks, 0)
    digest = hashlib.sha256()
    video: int | None = None
    for entry_id, entry in _children(tracks[len(tracks) - (size or 0) :]):
        if entry_id != TRACK_ENTRY:
            continue
        fields = dict(_children(entry))
        codec = fields.get(CODEC_ID, b"").rstrip(b"\0").decode("ascii", "replace")
        if codec not in WEBM_CODECS:
            raise NotComposable(f"codec {codec or 'unknown'} is not a WebM codec")
        number = int.from_bytes(fields.get(TRACK_NUMBER, b""), "big")
        if int.from_bytes(fields.get(TRACK_TYPE, b""), "big") == _VIDEO_TYPE and video is None:
            video = number
        for key in (TRACK_NUMBER, TRACK_TYPE, CODEC_ID, CODEC_PRIVATE, VIDEO, AUDIO):
            digest.update(key.to_bytes(4, "big") + fields.get(key, b"") + b"|")
    if video is None:
        raise NotComposable("the segment has no video track")
    return digest.hexdigest(), video


def _video_track(tracks: bytes) -> int:
    video = _signature(tracks)[1]
    assert video is not None  # _signature raises without one
    return video


def _without(body: bytes, dropped: set[int]) -> bytes:
    out, pos = bytearray(), 0
    while pos < len(body):
        at, (ident, size) = _header(body, pos)
        if size is None:
            raise ValueError("an element of unknown size")
        if ident not in dropped:
            out += body[pos : at + size]
        pos = at + size
    return bytes(out)


def _child_uint(body: bytes, wanted: int, default: int) -> int:
    for ident, value in _children(body):
        if ident == wanted:
            return int.from_bytes(value, "big")
    return default


def _children(body: bytes) -> Iterable[tuple[int, bytes]]:
    pos = 0
    while pos < len(body):
        at, (ident, size) = _header(body, pos)
        if size is None:
            raise ValueError("an element of unknown size")
        yield ident, body[at : at + size]
        pos = at + size


# -- writing ------------------------------------------------------------------------------------------


def _cues(video: int, cues: Sequence[tuple[int, int]], clusters_at: int) -> bytes:
    """Cues with a point per keyframe: every number 8 bytes wide, so a point is a template with the time
    and the position filled in (an hour has 1,800 of them)."""
    positions = _element(CUE_TRACK_POSITIONS, _uint(CUE_TRACK, video, 1) + _uint(CUE_CLUSTER_POSITION, 0, 8))
    body_size = len(_uint(CUE_TIME, 0, 8)) + len(positions)
    prefix = _id(CUE_POINT) + _size(body_size) + _id(CUE_TIME) + _size(8)
    point = struct.Struct(f">{len(prefix)}sQ{len(positions) - 8}sQ")
    middle = positions[:-8]
    points = b"".join(point.pack(prefix, time, middle, clusters_at + at) for time, at in cues)
    return _element(CUES, points, size_width=8)


def _cue_point_size(video: int) -> int:
    return len(_cues(video, [(0, 0)], 0)) - len(_cues(video, [], 0))


def _seekhead(info_at: int, tracks_at: int, cues_at: int) -> bytes:
    return _element(
        SEEKHEAD,
        b"".join(
            _element(SEEK, _element(SEEK_ID, _id(target)) + _uint(SEEK_POSITION, at, 8))
            for target, at in ((INFO, info_at), (TRACKS, tracks_at), (CUES, cues_at))
        ),
    )


def _element(ident: int, body: bytes, size_width: int | None = None) -> bytes:
    return _id(ident) + _size(len(body), size_width) + body


def _uint(ident: int, value: int, width: int) -> bytes:
    return _element(ident, value.to_bytes(width, "big"))


def _id(ident: int) -> bytes:
    return ident.to_bytes((ident.bit_length() + 7) // 8, "big")


def _size(value: int, width: int | None = None) -> bytes:
    """An EBML data size: `width` bytes when given, else the fewest (all-ones is reserved for unknown)."""
    length = width or next(n for n in range(1, 9) if value < (1 << (7 * n)) - 1)
    if value >= (1 << (7 * length)) - 1:
        raise ValueError(f"{value} does not fit an EBML size of {length} bytes")
    return ((1 << (7 * length)) | value).to_bytes(length, "big")


def _header(data: bytes, pos: int) -> tuple[int, tuple[int, int | None]]:
    """`ebml.header_at`, and ValueError when the element (its size known) runs past the end of `data`."""
    body, (ident, size) = ebml.header_at(data, pos)
    if size is not None and body + size > len(data):
        raise ValueError("an element runs past the end of the data")
    return body, (ident, size)
