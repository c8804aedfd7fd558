"""What a pull source carries, asked of the ffmpeg binary that will record it.

PyAV (`probe.py`) cannot open every source the capture can (its build has no libsrt), and a probe
through the very binary and options of the capture sees what the capture will see. ffmpeg describes
its input on stderr at log level info; that description is parsed here.
"""

from __future__ import annotations

import re

from app.media.commands import READ_TIMEOUT_US, probe_source_argv
from app.media.probe import MediaInfo, StreamInfo
from app.media.runner import run
from app.media.sources import MediaSource

# ffmpeg waits up to -rw_timeout for data, then analyses up to 5 s of a live stream (analyzeduration).
PROBE_TIMEOUT_SECONDS = READ_TIMEOUT_US / 1e6 + 10
_INPUT = re.compile(r"^Input #0, ([\w,]+), from ", re.MULTILINE)
_SECTION_END = re.compile(r"^(?:Stream mapping:|Output #|Input #1)", re.MULTILINE)
_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: (\w+): (\w+)", re.MULTILINE)


def probe_source(ffmpeg: str, source: MediaSource, *, timeout: float = PROBE_TIMEOUT_SECONDS) -> MediaInfo:
    """Open `source` as a capture would and describe its streams (duration 0: a live source has none).

    Raises the classified error (`app.media.failures`) when the source cannot be read, MediaError after
    `timeout` seconds. Costs a connection: an SRT listener serving one caller at a time is busy until
    this probe has left.
    """
    stderr = run(probe_source_argv(ffmpeg, source), timeout=timeout).stderr
    return parse_input_description(stderr)


def parse_input_description(stderr: str) -> MediaInfo:
    """The first input's format and streams from ffmpeg's info-level log (no streams if absent)."""
    found = _INPUT.search(stderr)
    if found is None:
        return MediaInfo(0.0, "", [])
    section = _SECTION_END.split(stderr[found.end() :], maxsplit=1)[0]
    streams = [StreamInfo(kind.lower(), codec) for kind, codec in _STREAM.findall(section)]
    return MediaInfo(0.0, found.group(1), streams)
