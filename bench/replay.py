"""Web replays (the rrweb cloud dialect): events/s into `POST /rrweb/recordings/{id}/ingest` and into the
WebSocket route, against minio-py putting the same blocks straight into S3; read-back; idle sockets.

A stack of its own on this machine: redis-server, a SeaweedFS S3 server, SQLite in a temporary directory
(or DATABASE_URL) and `meetrec api` as production runs it. The events are real: the 359 rrweb events of
`bench/fixtures/rrweb_events.json` (Chromium: a full snapshot, then mostly incremental snapshots), cycled
into batches of --batch with increasing timestamps and gzip-compressed (level 6, as a browser's
CompressionStream does) before the clock starts.

- HTTP ingest: --clients threads with a public key (scope `ingest` only), POSTing batches back to back
  for --seconds; a recording gets RECORDING_BATCHES batches on one keep-alive connection, then its client
  starts another recording on a new connection. An event counts once its batch answered 204 (block in
  S3, index committed).
- WebSocket ingest: --clients sockets, each a recording of SOCKET_FRAMES frames (then its client opens
  another), sending gzip frames back to back with at most WINDOW frames unacknowledged (a `flush` text
  frame when the window is full), ending with `end` and waiting for `final`; events count as the server
  acks them. The sockets negotiate permessage-deflate as browsers do (over the gzip) unless --no-deflate.
- raw: the same --clients threads with minio-py alone, for --seconds: zstd level 3 of each batch's JSON
  lines (the stored block format) and one `put_object` per batch: no HTTP hop of ours, no parsing, no SQL.
  Ratio = ours / raw.
- read-back: every recording written, streamed back from `GET /rrweb/recordings/{id}/events` (a private
  key, --clients at once): events/s, and a check that each holds exactly the events acknowledged, with
  sequenceIds 1..n and the timestamps sent, in order. OK or MISMATCH; exit status 1 on a mismatch.
- idle sockets: `bench/replay_sockets.py::hold_idle_sockets` holds --sockets idle WebSockets open; the
  RSS they cost the api's worker processes.

Per run it also prints the CPU each process used (cores: api = gunicorn and its workers, s3 = SeaweedFS,
bench = this process's clients, machine = everything on the box, a database server and other people's
work included), which shows what bounded the figure. Target: 50,000 events/s ingest on this 2-core
machine (printed beside the figures, not asserted).

    .venv/bin/python bench/replay.py [--seconds 10] [--clients 8] [--sockets 2000] [--batch 100]
                                     [--no-deflate]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import http.client
import io
import json
import os
import secrets
import statistics
import sys
import threading
import time
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import urllib3  # noqa: E402
import websockets  # noqa: E402
import zstandard  # noqa: E402
from minio import Minio  # noqa: E402

from app import payloads  # noqa: E402
from app.config import Config  # noqa: E402
from app.services.access import keys  # noqa: E402
from bench.api import _run_threads  # noqa: E402
from bench.backing import Stack, bench_stack  # noqa: E402
from bench.events import Api  # noqa: E402
from bench.pipeline import TICKS, cpu_seconds  # noqa: E402
from bench.replay_sockets import hold_idle_sockets, proc_status, raise_fd_limit  # noqa: E402
from tests.helpers import descendants, free_port  # noqa: E402

FIXTURE = ROOT / "bench" / "fixtures" / "rrweb_events.json"
TARGET = 50_000  # events/s ingest on this 2-core machine
RECORDING_BATCHES = 50  # HTTP: batches a recording gets before its client starts another
# WebSocket: frames a socket sends (a page view of 10,000 events at --batch 100) before it ends and its
# client opens another. Reconnecting spreads the sockets over the api's workers as a crowd of browsers
# would: 8 sockets held for the whole run can land unevenly (one such run got 45k events/s with the api
# at 1.0 core, the next 81k at 1.7). HTTP clients reconnect per recording for the same reason.
SOCKET_FRAMES = 100
POOL_BATCHES = max(RECORDING_BATCHES, SOCKET_FRAMES)  # distinct batches, made before the clock starts
WINDOW = 32  # WebSocket frames sent and not yet acknowledged, at most (about 3 stored blocks)
GZIP_LEVEL = 6  # zlib's default, what CompressionStream("gzip") uses
RAW_LEVEL = 3  # app.services.interactions.replays' zstd level


@dataclass(frozen=True)
class Batch:
    timestamps: list[int]
    body: bytes  # the JSON array, gzip-compressed: an HTTP body or a WebSocket frame
    lines: bytes  # the events as the stored block format (JSON lines), for the raw put

    @property
    def events(self) -> int:
        return len(self.timestamps)


@dataclass
class Run:
    """One measured run: events acknowledged in `seconds`, per-request latencies, cores used."""

    events: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def ms(self) -> str:
        if len(self.latencies) < 2:
            return "-"
        q = statistics.quantiles(self.latencies, n=100)
        return f"{q[49] * 1000:.1f}/{q[98] * 1000:.1f}"

    def cores(self) -> str:
        """Cores by process; the api's workers each in brackets."""
        workers = [f"{used:.2f}" for name, used in self.cpu.items() if name.startswith("worker ")]
        shown = []
        for name, used in self.cpu.items():
            if not name.startswith("worker "):
                shown.append(f"{name} {used:.2f}" + (f" [{' '.join(workers)}]" if name == "api" else ""))
        return " ".join(shown)


