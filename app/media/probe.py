"""What a media file holds, read with PyAV (imageio-ffmpeg ships ffmpeg but no ffprobe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import av

from app.errors import MediaError

OPEN_TIMEOUT_SECONDS = 10.0  # for URLs: a silent server fails the probe instead of hanging a worker
_URL_WHITELIST = "http,https,tcp,tls,crypto"  # presigned S3 links; a local file may open only itself


@dataclass(frozen=True)
class StreamInfo:
    kind: str  # "video", "audio", "subtitle", "data", ...
    codec: str  # ffmpeg's codec name: "vp8", "opus", "h264", ...


@dataclass(frozen=True)
class MediaInfo:
    duration: float  # seconds
    format_name: str  # ffmpeg's demuxer names, e.g. "matroska,webm"
    streams: list[StreamInfo] = field(default_factory=list)

    @property
    def has_video(self) -> bool:
        return any(s.kind == "video" for s in self.streams)

    @property
    def has_audio(self) -> bool:
        return any(s.kind == "audio" for s in self.streams)

    def codecs(self, kind: str) -> list[str]:
        """Codec names of the streams of `kind`, in stream order."""
        return [s.codec for s in self.streams if s.kind == kind]


def probe(path_or_url: str | Path) -> MediaInfo:
    """Describe a local file or an http(s) URL; raise MediaError when it cannot be read as media.

    Duration comes from the container, else from the longest stream, else (a capture killed before
    its cues and duration were written) from the last packet's end time, found by demuxing.
    """
    target, options = _target(path_or_url)
    try:
        with av.open(target, options=options, timeout=OPEN_TIMEOUT_SECONDS) as container:
            streams = [StreamInfo(s.type, _codec_name(s)) for s in container.streams]
            duration = _header_duration(container) or _demuxed_duration(container)
            return MediaInfo(duration, container.format.name, streams)
    except (av.FFmpegError, OSError, ValueError) as e:
        # str(e) would repeat the whole target, a presigned URL's signature included.
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise MediaError(f"cannot read media at {_redacted(target)}: {reason}") from e


def _target(path_or_url: str | Path) -> tuple[str, dict[str, str]]:
    text = str(path_or_url)
    if "://" in text and not text.startswith("file:"):
        return text, {"protocol_whitelist": _URL_WHITELIST}
    if not text.startswith("file:"):
        text = f"file:{text}"  # a colon in a file name must not be read as a protocol
    return text, {"protocol_whitelist": "file"}


def _codec_name(stream: av.stream.Stream) -> str:
    context = stream.codec_context  # None for data and attachment streams
    return context.name if context is not None else "none"


def _header_duration(container: av.container.InputContainer) -> float:
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    durations = [float(s.duration * s.time_base) for s in container.streams if s.duration and s.time_base]
    return max(durations, default=0.0)


def _demuxed_duration(container: av.container.InputContainer) -> float:
    start, end = None, 0.0
    for packet in container.demux():
        if packet.pts is None or packet.time_base is None:
            continue
        at = float(packet.pts * packet.time_base)
        start = at if start is None else min(start, at)
        end = max(end, at + float((packet.duration or 0) * packet.time_base))
    return max(0.0, end - (start or 0.0))


def _redacted(target: str) -> str:
    """Presigned URLs carry credentials in their query string: keep them out of error messages."""
    return target.split("?", 1)[0]
