"""Segmented captures of real network sources served on loopback (tests/mediaservers.py).

The media functions are called directly with loopback URLs: the SSRF allow-list lives in
app.services.core.sources and is tested there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.errors import BadSourceError, SourceLost, SourceUnreachable
from app.media.commands import choose_mode, segment_capture_argv
from app.media.probe import MediaInfo, probe
from app.media.runner import FfmpegProcess
from app.media.segments import ClosedSegment, SegmentList
from app.media.sources import parse_source
from tests.helpers import wait_for
from tests.mediaservers import FFMPEG, HlsServer, HttpDir, SrtServer, decode_all, free_udp_port
from tests.test_relay import drive, relay

SEGMENT_SECONDS = 1


@dataclass
class Recorded:
    closed: list[ClosedSegment]
    process: FfmpegProcess
    spool: Path


def start(url: str, spool: Path, mode: str, start_number: int = 0) -> tuple[FfmpegProcess, SegmentList]:
    spool.mkdir(parents=True, exist_ok=True)
    argv = segment_capture_argv(
        FFMPEG, parse_source(url), spool, mode=mode, segment_seconds=SEGMENT_SECONDS,
        start_number=start_number, size="320x240", rate=15, max_seconds=60,
    )  # fmt: skip
    return FfmpegProcess().start(argv), SegmentList(spool)


def record(url: str, spool: Path, mode: str, segments: int = 2, start_number: int = 0) -> Recorded:
    """Capture `url` until `segments` segments are closed, then stop it with `q`."""
    process, listing = start(url, spool, mode, start_number)
    try:
        wait_for(lambda: len(listing.closed()) >= segments or not process.alive, timeout=20, interval=0.1)
    finally:
        process.stop()
    return Recorded(listing.closed(), process, spool)


def assert_intact(recorded: Recorded, video: str, audio: str) -> None:
    """Every segment listed, none left over, each decodable alone with the expected codecs."""
    assert recorded.closed, recorded.process.stderr_tail()
    assert sorted(p.name for p in recorded.spool.glob("seg-*")) == [c.name for c in recorded.closed]
    for segment in recorded.closed:
        info = probe(segment.path)
        assert (info.codecs("video"), info.codecs("audio")) == ([video], [audio]), segment.name
        frames, _, starts_clean = decode_all(segment.path)
        assert frames and starts_clean, segment.name


@pytest.fixture(scope="module")
def srt_h264() -> Iterator[SrtServer]:
    with SrtServer("h264") as server:
        yield server


@pytest.fixture(scope="module")
def srt_webm() -> Iterator[SrtServer]:
    with SrtServer("vp8") as server:
        yield server


@pytest.fixture(scope="module")
def hls() -> Iterator[HlsServer]:
    with HlsServer() as server:
        yield server


# -- recording -----------------------------------------------------------------------------------------


def test_an_srt_source_is_transcoded_into_segments(srt_h264: SrtServer, tmp_path: Path) -> None:
    srt_h264.wait_ready()
    recorded = record(srt_h264.url, tmp_path, "transcode", start_number=3)
    assert recorded.process.returncode == 0 and recorded.process.failure() is None
    assert_intact(recorded, "vp8", "opus")
    assert [c.number for c in recorded.closed] == list(range(3, 3 + len(recorded.closed)))


@pytest.mark.parametrize(("mode", "codecs"), [("transcode", ("vp8", "opus")), ("copy", ("h264", "aac"))])
def test_a_live_hls_source_records_into_segments(
    hls: HlsServer, tmp_path: Path, mode: str, codecs: tuple[str, str]
) -> None:
    recorded = record(hls.url, tmp_path, mode)
    assert recorded.process.returncode == 0
    assert_intact(recorded, *codecs)  # Matroska segments hold any codec: copy keeps the source's


def test_copy_mode_keeps_a_webm_sources_codecs_and_cuts_on_its_keyframes(
    srt_webm: SrtServer, tmp_path: Path
) -> None:
    srt_webm.wait_ready()
    recorded = record(srt_webm.url, tmp_path, "copy", segments=3)
    assert recorded.process.returncode == 0
    assert_intact(recorded, "vp8", "opus")
    # The source sends a keyframe each second (-g 15 at 15 fps): each cut lands on the first one at or
    # after a boundary, so full segments last one segment_seconds.
    assert all(0.9 < c.duration < 1.2 for c in recorded.closed[:-1])


def test_the_relay_learns_which_sources_copy(srt_webm: SrtServer, hls: HlsServer, tmp_path: Path) -> None:
    srt_webm.wait_ready()
    webm = learnt(srt_webm.url, tmp_path / "webm")
    assert (webm.codecs("video"), webm.codecs("audio"), choose_mode(webm)) == (["vp8"], ["opus"], "copy")
    ts = learnt(hls.url, tmp_path / "hls")
    assert (ts.format_name, ts.codecs("video"), ts.codecs("audio")) == ("hls", ["h264"], ["aac"])
    assert choose_mode(ts) == "transcode"


def learnt(url: str, spool: Path) -> MediaInfo:
    """The streams a capture attempt's relay learns from its one connection to `url`."""
    process = relay(url, spool)
    try:
        drive(process, lambda: process.info is not None)
    finally:
        process.stop()
    assert process.info is not None
    return process.info


