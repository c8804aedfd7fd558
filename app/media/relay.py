"""A capture attempt's one connection to its source: a reader ffmpeg relayed to a writer ffmpeg.

Many live sources serve one caller (an encoder in SRT listener mode ends its stream when its caller
leaves), so a capture must learn what the source carries from the very connection it records. The
*reader* (`commands.relay_reader_argv`) owns that connection: it describes the source's streams on
stderr and copies them, untouched, as NUT onto a pipe. Once the description is there, `advance()` asks
`writer_for(info)` for the *writer*'s argv (copy or transcode, into segments) and starts it reading the
pipe. The pipe holds what the reader writes meanwhile, so nothing read is lost.

Ending: `stop()` sends the reader `q`; the writer reads the pipe to its end, closes and lists its last
segment and exits. A source that fails ends the reader; the writer then ends the same way, and
`failure()` blames the source from the reader's log. A writer that fails (the disk, an encoder) is
reported from its own log, and the reader is ended with it. Progress and the stall watchdog come from
the writer, since only written media counts.

A source ffmpeg generates itself (the synthetic meeting) opens no connection: `Relay.single` runs the
writer alone, through the same interface.
"""

from __future__ import annotations

import fcntl
import logging
import re
from collections.abc import Callable, Mapping, Sequence

from app.errors import BadSourceError, MediaError
from app.media.failures import classify_failure, input_failure
from app.media.probe import MediaInfo
from app.media.runner import FfmpegProcess
from app.media.sourceprobe import parse_input_description

log = logging.getLogger(__name__)

PIPE_BYTES = 1 << 20  # what the pipe holds while the writer starts (Linux's default cap for a user)
# ffmpeg prints this right after the input's description (before it opens its output).
_DESCRIBED = re.compile(r"^(?:Stream mapping:|Output #0)", re.MULTILINE)

WriterFor = Callable[[MediaInfo], Sequence[str]]


