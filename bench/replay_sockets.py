"""Idle rrweb WebSockets held by one api worker process: how many it holds, and what each costs.

For each --sockets count, a fresh `meetrec api --workers 1` (gunicorn, one `uvicorn_worker.UvicornWorker`
serving `app.asgi`, as production runs it) on SQLite and a redis-server this script starts; the file
descriptor limit raised to the hard limit here and so in the server (it inherits it). This process opens
the sockets with the asyncio `websockets` client, --batch at a time, each authenticated with a public key
in the query (as a browser does) and counted once its `ready` frame came; it holds them --hold seconds,
reads the worker's VmRSS and thread count from /proc, and closes them. Printed: sockets held, how fast
they opened, the worker's RSS before and while holding them, per socket, and its threads (an idle
socket must hold none). Clients negotiate permessage-deflate as browsers do unless --no-deflate.

    .venv/bin/python bench/replay_sockets.py [--sockets 1000 5000 10000] [--batch 200] [--hold 5]
                                             [--no-deflate]

`hold_idle_sockets(url, count)` is also what bench/replay.py calls against its own stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.protocol import State  # noqa: E402

from app import migrate  # noqa: E402
from app.config import Config  # noqa: E402
from app.embedded.servers import RedisServer  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from app.services.access import keys  # noqa: E402
from tests.helpers import free_port  # noqa: E402

OPEN_TIMEOUT = 120.0
WARM_UP = 20  # sockets opened and closed before the baseline is read (imports, key cache, allocator)


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it); the new limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def hold_idle_sockets(
    url: str,
    count: int,
    *,
    batch: int = 200,
    hold_seconds: float = 2.0,
    while_held: Callable[[], dict[str, Any]] | None = None,
    deflate: bool = True,
) -> dict[str, Any]:
    """Open `count` idle sockets to `url` (its `{recording}` becomes a recording id per socket), `batch`
    at a time, each counted once its `ready` frame came; hold them `hold_seconds`, call `while_held`,
    close them. Returns held (still open at the end), opened, failed, open_seconds, first_error and
    `while_held()`'s figures."""
    raise_fd_limit()
    return asyncio.run(_hold(url, count, batch, hold_seconds, while_held, deflate))


async def _hold(
    url: str,
    count: int,
    batch: int,
    hold_seconds: float,
    while_held: Callable[[], dict[str, Any]] | None,
    deflate: bool,
) -> dict[str, Any]:
    run = secrets.token_hex(3)
    urls = [url.replace("{recording}", f"idle-{run}-{i}") for i in range(count)]
    began = time.perf_counter()
    sockets, failures = await _open_all(urls, batch, deflate)
    open_seconds = time.perf_counter() - began
    await asyncio.sleep(hold_seconds)
    figures = while_held() if while_held else {}
    held = sum(1 for ws in sockets if ws.state is State.OPEN)
    for start in range(0, len(sockets), batch):
        await asyncio.gather(*(ws.close() for ws in sockets[start : start + batch]), return_exceptions=True)
    return {
        "held": held,
        "opened": len(sockets),
        "failed": len(failures),
        "open_seconds": open_seconds,
        "first_error": repr(failures[0]) if failures else None,
        **figures,
    }


async def _open_all(
    urls: list[str], batch: int, deflate: bool
) -> tuple[list[ClientConnection], list[BaseException]]:
    """Every url opened, `batch` handshakes at a time; the sockets that got `ready`, and the failures."""
    sockets: list[ClientConnection] = []
    failures: list[BaseException] = []
    for start in range(0, len(urls), batch):
        results = await asyncio.gather(
            *(_open(u, deflate) for u in urls[start : start + batch]), return_exceptions=True
        )
        for result in results:
            (sockets if isinstance(result, ClientConnection) else failures).append(result)  # type: ignore[arg-type]
    return sockets, failures


async def _open(url: str, deflate: bool) -> ClientConnection:
    """One socket, returned once the server's `ready` frame came."""
    ws = await connect(
        url, open_timeout=OPEN_TIMEOUT, compression="deflate" if deflate else None, max_queue=4
    )
    message = json.loads(await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT))
    if message.get("type") != "ready":
        await ws.close()
        raise RuntimeError(f"expected ready, got {message}")
    return ws


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS (bytes) and Threads of a process, from /proc/<pid>/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "Threads"):
            fields[name] = int(value.split()[0]) * (1024 if name == "VmRSS" else 1)
    return {"rss": fields["VmRSS"], "threads": fields["Threads"]}