class Cpu:
    """Cores each process used while the block ran: the api (gunicorn and its workers), the S3 server,
    and this process (the bench's clients)."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.used: dict[str, float] = {}

    def __enter__(self) -> Cpu:
        self.began = time.monotonic()
        self.before = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self.began
        after = self._now()
        self.used = {name: (after[name] - self.before.get(name, 0.0)) / wall for name in after}

    def _now(self) -> dict[str, float]:
        mine = os.times()
        used = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        if "api" in self.pids:
            used |= {f"worker {pid}": cpu_seconds(pid) for pid in descendants(self.pids["api"])}
        return used | {"bench": mine.user + mine.system, "machine": _machine_busy()}


def _machine_busy() -> float:
    """CPU seconds every process on this machine used since boot (all but idle and iowait), so that a
    run on a machine busy with other work shows."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS


def measure(pids: dict[str, int], work: Callable[[], Run]) -> Run:
    """`work`'s run, with the cores each of `pids` (and this process) used meanwhile."""
    with Cpu(pids) as cpu:
        run = work()
    run.cpu = cpu.used
    return run


def make_batches(size: int, count: int) -> list[Batch]:
    """`count` batches of `size` fixture events, cycled, timestamps rising across every batch."""
    fixture = json.loads(FIXTURE.read_bytes())
    span = fixture[-1]["timestamp"] - fixture[0]["timestamp"] + 1000  # a second between cycles
    batches = []
    for k in range(count):
        events = []
        for i in range(size):
            cycle, index = divmod(k * size + i, len(fixture))
            events.append({**fixture[index], "timestamp": fixture[index]["timestamp"] + cycle * span})
        body = gzip.compress(json.dumps(events, separators=(",", ":")).encode(), GZIP_LEVEL)
        batches.append(Batch([e["timestamp"] for e in events], body, payloads.encode_lines(events)))
    return batches


def http_ingest(
    port: int,
    key: str,
    batches: list[Batch],
    args: Namespace,
    tag: str,
    written: dict[str, int],
    seconds: float,
) -> Run:
    """--clients threads POSTing batches back to back; `written` gets each recording's acked events."""
    run, stop = Run(), time.monotonic() + seconds
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    latencies: list[list[float]] = [[] for _ in range(args.clients)]

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        n = 0
        while time.monotonic() < stop and not run.errors:
            recording = f"{tag}-{i}-{n // RECORDING_BATCHES}"
            batch = batches[n % RECORDING_BATCHES]
            if n and n % RECORDING_BATCHES == 0:  # a new page view: its own connection (see SOCKET_FRAMES)
                conn.close()
            began = time.perf_counter()
            try:
                conn.request(
                    "POST", f"/rrweb/recordings/{recording}/ingest", body=batch.body, headers=headers
                )
                resp = conn.getresponse()
                answer = resp.read()
            except (OSError, http.client.HTTPException) as e:  # the batch's fate is unknown: stop here
                run.errors.append(f"POST to {recording}: {type(e).__name__}: {e}")
                return
            if resp.status != 204:
                run.errors.append(f"POST answered {resp.status}: {answer[:200]!r}")
                return
            latencies[i].append(time.perf_counter() - began)
            written[recording] = written.get(recording, 0) + batch.events  # this thread's own key
            n += 1
        conn.close()

    began = time.perf_counter()
    _run_threads(client, args.clients)
    run.seconds = time.perf_counter() - began
    run.latencies = [x for mine in latencies for x in mine]
    run.events = len(run.latencies) * args.batch
    return run


