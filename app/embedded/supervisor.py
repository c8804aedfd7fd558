"""A small process supervisor: keep every child running, restart crashed ones with backoff, stop them all.

Each child runs in a session of its own, so a Ctrl-C typed in the terminal reaches only the supervisor,
which then stops the children itself, in reverse order of start; `backing` children (the Redis and S3
server the others use) are stopped only once every other child has exited, so a draining worker can still
upload and enqueue. A stop sends SIGTERM to the child, waits `stop_timeout`, then SIGKILLs every process
of its session so no grandchild (an ffmpeg, a gunicorn worker, an RQ work horse, which moves to a process
group of its own) outlives it; every child is reaped, so none is left a zombie.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.errors import MeetrecError

logger = logging.getLogger(__name__)
# A child still stopping after this long is named once, so a long orderly stop (weed's takes about 15 s)
# does not look like a hang to whoever pressed Ctrl-C.
STOP_NOTICE_SECONDS = 2.0


@dataclass(frozen=True)
class ChildSpec:
    """How to run one supervised child. `env` None means the supervisor's own environment.

    `log_path`: the child's output is appended there (None: it shares the supervisor's). `prepare` runs
    before every start (a config file to write, stale sockets to remove). `ready` is polled after the
    first start until it answers True, before the next child starts. A `backing` child is a service the
    others use: stopped last.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    stop_timeout: float = 10.0
    log_path: Path | None = None
    prepare: Callable[[], None] | None = None
    ready: Callable[[], bool] | None = None
    backing: bool = False


class _Child:
    """A spec's running state: the current process and how many times in a row it failed fast."""

    def __init__(self, spec: ChildSpec):
        self.spec = spec
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.fast_failures = 0
        self.restart_at: float | None = None


