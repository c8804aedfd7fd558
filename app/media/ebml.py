"""A small EBML (Matroska/WebM) reader: where a file keeps its Duration and Cues, and the element
headers of bytes in memory (`header_at`, `vint_at`: what `webm_clock` and `webm_compose` walk).

Finalize uses it to prove that what it uploads is seekable in a browser, without decoding any media.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.errors import MediaError


@dataclass(frozen=True)
class WebmLayout:
    """Where a WebM keeps what a browser needs to seek: the Segment's Duration and its Cues."""

    duration: float | None  # seconds; None when the muxer wrote none (a live or MediaRecorder stream)
    cues_offset: int | None  # file offset of the Cues element; None when there are none

    @property
    def seekable(self) -> bool:
        return self.duration is not None and self.cues_offset is not None


_EBML, _SEGMENT, _SEEKHEAD, _SEEK, _SEEK_ID, _SEEK_POSITION = (
    0x1A45DFA3, 0x18538067, 0x114D9B74, 0x4DBB, 0x53AB, 0x53AC,
)  # fmt: skip
_INFO, _TIMESTAMP_SCALE, _DURATION, _CLUSTER, _CUES = 0x1549A966, 0x2AD7B1, 0x4489, 0x1F43B675, 0x1C53BB6B
_DOCTYPE = 0x4282
_MAX_HEADER_ELEMENT = 1 << 20  # SeekHead and Info are a few hundred bytes


def doc_type(path: Path) -> str:
    """The EBML header's DocType: "webm" for WebM, "matroska" for Matroska (the default when the header
    names none); MediaError when the file does not start with an EBML header.

    ffprobe names both formats "matroska,webm", so this is how WebM is told from Matroska.
    """
    with path.open("rb") as f:
        try:
            ident, size = _element_header(f)
            if ident != _EBML or size is None or size > _MAX_HEADER_ELEMENT:
                raise ValueError("no EBML header")
            header = f.read(size)
        except (ValueError, EOFError) as e:
            raise MediaError(f"{path.name} is not an EBML file: {e}") from e
    for child, value in _children(header):
        if child == _DOCTYPE:
            return value.rstrip(b"\0").decode("ascii", "replace")
    return "matroska"


def webm_layout(path: Path) -> WebmLayout:
    """Find a WebM's Duration and Cues from its EBML structure; MediaError when it is not Matroska.

    Follows the SeekHead to the Cues when it names them, else walks the Segment's top-level elements,
    skipping clusters by their size. A cluster of unknown size (a live stream) ends the walk: such a
    file has no index a browser could use anyway.
    """
    with path.open("rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        try:
            ident, size = _element_header(f)
            if ident != _EBML or size is None:
                raise ValueError("no EBML header")
            f.seek(size, io.SEEK_CUR)
            ident, size = _element_header(f)
            if ident != _SEGMENT:
                raise ValueError("no Segment")
        except (ValueError, EOFError) as e:
            raise MediaError(f"{path.name} is not a WebM file: {e}") from e
        start = f.tell()
        end = file_size if size is None else min(file_size, start + size)
        return _walk_segment(f, start, end)


def _walk_segment(f: BinaryIO, start: int, end: int) -> WebmLayout:
    duration: float | None = None
    cues_hint: int | None = None
    pos = start
    while pos < end:
        f.seek(pos)
        try:
            ident, size = _element_header(f)
        except (ValueError, EOFError):
            break
        body_at = f.tell()
        if ident == _CUES:
            return WebmLayout(duration, pos)
        if ident == _INFO and size is not None and size <= _MAX_HEADER_ELEMENT:
            duration = _info_duration(f.read(size))
        elif ident == _SEEKHEAD and size is not None and size <= _MAX_HEADER_ELEMENT:
            cues_hint = _seek_position(f.read(size), _CUES)
        elif ident == _CLUSTER and cues_hint is not None and _is_cues(f, start + cues_hint):
            return WebmLayout(duration, start + cues_hint)
        if size is None:
            break
        pos = body_at + size
    return WebmLayout(duration, None)


def _is_cues(f: BinaryIO, at: int) -> bool:
    f.seek(at)
    try:
        return _element_header(f)[0] == _CUES
    except (ValueError, EOFError):
        return False


def _info_duration(body: bytes) -> float | None:
    scale, duration = 1_000_000, None
    for ident, value in _children(body):
        if ident == _TIMESTAMP_SCALE:
            scale = int.from_bytes(value, "big")
        elif ident == _DURATION and len(value) in (4, 8):
            duration = struct.unpack(">f" if len(value) == 4 else ">d", value)[0]
    return None if duration is None else duration * scale / 1e9


def _seek_position(body: bytes, target: int) -> int | None:
    for ident, seek in _children(body):
        if ident != _SEEK:
            continue
        fields = dict(_children(seek))
        if int.from_bytes(fields.get(_SEEK_ID, b""), "big") == target and _SEEK_POSITION in fields:
            return int.from_bytes(fields[_SEEK_POSITION], "big")
    return None


def _children(body: bytes) -> Iterator[tuple[int, bytes]]:
    f = io.BytesIO(body)
    while f.tell() < len(body):
        try:
            ident, size = _element_header(f)
        except (ValueError, EOFError):
            return
        if size is None:
            return
        yield ident, f.read(size)


def _element_header(f: BinaryIO) -> tuple[int, int | None]:
    """(ID with its marker bits, data size or None when unknown) of the element at the file position."""
    ident, _ = _vint(f)
    value, length = _vint(f)
    size = value & ((1 << (7 * length)) - 1)
    return ident, None if size == (1 << (7 * length)) - 1 else size  # all ones: size unknown


def _vint(f: BinaryIO) -> tuple[int, int]:
    """An EBML variable-length integer, marker bit included, and its length in bytes."""
    first = f.read(1)
    if not first:
        raise EOFError("end of file")
    if first[0] == 0:
        raise ValueError("invalid EBML variable-length integer")
    length = 9 - first[0].bit_length()
    rest = f.read(length - 1)
    if len(rest) != length - 1:
        raise EOFError("end of file inside an element header")
    return int.from_bytes(first + rest, "big"), length


def vint_at(data: bytes, pos: int) -> tuple[int, int]:
    """An EBML variable-length integer at `pos` of `data`, marker bit included, and its length in bytes;
    ValueError when there is none or `data` ends inside it."""
    if pos >= len(data) or data[pos] == 0:
        raise ValueError("no EBML variable-length integer here")
    length = 9 - data[pos].bit_length()
    if pos + length > len(data):
        raise ValueError("the bytes end inside a variable-length integer")
    return int.from_bytes(data[pos : pos + length], "big"), length


def header_at(data: bytes, pos: int) -> tuple[int, tuple[int, int | None]]:
    """(where the body starts, (ID with marker bits, data size or None when unknown)) of the element at
    `pos` of `data`. Its body may run past the end of `data` (a stream's bytes cut short): a caller that
    needs it whole checks."""
    ident, id_length = vint_at(data, pos)
    if id_length > 4:
        raise ValueError("an element ID is at most 4 bytes")
    value, size_length = vint_at(data, pos + id_length)
    size = value & ((1 << (7 * size_length)) - 1)
    unknown = size == (1 << (7 * size_length)) - 1
    return pos + id_length + size_length, (ident, None if unknown else size)