def ws_ingest(
    port: int, key: str, batches: list[Batch], args: Namespace, tag: str, written: dict[str, int]
) -> Run:
    """--clients sockets streaming frames for --seconds; `written` gets each recording's acked events."""
    run = Run()

    async def client(i: int, deadline: float) -> None:
        n = 0
        while time.monotonic() < deadline and not run.errors:
            recording = f"{tag}-{i}-{n}"
            query = urlencode(
                {
                    "key": key,
                    "contentEncoding": "gzip",
                    "contentType": "application/json",
                    "stream": secrets.token_hex(8),
                }
            )
            url = f"ws://127.0.0.1:{port}/rrweb/recordings/{recording}/ingest/ws?{query}"
            try:
                acked = await stream(url, batches, deadline, run.latencies, not args.no_deflate)
            except Exception as e:  # noqa: BLE001 - reported, and the run stops
                run.errors.append(f"socket {recording}: {type(e).__name__}: {e}")
                return
            written[recording] = acked * args.batch
            run.events += acked * args.batch
            n += 1

    async def all_clients() -> None:
        deadline = time.monotonic() + args.seconds
        await asyncio.gather(*(client(i, deadline) for i in range(args.clients)))

    began = time.perf_counter()
    asyncio.run(all_clients())
    run.seconds = time.perf_counter() - began
    return run


def ws_refusal(port: int, key: str) -> str | None:
    """Why the api does not serve the WebSocket route (None when it does): a socket that ends at once."""

    async def probe() -> None:
        url = f"ws://127.0.0.1:{port}/rrweb/recordings/probe/ingest/ws?{urlencode({'key': key})}"
        async with websockets.connect(url, open_timeout=10) as ws:
            await ws.recv()  # ready
            await ws.send('{"type":"end"}')
            await ws.recv()  # the final result

    try:
        asyncio.run(probe())
    except Exception as e:  # noqa: BLE001 - the reason is printed
        return f"{type(e).__name__}: {e}"
    return None


async def stream(
    url: str, batches: list[Batch], deadline: float, latencies: list[float], deflate: bool
) -> int:
    """One socket, one recording: frames back to back (at most WINDOW unacknowledged) until `deadline`
    or the pool's end, then `end`; returns the frames the server acknowledged as stored."""
    compression = "deflate" if deflate else None
    async with websockets.connect(url, max_size=None, compression=compression, open_timeout=30) as ws:
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            raise RuntimeError(f"expected ready, got {ready}")
        acked, final, sent_at = int(ready.get("acked", 0)), False, [0.0] * int(ready.get("acked", 0))
        progress = asyncio.Event()

        async def results() -> None:
            nonlocal acked, final
            async for message in ws:
                result = json.loads(message)
                if result.get("type") == "error":
                    raise RuntimeError(f"error from the server: {result}")
                if result.get("type") != "upstream-result":
                    continue
                if not result.get("ok"):
                    raise RuntimeError(f"refused: {result}")
                now = time.perf_counter()
                latencies.extend(now - sent_at[f] for f in range(acked, result["acked"]))
                acked = max(acked, result["acked"])
                progress.set()
                if result.get("final"):
                    final = True
                    return

        reader = asyncio.create_task(results())
        for batch in batches[:SOCKET_FRAMES]:
            if time.monotonic() >= deadline or reader.done():
                break
            while len(sent_at) - acked >= WINDOW and not reader.done():
                progress.clear()
                await ws.send('{"type":"flush"}')
                acked_more = asyncio.ensure_future(progress.wait())
                await asyncio.wait([acked_more, reader], timeout=60, return_when=asyncio.FIRST_COMPLETED)
                acked_more.cancel()
            sent_at.append(time.perf_counter())
            await ws.send(batch.body)
        if not reader.done():
            await ws.send('{"type":"end"}')
        await asyncio.wait_for(reader, 60)  # raises what the reader raised
        if not final:
            raise RuntimeError(f"closed without a final result ({acked} of {len(sent_at)} frames acked)")
        if acked != len(sent_at):
            raise RuntimeError(f"final result acknowledged {acked} of {len(sent_at)} frames")
        return acked


