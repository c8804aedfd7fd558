"""The relay of a capture attempt (`app.media.relay`) against real ffmpeg and loopback sources: one
connection to the source, its streams learnt from it, failures blamed on the right side, and no
ffmpeg left behind when the process that started them dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.errors import MediaError, SourceLost, SourceUnreachable
from app.media.commands import choose_mode, relay_reader_argv, relay_writer_argv
from app.media.probe import MediaInfo, probe
from app.media.relay import Relay
from app.media.runner import STDERR_TAIL_BYTES, FfmpegProcess
from app.media.segments import SegmentList
from app.media.sourceprobe import parse_input_description
from app.media.sources import parse_source
from tests.helpers import wait_for
from tests.mediaservers import FFMPEG, HlsServer, SrtServer, decode_all, free_udp_port

pytestmark = pytest.mark.slow

SMALL = {"size": "320x240", "rate": 15}


def writer_for(spool: Path) -> Callable[[MediaInfo], list[str]]:
    """The capture's choice: copy WebM codecs, transcode the rest, into 1 s segments in `spool`."""
    spool.mkdir(parents=True, exist_ok=True)

    def argv(info: MediaInfo) -> list[str]:
        return relay_writer_argv(
            FFMPEG, spool, mode=choose_mode(info), segment_seconds=1, start_number=0, max_seconds=60, **SMALL
        )

    return argv


def relay(url: str, spool: Path) -> Relay:
    return Relay(writer_for(spool)).start(relay_reader_argv(FFMPEG, parse_source(url)))


def drive(process: Relay, until: Callable[[], bool], timeout: float = 30) -> None:
    """What the capture loop does: advance the relay until `until()` or its end."""
    deadline = time.monotonic() + timeout
    while process.alive and not until():
        assert time.monotonic() < deadline, "timed out"
        process.advance()
        time.sleep(0.05)


@pytest.mark.parametrize(("codecs", "video"), [("h264", "h264"), ("vp8", "vp8")])
def test_a_one_caller_source_is_learnt_and_recorded_through_one_connection(
    codecs: str, video: str, tmp_path: Path
) -> None:
    listing = SegmentList(tmp_path / "spool")
    with SrtServer(codecs, one_shot=True) as source:  # type: ignore[arg-type]
        process = relay(source.url, tmp_path / "spool")
        drive(process, lambda: len(listing.closed()) >= 2)
        assert process.stop() == 0
    assert process.failure() is None and process.returncode == 0
    assert process.info is not None and process.info.codecs("video") == [video]
    assert len(process.info.codecs("audio")) == 1
    closed = listing.closed()
    assert sorted(p.name for p in (tmp_path / "spool").glob("seg-*")) == [c.name for c in closed]
    for segment in closed:  # transcoded or copied, the segments are WebM's codecs
        assert probe(segment.path).codecs("video") == ["vp8"]
        frames, samples, first_is_key = decode_all(segment.path)
        assert frames > 0 and samples > 0 and first_is_key


def test_an_absent_source_is_unreachable_and_starts_no_writer(tmp_path: Path) -> None:
    process = relay(f"srt://127.0.0.1:{free_udp_port()}", tmp_path / "spool")
    drive(process, lambda: False)
    process.wait()
    assert isinstance(process.failure(), SourceUnreachable)
    assert process.info is None and len(process.pids) == 1


def test_a_source_that_dies_after_media_flowed_is_lost(tmp_path: Path) -> None:
    listing = SegmentList(tmp_path / "spool")
    with SrtServer("h264", one_shot=True) as source:
        process = relay(source.url, tmp_path / "spool")
        drive(process, lambda: len(listing.closed()) >= 1)
        source.drop()
        drive(process, lambda: False)
    process.wait()
    assert isinstance(process.failure(), SourceLost), process.failure()
    assert listing.closed()


