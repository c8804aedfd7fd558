"""What a pull source carries, read from the description ffmpeg prints of its input.

PyAV (`probe.py`) cannot open every source the capture can (its build has no libsrt), and the binary
and options of the capture see what the capture will see. ffmpeg describes its input on stderr at log
level info; `parse_input_description` parses it. A capture reads it from its relay's reader
(`app.media.relay`), the one process connected to the source: there is no separate probe, since a
source serving one caller (an encoder in SRT listener mode) would give its stream to the probe and end
it.
"""

from __future__ import annotations

import re

from app.media.probe import MediaInfo, StreamInfo

_INPUT = re.compile(r"^Input #0, ([\w,]+), from ", re.MULTILINE)
_SECTION_END = re.compile(r"^(?:Stream mapping:|Output #|Input #1)", re.MULTILINE)
_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: (\w+): (\w+)", re.MULTILINE)


def parse_input_description(stderr: str) -> MediaInfo:
    """The first input's format and streams from ffmpeg's info-level log (no streams if absent)."""
    found = _INPUT.search(stderr)
    if found is None:
        return MediaInfo(0.0, "", [])
    section = _SECTION_END.split(stderr[found.end() :], maxsplit=1)[0]
    streams = [StreamInfo(kind.lower(), codec) for kind, codec in _STREAM.findall(section)]
    return MediaInfo(0.0, found.group(1), streams)