class Relay:
    """One capture attempt: a reader ffmpeg holding the source's only connection, piped into a writer.

    Start it with `start(reader_argv)`, then call `advance()` on every tick from the same thread (the
    writer must be started by a thread that lives as long as the capture: see `FfmpegProcess`).
    `alive`, `stop()`, `kill()`, `wait()`, `failure()`, `returncode`, `out_seconds` and
    `seconds_since_progress` mean what they mean on `FfmpegProcess`, for the pair.
    """

    def __init__(self, writer_for: WriterFor | None = None) -> None:
        self._writer_for = writer_for
        self._reader: FfmpegProcess | None = None
        self._writer: FfmpegProcess | None = None
        self.info: MediaInfo | None = None  # the source's streams, once the reader described them
        self._stopping = False  # our stop: the reader's end is not the source's fault
        self._reader_outlived_writer = False  # the writer ended first: the reader's end is ours

    @classmethod
    def single(cls, argv: Sequence[str]) -> Relay:
        """A capture that needs no reader (ffmpeg generates the source): `argv` runs alone, started."""
        relay = cls()
        relay._writer = FfmpegProcess().start(argv)
        return relay

    def start(self, reader_argv: Sequence[str], env: Mapping[str, str] | None = None) -> Relay:
        """Start the reader (it connects to the source, with `env` added to its environment); the writer
        follows in `advance()`."""
        if self._reader is not None or self._writer is not None or self._writer_for is None:
            raise RuntimeError("this Relay was already started, or has no writer to start")
        self._reader = FfmpegProcess().start(reader_argv, pass_stdout=True, env=env)
        _grow_pipe(self._reader.stdout.fileno())
        return self

    def advance(self) -> None:
        """Start the writer once the reader has described the source; a no-op before and after.

        Raises MediaError when the writer cannot be started (the reader is ended first).
        """
        reader = self._reader
        if reader is None or self._writer_for is None or not self._writer_due():
            return
        self.info = parse_input_description(reader.stderr_head())
        try:
            argv = self._writer_for(self.info)
            self._writer = FfmpegProcess().start(argv, stdin=reader.stdout)
        except BaseException:
            reader.kill()
            raise
        finally:
            reader.stdout.close()  # the writer holds the read end now: if it dies, the reader sees EPIPE
        reader.lower_log_level()  # the description is read: from now on errors only, as the writer logs
        log.debug(
            "ffmpeg %s relays %s (%s) to ffmpeg %s",
            reader.pid,
            self.info.format_name,
            ", ".join(f"{s.kind} {s.codec}" for s in self.info.streams),
            self._writer.pid,
        )

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in (self._reader, self._writer) if p is not None and p.pid is not None]

    @property
    def alive(self) -> bool:
        """Whether the capture goes on: the writer runs, or the reader runs and the writer is to come."""
        if self._writer is not None:
            return self._writer.alive
        return self._reader is not None and (self._reader.alive or self._writer_due())

    @property
    def returncode(self) -> int | None:
        """None while running; then the code of the process that ended the capture (see `failure()`)."""
        return self._outcome()[0]

    @property
    def out_seconds(self) -> float:
        return self._writer.out_seconds if self._writer is not None else 0.0

    @property
    def seconds_since_progress(self) -> float:
        """Seconds since written media last advanced, counted from the reader's start until it first does."""
        if self._writer is not None and (self._writer.media_flowed or self._reader is None):
            return self._writer.seconds_since_progress
        assert self._reader is not None
        return self._reader.seconds_since_progress

    def stop(self, timeout: float = 5.0) -> int:
        """End gracefully: `q` to the reader, then the writer drains the pipe and closes its segment."""
        self._stopping = True
        code = self._reader.stop(timeout) if self._reader is not None else 0
        if self._writer is None:
            return code
        return self._writer.stop(timeout)  # a relayed writer gets no `q`: it ends at the pipe's end

    def kill(self) -> int:
        """SIGKILL both now; return the writer's exit code (the reader's when there is no writer)."""
        self._stopping = True
        if self._writer is not None:
            self._writer.kill()
        if self._reader is not None:
            self._reader.kill()
        return self._current.returncode or 0

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the capture to end (the writer; then the reader, ended if the writer went first)."""
        code = self._current.wait(timeout)
        if self._writer is not None and self._reader is not None:
            if self._reader.alive:
                self._reader_outlived_writer = True
                self._reader.stop(timeout=1.0)
            self._reader.wait(timeout)
        return code

    def failure(self) -> MediaError | None:
        """The classified error once the capture ended unsuccessfully; None while it runs or after success.

        The reader's log speaks for the source (unreachable, lost, bad media): a source that failed
        ended the reader, and the writer then ended cleanly at the pipe's end. Otherwise a writer that
        failed speaks for itself (the reader then fails too, on a broken pipe, which says nothing new);
        a reader that failed for another reason (killed) is the cause when the writer ended cleanly.
        Whether media flowed (lost rather than unreachable) is the writer's to say.
        """
        return self._outcome()[1]

    def _outcome(self) -> tuple[int | None, MediaError | None]:
        writer, reader = self._writer, self._reader
        if writer is None:
            assert reader is not None
            return reader.returncode, reader.failure()
        code = writer.returncode
        if code is None or self.alive:
            return None, None
        if reader is None or self._stopping or self._reader_outlived_writer or reader.returncode is None:
            return code, writer.failure()
        reader_code = reader.returncode
        source: MediaError | None
        if reader_code == 0:
            source = input_failure(reader.stderr_tail())
        else:
            source = classify_failure(reader_code, reader.stderr_tail(), started=writer.media_flowed)
        if source is not None and (isinstance(source, BadSourceError) or code == 0):
            return reader_code, source
        return code, writer.failure()

    def _writer_due(self) -> bool:
        """The reader described the source (it may even have ended since: the pipe holds the rest)."""
        if self._writer is not None or self._stopping or self._reader is None:
            return False
        return _DESCRIBED.search(self._reader.stderr_head()) is not None

    @property
    def _current(self) -> FfmpegProcess:
        process = self._writer or self._reader
        if process is None:
            raise RuntimeError("this Relay was not started")
        return process


def _grow_pipe(fd: int) -> None:
    """Let the pipe hold about a second of a high-bitrate source while the writer starts (best effort)."""
    resize = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    try:
        if resize is not None:
            fcntl.fcntl(fd, resize, PIPE_BYTES)
    except OSError:
        pass  # the 64 KiB default: the reader waits a moment for the writer, the source's buffer holds
