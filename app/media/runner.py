"""The one owner of ffmpeg subprocesses: start, watch, stop, and say why one failed.

`FfmpegProcess` runs a long command (a capture): a thread parses `-progress pipe:1` from stdout, another
keeps the first and the last 64 KiB of stderr while the process runs (a full stderr pipe would block
ffmpeg; the start of the log describes the input, its end explains a failure). Two of them can be piped
into each other (`app.media.relay`). `run()` is for short commands (poster, remux).
`classify_failure` says whose fault a failure is through the error's class and `kind` (app.errors):
the source's (`BadSourceError`: "bad_media", or its subclasses `SourceUnreachable` and `SourceLost`, the
two a capture reconnects after) or ours (`MediaError`, "internal").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from app.errors import MediaError
from app.media.failures import classify_failure, input_failure, quote_line

log = logging.getLogger(__name__)

STDERR_TAIL_BYTES = 64 * 1024
STDERR_HEAD_BYTES = 64 * 1024
TERM_GRACE_SECONDS = 2.0  # after `q` went unanswered: SIGTERM, then this long before SIGKILL
OPENING_GRACE_SECONDS = 1.0  # for `q` before any progress report: ffmpeg reports every 0.5 s
# ffmpeg parses untrusted media: it gets none of the worker's environment (no secrets, no `no_proxy` or
# `http_proxy` of the host), only what a process needs and what its caller adds (`start(env=...)`).
MINIMAL_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


class FfmpegProcess:
    """One long-running ffmpeg, started with `start(argv)` and ended with `stop()` or `kill()`.

    `progress` is the latest complete block of `-progress` key=value pairs (strings, as ffmpeg wrote them;
    `out_time_us`, `frame`, `speed`, `progress` = "continue" | "end"). The argv must include
    `-progress pipe:1` for it to fill, and must not include `-nostdin` for `stop()` to be graceful.

    With `die_with_parent` (Linux), the kernel sends ffmpeg SIGTERM when the thread that called `start()`
    dies, so a worker killed by a job timeout leaves no capture running on; start it from a thread that
    lives as long as the capture. ffmpeg gets its own session, so a Ctrl-C meant for the worker does not
    reach it and only this object decides how it ends.
    """

    def __init__(self, *, die_with_parent: bool = True) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._die_with_parent = die_with_parent
        self._lock = threading.Lock()
        self._progress: dict[str, str] = {}
        self._stderr = bytearray()
        self._stderr_head = bytearray()  # the first bytes: where ffmpeg describes its input at `info`
        self._readers: list[threading.Thread] = []
        self._started_at = 0.0
        self._advanced_at: float | None = None  # monotonic time out_time last grew
        self._out_time_us = 0  # only media actually written counts as progress
        self._stop_requested = False

    def start(
        self,
        argv: Sequence[str],
        *,
        stdin: IO[bytes] | None = None,
        pass_stdout: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> FfmpegProcess:
        """Start ffmpeg with `argv` (binary first); raise MediaError when it cannot be executed.

        `stdin`: a pipe ffmpeg reads its input from (another ffmpeg's `stdout`; this process then
        cannot be sent `q`, and `stop()` waits for it to end at the pipe's end). `pass_stdout`: ffmpeg
        writes its output to stdout, which `stdout` hands on, instead of its progress reports. `env`:
        variables added to ffmpeg's minimal environment (`MINIMAL_ENV`).
        """
        if self._proc is not None:
            raise RuntimeError("this FfmpegProcess was already started")
        self._proc = _popen(
            argv,
            stdin=stdin if stdin is not None else subprocess.PIPE,
            die_with_parent=self._die_with_parent,
            env=env,
        )
        self._started_at = time.monotonic()
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._readers = [_daemon(self._read_stderr, self._proc.stderr, "stderr")]
        if not pass_stdout:
            self._readers.append(_daemon(self._read_progress, self._proc.stdout, "progress"))
        log.debug("ffmpeg %s started: %s", self._proc.pid, " ".join(argv))
        return self

    @property
    def stdout(self) -> IO[bytes]:
        """ffmpeg's stdout, when it was started with `pass_stdout`, for the next process to read."""
        proc = self._started()
        assert proc.stdout is not None
        return proc.stdout

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """None while running; negative -N when a signal N ended it (as in `subprocess`)."""
        return self._proc.poll() if self._proc else None

    @property
    def progress(self) -> dict[str, str]:
        """A snapshot of the latest progress block (empty until ffmpeg reports one)."""
        with self._lock:
            return dict(self._progress)

    @property
    def out_seconds(self) -> float:
        """Media time written so far, from `out_time_us` (0.0 before the first report)."""
        value = self.progress.get("out_time_us", "")
        return int(value) / 1e6 if value.lstrip("-").isdigit() else 0.0

    @property
    def seconds_since_progress(self) -> float:
        """Seconds since the written media time last advanced (since `start()` until it first does).

        The no-progress watchdog: a live source that stalls without closing the connection (a frozen HLS
        playlist, a half-open TCP stream) leaves ffmpeg alive and waiting, often deaf to `q` and SIGTERM.
        It keeps counting after exit, so `time.monotonic() - seconds_since_progress` is when media last
        flowed.
        """
        with self._lock:
            since = self._advanced_at if self._advanced_at is not None else self._started_at
        return time.monotonic() - since if since else 0.0

    def stderr_tail(self) -> str:
        """The last `STDERR_TAIL_BYTES` ffmpeg wrote to stderr so far, decoded leniently."""
        with self._lock:
            return self._stderr.decode("utf-8", "replace")

    def stderr_head(self) -> str:
        """The first `STDERR_HEAD_BYTES` ffmpeg wrote to stderr (its input's description at `info`)."""
        with self._lock:
            return self._stderr_head.decode("utf-8", "replace")

    @property
    def media_flowed(self) -> bool:
        """Whether the written media time ever advanced (it never does without `-progress`)."""
        with self._lock:
            return self._advanced_at is not None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for ffmpeg to exit and its output to be read; raise TimeoutError after `timeout`."""
        proc = self._started()
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired as e:
            raise TimeoutError(f"ffmpeg {proc.pid} still running after {timeout} s") from e
        for reader in self._readers:
            reader.join(timeout=2)  # EOF follows exit, unless a grandchild kept the pipe open
        return code

    def stop(self, timeout: float = 5.0) -> int:
        """End ffmpeg gracefully and return its exit code.

        Writes `q` so ffmpeg flushes the encoders and closes its output (the WebM gets its cues and
        duration, the segment muxer closes and lists the last segment; exit 0); after `timeout` seconds
        sends SIGTERM, and SIGKILL `TERM_GRACE_SECONDS` later. Before the first progress report ffmpeg may
        still be opening its input (reading no keys: up to 5 s of analysis on a live MPEG-TS source), or
        have begun writing within the last report period; so it gets `OPENING_GRACE_SECONDS` to answer
        `q`, then SIGTERM, which aborts a hanging connect and still closes any output cleanly (exit 0 or
        255). Safe to call twice.
        """
        proc = self._started()
        self._stop_requested = True
        if proc.poll() is None:
            _send_quit(proc.stdin)
            if not self.progress:
                try:
                    return self.wait(OPENING_GRACE_SECONDS)
                except TimeoutError:
                    proc.terminate()
            try:
                return self.wait(timeout)
            except TimeoutError:
                log.warning("ffmpeg %s ignored q for %.1f s; terminating", proc.pid, timeout)
            proc.terminate()
            try:
                return self.wait(TERM_GRACE_SECONDS)
            except TimeoutError:
                log.warning("ffmpeg %s ignored SIGTERM; killing", proc.pid)
        return self.kill()

    def lower_log_level(self) -> None:
        """Key `-`: ffmpeg logs one level less from now on (from `info`, errors only, as `-loglevel error`).

        For a process started at `info` to describe its input, once that description has been read.
        """
        proc = self._started()
        if proc.stdin is None or proc.stdin.closed:
            return
        try:
            proc.stdin.write(b"-")
            proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass  # it already exited; wait() reports how

    def kill(self) -> int:
        """SIGKILL ffmpeg now (the open WebM cluster and cues are lost) and return its exit code."""
        proc = self._started()
        self._stop_requested = True
        if proc.poll() is None:
            proc.kill()
        return self.wait()

    def failure(self) -> MediaError | None:
        """The classified error once ffmpeg has exited unsuccessfully; None while it runs or after success.

        ffmpeg treats a read error as the end of its input and exits 0, so an exit 0 that nobody asked
        for (no `stop()`) whose log shows the input failing (a dropped SRT peer, an HLS server gone) is a
        `SourceLost`. An exit 0 with a clean log is success: the stream ended or `max_seconds` was reached.
        Errors after media flowed are `SourceLost`, before it `SourceUnreachable` or `BadSourceError`.
        """
        code = self.returncode
        if code is None:
            return None
        started = self._advanced_at is not None
        if code == 0:
            return None if self._stop_requested else input_failure(self.stderr_tail())
        return classify_failure(code, self.stderr_tail(), started=started)

    def _started(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError("this FfmpegProcess was not started")
        return self._proc

    def _read_progress(self, stream: IO[bytes]) -> None:
        block: dict[str, str] = {}
        for raw in stream:
            key, sep, value = raw.decode("utf-8", "replace").strip().partition("=")
            if not sep:
                continue
            block[key] = value
            if key == "progress":  # the last key of each block: publish the block whole
                self._publish(block)
                block = {}

    def _publish(self, block: dict[str, str]) -> None:
        value = block.get("out_time_us", "")
        out_time_us = int(value) if value.lstrip("-").isdigit() else -1
        with self._lock:
            self._progress.update(block)
            if out_time_us > self._out_time_us:
                self._out_time_us = out_time_us
                self._advanced_at = time.monotonic()

    def _read_stderr(self, stream: IO[bytes]) -> None:
        read = getattr(stream, "read1", stream.read)
        while chunk := read(8192):
            with self._lock:
                if len(self._stderr_head) < STDERR_HEAD_BYTES:
                    self._stderr_head += chunk[: STDERR_HEAD_BYTES - len(self._stderr_head)]
                self._stderr += chunk
                del self._stderr[:-STDERR_TAIL_BYTES]


@dataclass(frozen=True)
class CompletedRun:
    """A short ffmpeg command that exited 0."""

    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: str
    seconds: float


def run(argv: Sequence[str], timeout: float) -> CompletedRun:
    """Run a short ffmpeg command to its end; raise the classified error when it fails.

    For commands with small output (a poster, a remux to a file): stdout is kept whole, stderr's tail only.
    stdin is closed so nothing waits for keyboard input. After `timeout` seconds ffmpeg is killed and
    MediaError raised.
    """
    started = time.monotonic()
    proc = _popen(argv, stdin=subprocess.DEVNULL, die_with_parent=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as e:
        proc.kill()
        _, stderr = proc.communicate()
        last = stderr[-300:].decode("utf-8", "replace").strip().splitlines()[-1:]
        raise MediaError(f"ffmpeg timed out after {timeout:g} s{quote_line(last)}") from e
    tail = stderr[-STDERR_TAIL_BYTES:].decode("utf-8", "replace")
    if proc.returncode != 0:
        raise classify_failure(proc.returncode, tail)
    return CompletedRun(list(argv), proc.returncode, stdout, tail, time.monotonic() - started)


def _popen(
    argv: Sequence[str],
    *,
    stdin: int | IO[bytes],
    die_with_parent: bool,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env={**MINIMAL_ENV, **(env or {})},
            preexec_fn=_parent_death_signal(die_with_parent),  # only prctl(), resolved before the fork
        )
    except OSError as e:  # missing binary, not executable, out of processes
        raise MediaError(f"cannot run {argv[0]!r}: {e}") from e


def _send_quit(stdin: IO[bytes] | None) -> None:
    """ffmpeg reads single-key commands from stdin even when it is a pipe; `q` means finish and exit."""
    if stdin is None or stdin.closed:
        return
    try:
        stdin.write(b"q\n")
        stdin.flush()
        stdin.close()
    except (BrokenPipeError, ValueError, OSError):
        pass  # it already exited; wait() reports how


def _daemon(target: Callable[[IO[bytes]], None], stream: IO[bytes], name: str) -> threading.Thread:
    def pump() -> None:
        try:
            target(stream)
        finally:
            stream.close()

    thread = threading.Thread(target=pump, name=f"ffmpeg-{name}", daemon=True)
    thread.start()
    return thread


def _load_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # resolved once here: the child must not load libraries between fork and exec
_PR_SET_PDEATHSIG = 1


def _parent_death_signal(enabled: bool) -> Callable[[], None] | None:
    if not enabled or _PRCTL is None:
        return None
    prctl = _PRCTL

    def set_pdeathsig() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))

    return set_pdeathsig
