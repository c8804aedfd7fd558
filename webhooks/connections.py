"""HTTP connections pinned to a checked address, and a pool of idle ones per receiver.

A connection speaks HTTP (Host, TLS SNI and certificate) to the receiver's name but connects to one
address the SSRF guard admitted. The pool hands an idle connection out only for the address the caller
has just checked again, so reusing a connection never skips a check: DNS answers and the allow-list
are consulted at every attempt, the TCP connection merely outlives one.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import os
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import NamedTuple


class Receiver(NamedTuple):
    """Where connections go: what a pool keys its idle connections on."""

    scheme: str
    host: str
    port: int | None


class _Pinned:
    """Connects to one checked address while speaking HTTP (Host, TLS SNI and certificate) to the name."""

    address: str

    def pin(self, address: str) -> None:
        self.address = address

        def create_connection(addr, timeout=None, source_address=None):
            sock = socket.create_connection((address, addr[1]), timeout, source_address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a kept-alive request is one write
            return sock

        self._create_connection = create_connection


class _PinnedHTTP(_Pinned, http.client.HTTPConnection):
    pass


class _PinnedHTTPS(_Pinned, http.client.HTTPSConnection):
    pass


Connection = _PinnedHTTP | _PinnedHTTPS


def new_connection(receiver: Receiver, address: str, timeout: float) -> Connection:
    """A connection (not yet open) to `receiver` at `address`, which the caller has checked."""
    cls = _PinnedHTTPS if receiver.scheme == "https" else _PinnedHTTP
    conn = cls(receiver.host, receiver.port, timeout=max(timeout, 0.001))
    conn.pin(address)
    return conn


@dataclass
class _Idle:
    conn: Connection
    since: float


@dataclass
class Pool:
    """Idle keep-alive connections per receiver; thread-safe."""

    max_idle: int = 8
    idle_seconds: float = 4.0
    _idle: dict[Receiver, list[_Idle]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, receiver: Receiver, address: str) -> Connection | None:
        """An idle connection to `receiver` pinned to `address` that still looks open, or None.

        Connections idle too long, or that the receiver closed (readable while idle: EOF), are closed.
        """
        now = time.monotonic()
        with self._lock:
            idle = self._idle.get(receiver, [])
            stale = [i for i in idle if now - i.since > self.idle_seconds]
            for i in stale:
                idle.remove(i)
            found = next((i for i in reversed(idle) if i.conn.address == address), None)
            if found is not None:
                idle.remove(found)
        for i in stale:
            i.conn.close()
        if found is None:
            return None
        if _dropped(found.conn):
            found.conn.close()
            return self.take(receiver, address)
        return found.conn

    def give_back(self, receiver: Receiver, conn: Connection) -> None:
        """Keep `conn` (an answer read to its end, the receiver keeping it open) for the next attempt."""
        with self._lock:
            idle = self._idle.setdefault(receiver, [])
            if len(idle) < self.max_idle and conn.sock is not None:
                idle.append(_Idle(conn, time.monotonic()))
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle = [i for found in self._idle.values() for i in found]
            self._idle.clear()
        for i in idle:
            i.conn.close()


def _dropped(conn: Connection) -> bool:
    """An idle connection with something to read has been closed by its receiver (or is out of step)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        poller = select.poll()  # not select.select: a busy worker may hold descriptors past 1024
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class Watchdog:
    """Ends attempts that overrun their deadline by shutting their socket down, from one thread for the
    whole process (a timer thread per attempt costs a good part of the attempt itself)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[list] = []  # [deadline, seq, conn or None once disarmed, fired]
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float, conn: Connection, fired: threading.Event) -> list:
        """Shut `conn` down and set `fired` at `deadline` (time.monotonic) unless disarmed before."""
        entry = [deadline, next(self._seq), conn, fired]
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="webhook-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:
                self._cond.notify()
        return entry

    def disarm(self, entry: list) -> None:
        with self._cond:
            entry[2] = None

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _, _, conn, fired = heapq.heappop(self._heap)
                abort(conn, fired)


def abort(conn: http.client.HTTPConnection, fired: threading.Event) -> None:
    fired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


WATCHDOG = Watchdog()
# A forked child has none of the parent's threads, and maybe a lock a parent thread held: start afresh.
os.register_at_fork(after_in_child=WATCHDOG.reset)
