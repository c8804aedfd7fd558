"""Warm shutdown of a worker running a capture: the work horse is asked to drain.

RQ's warm shutdown (the first SIGTERM or Ctrl-C) lets the running job finish, but a capture ends only when
its recording is stopped, hours later; the container's stop timeout would SIGKILL it and lose the open
segment. So the worker also sends its work horse DRAIN_SIGNAL, which sets `draining`: the capture stops
ffmpeg gracefully (the open segment closes), uploads it, and hands the recording to another worker.

The worker process ignores DRAIN_SIGNAL from its start, so a horse forked just before a shutdown inherits
"ignore" rather than the default action (which would kill it) until it installs its handler; the worker
sends the signal again on every heartbeat while it waits, so that window cannot lose the request either.
Other jobs (finalize, purge) ignore `draining` and run to their end.
"""

from __future__ import annotations

import signal
import threading

DRAIN_SIGNAL = signal.SIGUSR1

draining = threading.Event()


def ignore_drain_signal() -> None:
    """In the worker process, before any horse forks."""
    signal.signal(DRAIN_SIGNAL, signal.SIG_IGN)


def handle_drain_signal() -> None:
    """In a work horse: DRAIN_SIGNAL sets `draining`."""
    draining.clear()
    signal.signal(DRAIN_SIGNAL, lambda _signum, _frame: draining.set())
