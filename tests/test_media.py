"""app.media against the real bundled ffmpeg: source checks, argv builders, the runner and the probe."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import pytest

from app.errors import BadSourceError, MediaError, SourceLost, SourceUnreachable
from app.media import commands
from app.media.commands import choose_mode, poster_argv, segment_capture_argv
from app.media.failures import input_failure
from app.media.probe import MediaInfo, StreamInfo, probe
from app.media.runner import FfmpegProcess, classify_failure, run
from app.media.segments import ClosedSegment, SegmentList
from app.media.sources import WHITELISTS, MediaSource, parse_source, protocol_whitelist
from tests.mediaservers import decode_all

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
SYNTHETIC = parse_source("synthetic://meeting")
SMALL = {"size": "320x240", "rate": 15}
# Close clusters at least every second (or 1 MiB) and flush each to disk, so a killed capture keeps what
# it recorded (as the segment muxer's SEGMENT_MATROSKA does for each segment).
WEBM_LIVE = [
    "-f", "webm", "-cluster_time_limit", "1000", "-cluster_size_limit", str(1 << 20), "-flush_packets", "1",
]  # fmt: skip


def capture_argv(
    ffmpeg: str, source: MediaSource, output: Path, *, size: str, rate: int, max_seconds: int
) -> list[str]:
    """Record `source` into one WebM (VP8 + Opus 48 kHz) at `output`, with the inputs and encoders a
    segmented capture uses: a simple ffmpeg run to exercise FfmpegProcess. `q` on stdin ends it, so no
    `-nostdin`; `-t` limits the input, so a capture killed early claims no false duration."""
    return [
        ffmpeg, *commands.QUIET_PROGRESS, "-t", str(max_seconds), *commands._inputs(source, size, rate),
        *commands._maps(source), *commands._transcode(source, size, rate), *WEBM_LIVE, "-y", str(output),
    ]  # fmt: skip


def small_capture(source: MediaSource, output: Path, max_seconds: int = 60) -> list[str]:
    return capture_argv(FFMPEG, source, output, max_seconds=max_seconds, **SMALL)


def small_segments(
    source: MediaSource, spool: Path, mode: str = "transcode", start_number: int = 0
) -> list[str]:
    return segment_capture_argv(
        FFMPEG,
        source,
        spool,
        mode=mode,
        segment_seconds=1,
        start_number=start_number,
        max_seconds=60,
        **SMALL,
    )


def wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


# -- sources -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("srt://media.example.com:9000?streamid=room1", "srt"),
        ("rtmp://live.example.com/app/key", "rtmp"),
        ("rtmps://live.example.com:443/app/key", "rtmps"),
        ("rtsp://user:pass@cam.example.com:554/stream1", "rtsp"),
        ("rtsps://cam.example.com/stream1", "rtsps"),
        ("http://cdn.example.com/live/index.m3u8", "http"),
        ("HTTPS://cdn.example.com/vod.mp4?sig=abc", "https"),
    ],
)
def test_pull_sources_are_accepted(url: str, scheme: str) -> None:
    assert parse_source(url) == MediaSource(url, scheme, "pull")


def test_synthetic_meeting_is_built_in() -> None:
    assert parse_source(" synthetic://meeting ") == MediaSource(
        "synthetic://meeting", "synthetic", "synthetic"
    )


@pytest.mark.parametrize(
    "url",
    [
        "",
        "file:///etc/passwd",
        "/etc/passwd",
        "recording.webm",
        "concat:a.webm|b.webm",
        "subfile,,start,0,end,100,,:/etc/passwd",
        "data:video/webm;base64,AAAA",
        "pipe:0",
        "fd:3",
        "-i",
        "-filter_complex",
        "crypto+http://example.com/x",
        "async:http://example.com/x",
        "http://example.com/a|b",
        "http://example.com/a b",
        "http://example.com/a\nb",
        "http:///no-host",
        "http:example.com/x",
        "udp://example.com:1234",
        "ftp://example.com/x.mp4",
        "synthetic://other",
        "hls+http://example.com/live.m3u8",
        "cache:http://example.com/x",
        "tee:http://example.com/x",
        "gopher://example.com/x",
        "tcp://example.com:1234",
        "tls://example.com:443",
        "unix:/run/socket",
        "rtmpt://example.com/app/key",
        "rtp://example.com:5004",
        "ipfs://bafy/x",
        "srt://example.com:9000?mode=listener",
        "srt://example.com:9000?mode=caller&mode=rendezvous",
        "srt://example.com:9000#?mode=listener",  # libsrt reads options after the first `?`, fragment or not
        "srt://example.com:9000?latency=1#&mode=listener",
        "srt://example.com:9000?MODE=LISTENER",
        "http://example.com/" + "a" * 3000,
    ],
)
def test_other_sources_are_refused(url: str) -> None:
    with pytest.raises(BadSourceError):
        parse_source(url)


@pytest.mark.parametrize("scheme", sorted(WHITELISTS))
def test_whitelists_never_open_local_things(scheme: str) -> None:
    source = parse_source(f"{scheme}://example.com/x")
    allowed = set(protocol_whitelist(source).split(","))
    assert not allowed & {"file", "pipe", "fd", "concat", "concatf", "subfile", "data"}
    for argv in (
        capture_argv(FFMPEG, source, Path("out.webm"), size="640x360", rate=30, max_seconds=10),
        small_segments(source, Path("spool"), mode="copy"),
    ):
        assert argv[argv.index("-protocol_whitelist") + 1] == protocol_whitelist(source)
        assert argv[argv.index("-i") + 1] == source.url
        assert argv.count("-i") == 1 and "-filter_complex" not in argv


# -- argv builders -------------------------------------------------------------------------------------


def test_capture_argv_encodes_vp8_single_threaded_and_keeps_stdin_for_q() -> None:
    argv = small_capture(SYNTHETIC, Path("out.webm"))
    assert argv[0] == FFMPEG
    assert "-nostdin" not in argv
    assert argv[argv.index("-c:v") + 1] == "libvpx" and argv[argv.index("-threads") + 1] == "1"
    assert argv[argv.index("-c:a") + 1] == "libopus" and argv[argv.index("-ar") + 1] == "48000"
    assert argv[argv.index("-progress") + 1] == "pipe:1"
    assert argv[argv.index("-f", argv.index("-i")) + 1] == "webm"
    assert argv.index("-t") < argv.index("-i"), (
        "-t limits the input, so an early kill leaves no false duration"
    )


def test_rtsp_uses_tcp_and_its_own_timeout() -> None:
    argv = capture_argv(
        FFMPEG, parse_source("rtsp://cam.example.com/s"), Path("o.webm"), **SMALL, max_seconds=5
    )
    assert argv[argv.index("-rtsp_transport") + 1] == "tcp"
    assert "-timeout" in argv and "-rw_timeout" not in argv  # the RTSP demuxer ignores -rw_timeout


@pytest.mark.parametrize("size", ["320x240[out0];movie=/etc/passwd", "320:240", "x240", "1x1"])
def test_capture_argv_refuses_a_size_that_is_not_wxh(size: str) -> None:
    with pytest.raises(ValueError):
        capture_argv(FFMPEG, SYNTHETIC, Path("o.webm"), size=size, rate=15, max_seconds=5)


def test_poster_argv_reads_local_paths_as_files_only() -> None:
    argv = poster_argv(FFMPEG, Path("-odd:name.webm"), Path("p.jpg"), 1.5)
    assert argv[argv.index("-i") + 1] == "file:-odd:name.webm"
    assert argv[argv.index("-protocol_whitelist") + 1] == "file"


def test_segment_capture_lists_each_closed_segment_and_continues_numbering() -> None:
    argv = small_segments(SYNTHETIC, Path("/spool"), start_number=42)
    assert argv[argv.index("-f", argv.index("-i")) + 1] == "segment"
    assert argv[argv.index("-segment_format") + 1] == "matroska"
    assert argv[argv.index("-segment_start_number") + 1] == "42"
    assert argv[argv.index("-segment_list") + 1] == "/spool/segments.csv"
    assert argv[argv.index("-segment_list_type") + 1] == "csv"
    assert argv[argv.index("-reset_timestamps") + 1] == "1"
    assert "flush_packets=1" in argv[argv.index("-segment_format_options") + 1]
    assert argv[-1] == "/spool/seg-%06d.mkv"
    assert "-nostdin" not in argv  # `q` must reach ffmpeg


def test_transcode_forces_a_keyframe_at_every_segment_boundary() -> None:
    argv = segment_capture_argv(
        FFMPEG,
        SYNTHETIC,
        Path("s"),
        mode="transcode",
        segment_seconds=4,
        start_number=0,
        max_seconds=9,
        **SMALL,
    )
    assert argv[argv.index("-force_key_frames") + 1] == "expr:gte(t,n_forced*4)"
    assert argv[argv.index("-c:v") + 1] == "libvpx" and argv[argv.index("-threads") + 1] == "1"


def test_copy_mode_copies_and_filters_nothing() -> None:
    argv = small_segments(parse_source("srt://127.0.0.1:9000"), Path("s"), mode="copy")
    assert argv[argv.index("-c") + 1] == "copy"
    assert not {"-af", "-vf", "-filter_complex", "-c:v", "-force_key_frames"} & set(argv)
    assert argv[argv.index("-protocol_whitelist") + 1] == "srt"


@pytest.mark.parametrize(
    ("mode", "source"), [("copy", SYNTHETIC), ("remux", parse_source("srt://127.0.0.1:9000"))]
)
def test_segment_capture_refuses_modes_it_cannot_do(mode: str, source: MediaSource) -> None:
    with pytest.raises(ValueError):
        small_segments(source, Path("s"), mode=mode)


@pytest.mark.parametrize(
    ("codecs", "mode"),
    [
        (["vp8", "opus"], "copy"),
        (["VP9", "vorbis"], "copy"),
        (["av1"], "copy"),  # a silent source
        (["h264", "aac"], "transcode"),
        (["vp8", "aac"], "transcode"),
        (["opus"], "transcode"),  # no picture
        ([], "transcode"),
        (MediaInfo(0.0, "matroska,webm", [StreamInfo("video", "vp9"), StreamInfo("audio", "opus")]), "copy"),
        # Only the first video and audio streams are recorded: a second, odd one does not matter.
        (MediaInfo(0.0, "mpegts", [StreamInfo("video", "vp8"), StreamInfo("video", "h264")]), "copy"),
        (MediaInfo(0.0, "mpegts", [StreamInfo("video", "h264"), StreamInfo("audio", "opus")]), "transcode"),
    ],
)
def test_choose_mode_copies_only_webm_codecs(codecs: MediaInfo | list[str], mode: str) -> None:
    assert choose_mode(codecs) == mode


# -- the segment list ----------------------------------------------------------------------------------


def test_segment_list_reads_closed_segments_incrementally(tmp_path: Path) -> None:
    listing = SegmentList(tmp_path)
    assert listing.closed() == []  # no list yet: nothing closed
    with (tmp_path / "segments.csv").open("wb", buffering=0) as f:
        f.write(b"seg-000007.mkv,0.000000,2.007000\nseg-000008.mkv,2.007")
        assert listing.closed() == [
            ClosedSegment("seg-000007.mkv", tmp_path / "seg-000007.mkv", 7, 0.0, 2.007)
        ]
        f.write(b"000,4.007000\n")
        closed = listing.closed()
    assert [c.number for c in closed] == [7, 8]
    assert closed[1].duration == pytest.approx(2.0)
    assert listing.total_seconds == pytest.approx(4.007)


@pytest.mark.parametrize(
    "line", [b"seg-000001.mkv,0.0\n", b"../etc/passwd,0.0,1.0\n", b"seg-000001.mkv,a,b\n", b"\n"]
)
def test_segment_list_skips_lines_that_are_not_segments(tmp_path: Path, line: bytes) -> None:
    (tmp_path / "segments.csv").write_bytes(line + b"seg-000002.mkv,1.0,2.0\n")
    assert [c.name for c in SegmentList(tmp_path).closed()] == ["seg-000002.mkv"]


# -- a real synthetic capture --------------------------------------------------------------------------


@dataclass
class Capture:
    info: MediaInfo
    wall_seconds: float  # from start to the stop request
    wall_seconds_stopped: float  # from start to the process having exited
    out_seconds_seen: list[float]
    returncode: int
    final_progress: dict[str, str]
    path: Path


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    """A 320x240@15 synthetic capture stopped gracefully with stop() after about 2 s."""
    output = tmp_path_factory.mktemp("media") / "capture.webm"
    process = FfmpegProcess().start(small_capture(SYNTHETIC, output))
    started, seen = time.monotonic(), []
    while time.monotonic() - started < 2.0:
        seen.append(process.out_seconds)
        time.sleep(0.1)
    wall = time.monotonic() - started
    returncode = process.stop()
    stopped = time.monotonic() - started
    return Capture(probe(output), wall, stopped, seen, returncode, process.progress, output)


def test_graceful_stop_exits_zero_and_reports_the_end(capture: Capture) -> None:
    assert capture.returncode == 0
    assert capture.final_progress["progress"] == "end"


def test_capture_is_webm_with_vp8_and_opus(capture: Capture) -> None:
    assert "webm" in capture.info.format_name
    assert capture.info.codecs("video") == ["vp8"] and capture.info.codecs("audio") == ["opus"]


def test_capture_duration_matches_wall_time(capture: Capture) -> None:
    # A real-time source: what was recorded lies between the stop request and the exit, give or take
    # the encoder's first frame and last flush.
    assert capture.wall_seconds - 0.5 < capture.info.duration < capture.wall_seconds_stopped + 0.5


def test_progress_advances_while_running(capture: Capture) -> None:
    assert capture.out_seconds_seen[-1] > 1.0
    assert capture.out_seconds_seen == sorted(capture.out_seconds_seen)


def test_poster_is_a_jpeg(capture: Capture, tmp_path: Path) -> None:
    poster = tmp_path / "poster.jpg"
    result = run(poster_argv(FFMPEG, capture.path, poster, 1.0), timeout=20)
    assert result.returncode == 0
    assert poster.read_bytes()[:3] == b"\xff\xd8\xff"


def test_killed_capture_is_a_failure_but_keeps_its_flushed_clusters(tmp_path: Path) -> None:
    output = tmp_path / "killed.webm"
    process = FfmpegProcess().start(small_capture(SYNTHETIC, output))
    wait_for(lambda: process.out_seconds >= 1.5)
    assert process.kill() < 0
    failure = process.failure()
    assert isinstance(failure, MediaError) and not isinstance(failure, BadSourceError)
    assert "SIGKILL" in str(failure)
    assert probe(output).duration >= 0.5  # clusters are flushed about every second


# -- a real segmented capture -------------------------------------------------------------------------


@dataclass
class Segmented:
    spool: Path
    closed: list[ClosedSegment]
    listed_while_running: list[tuple[int, bool]]  # (segments listed, the newest one decodes) per poll
    wall_seconds: float  # from start to the stop request
    wall_seconds_stopped: float
    most_since_progress: float  # the watchdog's largest reading while recording
    returncode: int


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory) -> Segmented:
    """A synthetic capture into 1 s segments numbered from 7, polled while recording, stopped with `q`."""
    spool = tmp_path_factory.mktemp("spool")
    listing = SegmentList(spool)
    process = FfmpegProcess().start(small_segments(SYNTHETIC, spool, start_number=7))
    started, seen, most_since = time.monotonic(), [], 0.0
    while time.monotonic() - started < 3.6:
        closed = listing.closed()
        newest_decodes = bool(closed) and decode_all(closed[-1].path)[0] > 0
        seen.append((len(closed), newest_decodes))
        if process.progress:
            most_since = max(most_since, process.seconds_since_progress)
        time.sleep(0.2)
    wall = time.monotonic() - started
    returncode = process.stop()
    stopped = time.monotonic() - started
    return Segmented(spool, listing.closed(), seen, wall, stopped, most_since, returncode)


def test_segments_are_listed_as_they_close(segmented: Segmented) -> None:
    counts = [count for count, _ in segmented.listed_while_running]
    assert counts == sorted(counts) and counts[-1] >= 2  # 1 s segments over 3.6 s
    assert all(decodes for count, decodes in segmented.listed_while_running if count)


def test_graceful_stop_closes_and_lists_the_last_segment(segmented: Segmented) -> None:
    assert segmented.returncode == 0
    assert sorted(p.name for p in segmented.spool.glob("seg-*.mkv")) == [c.name for c in segmented.closed]


def test_segments_add_up_to_the_wall_time(segmented: Segmented) -> None:
    total = sum(c.duration for c in segmented.closed)
    assert segmented.wall_seconds - 0.5 < total < segmented.wall_seconds_stopped + 0.5


def test_numbering_starts_at_start_number_without_gaps(segmented: Segmented) -> None:
    numbers = [c.number for c in segmented.closed]
    assert numbers == list(range(7, 7 + len(numbers)))
    assert [c.path.name for c in segmented.closed] == [f"seg-{n:06d}.mkv" for n in numbers]


def test_each_segment_decodes_alone_from_a_keyframe_at_zero(segmented: Segmented) -> None:
    for closed in segmented.closed:
        info = probe(closed.path)
        assert info.codecs("video") == ["vp8"] and info.codecs("audio") == ["opus"]
        video, audio, starts_clean = decode_all(closed.path)
        assert video and audio and starts_clean, closed.name
    # Keyframes are forced at the boundaries, so all but the last last one segment_seconds.
    assert [round(c.duration, 1) for c in segmented.closed[:-1]] == [1.0] * (len(segmented.closed) - 1)


def test_progress_watchdog_stays_low_while_media_flows(segmented: Segmented) -> None:
    assert segmented.most_since_progress < 1.5  # ffmpeg reports twice a second


def test_reaching_max_seconds_is_a_clean_end_with_every_segment_listed(tmp_path: Path) -> None:
    options = {"mode": "transcode", "segment_seconds": 1, "start_number": 0, "max_seconds": 2, **SMALL}
    process = FfmpegProcess().start(segment_capture_argv(FFMPEG, SYNTHETIC, tmp_path, **options))
    assert process.wait(timeout=10) == 0
    assert process.failure() is None  # not a lost source: the limit ended it
    closed = SegmentList(tmp_path).closed()
    assert [c.name for c in closed] == sorted(p.name for p in tmp_path.glob("seg-*.mkv"))
    assert sum(c.duration for c in closed) == pytest.approx(2.0, abs=0.1)


def test_sigkill_keeps_every_listed_segment_intact(tmp_path: Path) -> None:
    listing = SegmentList(tmp_path)
    process = FfmpegProcess().start(small_segments(SYNTHETIC, tmp_path))
    wait_for(lambda: len(listing.closed()) >= 2 and process.out_seconds > 2.5)
    assert process.kill() < 0
    closed = listing.closed()
    assert [c.number for c in closed] == list(range(len(closed)))
    for segment in closed:
        video, audio, starts_clean = decode_all(segment.path)
        assert video >= 14 and audio and starts_clean, segment.name  # 15 fps, 1 s segments
    assert (tmp_path / f"seg-{len(closed):06d}.mkv").exists()  # the open one, unlisted: incomplete


# -- pull failures -------------------------------------------------------------------------------------


def test_unreachable_pull_fails_fast_as_a_bad_source(tmp_path: Path) -> None:
    started = time.monotonic()
    process = FfmpegProcess().start(small_capture(parse_source("http://127.0.0.1:9/x"), tmp_path / "o.webm"))
    process.wait(timeout=10)
    assert time.monotonic() - started < 5
    failure = process.failure()
    assert isinstance(failure, SourceUnreachable) and failure.kind == "source_unreachable"
    assert "refused" in str(failure)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """An http URL whose server accepts connections (kernel backlog) but never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}/live.m3u8"


