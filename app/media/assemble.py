"""Join a recording's pieces into one seekable WebM: capture segments, or a pushed MediaRecorder stream.

Pure media work on local files (no S3, no database). Each stream is copied when its codec may live in
WebM and re-encoded with a `TranscodeProfile` only when it may not. The output always carries Cues and a
Duration: ffmpeg's Matroska muxer writes both at the end of a seekable output (a local file, never a pipe),
and `webm_layout` (app.media.ebml) proves it did. Outputs are muxed with `+bitexact`, so the same
pieces give the same bytes (and SHA-256) when a crashed finalize runs again.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import av

from app.errors import MediaError
from app.media.commands import KEYFRAME_SECONDS, WEBM_AUDIO, WEBM_VIDEO, poster_argv
from app.media.ebml import doc_type, webm_layout
from app.media.probe import MediaInfo, StreamInfo, probe
from app.media.runner import run

# Probing is ~0.5 ms a segment (900 for an hour of 4 s segments); two threads cut that by a third.
PROBE_THREADS = 2
DURATION_TOLERANCE = 0.5  # seconds between the output and the sum of its pieces
QUIET = ["-hide_banner", "-loglevel", "error", "-nostdin"]
# bitexact: no random SegmentUID and no version strings, so a rerun writes identical bytes.
WEBM_OUT = ["-f", "webm", "-fflags", "+bitexact"]
_SILENCE_ENCODERS = {"opus": "libopus", "vorbis": "libvorbis", "aac": "aac", "mp3": "libmp3lame"}


def _offline_threads() -> int:
    # Half the cores, at most 4: the decoder runs its own threads beside the encoder, and captures may
    # share the machine. On 2 vCPUs, a 720p30 H.264 -> VP8 (realtime, cpu-used 8) minute took 19-21 s with
    # -threads 1 and 23-27 s with -threads 2: libvpx's row sync loses when its threads have no core.
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class TranscodeProfile:
    """How a stream that cannot be copied into WebM is re-encoded (VP8 or VP9 video, Opus audio)."""

    name: str
    video_codec: str  # "vp8" | "vp9"
    deadline: str  # libvpx: "realtime" | "good"
    cpu_used: int  # libvpx speed: higher is faster and a little worse
    crf: int  # constant quality level (lower is better)
    video_bitrate: str  # VP8: the cap of constrained quality; VP9: "0" for constant quality
    audio_bitrate: str = "96k"
    threads: int = field(default_factory=_offline_threads)

    @classmethod
    def from_name(cls, name: str) -> TranscodeProfile:
        """One of `PROFILES` by name; MediaError for an unknown name."""
        try:
            return PROFILES[name]
        except KeyError:
            raise MediaError(f"unknown transcode profile {name!r}; known: {', '.join(PROFILES)}") from None

    def video_argv(self) -> list[str]:
        encoder = {"vp8": ["-c:v", "libvpx"], "vp9": ["-c:v", "libvpx-vp9", "-row-mt", "1"]}[self.video_codec]
        return [
            *encoder, "-deadline", self.deadline, "-cpu-used", str(self.cpu_used),
            "-threads", str(self.threads), "-crf", str(self.crf), "-b:v", self.video_bitrate,
            "-pix_fmt", "yuv420p", "-force_key_frames", f"expr:gte(t,n_forced*{KEYFRAME_SECONDS})",
        ]  # fmt: skip

    def audio_argv(self) -> list[str]:
        return ["-c:a", "libopus", "-b:a", self.audio_bitrate, "-ar", "48000"]


# VP8 realtime cpu-used 8 runs 720p30 at 3.3-3.9x realtime on 2 cores (ARCHITECTURE.md, "Measured here").
PROFILES = {
    p.name: p
    for p in (
        TranscodeProfile("vp8-realtime", "vp8", "realtime", 8, 10, "2M"),
        TranscodeProfile("vp8-good", "vp8", "good", 2, 10, "2M"),
        TranscodeProfile("vp9-realtime", "vp9", "realtime", 8, 32, "0"),
        TranscodeProfile("vp9-good", "vp9", "good", 4, 32, "0"),
    )
}


@dataclass(frozen=True)
class Piece:
    """One input as probed: `duration` is its span (end - start), not the container's end time."""

    path: Path
    media: MediaInfo
    start: float
    duration: float


@dataclass(frozen=True)
class AssembleResult:
    output: Path
    pieces: list[Piece]  # the segments, or the one joined stream
    expected_seconds: float  # the sum of the pieces' durations: what `verify` holds the output to
    has_audio: bool
    transcoded: bool  # True when any stream was re-encoded
    seconds: float  # wall time of the ffmpeg run


@dataclass(frozen=True)
class Poster:
    path: Path
    at_seconds: float