@contextmanager
def api_server(env: dict[str, str], log: Path) -> Iterator[tuple[int, int]]:
    """`meetrec api --workers 1` on a free port until the block ends; (port, worker pid)."""
    port = free_port()
    server_env = {**os.environ, **env, "HOST": "127.0.0.1", "PORT": str(port)}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "api", "--workers", "1"], cwd=ROOT, env=server_env,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_healthy(port)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        yield port, int(children[0])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def _wait_healthy(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"meetrec api did not answer on port {port}")


def measure(env: dict[str, str], key: str, count: int, args: argparse.Namespace, log: Path) -> dict[str, Any]:
    """One fresh api worker holding `count` idle sockets: its figures before and while holding them."""
    with api_server(env, log) as (port, worker):
        url = f"ws://127.0.0.1:{port}/rrweb/recordings/{{recording}}/ingest/ws?key={key}"
        hold_idle_sockets(url, WARM_UP, hold_seconds=0, deflate=not args.no_deflate)
        time.sleep(1)
        before = proc_status(worker)
        result = hold_idle_sockets(
            url, count, batch=args.batch, hold_seconds=args.hold, deflate=not args.no_deflate,
            while_held=lambda: {"during": proc_status(worker)},
        )  # fmt: skip
    return {"before": before, **result}


def report(count: int, figures: dict[str, Any]) -> str:
    before, during, held = figures["before"], figures["during"], figures["held"]
    grown = during["rss"] - before["rss"]
    per = f"{grown / held / 1024:6.1f}" if held else "     -"
    rate = figures["opened"] / figures["open_seconds"] if figures["open_seconds"] else 0.0
    line = (
        f"{count:>7} {held:>7} {figures['failed']:>6} {rate:>8.0f}/s {before['rss'] / 2**20:>8.1f} "
        f"{during['rss'] / 2**20:>8.1f} {per} KB {before['threads']:>4} -> {during['threads']:<4}"
    )
    return line + (f"  first error: {figures['first_error']}" if figures["first_error"] else "")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sockets", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--batch", type=int, default=200, help="handshakes in flight at once")
    parser.add_argument(
        "--hold", type=float, default=5.0, help="seconds to hold the sockets before measuring"
    )
    parser.add_argument("--no-deflate", action="store_true", help="clients do not offer permessage-deflate")
    args = parser.parse_args()
    limit = raise_fd_limit()
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(free_port(), Path(tmp) / "redis", persist=False)
        redis.start()
        redis.wait_ready(15)
        try:
            run(Path(tmp), redis.url, limit, args)
        finally:
            redis.stop()


def run(tmp: Path, redis_url: str, limit: int, args: argparse.Namespace) -> None:
    env = {
        "MEETREC_DATA_DIR": str(tmp),
        "REDIS_URL": redis_url,
        "S3_ACCESS_KEY": "bench",
        "S3_SECRET_KEY": "benchbench",
    }
    config = Config.from_env(env)
    migrate.upgrade(config.database_url)
    rt = Runtime(config)
    key = keys.create_key(rt, keys.create_project(rt, "idle-sockets").id, ("ingest",))[1]
    rt.db.engine.dispose()
    server_env = {**config.child_env(), "MEETREC_LOG_FORMAT": "json", "MEETREC_LOG_LEVEL": "WARNING"}
    deflate = "off" if args.no_deflate else "on"
    print(f"one uvicorn worker (meetrec api --workers 1); fd limit {limit}; permessage-deflate {deflate}")
    head = f"{'sockets':>7} {'held':>7} {'failed':>6} {'opened':>10} {'RSS MB':>8} {'held MB':>8}"
    print(head + f" {'per socket':>9} threads")
    for count in args.sockets:
        print(report(count, measure(server_env, key, count, args, tmp / "api.log")), flush=True)


if __name__ == "__main__":
    main()