# -- sources that fail ---------------------------------------------------------------------------------


def test_an_srt_source_that_dies_is_lost_and_its_segments_stay(tmp_path: Path) -> None:
    with SrtServer("vp8") as server:
        process, listing = start(server.url, tmp_path, "copy")
        wait_for(lambda: len(listing.closed()) >= 1, timeout=15, interval=0.1)
        server.drop()
        # SRT has no goodbye from a dead peer: libsrt gives up after its 5 s peer idle timeout.
        process.wait(timeout=15)
    failure = process.failure()
    assert process.returncode == 0  # ffmpeg takes the read error for the end of its input
    assert isinstance(failure, SourceLost) and failure.kind == "source_lost", process.stderr_tail()
    assert_intact(Recorded(listing.closed(), process, tmp_path), "vp8", "opus")


def test_an_hls_server_that_goes_away_is_a_lost_source(tmp_path: Path) -> None:
    with HlsServer() as server:
        process, listing = start(server.url, tmp_path, "copy")
        wait_for(lambda: len(listing.closed()) >= 1, timeout=15, interval=0.1)
        server.drop()
        process.wait(timeout=15)
    failure = process.failure()
    assert isinstance(failure, SourceLost), process.stderr_tail()
    assert_intact(Recorded(listing.closed(), process, tmp_path), "h264", "aac")


def test_a_stalled_source_shows_on_the_watchdog(tmp_path: Path) -> None:
    with HlsServer() as server:
        process, listing = start(server.url, tmp_path, "copy")
        wait_for(lambda: process.out_seconds > 0.5, timeout=15, interval=0.1)
        server.stall()
        # The playlist is still served and never grows: ffmpeg waits on, alive and silent.
        wait_for(lambda: process.seconds_since_progress > 3, timeout=15, interval=0.1)
        assert process.alive
        assert process.kill() < 0  # a stalled ffmpeg may ignore `q`: the watchdog kills it
    assert all(decode_all(c.path)[0] for c in listing.closed())


def test_an_absent_srt_listener_is_unreachable(tmp_path: Path) -> None:
    process, _ = start(f"srt://127.0.0.1:{free_udp_port()}", tmp_path, "copy")
    process.wait(timeout=15)  # libsrt's connect timeout is 3 s
    failure = process.failure()
    assert isinstance(failure, SourceUnreachable) and failure.kind == "source_unreachable"


def test_a_playlist_cannot_make_ffmpeg_read_local_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.ts"
    secret.write_bytes(b"G" * 188 * 10)
    with HttpDir(tmp_path / "www") as http:
        playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{}\n#EXT-X-ENDLIST\n"
        (http.root / "evil.m3u8").write_text(playlist.format(secret.as_uri()))
        spool = tmp_path / "spool"
        process, listing = start(http.url("evil.m3u8"), spool, "copy")
        process.wait(timeout=15)
    failure = process.failure()
    assert type(failure) is BadSourceError and "not on whitelist" in str(failure)
    assert listing.closed() == [] and not list(spool.glob("seg-*"))


def test_a_reconnected_capture_continues_the_numbering(hls: HlsServer, tmp_path: Path) -> None:
    first = record(hls.url, tmp_path / "a", "copy", segments=1)
    next_number = first.closed[-1].number + 1
    second = record(hls.url, tmp_path / "b", "copy", segments=1, start_number=next_number)
    numbers = [c.number for c in first.closed + second.closed]
    assert numbers == list(range(len(numbers)))
    assert second.closed[0].path.name == f"seg-{next_number:06d}.mkv"
