"""app.media.assemble with the real bundled ffmpeg: segments and pushed streams joined into seekable WebM."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import av
import imageio_ffmpeg
import pytest

from app.errors import MediaError
from app.media import assemble, ebml
from app.media.assemble import AssembleResult, TranscodeProfile
from app.media.probe import MediaInfo, StreamInfo, probe
from app.media.runner import run

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
PROFILE = TranscodeProfile.from_name("vp8-realtime")
# Input-side -t: as an output option the muxer would write it into the header as the Duration.
SOURCE = [
    "-t", "6", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
    "-t", "6", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
]  # fmt: skip
VP8 = ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "16", "-b:v", "300k", "-g", "30"]
VP8_OPUS = [*VP8, "-c:a", "libopus", "-b:a", "48k"]
H264_AAC = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac", "-b:a", "64k"]


def make_segments(
    directory: Path, codecs: list[str], *, reset: bool = True, audio: bool = True
) -> list[Path]:
    """Six seconds cut into 2 s Matroska segments, the way a capture writes them."""
    directory.mkdir(parents=True)
    maps = ["-map", "0:v", *(["-map", "1:a"] if audio else [])]
    argv = [
        FFMPEG, "-hide_banner", "-loglevel", "error", *SOURCE, *maps, *codecs,
        "-f", "segment", "-segment_time", "2", "-segment_format", "matroska",
        "-reset_timestamps", "1" if reset else "0", str(directory / "seg-%03d.mkv"),
    ]  # fmt: skip
    run(argv, timeout=60)
    return sorted(directory.glob("seg-*.mkv"))


SEGMENT_ID, CLUSTER_ID = bytes.fromhex("18538067"), bytes.fromhex("1F43B675")
UNKNOWN_SIZE = bytes.fromhex("01FFFFFFFFFFFFFF")


def write_recorder_stream(path: Path) -> None:
    """A WebM as MediaRecorder writes it: no Duration, no Cues, Segment and clusters of unknown size."""
    argv = [FFMPEG, "-hide_banner", "-loglevel", "error", *SOURCE, *VP8_OPUS, "-f", "webm", "pipe:1"]
    written = run(argv, timeout=60).stdout  # to a pipe: ffmpeg can write neither Cues nor a Duration
    out, pos = bytearray(), 0
    while pos < len(written):
        ident, size, body = read_element(written, pos)
        if ident == SEGMENT_ID:  # enter it: its children follow
            out += SEGMENT_ID + UNKNOWN_SIZE
            size = 0
        elif ident == CLUSTER_ID:
            out += CLUSTER_ID + UNKNOWN_SIZE + written[body : body + size]
        else:
            out += written[pos : body + size]
        pos = body + size
    path.write_bytes(out)


def read_element(data: bytes, pos: int) -> tuple[bytes, int, int]:
    """(ID bytes, size, offset of the body) of the EBML element at `pos`; an unknown size reads as 0."""
    id_len = 9 - data[pos].bit_length()
    size_at = pos + id_len
    size_len = 9 - data[size_at].bit_length()
    all_ones = (1 << (7 * size_len)) - 1
    size = int.from_bytes(data[size_at : size_at + size_len], "big") & all_ones
    return data[pos:size_at], 0 if size == all_ones else size, size_at + size_len


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def total_span(paths: list[Path]) -> float:
    return sum(assemble.inspect_piece(p).duration for p in paths)


def frame_time_after_seek(path: Path, seconds: float) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(int(seconds / stream.time_base), stream=stream)
        frame = next(container.decode(stream))
        return float(frame.pts * stream.time_base)


def largest_video_gap(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = sorted(float(p.pts * stream.time_base) for p in container.demux(stream) if p.pts is not None)
    return max(b - a for a, b in zip(times, times[1:], strict=False))


def strip(segment: Path, option: str, output: Path) -> Path:
    """A stream copy of `segment` without its audio (`-an`) or its video (`-vn`)."""
    run([FFMPEG, "-loglevel", "error", "-i", str(segment), option, "-c", "copy", str(output)], timeout=30)
    return output


def first_video_packet(path: Path) -> bytes:
    with av.open(str(path)) as container:
        return bytes(next(container.demux(video=0)))


def join(segments: list[Path], workdir: Path, name: str = "out.webm") -> AssembleResult:
    workdir.mkdir(parents=True, exist_ok=True)
    return assemble.assemble_segments(FFMPEG, segments, workdir / name, profile=PROFILE, workdir=workdir)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("assemble")


@pytest.fixture(scope="module")
def vp8_segments(media: Path) -> list[Path]:
    return make_segments(media / "vp8", VP8_OPUS)


@pytest.fixture(scope="module")
def silent_segments(media: Path) -> list[Path]:
    return make_segments(media / "silent", VP8_OPUS, audio=False)


@pytest.fixture(scope="module")
def copied(vp8_segments: list[Path], media: Path) -> AssembleResult:
    return join(vp8_segments, media / "copied")


@pytest.fixture(scope="module")
def transcoded(media: Path) -> AssembleResult:
    return join(make_segments(media / "h264", H264_AAC), media / "transcoded")


@pytest.fixture(scope="module")
def recorder(media: Path) -> Path:
    path = media / "recorder.webm"
    write_recorder_stream(path)
    return path


# -- codecs and profiles -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codecs", "expected"),
    [
        ([("video", "vp8"), ("audio", "opus")], False),
        ([("video", "vp9")], False),
        ([("video", "av1"), ("audio", "vorbis")], False),
        ([("video", "h264"), ("audio", "aac")], True),
        ([("video", "vp8"), ("audio", "aac")], True),
    ],
)
def test_needs_transcode(codecs: list[tuple[str, str]], expected: bool) -> None:
    info = MediaInfo(1.0, "matroska,webm", [StreamInfo(kind, codec) for kind, codec in codecs])
    # The rule `_join` applies per stream kind: any codec WebM cannot hold is re-encoded.
    video, audio = info.codecs("video"), info.codecs("audio")
    assert (assemble._video_needs_encode(video) or assemble._audio_needs_encode(audio)) is expected


def test_default_profile_is_vp8_realtime_cpu_used_8() -> None:
    argv = PROFILE.video_argv()
    assert argv[argv.index("-c:v") + 1] == "libvpx" and argv[argv.index("-cpu-used") + 1] == "8"
    assert PROFILE.audio_argv()[:4] == ["-c:a", "libopus", "-b:a", "96k"]


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(MediaError, match="unknown transcode profile 'h265'"):
        TranscodeProfile.from_name("h265")


# -- the copy path ----------------------------------------------------------------------------------


def test_copy_keeps_vp8_and_opus(copied: AssembleResult) -> None:
    assert not copied.transcoded
    assert probe(copied.output).codecs("video") == ["vp8"]
    assert probe(copied.output).codecs("audio") == ["opus"]


def test_copy_lasts_the_sum_of_the_segments(copied: AssembleResult, vp8_segments: list[Path]) -> None:
    assert len(vp8_segments) == 3
    assert copied.expected_seconds == pytest.approx(total_span(vp8_segments))
    assert probe(copied.output).duration == pytest.approx(copied.expected_seconds, abs=0.5)


def test_copy_has_cues_and_duration(copied: AssembleResult) -> None:
    layout = ebml.webm_layout(copied.output)
    assert layout.seekable and layout.cues_offset is not None
    assert layout.duration == pytest.approx(copied.expected_seconds, abs=0.5)


def test_copy_seeks_to_the_middle(copied: AssembleResult) -> None:
    assert frame_time_after_seek(copied.output, 3.0) == pytest.approx(3.0, abs=1.0)


def test_copy_verifies(copied: AssembleResult) -> None:
    info = assemble.verify(copied.output, copied.expected_seconds, expect_audio=True)
    assert info.has_video and info.has_audio


def test_copy_rerun_writes_identical_bytes(
    vp8_segments: list[Path], copied: AssembleResult, media: Path
) -> None:
    again = join(vp8_segments, media / "again")
    assert sha256(again.output) == sha256(copied.output)


def test_segments_not_starting_at_zero_join_without_a_gap(media: Path) -> None:
    segments = make_segments(media / "offset", VP8_OPUS, reset=False)
    assert assemble.inspect_piece(segments[-1]).start > 3.0
    result = join(segments, media / "offset-out")
    assert probe(result.output).duration == pytest.approx(6.0, abs=0.5)
    assert result.expected_seconds == pytest.approx(6.0, abs=0.5)
    assert largest_video_gap(result.output) < 0.1


def test_audio_less_segments_give_a_video_only_webm(silent_segments: list[Path], media: Path) -> None:
    result = join(silent_segments, media / "silent-out")
    assert not result.has_audio
    info = assemble.verify(result.output, result.expected_seconds, expect_audio=False)
    assert info.codecs("audio") == [] and info.codecs("video") == ["vp8"]


def test_a_segment_without_audio_gets_silence(vp8_segments: list[Path], media: Path) -> None:
    mixed = media / "mixed"
    mixed.mkdir()
    middle = strip(vp8_segments[1], "-an", mixed / "seg-001.mkv")
    result = join([vp8_segments[0], middle, vp8_segments[2]], mixed / "out")
    assert result.has_audio and not result.transcoded
    assemble.verify(result.output, result.expected_seconds, expect_audio=True)


def test_paths_with_quotes_and_spaces_are_listed_safely(vp8_segments: list[Path], media: Path) -> None:
    odd = media / "it's a 'dir'"
    odd.mkdir()
    copies = [Path(shutil.copy(p, odd / f"-{i}: seg'{i}.mkv")) for i, p in enumerate(vp8_segments)]
    result = join(copies, odd / "work")
    assert probe(result.output).duration == pytest.approx(result.expected_seconds, abs=0.5)


def test_a_segment_without_video_is_refused(vp8_segments: list[Path], media: Path) -> None:
    audio_only = strip(vp8_segments[1], "-vn", media / "audio-only.mkv")
    with pytest.raises(MediaError, match="audio-only.mkv has no video stream"):
        join([vp8_segments[0], audio_only], media / "no-video")


def test_no_segments_is_an_error(media: Path) -> None:
    with pytest.raises(MediaError, match="no segments"):
        join([], media / "empty")


# -- the transcode path ------------------------------------------------------------------------------


def test_h264_aac_becomes_vp8_opus(transcoded: AssembleResult) -> None:
    info = assemble.verify(transcoded.output, transcoded.expected_seconds, expect_audio=True)
    assert transcoded.transcoded
    assert (info.codecs("video"), info.codecs("audio")) == (["vp8"], ["opus"])


def test_only_the_audio_is_re_encoded_when_the_video_is_webm(media: Path) -> None:
    segments = make_segments(media / "vp8-aac", [*VP8, "-c:a", "aac"])
    result = join(segments, media / "vp8-aac-out")
    assert result.transcoded and probe(result.output).codecs("audio") == ["opus"]
    assert first_video_packet(result.output) == first_video_packet(segments[0])  # copied, not re-encoded


def test_transcode_has_cues_and_duration(transcoded: AssembleResult) -> None:
    assert ebml.webm_layout(transcoded.output).seekable


# -- pushed streams ----------------------------------------------------------------------------------


def test_recorder_stream_has_no_index(recorder: Path) -> None:
    layout = ebml.webm_layout(recorder)
    assert (layout.duration, layout.cues_offset) == (None, None)


def test_stream_joins_arbitrary_byte_chunks(recorder: Path, media: Path) -> None:
    data, chunks, work = recorder.read_bytes(), [], media / "stream"
    work.mkdir()
    for i, (start, end) in enumerate(zip([0, 1, 4000, 50_001], [1, 4000, 50_001, len(data)], strict=True)):
        chunks.append(work / f"chunk-{i}")
        chunks[-1].write_bytes(data[start:end])
    result = assemble.assemble_stream(FFMPEG, chunks, work / "out.webm", profile=PROFILE, workdir=work)
    assert (work / "stream.webm").read_bytes() == data
    assert not result.transcoded and result.expected_seconds == pytest.approx(6.0, abs=0.5)
    assemble.verify(result.output, result.expected_seconds, expect_audio=True)


def test_stream_must_start_with_an_ebml_header(recorder: Path, media: Path) -> None:
    chunk = media / "headless"
    chunk.write_bytes(recorder.read_bytes()[100:])
    with pytest.raises(MediaError, match="not a WebM stream"):
        assemble.assemble_stream(FFMPEG, [chunk], media / "never.webm", profile=PROFILE, workdir=media)


# -- verify, layout, poster --------------------------------------------------------------------------


def test_verify_refuses_missing_audio(silent_segments: list[Path], media: Path) -> None:
    result = join(silent_segments, media / "mute-out")
    with pytest.raises(MediaError, match="lost its audio"):
        assemble.verify(result.output, result.expected_seconds, expect_audio=True)


def test_verify_refuses_a_wrong_duration(copied: AssembleResult) -> None:
    with pytest.raises(MediaError, match=r"lasts 6\.\d+ s but its pieces add up to 8\.00 s"):
        assemble.verify(copied.output, 8.0, expect_audio=True)


def test_verify_refuses_an_unindexed_webm(recorder: Path) -> None:
    with pytest.raises(MediaError, match="not seekable: it has no Cues"):
        assemble.verify(recorder, 6.0, expect_audio=True)


def test_webm_layout_refuses_other_files(media: Path) -> None:
    other = media / "not.webm"
    other.write_bytes(b"RIFF....WEBPVP8 ")
    with pytest.raises(MediaError, match="not a WebM file"):
        ebml.webm_layout(other)


def test_poster_is_taken_ten_percent_in(copied: AssembleResult, media: Path) -> None:
    poster = assemble.make_poster(FFMPEG, copied.output, media / "poster.jpg", 6.0)
    assert poster.at_seconds == pytest.approx(0.6)
    assert poster.path.read_bytes()[:2] == b"\xff\xd8"


def test_poster_of_a_very_short_video_is_its_first_frame(copied: AssembleResult, media: Path) -> None:
    assert assemble.make_poster(FFMPEG, copied.output, media / "first.jpg", 0.05).at_seconds == 0.0