def test_the_watchdog_counts_from_start_while_no_media_flows(silent_server: str, tmp_path: Path) -> None:
    process = FfmpegProcess().start(small_segments(parse_source(silent_server), tmp_path, mode="copy"))
    time.sleep(1.2)
    assert process.seconds_since_progress >= 1.2 and process.out_seconds == 0
    process.stop()
    assert not list(tmp_path.glob("seg-*"))


def test_stop_is_prompt_while_the_source_is_still_connecting(silent_server: str, tmp_path: Path) -> None:
    process = FfmpegProcess().start(small_capture(parse_source(silent_server), tmp_path / "o.webm"))
    time.sleep(0.5)
    started = time.monotonic()
    process.stop(timeout=5)
    assert time.monotonic() - started < 2
    assert not process.alive


# -- classification and short runs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returncode", "stderr", "expected"),
    [
        (145, "[tcp @ 0x5f] Connection to tcp://10.0.0.9:1935 failed: Connection refused", SourceUnreachable),
        (8, "[in#0 @ 0x5f] Error opening input: Server returned 404 Not Found", BadSourceError),
        (8, "[in#0 @ 0x5f] Error opening input: Server returned 503 Service Unavailable", SourceUnreachable),
        (183, "Error opening input: Invalid data found when processing input", BadSourceError),
        (22, "[file @ 0x5f] Protocol 'file' not on whitelist 'http,tcp'!", BadSourceError),
        (
            251,
            "[tcp @ 0x5f] Failed to resolve hostname nope.invalid: Name or service not known",
            SourceUnreachable,
        ),
        (146, "", SourceUnreachable),  # ETIMEDOUT, told by the exit code alone
        (251, "[srt @ 0x5f] Connection to srt://10.0.0.9:9000 failed: Input/output error", SourceUnreachable),
        (
            8,
            "[libsrt @ 0x5f] Query string option 'x' does not exist\nError opening input: Option not found",
            BadSourceError,
        ),
        (228, "[out#0/webm @ 0x5f] Error writing trailer: No space left on device", MediaError),
        (8, "Unknown encoder 'libvpx'", MediaError),
        (
            8,
            "Unrecognized option 'segment_nope'.\nError splitting the argument list: Option not found",
            MediaError,
        ),
        (254, "Error opening input: No such file or directory", MediaError),
        (-9, "", MediaError),
        (1, "something nobody has seen before", MediaError),
    ],
)
def test_classify_failure(returncode: int, stderr: str, expected: type[MediaError]) -> None:
    error = classify_failure(returncode, stderr)
    assert type(error) is expected
    assert (
        error.kind
        == {
            MediaError: "internal",
            BadSourceError: "bad_media",
            SourceUnreachable: "source_unreachable",
        }[expected]
    )
    assert "0x5f" not in str(error)  # ffmpeg's context pointers are noise in a user-facing message