def raw_put(config: Config, batches: list[Batch], args: Namespace) -> Run:
    """minio-py alone, --clients threads: zstd level 3 of a batch's JSON lines, one put_object each."""
    parts = urlsplit(config.s3_endpoint)
    pool = urllib3.PoolManager(maxsize=args.clients, timeout=urllib3.Timeout(connect=5, read=60))
    client = Minio(
        parts.netloc,
        access_key=config.s3_access_key,
        secret_key=config.s3_secret_key,
        secure=False,
        region=config.s3_region,
        http_client=pool,
    )
    run, stop = Run(), time.monotonic() + args.seconds
    latencies: list[list[float]] = [[] for _ in range(args.clients)]

    def client_thread(i: int) -> None:
        zstd = zstandard.ZstdCompressor(level=RAW_LEVEL)
        n = 0
        while time.monotonic() < stop:
            began = time.perf_counter()
            data = zstd.compress(batches[n % len(batches)].lines)
            client.put_object(
                config.s3_bucket,
                f"raw/{i}/{n}.jsonl.zst",
                io.BytesIO(data),
                len(data),
                content_type="application/zstd",
            )
            latencies[i].append(time.perf_counter() - began)
            n += 1

    began = time.perf_counter()
    _run_threads(client_thread, args.clients)
    run.seconds = time.perf_counter() - began
    run.latencies = [x for mine in latencies for x in mine]
    run.events = len(run.latencies) * args.batch
    return run


def read_back(
    port: int,
    key: str,
    written: dict[str, int],
    batches: list[Batch],
    args: Namespace,
    mismatches: list[str],
) -> Run:
    """Stream every recording written; `mismatches` gets what did not match what was acknowledged."""
    sent = [ts for batch in batches for ts in batch.timestamps]  # every recording sent a prefix of these
    todo = [(recording, n) for recording, n in written.items() if n]
    total = len(todo)
    run, lock = Run(), threading.Lock()
    read, checked = [0] * args.clients, [0] * args.clients

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not todo:
                    break
                recording, acked = todo.pop()
            began = time.perf_counter()
            status, body = _get(conn, f"/rrweb/recordings/{recording}/events", key)
            run.latencies.append(time.perf_counter() - began)
            if status != 200:
                mismatches.append(f"{recording}: {acked} acknowledged, GET answered {status}: {body[:100]!r}")
                continue
            try:
                events = json.loads(body)
            except ValueError as e:
                mismatches.append(f"{recording}: the body is not JSON ({e})")
                continue
            read[i] += len(events)
            checked[i] += 1
            problem = _mismatch(events, acked, sent, recording)
            if problem:
                mismatches.append(f"{recording}: {problem}")
        conn.close()

    began = time.perf_counter()
    _run_threads(client, args.clients)
    run.seconds = time.perf_counter() - began
    run.events = sum(read)
    if sum(checked) + len(mismatches) < total:
        mismatches.append(f"only {sum(checked)} of {total} recordings were read")
    return run


def _get(conn: http.client.HTTPConnection, path: str, key: str, attempts: int = 3) -> tuple[int, bytes]:
    """GET `path`: (status, body); a dropped connection is opened anew and the GET sent again."""
    for attempt in range(attempts):
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()  # the next request connects again
            if attempt == attempts - 1:
                return 0, f"{type(e).__name__}: {e}".encode()
    raise AssertionError("unreachable")