def test_an_hls_server_that_goes_away_is_a_lost_source(tmp_path: Path) -> None:
    """ffmpeg takes a failed HTTP read for the end of its input and exits 0: the reader's log tells."""
    listing = SegmentList(tmp_path / "spool")
    with HlsServer() as source:
        process = relay(source.url, tmp_path / "spool")
        drive(process, lambda: len(listing.closed()) >= 1)
        source.drop()
        drive(process, lambda: False, timeout=60)
    process.wait()
    assert isinstance(process.failure(), SourceLost), process.failure()


def test_a_killed_writer_is_reported_as_killed_not_as_the_readers_broken_pipe(tmp_path: Path) -> None:
    listing = SegmentList(tmp_path / "spool")
    with SrtServer("h264", one_shot=True) as source:
        process = relay(source.url, tmp_path / "spool")
        drive(process, lambda: len(listing.closed()) >= 1)
        reader, writer = process.pids
        os.kill(writer, signal.SIGKILL)
        drive(process, lambda: False)
        wait_for(lambda: _gone(reader), timeout=10)  # it fails on the broken pipe first, then is waited
        process.wait()
    assert process.returncode == -signal.SIGKILL
    failure = process.failure()
    assert type(failure) is MediaError and "SIGKILL" in str(failure)


def test_a_writer_that_cannot_write_is_our_fault_and_ends_the_reader(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_bytes(b"")
    with SrtServer("h264", one_shot=True) as source:
        process = Relay(
            lambda info: relay_writer_argv(
                FFMPEG,
                not_a_directory,
                mode="transcode",
                segment_seconds=1,
                start_number=0,
                max_seconds=60,
                **SMALL,
            )  # fmt: skip
        ).start(relay_reader_argv(FFMPEG, parse_source(source.url)))
        drive(process, lambda: False)
        process.wait(timeout=10)
    failure = process.failure()
    assert type(failure) is MediaError and failure.kind == "internal", failure
    assert not any(Path(f"/proc/{pid}").exists() and not _zombie(pid) for pid in process.pids)


def test_killing_the_process_that_started_them_ends_reader_and_writer(tmp_path: Path) -> None:
    """A worker killed by SIGKILL (a job timeout, the OOM killer) leaves no ffmpeg running on."""
    with SrtServer("h264", one_shot=True) as source:
        script = f"""
import sys, time
from app.media.commands import relay_reader_argv, relay_writer_argv
from app.media.relay import Relay
from app.media.sources import parse_source
process = Relay(lambda info: relay_writer_argv(
    {FFMPEG!r}, __import__("pathlib").Path({str(tmp_path)!r}), mode="transcode", segment_seconds=1,
    start_number=0, max_seconds=60, size="320x240", rate=15,
)).start(relay_reader_argv({FFMPEG!r}, parse_source({source.url!r})))
while len(process.pids) < 2:
    process.advance()
    time.sleep(0.05)
print(*process.pids, flush=True)
time.sleep(60)
"""
        worker = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).parent.parent,
            text=True,
        )
        try:
            assert worker.stdout is not None
            pids = [int(pid) for pid in worker.stdout.readline().split()]
            assert len(pids) == 2
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
            wait_for(lambda: all(_gone(pid) for pid in pids), timeout=10)
        finally:
            worker.kill()


def test_the_description_is_kept_however_long_the_log_grows(tmp_path: Path) -> None:
    graph = "testsrc2=size=64x48:rate=1000"
    process = FfmpegProcess().start(
        [
            FFMPEG,
            "-hide_banner",
            "-loglevel",
            "debug",
            "-debug_ts",
            "-f",
            "lavfi",
            "-i",
            graph,
            "-t",
            "10",
            "-f",
            "null",
            "-",
        ]  # fmt: skip
    )
    process.wait(timeout=60)
    assert len(process.stderr_tail().encode()) >= STDERR_TAIL_BYTES - 4  # the tail moved on
    assert "Input #0" not in process.stderr_tail()
    assert parse_input_description(process.stderr_head()).format_name == "lavfi"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists() or _zombie(pid)