@pytest.mark.parametrize(
    "stderr",
    [
        "[tcp @ 0x5f] Connection to tcp://10.0.0.9:80 failed: Connection refused",
        "Error opening input: Server returned 404 Not Found",
        "[in#0/mpegts @ 0x5f] Error during demuxing: Input/output error",
        "",  # killed by ffmpeg's own alarm or an unknown cause mid-stream: still the source's end
    ],
)
def test_errors_after_media_flowed_mean_the_source_was_lost(stderr: str) -> None:
    error = classify_failure(251 if stderr else 146, stderr, started=True)
    assert type(error) is SourceLost and error.kind == "source_lost"


def test_our_own_faults_stay_internal_after_media_flowed() -> None:
    error = classify_failure(228, "Error writing trailer: No space left on device", started=True)
    assert type(error) is MediaError


@pytest.mark.parametrize(
    ("stderr", "lost"),
    [
        ("[in#0/mpegts @ 0x5f] Error during demuxing: Input/output error", True),  # an SRT peer vanished
        ("[tcp @ 0x5f] Connection to tcp://127.0.0.1:8080 failed: Connection refused", True),  # HLS server
        ("", False),  # the stream's own end, or -t reached
    ],
)
def test_an_exit_zero_is_a_lost_source_only_when_the_input_failed(stderr: str, lost: bool) -> None:
    error = input_failure(stderr)
    assert (type(error) is SourceLost) if lost else error is None


