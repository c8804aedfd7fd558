"""Webhook delivery: deliveries per second per worker, and state-change-to-receipt latency.

An idle stack on this machine: its own redis-server, SQLite, `meetrec worker webhooks` processes and an
HTTP receiver on loopback (HTTP/1.1, keep-alive). Each event is a real state change (a meeting
starting, `room_update`) made through the rooms service, so the outbox write, the after-commit wake,
the RQ job, both signatures and the HTTP POST are all in the figures.

- latency: events one at a time, spaced out; from just before the state change to the receiver reading
  the request. Targets: p50 under 200 ms, p99 under 1 s.
- throughput (backlog): a burst of events that comes due at once (made an hour ahead, then made due
  once every worker listens, as after a receiver's outage); deliveries/s from the first receipt to the
  last. This is what a worker delivers: one state change here costs more than a delivery, so a live
  burst measures the state changes.
- live burst: the same burst with the workers running, from the first state change to the last
  receipt, beside the rate of the state changes alone (the ceiling of this figure).
- raw: one Python thread POSTing the same signed body to the same receiver with http.client, a new
  connection each (the ratio is ours / this); and the same on one kept-alive connection, for scale.

    .venv/bin/python bench/webhooks.py [--events 200] [--burst 500] [--workers 1]
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import migrate  # noqa: E402
from app.config import Config  # noqa: E402
from app.embedded.servers import RedisServer  # noqa: E402
from app.models import WebhookDelivery, utcnow  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from app.services.access import keys  # noqa: E402
from app.services.core import rooms  # noqa: E402
from app.services.outbox import endpoints, outbox  # noqa: E402
from tests.webhook_receiver import Receiver  # noqa: E402
from webhooks import signing  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_workers(config: Config, count: int, log_dir: Path) -> list[subprocess.Popen]:
    env = {**os.environ, **config.child_env()}
    procs = []
    for i in range(count):
        log = open(log_dir / f"worker-{i}.log", "ab")  # noqa: SIM115 - lives with the process
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "app.cli", "worker", "webhooks"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return procs


def state_change(rt: Runtime, project_id: str, n: int) -> None:
    rooms.join(rt, project_id, rooms.JoinRequest(user_name="Bench", room_key=f"bench-{n}"))


def latency(rt: Runtime, project_id: str, receiver: Receiver, events: int) -> list[float]:
    """Seconds from before each state change to its receipt, one event at a time."""
    out = []
    for n in range(events):
        began = time.time()
        state_change(rt, project_id, n)
        got = receiver.wait_for(n + 1, timeout=30)[-1]
        out.append(got.at - began)
        time.sleep(0.02)
    return out


def throughput(
    rt: Runtime, project_id: str, receiver: Receiver, burst: int, offset: int
) -> tuple[float, float]:
    """Deliveries per second for a burst of `burst` events delivered as they are made, and the rate of
    the state changes alone."""
    before = len(receiver.requests)
    began = time.time()
    for n in range(burst):
        state_change(rt, project_id, offset + n)
    made = time.time()
    got = receiver.wait_for(before + burst, timeout=600)
    return burst / (max(g.at for g in got[before:]) - began), burst / (made - began)


def backlog(
    rt: Runtime, config: Config, project_id: str, receiver: Receiver, args: argparse.Namespace, offset: int
) -> tuple[float, int]:
    """Deliveries per second, first receipt to last, of a burst that comes due at once, every worker
    waiting for work; and the TCP connections the receiver accepted for them.

    The burst's state changes are made an hour ahead (their deliveries due then), the workers started,
    and once all are listening the deliveries are made due and a delivery job woken, as the scheduler's
    dispatch does.
    """
    ahead = Runtime(config, clock=lambda: utcnow() + timedelta(hours=1))
    for n in range(args.burst):
        state_change(ahead, project_id, offset + n)
    before, connections = len(receiver.requests), receiver.connections
    procs = start_workers(config, args.workers, Path(config.data_dir))
    try:
        deadline = time.monotonic() + 60
        while len(rt.jobs.workers()) < args.workers and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)  # from registered to waiting on the queue
        with rt.db.transaction() as s:
            s.execute(
                update(WebhookDelivery).where(WebhookDelivery.state == "pending").values(due_at=rt.now())
            )
        outbox.dispatch_pending(rt)
        got = receiver.wait_for(before + args.burst, timeout=600)[before:]
    finally:
        stop_workers(procs)
    times = sorted(g.at for g in got)
    return (len(times) - 1) / (times[-1] - times[0]), receiver.connections - connections


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait()


def raw_throughput(url_port: int, count: int, secret: str, api_key: str, keep_alive: bool = False) -> float:
    """The same signed POSTs from one thread with http.client: the ceiling."""
    body = b'{"timestamp":"2026-01-01T00:00:00.000Z","type":"room_update","room":{"id":"raw"},"seq":1}'
    conn = http.client.HTTPConnection("127.0.0.1", url_port, timeout=15)
    began = time.perf_counter()
    for n in range(count):
        headers = {
            "Content-Type": "application/json",
            "X-Eyeson-Signature": signing.eyeson_signature(api_key, body),
            **signing.standard_headers(f"raw{n}", int(time.time()), body, [secret]),
        }
        if not keep_alive:
            conn = http.client.HTTPConnection("127.0.0.1", url_port, timeout=15)
        conn.request("POST", "/hook", body=body, headers=headers)
        conn.getresponse().read()
        if not keep_alive:
            conn.close()
    conn.close()
    return count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200, help="events for the latency figures")
    parser.add_argument("--burst", type=int, default=500, help="events for the throughput figure")
    parser.add_argument("--workers", type=int, default=1, help="`meetrec worker webhooks` processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(free_port(), Path(tmp) / "redis", persist=False)
        redis.start()
        redis.wait_ready(15)
        receiver = Receiver().start()
        config = Config.from_env(
            {
                "MEETREC_DATA_DIR": tmp,
                "REDIS_URL": redis.url,
                "MEETREC_SECRET_KEY": secrets.token_hex(32),
                "MEETREC_URL_ALLOWLIST": "127.0.0.1",
            }
        )
        migrate.upgrade(config.database_url)
        rt = Runtime(config)
        project = keys.create_project(rt, "bench")
        key, raw_key = keys.create_key(rt, project.id)
        registered = endpoints.register(rt, project.id, key.id, raw_key, receiver.url, ["room_update"])
        procs = start_workers(config, args.workers, Path(tmp))
        try:
            state_change(rt, project.id, -1)  # warm up: workers listening, modules imported
            receiver.wait_for(1, timeout=60)
            receiver.requests.clear()
            lat = latency(rt, project.id, receiver, args.events)
            live, changes = throughput(rt, project.id, receiver, args.burst, args.events)
        finally:
            stop_workers(procs)
        try:
            rate, connections = backlog(rt, config, project.id, receiver, args, args.events + args.burst)
        finally:
            redis.stop()
        raw = raw_throughput(receiver.port, args.burst, registered.secret or "", raw_key)
        raw_kept = raw_throughput(
            receiver.port, args.burst, registered.secret or "", raw_key, keep_alive=True
        )
        receiver.stop()
    q = statistics.quantiles(lat, n=100)
    print(f"state change -> receipt, {args.events} events one at a time, {args.workers} worker(s):")
    print(f"  p50 {q[49] * 1000:.0f} ms   p99 {q[98] * 1000:.0f} ms   max {max(lat) * 1000:.0f} ms")
    print(
        f"backlog of {args.burst} events: {rate:.0f} deliveries/s, {rate / args.workers:.0f} per worker;"
        f" over {connections} TCP connections"
    )
    print(
        f"live burst of {args.burst} events: {live:.0f} deliveries/s (state changes alone: {changes:.0f}/s)"
    )
    print(
        f"raw http.client, same signed POSTs, a connection each: {raw:.0f}/s;"
        f" ratio ours / raw {rate / raw:.3f}"
    )
    print(f"raw http.client on one kept-alive connection: {raw_kept:.0f}/s; ratio {rate / raw_kept:.3f}")


if __name__ == "__main__":
    main()
