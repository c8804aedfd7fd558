"""Read the closed segments of a segmented capture from its spool directory.

ffmpeg's segment muxer (`commands.segment_capture_argv`) appends "name,start,end" to `segments.csv`
and flushes it the moment a segment is closed, after the segment file was written whole. A listed
segment is therefore complete and an unlisted one is still being written (or was cut short by a
crash). A line is read only once its newline is there: a capture killed mid-write leaves at most one
partial line, which is ignored.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from app.media.commands import SEGMENT_LIST

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"seg-(\d+)\.")


@dataclass(frozen=True)
class ClosedSegment:
    """One closed segment: its file and where it lies on the capture's timeline (seconds)."""

    name: str  # "seg-000042.mkv"
    path: Path
    number: int  # 42: the sequence number in the name (the capture's `start_number` onwards)
    start: float
    end: float

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


class SegmentList:
    """The closed segments listed in `spool/segments.csv`, read incrementally as the list grows.

    `closed()` may be called as often as wanted while ffmpeg runs: each call reads only what was
    appended since the last one. Missing list: no segment closed yet.
    """

    def __init__(self, spool: Path) -> None:
        self.spool = spool
        self.path = spool / SEGMENT_LIST
        self._offset = 0
        self._segments: list[ClosedSegment] = []

    def closed(self) -> list[ClosedSegment]:
        """Every segment closed so far, in the order ffmpeg closed them."""
        try:
            with self.path.open("rb") as f:
                if f.seek(0, 2) < self._offset:  # the list was replaced: read it anew
                    self._offset, self._segments = 0, []
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]  # a partial last line waits for its newline
        self._offset += len(complete)
        for line in complete.decode("utf-8", "replace").splitlines():
            segment = self._parse(line)
            if segment is not None:
                self._segments.append(segment)
        return list(self._segments)

    @property
    def total_seconds(self) -> float:
        """The summed duration of the segments read by the last `closed()` call."""
        return sum(segment.duration for segment in self._segments)

    def _parse(self, line: str) -> ClosedSegment | None:
        try:
            name, start, end = next(csv.reader([line]))
            number = _NUMBER.match(name)
            if number is None or Path(name).name != name:
                raise ValueError(f"unexpected segment name {name!r}")
            return ClosedSegment(name, self.spool / name, int(number.group(1)), float(start), float(end))
        except (ValueError, StopIteration) as e:
            log.warning("ignoring a line of %s that is not a segment (%s): %r", self.path, e, line)
            return None