def _mismatch(events: list[dict], acked: int, sent: list[int], recording: str) -> str | None:
    if len(events) != acked:
        return f"{acked} events acknowledged, {len(events)} read"
    if [e["sequenceId"] for e in events] != list(range(1, acked + 1)):
        return "sequenceIds are not 1..n without gaps"
    if [e["timestamp"] for e in events] != sent[:acked]:
        return "the events read are not the events sent, in order"
    if any(e["recordingId"] != recording for e in events):
        return "an event carries another recordingId"
    return None


def idle_sockets(port: int, key: str, args: Namespace, api_pid: int) -> dict[str, Any]:
    """--sockets idle sockets held by bench/replay_sockets.py; the api workers' RSS and threads (summed)
    before and while they are held."""
    workers = descendants(api_pid)

    def status() -> dict[str, int]:
        each = [proc_status(pid) for pid in workers]
        return {name: sum(s[name] for s in each) for name in ("rss", "threads")}

    before = status()
    url = f"ws://127.0.0.1:{port}/rrweb/recordings/{{recording}}/ingest/ws?{urlencode({'key': key})}"
    held = hold_idle_sockets(
        url, args.sockets, while_held=lambda: {"during": status()}, deflate=not args.no_deflate
    )
    return {"before": before, **held}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10, help="seconds of each ingest run")
    parser.add_argument(
        "--clients", type=int, default=8, help="concurrent HTTP clients, sockets, raw threads"
    )
    parser.add_argument("--sockets", type=int, default=2000, help="idle WebSockets to hold")
    parser.add_argument(
        "--batch", type=int, default=100, help="events per batch (HTTP body, WebSocket frame)"
    )
    parser.add_argument(
        "--no-deflate", action="store_true", help="sockets do not offer permessage-deflate (browsers do)"
    )
    args = parser.parse_args()
    raise_fd_limit()  # the api inherits it: --sockets idle sockets are as many descriptors there
    with bench_stack() as stack:
        ok = run(stack, args)
    sys.exit(0 if ok else 1)


def run(stack: Stack, args: Namespace) -> bool:
    config, rt, s3 = stack.config, stack.rt, stack.s3
    project = keys.create_project(rt, "bench")
    ingest_key = keys.create_key(rt, project.id, ("ingest",), name="public")[1]
    read_key = keys.create_key(rt, project.id, ("recording:read",), name="private")[1]
    rt.db.engine.dispose()
    began = time.perf_counter()
    batches = make_batches(args.batch, POOL_BATCHES)
    raw_kb = sum(len(b.lines) for b in batches) / len(batches) / 1024
    gz_kb = sum(len(b.body) for b in batches) / len(batches) / 1024
    print(
        f"{len(batches)} batches of {args.batch} fixture events ({raw_kb:.1f} KB JSON lines, {gz_kb:.1f} KB "
        f"gzip on average) made in {time.perf_counter() - began:.1f} s"
    )
    database = config.database_url.split(":")[0]
    workers = os.environ.get("MEETREC_API_WORKERS", "2")
    print(
        f"meetrec api: {workers} workers; {database}; "
        f"SeaweedFS; {args.clients} clients, {args.seconds:g} s a run; permessage-deflate "
        f"{'off' if args.no_deflate else 'on'}; target {TARGET:,} events/s"
    )
    tag = secrets.token_hex(3)
    written: dict[str, int] = {}  # recording -> events acknowledged
    mismatches: list[str] = []
    results: dict[str, Run] = {}
    sockets = None
    api = Api(config, free_port(), stack.base / "api.log")
    pids = {"api": api.proc.pid, "s3": s3.process.pid}  # type: ignore[union-attr]
    try:
        # warm-up: imports, connections and key caches in every worker
        http_ingest(api.port, ingest_key, batches, args, f"warm-{tag}", written, 1.0)
        results["http"] = measure(
            pids,
            lambda: http_ingest(api.port, ingest_key, batches, args, f"http-{tag}", written, args.seconds),
        )
        _report("POST ingest", results["http"])
        ws_refused = ws_refusal(api.port, ingest_key)
        if ws_refused is None:
            results["ws"] = measure(
                pids, lambda: ws_ingest(api.port, ingest_key, batches, args, f"ws-{tag}", written)
            )
            _report("WebSocket ingest", results["ws"])
        else:
            print(f"WebSocket ingest: skipped, the api does not serve it ({ws_refused})")
        results["read"] = measure(
            pids, lambda: read_back(api.port, read_key, written, batches, args, mismatches)
        )
        _report("read-back", results["read"])
        if ws_refused is None and args.sockets:
            sockets = idle_sockets(api.port, ingest_key, args, api.proc.pid)
    finally:
        api.stop()
    s3_only = {"s3": s3.process.pid}  # type: ignore[union-attr]
    results["raw"] = measure(s3_only, lambda: raw_put(config, batches, args))
    _report("raw minio put_object", results["raw"])
    return _summary(results, written, mismatches, sockets, ws_refused, args)


