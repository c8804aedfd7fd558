"""Real network media sources on loopback, served by a second ffmpeg, for capture tests.

- `SrtServer`: an SRT listener (`srt://127.0.0.1:PORT`) sending a live test pattern and tone. With
  `codecs="h264"` it sends what encoders and cameras send, H.264 + AAC in MPEG-TS; with `codecs="vp8"`
  it sends VP8 + Opus in WebM, a source that copy mode records without transcoding. MPEG-TS cannot carry
  VP8/VP9, so the WebM stream goes over SRT as a plain byte stream (ffmpeg cuts it into 1316-byte SRT
  messages, the live-mode payload size); on loopback nothing is lost, so the Matroska demuxer is happy.
- `RtmpServer`: an RTMP server (ffmpeg `-listen 1`) sending H.264 + AAC in FLV to one client only.
- `HlsServer`: live HLS (H.264 + AAC, 1 s segments, a sliding playlist of 6) written by ffmpeg into a
  temporary directory and served by a `http.server` thread (`HttpDir`, also usable on its own; it
  notes the path of every GET in `requests`).

Each is a context manager that returns only once the source is readable, and ends every process it
started on exit. An ffmpeg SRT listener serves a single caller and exits when that caller leaves, so
`SrtServer` starts a fresh listener each time (the stream restarts at 0 for each caller); with
`one_shot=True` it starts one only, like an encoder that serves one caller and ends its stream when that
caller leaves (a second connection, such as a probe before the capture, gets the stream and ends it). `drop()`
kills a server the way a source machine dies mid-meeting; `HlsServer.stall()` kills only its encoder,
so the playlist is still served but never grows.

`decode_all` checks a recorded segment the hard way: every frame decoded.

Note: ffmpeg reads up to 5 s of an MPEG-TS stream (its analyzeduration) before it writes anything, so
the first segment of a capture of the H.264 SRT source closes about 5 s late (what was read meanwhile
is recorded); the WebM one starts at once.
"""

from __future__ import annotations

import functools
import http.server
import itertools
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal, Self

import av
import imageio_ffmpeg

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
READY_TIMEOUT = 15.0

H264_AAC = [
    "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
    "-c:a", "aac", "-b:a", "64k",
]  # fmt: skip
VP8_OPUS = [
    "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "16", "-threads", "1", "-pix_fmt", "yuv420p",
    "-c:a", "libopus", "-b:a", "64k",
]  # fmt: skip


def live_pattern(size: str, rate: int) -> list[str]:
    """ffmpeg input options for a test pattern and a beeping tone paced at real time."""
    graph = f"testsrc2=size={size}:rate={rate}[out0];sine=frequency=440:sample_rate=48000:beep_factor=4[out1]"
    return ["-re", "-f", "lavfi", "-i", graph]


class SrtServer:
    """An SRT listener on loopback serving a live test pattern to each caller in turn."""

    def __init__(
        self,
        codecs: Literal["h264", "vp8"] = "h264",
        *,
        size: str = "320x240",
        rate: int = 15,
        bitrate: str = "400k",
        workdir: Path | None = None,
        one_shot: bool = False,
    ) -> None:
        self.port = free_udp_port()
        self.one_shot = one_shot  # serve the first caller only, as an encoder in listener mode does
        self.url = f"srt://127.0.0.1:{self.port}"
        if codecs == "h264":
            codec_args, muxer = [*H264_AAC, "-bf", "0"], ["-f", "mpegts"]
        else:
            codec_args, muxer = VP8_OPUS, ["-f", "webm", "-cluster_time_limit", "500", "-flush_packets", "1"]
        self.argv = [
            FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", *live_pattern(size, rate),
            *codec_args, "-b:v", bitrate, "-g", str(rate),
            *muxer, f"srt://127.0.0.1:{self.port}?mode=listener",
        ]  # fmt: skip
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="srt-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._progress = self.workdir / "progress-0.txt"
        self._lock = threading.Lock()
        self._serving = False
        self._thread = threading.Thread(target=self._serve, name=f"srt-{self.port}", daemon=True)

    def __enter__(self) -> Self:
        self._serving = True
        self._thread.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Return once a listener that has served no caller yet is bound to the port.

        Call it before each caller: the listener that served the last one may still be bound while it
        notices that its caller left.
        """
        _wait(self._ready, timeout, f"no free SRT listener on port {self.port}")

    def _ready(self) -> bool:
        with self._lock:
            process, progress = self._process, self._progress
        if process is None or process.poll() is not None or not udp_port_bound(self.port):
            return False
        # ffmpeg reports progress only once its output is open, i.e. once a caller has connected.
        return not progress.exists() or progress.stat().st_size == 0

    def drop(self) -> None:
        """SIGKILL the listener now, without a goodbye to the caller, and start no other."""
        with self._lock:
            self._serving = False
            if self._process is not None and self._process.poll() is None:
                self._process.send_signal(signal.SIGKILL)

    def interrupt(self) -> None:
        """SIGKILL the listener serving the current caller; a fresh one serves the next caller."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.send_signal(signal.SIGKILL)

    def close(self) -> None:
        self.drop()
        self._thread.join(timeout=5)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _serve(self) -> None:
        log_path = self.workdir / "server.log"
        for generation in itertools.count():
            with self._lock:
                if not self._serving:
                    return
                self._progress = self.workdir / f"progress-{generation}.txt"
                argv = [self.argv[0], "-progress", str(self._progress), *self.argv[1:]]
                with log_path.open("ab") as log:
                    self._process = process = _popen(argv, log)
            process.wait()
            if self.one_shot:
                return
            time.sleep(0.05)  # the caller left; a listener that cannot start must not spin