class Supervisor:
    """Starts `specs`, restarts any that exit, stops them all on `stop()` or `request_stop()`.

    A child that exits is restarted after `backoff_initial` seconds, doubled per consecutive fast failure
    up to `backoff_max`; a child that stayed up `healthy_after` seconds counts as healthy again.
    """

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        log: logging.Logger = logger,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        healthy_after: float = 60.0,
        poll_interval: float = 0.2,
    ):
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique: {names}")
        self.log = log
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.healthy_after = healthy_after
        self.poll_interval = poll_interval
        self._children = [_Child(spec) for spec in specs]
        self._stopping = threading.Event()
        # Held while children are spawned or stopped, so a restart never races a stop from another thread.
        self._lock = threading.Lock()

    def process(self, name: str) -> subprocess.Popen[bytes] | None:
        """The latest process of child `name`: None before start; it may have exited and await a restart."""
        for child in self._children:
            if child.spec.name == name:
                return child.process
        raise KeyError(name)

    def start(self, names: Collection[str] | None = None, ready_timeout: float = 120.0) -> None:
        """Start every child not started yet (or those of them in `names`), in the order given, each one
        with a `ready` probe answering before the next starts. MeetrecError when one exits while starting
        or is not ready within `ready_timeout` seconds."""
        with self._lock:
            for child in self._children:
                if child.process is None and (names is None or child.spec.name in names):
                    self._spawn(child)
                    self._wait_ready(child, ready_timeout)

    def run(self) -> None:
        """Supervise until `request_stop()` (from any thread or a signal handler), then stop every child."""
        try:
            while not self._stopping.wait(self.poll_interval):
                self._tick(time.monotonic())
        finally:
            self.stop()

    def request_stop(self) -> None:
        """Ask `run()` to return; safe from another thread and from a signal handler."""
        self._stopping.set()

    def stop(self) -> None:
        """Stop every child: SIGTERM in reverse start order, wait each `stop_timeout`, then SIGKILL.

        The other children are stopped first, then the backing ones; the waits within each of the two
        overlap, so the whole stop takes at most the longest `stop_timeout` of each. Idempotent.
        """
        self._stopping.set()
        with self._lock:
            for backing in (False, True):
                self._stop_all([c for c in reversed(self._children) if c.spec.backing is backing])
            for child in self._children:
                _kill_session(child)  # grandchildren of a child that had died on its own just before
                child.restart_at = None

    def _stop_all(self, children: list[_Child]) -> None:
        running = [c for c in children if c.process and c.process.poll() is None]
        deadlines = {}
        for child in running:
            _terminate(child.process)  # type: ignore[arg-type]  # running children have a process
            deadlines[child.spec.name] = time.monotonic() + child.spec.stop_timeout
        for child in running:
            self._reap(child, deadlines[child.spec.name])

    def _tick(self, now: float) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            for child in self._children:
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        self._restart(child, now)
                elif child.process is not None and child.process.poll() is not None:
                    _kill_session(child)  # leftovers of the dead child (its own children) must not outlive it
                    self._schedule_restart(child, now, f"exited with {_describe(child.process.returncode)}")

    def _schedule_restart(self, child: _Child, now: float, reason: str) -> None:
        if now - child.started_at >= self.healthy_after:
            child.fast_failures = 0
        delay = min(self.backoff_initial * 2**child.fast_failures, self.backoff_max)
        child.fast_failures += 1
        child.restart_at = now + delay
        self.log.warning("child %s %s; restarting in %.1fs", child.spec.name, reason, delay)

    def _restart(self, child: _Child, now: float) -> None:
        try:
            self._spawn(child)
        except OSError as e:  # e.g. out of file descriptors: retry later like any other failure
            child.process = None
            child.started_at = now
            self._schedule_restart(child, now, f"could not start ({e})")

    def _spawn(self, child: _Child) -> None:
        spec = child.spec
        # A restart was announced by the warning that scheduled it: its start is a detail.
        level = logging.INFO if child.process is None else logging.DEBUG
        env = None if spec.env is None else dict(spec.env)
        if spec.prepare is not None:
            spec.prepare()
        if spec.log_path is None:
            child.process = subprocess.Popen(
                list(spec.argv), env=env, stdin=subprocess.DEVNULL, start_new_session=True
            )
        else:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(spec.log_path, "ab") as log:  # the child keeps its own descriptor
                child.process = subprocess.Popen(
                    list(spec.argv),
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        child.started_at = time.monotonic()
        child.restart_at = None
        self.log.log(level, "started %s (pid %d)", spec.name, child.process.pid)

    def _wait_ready(self, child: _Child, timeout: float) -> None:
        ready, proc = child.spec.ready, child.process
        if ready is None or proc is None:
            return
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                raise MeetrecError(
                    f"{child.spec.name} exited with {_describe(proc.returncode)} while starting"
                    f"{_log_tail(child.spec.log_path)}"
                )
            if time.monotonic() > deadline:
                raise MeetrecError(
                    f"{child.spec.name} was not ready within {timeout:.0f}s{_log_tail(child.spec.log_path)}"
                )
            time.sleep(0.1)

    def _reap(self, child: _Child, deadline: float) -> None:
        proc = child.process
        assert proc is not None
        if not _exited_by(proc, min(deadline, time.monotonic() + STOP_NOTICE_SECONDS)):
            if (left := deadline - time.monotonic()) > 0:
                self.log.info("waiting for %s to stop (at most %.0fs more)", child.spec.name, left)
            if not _exited_by(proc, deadline):
                self.log.warning(
                    "child %s ignored SIGTERM for %.0fs; killing it", child.spec.name, child.spec.stop_timeout
                )
        _kill_session(child)
        proc.wait()
        self.log.info("stopped %s (%s)", child.spec.name, _describe(proc.returncode))


def _exited_by(proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait for `proc` to exit until `deadline` (monotonic); False when it still runs then."""
    try:
        proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return False
    return True


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    # SIGTERM to the child alone, not its group: the child owns the orderly shutdown of what it started.
    try:
        proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass


def _kill_session(child: _Child) -> None:
    """SIGKILL every process of the child's session: its own process group (the group and session ids
    are the child's pid), and groups made inside the session, such as RQ's work horse with its ffmpeg."""
    if child.process is None:
        return
    sid = child.process.pid
    try:
        os.killpg(sid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already empty
    for pid in _session_members(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _session_members(sid: int) -> list[int]:
    """The pids of session `sid`, read from /proc (empty where there is no /proc)."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == sid:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # it exited meanwhile
        if int(fields[3]) == sid and fields[0] != b"Z":  # fields: state, ppid, pgrp, session
            found.append(int(entry))
    return found


def _log_tail(path: Path | None, lines: int = 15) -> str:
    if path is None:
        return ""
    try:
        return ":\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _describe(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"