def _report(name: str, run: Run) -> None:
    print(
        f"{name}: {run.events:,} events in {run.seconds:.2f} s = {run.rate:,.0f}/s; p50/p99 {run.ms()} ms; "
        f"cores {run.cores()}" + (f"; {len(run.errors)} errors, e.g. {run.errors[0]}" if run.errors else "")
    )


def _summary(
    results: dict[str, Run],
    written: dict[str, int],
    mismatches: list[str],
    sockets: dict | None,
    ws_refused: str | None,
    args: Namespace,
) -> bool:
    raw = results["raw"].rate
    print()
    print(f"{'path':40} {'events/s':>9} {'ours/raw':>8} {'p50/p99 ms':>12}  cores used")
    rows: list[tuple[str, str, Callable[[float], str]]] = [
        ("http", "POST /rrweb/recordings/{id}/ingest", lambda r: f"{r / raw:8.2f}"),
        ("ws", "WS /rrweb/recordings/{id}/ingest/ws", lambda r: f"{r / raw:8.2f}"),
        ("raw", "raw: zstd 3 + minio put_object", lambda r: f"{'1':>8}"),
        ("read", "GET /rrweb/recordings/{id}/events", lambda r: f"{'':8}"),
    ]
    for key, name, ratio in rows:
        if key in results:
            r = results[key]
            print(f"{name:40} {r.rate:9,.0f} {ratio(r.rate)} {r.ms():>12}  {r.cores()}")
        else:
            print(f"{name:40} {'skipped: the api does not serve it':>36}")
    print(
        f"(target {TARGET:,} events/s ingest; batches of {args.batch} events, gzip; latency per POST, per "
        f"frame from send to ack, per put, per GET)"
    )
    acked = sum(written.values())
    recordings = sum(1 for n in written.values() if n)
    if mismatches:
        print(
            f"check: MISMATCH in {len(mismatches)} of {recordings} recordings "
            f"({acked:,} events acknowledged), e.g. {'; '.join(mismatches[:3])}"
        )
    else:
        print(
            f"check: OK, {recordings} recordings, {acked:,} events acknowledged and every one read back "
            f"(sequenceIds 1..n, the timestamps sent, in order)"
        )
    if sockets is None:
        why = f"the api does not serve WebSockets ({ws_refused})" if ws_refused else "--sockets 0"
        print(f"idle sockets: skipped, {why}")
    else:
        held, before, during = sockets["held"], sockets["before"], sockets["during"]
        each = f"{(during['rss'] - before['rss']) / held / 1024:.1f} KB per socket" if held else "-"
        print(
            f"idle sockets: {held} of {args.sockets} held ({sockets['failed']} failed, "
            f"{sockets['opened'] / sockets['open_seconds']:.0f} opened/s); api workers' RSS "
            f"{before['rss'] / 2**20:.0f} -> {during['rss'] / 2**20:.0f} MB: {each}; "
            f"threads {before['threads']} -> {during['threads']}"
            + (f"; first error {sockets['first_error']}" if sockets["first_error"] else "")
        )
    errors = [e for r in results.values() for e in r.errors]
    return not mismatches and not errors


if __name__ == "__main__":
    main()