class RtmpServer:
    """An RTMP server on loopback (`rtmp://127.0.0.1:PORT/live/room`) sending H.264 + AAC in FLV to one
    client, as ffmpeg does with `-listen 1`: the stream ends when that client leaves."""

    def __init__(self, *, size: str = "320x240", rate: int = 15, workdir: Path | None = None) -> None:
        self.port = free_tcp_port()
        self.url = f"rtmp://127.0.0.1:{self.port}/live/room"
        self.argv = [
            FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", *live_pattern(size, rate),
            *H264_AAC, "-b:v", "400k", "-g", str(rate), "-f", "flv", "-listen", "1", self.url,
        ]  # fmt: skip
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="rtmp-"))
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        with (self.workdir / "server.log").open("ab") as log:
            self._process = _popen(self.argv, log)
        # Only a listening socket is looked for: a test connection would be the one client it serves.
        _wait(lambda: tcp_port_listening(self.port), READY_TIMEOUT, f"no RTMP server on port {self.port}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


class HlsServer:
    """Live HLS served over HTTP from loopback: `url` is the playlist."""

    def __init__(
        self,
        *,
        size: str = "320x240",
        rate: int = 15,
        segment_seconds: float = 1.0,
        workdir: Path | None = None,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="hls-"))
        self.http = HttpDir(self.workdir / "www")
        self.playlist = self.http.root / "live.m3u8"
        self.url = self.http.url("live.m3u8")
        self.argv = [
            FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", *live_pattern(size, rate),
            *H264_AAC, "-b:v", "400k", "-g", str(rate), "-bf", "0",
            "-f", "hls", "-hls_time", f"{segment_seconds:g}", "-hls_list_size", "6",
            "-hls_flags", "delete_segments", "-hls_segment_filename", str(self.http.root / "seg-%05d.ts"),
            str(self.playlist),
        ]  # fmt: skip
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.http.__enter__()
        with (self.workdir / "server.log").open("ab") as log:
            self._process = _popen(self.argv, log)
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float = READY_TIMEOUT, segments: int = 2) -> None:
        """Return once the playlist lists `segments` segments."""
        _wait(lambda: self.listed() >= segments, timeout, "the HLS playlist did not fill")

    def listed(self) -> int:
        try:
            return self.playlist.read_text().count("#EXTINF")
        except FileNotFoundError:
            return 0

    def stall(self) -> None:
        """SIGKILL the encoder only: the playlist is still served but never grows (a stalled source)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()

    def drop(self) -> None:
        """Kill the encoder and the web server: every request from now on is refused."""
        self.stall()
        self.http.close()

    def close(self) -> None:
        self.drop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


class HttpDir:
    """A directory served over HTTP on loopback by a `http.server` thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: list[str] = []  # the path of every GET, in order
        handler = functools.partial(_QuietHandler, directory=str(root), requests=self.requests)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="http-dir", daemon=True)
        self._closed = False

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and close the port: connections are refused from now on."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args: Any, requests: list[str], **kwargs: Any) -> None:
        self._requests = requests
        super().__init__(*args, **kwargs)  # handles the request: everything it needs is set before

    def do_GET(self) -> None:
        self._requests.append(self.path)  # list.append is atomic: handler threads need no lock
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


def decode_all(path: Path) -> tuple[int, int, bool]:
    """Decode every frame of `path`: (video frames, audio frames, first video frame is a keyframe at ~0)."""
    counts = {"video": 0, "audio": 0}
    first_ok = False
    with av.open(f"file:{path}", options={"protocol_whitelist": "file"}) as container:
        for frame in container.decode(*container.streams):
            kind = "video" if isinstance(frame, av.VideoFrame) else "audio"
            if kind == "video" and counts["video"] == 0:
                first_ok = frame.key_frame and float(frame.time or 0) < 0.1
            counts[kind] += 1
    return counts["video"], counts["audio"], first_ok


def free_udp_port() -> int:
    """A UDP port on loopback nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_tcp_port() -> int:
    """A TCP port on loopback nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tcp_port_listening(port: int) -> bool:
    """Whether a TCP socket listens on `port` on this machine (Linux: read from /proc/net/tcp)."""
    wanted = f"{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(r.split()[1].rpartition(":")[2] == wanted and r.split()[3] == "0A" for r in rows):  # LISTEN
            return True
    return False


def udp_port_bound(port: int) -> bool:
    """Whether a UDP socket is bound to `port` on this machine (Linux: read from /proc/net/udp)."""
    wanted = f"{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(row.split()[1].rpartition(":")[2] == wanted for row in rows):
            return True
    return False


def _popen(argv: list[str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
    )


def _wait(condition: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(0.05)