def assemble_segments(
    ffmpeg: str, segments: list[Path], output: Path, *, profile: TranscodeProfile, workdir: Path
) -> AssembleResult:
    """Join independently decodable segments, in order, into one seekable WebM at `output`.

    Uses ffmpeg's concat demuxer with each segment's span written into the list, so segments whose
    timestamps do not start at 0 join without gaps. When only some segments carry audio, the silent ones
    get a silent track first, so the audio stays in sync.
    """
    if not segments:
        raise MediaError("there are no segments to assemble")
    with ThreadPoolExecutor(PROBE_THREADS) as pool:  # libav opens files without the GIL
        pieces = list(pool.map(inspect_piece, segments))
    has_audio = any(p.media.has_audio for p in pieces)
    if has_audio:
        pieces = [_with_audio(ffmpeg, p, pieces, workdir) for p in pieces]
    listing = workdir / "concat.txt"
    listing.write_text("".join(_concat_entry(p) for p in pieces), encoding="utf-8")
    source = ["-protocol_whitelist", "file", "-f", "concat", "-safe", "0", "-i", f"file:{listing}"]
    return _join(ffmpeg, source, pieces, output, profile)


def assemble_stream(
    ffmpeg: str, chunks: list[Path], output: Path, *, profile: TranscodeProfile, workdir: Path
) -> AssembleResult:
    """Join a pushed byte stream (MediaRecorder WebM cut into chunks, in order) into one seekable WebM.

    The chunks are byte-concatenated on disk, then remuxed (or transcoded): MediaRecorder writes neither
    a Duration nor Cues, and clusters of unknown size; the remux writes a proper index.
    """
    joined = join_chunks(chunks, workdir / "stream.webm")
    piece = inspect_piece(joined)
    source = ["-protocol_whitelist", "file", "-i", f"file:{joined}"]
    return _join(ffmpeg, source, [piece], output, profile)


def join_chunks(chunks: list[Path], output: Path) -> Path:
    """Byte-concatenate `chunks` into `output`, streamed; MediaError unless the first opens a WebM."""
    if not chunks:
        raise MediaError("there are no chunks to assemble")
    with output.open("w+b") as out:
        for chunk in chunks:
            with chunk.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
        out.seek(0)
        if out.read(4) != b"\x1a\x45\xdf\xa3":
            raise MediaError("the stream does not start with an EBML header: not a WebM stream")
    return output


def inspect_piece(path: Path) -> Piece:
    """Probe one input; MediaError when it cannot be read or holds no video.

    The span is the container's end time minus its start time: ffmpeg's Matroska muxer stores the end
    time as the Duration. Without a Duration (a killed capture, a MediaRecorder stream) `probe` demuxes
    the file to measure it.
    """
    try:
        with av.open(f"file:{path}", options={"protocol_whitelist": "file"}) as container:
            streams = [StreamInfo(s.type, _codec_name(s)) for s in container.streams]
            start = _seconds(container.start_time)
            end = _seconds(container.duration)
            media = MediaInfo(end, container.format.name, streams)
    except (av.FFmpegError, OSError, ValueError) as e:
        raise MediaError(f"cannot read media at {path.name}: {getattr(e, 'strerror', None) or e}") from e
    if not media.has_video:
        raise MediaError(f"{path.name} has no video stream")
    if end <= start:
        media = probe(path)
        return Piece(path, media, start, media.duration)
    return Piece(path, media, start, end - start)


def verify(output: Path, expected_seconds: float, expect_audio: bool) -> MediaInfo:
    """Check an assembled WebM against what went in; return its MediaInfo or raise MediaError saying why."""
    info = probe(output)
    if not info.has_video:
        raise MediaError(f"{output.name} has no video stream")
    if expect_audio and not info.has_audio:
        raise MediaError(f"{output.name} lost its audio: the recorded segments carry an audio stream")
    if abs(info.duration - expected_seconds) > DURATION_TOLERANCE:
        raise MediaError(
            f"{output.name} lasts {info.duration:.2f} s but its pieces add up to {expected_seconds:.2f} s"
        )
    if (kind := doc_type(output)) != "webm":  # ffprobe calls both "matroska,webm": only the header tells
        raise MediaError(f"{output.name} is {kind}, not WebM: browsers may refuse it")
    layout = webm_layout(output)
    if not layout.seekable:
        missing = "Cues" if layout.cues_offset is None else "a Duration"
        raise MediaError(f"{output.name} is not seekable: it has no {missing}")
    return info


def make_poster(ffmpeg: str, media: Path, output: Path, duration: float, at: float | None = None) -> Poster:
    """A JPEG of `media` at `at` seconds, by default about 10% in (always within [0, duration - 0.1]);
    MediaError when none was written."""
    at = max(0.0, min(duration * 0.1 if at is None else at, duration - 0.1))
    output.unlink(missing_ok=True)
    run(poster_argv(ffmpeg, media, output, at), timeout=60)
    if not output.exists() or output.stat().st_size == 0:
        raise MediaError(f"ffmpeg wrote no poster frame at {at:.2f} s of {media.name}")
    return Poster(output, at)


