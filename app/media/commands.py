"""Pure ffmpeg argv builders: no subprocess here (`runner.py` runs them).

Every builder returns a complete argv list (the binary first), never a shell string.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict

from app.media.sources import MediaSource, protocol_whitelist

if TYPE_CHECKING:  # PyAV is heavy to import, and argv builders need no media library
    from app.media.probe import MediaInfo

# Live VP8 runs single-threaded: libvpx's default threading let two captures fall to 0.24x realtime on 2
# cores (ARCHITECTURE.md, "Measured here"). cpu-used 16 keeps 720p30 at ~26% of a core against ~40% for
# cpu-used 8, with the same SSIM (0.966 vs 0.967 on the test pattern, 0.920 both on noisy content).
VP8_LIVE = [
    "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "16", "-threads", "1", "-pix_fmt", "yuv420p",
]  # fmt: skip
OPUS = ["-c:a", "libopus", "-b:a", "64k", "-ar", "48000", "-ac", "2"]
# Errors only on stderr (the runner keeps its tail); key=value progress on stdout for the runner to parse.
QUIET_PROGRESS = ["-hide_banner", "-loglevel", "error", "-progress", "pipe:1", "-nostats"]

READ_TIMEOUT_US = 10_000_000  # a source silent this long is gone
KEYFRAME_SECONDS = 2  # seeking and segment cuts land within this
SYNTHETIC_TONE = "sine=frequency=440:sample_rate=48000:beep_factor=4"  # a beep each second, easy to sync by

CaptureMode = Literal["copy", "transcode"]
WEBM_VIDEO = frozenset({"vp8", "vp9", "av1"})
WEBM_AUDIO = frozenset({"opus", "vorbis"})
SEGMENT_PATTERN = "seg-%06d.mkv"  # `app.media.segments` reads the numbers back from these names
SEGMENT_LIST = "segments.csv"
# Close clusters at least every second (or 1 MiB) and flush each to disk, so a killed capture loses about a
# second of media. Without flush_packets ffmpeg 9 had written 0 bytes of a 320x240 capture after 3 s.
SEGMENT_MATROSKA = f"cluster_time_limit=1000:cluster_size_limit={1 << 20}:flush_packets=1"
# The writer's input: the reader's NUT stream on a pipe. NUT's header holds each stream's parameters, so
# the smallest probe is enough (a decoder learns the pixel format from the first frame); with ffmpeg's
# default probe the writer first wrote media 1.3 s after it started, with this 0.5 s (H.264 SRT source).
RELAY_INPUT = [
    "-protocol_whitelist", "pipe", "-f", "nut", "-probesize", "32", "-analyzeduration", "0", "-i", "pipe:0",
]  # fmt: skip


class SegmentOptions(TypedDict):
    """The options `segment_capture_argv` and `relay_writer_argv` share, as keyword arguments."""

    segment_seconds: float
    start_number: int
    size: str
    rate: int
    max_seconds: int


def segment_capture_argv(
    ffmpeg: str,
    source: MediaSource,
    spool: Path,
    *,
    mode: str,
    segment_seconds: float,
    start_number: int,
    size: str,
    rate: int,
    max_seconds: int,
) -> list[str]:
    """Record `source` into short Matroska segments `spool/seg-NNNNNN.mkv`, listed in `spool/segments.csv`.

    Each segment starts on a keyframe with timestamps from 0, so it decodes alone; numbering starts at
    `start_number`, so a reconnect continues the sequence. ffmpeg appends "name,start,end" to the list
    the moment a segment is closed (written whole and flushed), never earlier: only listed segments are
    complete (read them with `app.media.segments.SegmentList`). Clusters are flushed about every second,
    so a killed capture loses only the open segment, and every listed one stays intact. `q` on stdin
    closes and lists the last segment (keep stdin open: no `-nostdin`).

    `mode` "transcode" encodes VP8 + Opus with a keyframe forced at every segment boundary, so segments
    last `segment_seconds` (to a few ms); the synthetic meeting is always transcoded. "copy" keeps the
    source's codecs (Matroska holds any; `choose_mode` says when they are WebM's already, so finalize
    can copy too) and cuts at the first source keyframe after each boundary, so segments last at least
    `segment_seconds`, longer when the source's keyframes are sparse.

    The capture uses this for the synthetic meeting only; it records a pull source through a relay
    (`relay_reader_argv` into `relay_writer_argv`), which learns the codecs from its one connection.
    """
    if mode == "copy" and source.kind == "synthetic":
        raise ValueError("the synthetic meeting is generated raw: it can only be transcoded")
    codecs = _segment_codecs(source, mode, segment_seconds, start_number, size, rate)
    return [
        ffmpeg, *QUIET_PROGRESS, "-t", str(max_seconds), *_inputs(source, size, rate), *_maps(source),
        *codecs, *segment_muxer(spool, segment_seconds, start_number),
    ]  # fmt: skip


def relay_reader_argv(ffmpeg: str, source: MediaSource) -> list[str]:
    """The reader of a relayed capture (`app.media.relay`): the one connection to a pull `source`.

    Opens the source, describes its streams on stderr (log level `info`, parsed by
    `sourceprobe.parse_input_description`) and copies its first video stream and first audio stream, if
    any, untouched onto stdout as NUT (a stream format that carries any codec and its parameters, so
    the writer needs no analysis). `q` on stdin ends it cleanly (keep stdin open: no `-nostdin`).
    """
    if source.kind != "pull":
        raise ValueError(f"{source.url} is not a pull source")
    return [
        ffmpeg, "-hide_banner", "-loglevel", "info", "-nostats", *pull_inputs(source), *_maps(source),
        "-c", "copy", "-f", "nut", "pipe:1",
    ]  # fmt: skip


def relay_writer_argv(
    ffmpeg: str,
    spool: Path,
    *,
    mode: str,
    segment_seconds: float,
    start_number: int,
    size: str,
    rate: int,
    max_seconds: int,
) -> list[str]:
    """The writer of a relayed capture: the reader's NUT stream on stdin into segments in `spool`.

    Segments, the list, `mode` and the options mean what they do in `segment_capture_argv` for a pull
    source. NUT's header carries every stream's codec and parameters, so the writer reads no more than
    the header before writing (the reader analysed the source already). It ends when its stdin does
    (the reader stopped), after closing and listing the last segment; it never reads keys.
    """
    codecs = _segment_codecs(None, mode, segment_seconds, start_number, size, rate)
    return [
        ffmpeg, *QUIET_PROGRESS, "-nostdin", "-t", str(max_seconds), *RELAY_INPUT,
        "-map", "0:v:0", "-map", "0:a:0?", *codecs, *segment_muxer(spool, segment_seconds, start_number),
    ]  # fmt: skip


def _segment_codecs(
    source: MediaSource | None, mode: str, segment_seconds: float, start_number: int, size: str, rate: int
) -> list[str]:
    if mode not in ("copy", "transcode"):
        raise ValueError(f"mode must be copy or transcode, got {mode!r}")
    if not 0.5 <= segment_seconds <= 600:
        raise ValueError(f"segment_seconds must be 0.5..600, got {segment_seconds}")
    if start_number < 0:
        raise ValueError(f"start_number must be >= 0, got {start_number}")
    if mode == "copy":
        return ["-c", "copy"]
    # A keyframe at each boundary lets the muxer cut there; `-g` still bounds the gap within a segment.
    forced = ["-force_key_frames", f"expr:gte(t,n_forced*{segment_seconds:g})"]
    return [*_transcode(source, size, rate), *forced]


def segment_muxer(spool: Path, segment_seconds: float, start_number: int) -> list[str]:
    """Output options of the segment muxer writing into `spool` (see `segment_capture_argv`)."""
    return [
        "-f", "segment", "-segment_format", "matroska", "-segment_format_options", SEGMENT_MATROSKA,
        "-segment_time", f"{segment_seconds:g}", "-segment_start_number", str(start_number),
        "-reset_timestamps", "1",
        "-segment_list", str(spool / SEGMENT_LIST), "-segment_list_type", "csv",
        "-segment_list_flags", "live",
        "-y", str(spool / SEGMENT_PATTERN),
    ]  # fmt: skip


def choose_mode(info_or_codecs: MediaInfo | Iterable[str]) -> CaptureMode:
    """Say "copy" when a source's codecs are WebM's already (VP8/VP9/AV1 + Opus/Vorbis), else "transcode".

    Takes what `sourceprobe.parse_input_description` or `probe` returns (its first video and first audio
    stream are the ones a capture records), or plain codec names as ffmpeg spells them. A source without
    video transcodes, which then fails clearly: a recording needs a picture.
    """
    if isinstance(info_or_codecs, str):
        names = [info_or_codecs.lower()]
    elif isinstance(info_or_codecs, Iterable):
        names = [name.lower() for name in info_or_codecs]
    else:
        info = info_or_codecs
        names = [*info.codecs("video")[:1], *info.codecs("audio")[:1]]
    has_video = any(name in WEBM_VIDEO for name in names)
    return "copy" if has_video and all(name in WEBM_VIDEO | WEBM_AUDIO for name in names) else "transcode"


def _inputs(source: MediaSource, size: str, rate: int) -> list[str]:
    return synthetic_inputs(size, rate) if source.kind == "synthetic" else pull_inputs(source)


def _maps(source: MediaSource) -> list[str]:
    # The audio map is optional (`?`) for pull sources: a silent camera still records; one without video
    # does not.
    return ["-map", "0:v:0", "-map", "0:a:0" if source.kind == "synthetic" else "0:a:0?"]


def _transcode(source: MediaSource | None, size: str, rate: int) -> list[str]:
    # A pull source's audio (None: relayed from one) may have gaps (packet loss, a reconnecting encoder):
    # resample against timestamps, so audio and video stay in sync.
    resync = [] if source is not None and source.kind == "synthetic" else ["-af", "aresample=async=1"]
    return [
        *VP8_LIVE, "-b:v", video_bitrate(size, rate), "-g", str(rate * KEYFRAME_SECONDS), *OPUS, *resync,
    ]  # fmt: skip


def synthetic_inputs(size: str, rate: int) -> list[str]:
    """The built-in synthetic meeting: a moving test pattern and a tone, paced at real time.

    Both streams come from one lavfi graph, so they share one clock and end together. The initial burst is
    (nearly) off so the recorded duration matches the wall time the capture ran: ffmpeg 9 reads 0 as "use
    the default" (0.5 s ahead), so the smallest useful value is given instead.
    """
    _check_size(size)
    if not 1 <= rate <= 120:
        raise ValueError(f"rate must be 1..120 frames per second, got {rate}")
    graph = f"testsrc2=size={size}:rate={rate}[out0];{SYNTHETIC_TONE}[out1]"
    return ["-re", "-readrate_initial_burst", "0.001", "-f", "lavfi", "-i", graph]


def pull_inputs(source: MediaSource, *, realtime: bool = True) -> list[str]:
    """Input options for a pull source: its protocol whitelist, a read timeout, then the URL.

    `realtime` paces http(s) sources at real time (see `_scheme_options`); a probe reads no media and
    does without.
    """
    options = [*_scheme_options(source.scheme, realtime), *source.input_options]
    return ["-protocol_whitelist", protocol_whitelist(source), *options, "-i", source.url]


def _scheme_options(scheme: str, realtime: bool) -> list[str]:
    if scheme in ("rtsp", "rtsps"):
        # The RTSP demuxer ignores -rw_timeout (a stalled server hangs forever); its own -timeout works.
        # TCP interleaved: no lost UDP packets in the recording, and it passes NAT and firewalls.
        return ["-rtsp_transport", "tcp", "-timeout", str(READ_TIMEOUT_US)]
    if scheme in ("http", "https") and realtime:
        # An HTTP URL may be a file (progressive or HLS VOD) rather than a live stream: read it at real
        # time like a meeting, instead of transcoding it flat out on a shared worker. The 30 s burst lets a
        # live HLS capture read the playlist's back segments at once and then follow the live edge; with
        # -re's default 0.5 s it stayed that far behind and a stop lost them (measured: 8.9 s vs 12.1 s
        # recorded in 8 s of wall time with 2 s segments). Catch-up after a stall must outrun the playlist.
        return [
            "-re", "-readrate_initial_burst", "30", "-readrate_catchup", "4",
            "-rw_timeout", str(READ_TIMEOUT_US),
        ]  # fmt: skip
    return ["-rw_timeout", str(READ_TIMEOUT_US)]


def video_bitrate(size: str, rate: int) -> str:
    """Target VP8 bitrate: ~0.07 bit per pixel per frame (≈1.9 Mbit/s at 720p30), at least 150 kbit/s."""
    width, height = _check_size(size)
    return f"{max(150, width * height * rate * 7 // 100_000)}k"


def poster_argv(ffmpeg: str, media: str | Path, output: Path, at_seconds: float) -> list[str]:
    """One JPEG frame of `media` (a local path or a presigned URL) at `at_seconds`, written to `output`.

    The seek is an input option, so only the data near `at_seconds` is read and decoded.
    """
    media = str(media)
    if "://" in media:
        whitelist = "http,https,tcp,tls,crypto"
    else:  # "file:" keeps a path with a colon from naming a protocol, and one with a leading "-" an option
        whitelist, media = "file", f"file:{media}"
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
        "-protocol_whitelist", whitelist, "-ss", f"{max(0.0, at_seconds):.3f}", "-i", media,
        "-frames:v", "1", "-update", "1", "-q:v", "3", "-f", "image2", "-y", str(output),
    ]  # fmt: skip


def _check_size(size: str) -> tuple[int, int]:
    """Parse "WxH"; refuse anything else, since `size` is spliced into a filter graph."""
    width, sep, height = size.partition("x")
    valid = sep and width.isdigit() and height.isdigit()
    if not valid or not (16 <= int(width) <= 7680 and 16 <= int(height) <= 4320):
        raise ValueError(f"size must be WIDTHxHEIGHT, got {size!r}")
    return int(width), int(height)