def test_run_raises_the_classified_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="missing"):
        run([FFMPEG, "-nostdin", "-i", f"file:{tmp_path / 'absent.webm'}", "-f", "null", "-"], timeout=20)


def test_run_reports_a_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot run"):
        run([str(tmp_path / "no-ffmpeg")], timeout=5)


def test_probe_refuses_what_is_not_media(tmp_path: Path) -> None:
    text = tmp_path / "notes.webm"
    text.write_text("not a video")
    with pytest.raises(MediaError):
        probe(text)


# -- relayed capture argv (app.media.relay) ----------------------------------------------------------


def relay_writer(mode: str = "transcode", start_number: int = 0) -> list[str]:
    return commands.relay_writer_argv(
        FFMPEG,
        Path("/spool"),
        mode=mode,
        segment_seconds=2,
        start_number=start_number,
        max_seconds=60,
        **SMALL,
    )


def test_relay_reader_is_the_one_connection_and_describes_it() -> None:
    source = parse_source("srt://127.0.0.1:9000?latency=200000")
    argv = commands.relay_reader_argv(FFMPEG, source)
    assert argv[0] == FFMPEG
    assert argv.count("-i") == 1 and argv[argv.index("-i") + 1] == source.url
    assert argv[argv.index("-protocol_whitelist") + 1] == "srt"
    assert argv[argv.index("-loglevel") + 1] == "info"  # the input's description is how codecs are learnt
    assert argv[argv.index("-i") + 1 :] == [
        source.url, "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-f", "nut", "pipe:1",
    ]  # fmt: skip
    assert "-nostdin" not in argv  # `q` ends it