def _join(
    ffmpeg: str, source: list[str], pieces: list[Piece], output: Path, profile: TranscodeProfile
) -> AssembleResult:
    videos = _uniform([c for p in pieces for c in p.media.codecs("video")[:1]], "video")
    audios = _uniform([c for p in pieces for c in p.media.codecs("audio")[:1]], "audio")
    encode_video, encode_audio = _video_needs_encode(videos), _audio_needs_encode(audios)
    codecs = ["-c:v", "copy"] if not encode_video else profile.video_argv()
    if audios:
        codecs += ["-c:a", "copy"] if not encode_audio else profile.audio_argv()
    expected = sum(p.duration for p in pieces)
    transcoded = encode_video or encode_audio
    argv = [
        ffmpeg, *QUIET, *source, "-map", "0:v:0", *(["-map", "0:a:0"] if audios else []),
        *codecs, *WEBM_OUT, "-y", f"file:{output}",
    ]  # fmt: skip
    started = time.monotonic()
    run(argv, timeout=_timeout(expected, transcoded))
    layout = webm_layout(output)
    if not layout.seekable:  # ffmpeg writes both when it can seek back: a broken promise, not bad input
        raise MediaError(f"ffmpeg wrote {output.name} without Cues or Duration")
    elapsed = time.monotonic() - started
    return AssembleResult(output, pieces, expected, bool(audios), transcoded, elapsed)


def _uniform(codecs: list[str], kind: str) -> list[str]:
    """The codecs, refused when they change between pieces: one decoder or one copy must fit them all."""
    if len(set(codecs)) > 1:
        raise MediaError(f"the segments change {kind} codec ({', '.join(sorted(set(codecs)))})")
    return codecs


def _video_needs_encode(codecs: list[str]) -> bool:
    return any(c not in WEBM_VIDEO for c in codecs)


def _audio_needs_encode(codecs: list[str]) -> bool:
    return any(c not in WEBM_AUDIO for c in codecs)


def _timeout(media_seconds: float, transcoded: bool) -> float:
    # A copy moves ~10 minutes of 720p per second; an encode runs at ~3x realtime on 2 cores, so these
    # only stop a hung ffmpeg.
    return 120 + media_seconds * (2.0 if transcoded else 0.1)


def _concat_entry(piece: Piece) -> str:
    """One concat-demuxer entry. `duration` is the span: the demuxer would otherwise offset the next
    segment by this one's container duration, which Matroska stores as an end time, not a length."""
    path = str(piece.path.resolve())
    if "\n" in path or "\r" in path:
        raise MediaError(f"cannot list a segment whose path holds a line break: {path!r}")
    quoted = "'" + f"file:{path}".replace("'", "'\\''") + "'"  # in '...' only a quote is special
    return f"file {quoted}\nduration {piece.duration:.6f}\n"


def _seconds(value: int | None) -> float:
    """A libav container time (AV_TIME_BASE units, None or negative when unknown) in seconds."""
    return value / av.time_base if value is not None and value > 0 else 0.0


def _codec_name(stream: av.stream.Stream) -> str:
    context = stream.codec_context  # None for data and attachment streams
    return context.name if context is not None else "none"


def _with_audio(ffmpeg: str, piece: Piece, pieces: list[Piece], workdir: Path) -> Piece:
    """`piece` itself when it has audio; else a copy of it with silence in the others' audio format."""
    if piece.media.has_audio:
        return piece
    reference = next(p for p in pieces if p.media.has_audio)
    padded = workdir / f"{piece.path.stem}.silence.mkv"
    argv = _silence_argv(ffmpeg, piece, *_audio_format(reference.path), padded)
    run(argv, timeout=_timeout(piece.duration, transcoded=True))
    return inspect_piece(padded)


def _silence_argv(ffmpeg: str, piece: Piece, codec: str, rate: int, layout: str, output: Path) -> list[str]:
    """Copy `piece`'s video and add `piece.duration` of silence encoded as `codec` at `rate`/`layout`."""
    return [
        ffmpeg, *QUIET, "-protocol_whitelist", "file", "-i", f"file:{piece.path}",
        "-f", "lavfi", "-t", f"{piece.duration:.6f}", "-i", f"anullsrc=r={rate}:cl={layout}",
        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", _SILENCE_ENCODERS.get(codec, codec),
        "-f", "matroska", "-y", f"file:{output}",
    ]  # fmt: skip


def _audio_format(path: Path) -> tuple[str, int, str]:
    """(codec, sample rate, channel layout name) of the first audio stream of `path`."""
    with av.open(f"file:{path}", options={"protocol_whitelist": "file"}) as container:
        ctx = container.streams.audio[0].codec_context
        return ctx.name, ctx.sample_rate, ctx.layout.name