@pytest.mark.parametrize(
    ("url", "option", "value"),
    [("rtsp://cam.example.com/s", "-rtsp_transport", "tcp"), ("https://cdn.example.com/a.m3u8", "-re", None)],
)
def test_relay_reader_reads_each_scheme_as_a_capture_does(url: str, option: str, value: str | None) -> None:
    argv = commands.relay_reader_argv(FFMPEG, parse_source(url))
    assert option in argv and argv.index(option) < argv.index("-i")
    assert value is None or argv[argv.index(option) + 1] == value


def test_relay_reader_refuses_the_synthetic_meeting() -> None:
    with pytest.raises(ValueError):
        commands.relay_reader_argv(FFMPEG, SYNTHETIC)


def test_relay_writer_reads_only_the_pipe_and_lists_its_segments() -> None:
    argv = relay_writer(mode="copy", start_number=5)
    assert argv.count("-i") == 1 and argv[argv.index("-i") + 1] == "pipe:0"
    assert argv[argv.index("-f") + 1] == "nut" and argv.index("-f") < argv.index("-i")
    assert argv[argv.index("-protocol_whitelist") + 1] == "pipe"
    assert argv[argv.index("-probesize") + 1] == "32"  # NUT's header says it all: no analysis
    assert "-nostdin" in argv  # it ends at the end of the pipe, never on a key
    assert argv[argv.index("-progress") + 1] == "pipe:1"
    assert argv.index("-t") < argv.index("-i")
    assert argv[argv.index("-c") + 1] == "copy"
    muxer = commands.segment_muxer(Path("/spool"), 2, 5)
    assert argv[-len(muxer) :] == muxer


def test_relay_writer_transcodes_as_a_direct_pull_capture() -> None:
    direct = segment_capture_argv(
        FFMPEG, parse_source("srt://127.0.0.1:9000"), Path("/spool"), mode="transcode",
        segment_seconds=2, start_number=0, max_seconds=60, **SMALL,
    )  # fmt: skip
    relayed = relay_writer()

    def codecs(argv: list[str]) -> list[str]:
        return argv[argv.index("-c:v") : argv.index("-f", argv.index("-c:v"))]

    assert codecs(relayed) == codecs(direct)
    assert relayed[relayed.index("-af") + 1] == "aresample=async=1"
    assert relayed[relayed.index("-force_key_frames") + 1] == "expr:gte(t,n_forced*2)"


@pytest.mark.parametrize("mode", ["remux", ""])
def test_relay_writer_refuses_modes_it_cannot_do(mode: str) -> None:
    with pytest.raises(ValueError):
        relay_writer(mode=mode)
