"""PostHog's session-recordings API (`/api/projects/{project_id}/`): list and retrieve latency over 10,000
web replays against a bare Flask app answering the same bytes, and the snapshot stream's rate against a
raw S3 read of the same blocks.

A stack of its own on this machine, as `bench/replay.py` builds it: redis-server, a SeaweedFS S3 server,
SQLite in a temporary directory (or DATABASE_URL). Both apps are served as `bench/api.py` serves them:
gunicorn with `app/gunicorn_conf.py` (MEETREC_API_WORKERS uvicorn workers x MEETREC_API_THREADS threads,
2 x 4) on 127.0.0.1; one keep-alive client (http.client) sends the requests one after another.

- data: --recordings web replays in one project, put straight into SQL in bulk (`Recording` +
  `ReplaySummary` rows with computed facts as ingest leaves them: counters, active time, activity
  intervals, pages, start URL; a quarter with `RecordingMeta` (distinct_id, $os, $browser, ...), a tenth
  viewed by another key), and one replay of BLOCKS blocks ingested through
  `app.services.interactions.replays.ingest` (real zstd objects in S3): the 89 events of
  `tests/data/rrweb_session.json` (two page loads, full snapshots, mutations, mouse moves, console
  plugin events) cycled CYCLES_PER_BLOCK times a block with rising timestamps, each cycle with its own
  node ids and jittered pointer positions.
- latency: `GET session_recordings/?limit=100` (the first page and a deep one, offset 9000),
  `GET session_recordings/{id}/` (a replay with metadata; marks it viewed) and the snapshot sources
  listing, --requests each: p50 and p95. The bare app (`bare_from_env`, no auth, SQL, schema, logging or
  metrics) answers each path with the bytes ours answered it, captured once; ratio = ours / bare.
- snapshots: `GET .../snapshots?source=blob_v2&start_blob_key=0&end_blob_key=49`, --reads times: MB/s of
  the body and events/s; raw = minio-py `get_object` of the same block objects one after another and a
  zstd decompress of each (the least work that yields those events); ratio = ours time / raw time. The
  bare app serving the same body shows what the HTTP hop alone costs.

Timings are printed, never asserted.

    .venv/bin/python bench/posthog.py [--recordings 10000] [--requests 200] [--reads 20] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from argparse import Namespace
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import urllib3  # noqa: E402
import zstandard  # noqa: E402
from minio import Minio  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from app import payloads  # noqa: E402
from app.config import Config  # noqa: E402
from app.models import (  # noqa: E402
    Ingest,
    Recording,
    RecordingMeta,
    RecordingState,
    RecordingView,
    ReplayBlock,
    ReplaySummary,
)
from app.runtime import Runtime  # noqa: E402
from app.services.access import keys  # noqa: E402
from app.services.ids import new_id  # noqa: E402
from app.services.interactions import metadata, replays  # noqa: E402
from bench.api import serve  # noqa: E402
from bench.backing import Stack, bench_stack  # noqa: E402
from bench.posthog_js import uuid7  # noqa: E402

FIXTURE = ROOT / "tests" / "data" / "rrweb_session.json"
BLOCKS = 50  # blocks of the snapshot replay: one read of start_blob_key=0&end_blob_key=49
CYCLES_PER_BLOCK = 3  # fixture cycles a block: 267 events, ~220 KB of JSON lines (a socket's ~256 KB block)
NODE_IDS = frozenset({"id", "parentId", "nextId", "previousId", "rootId"})  # rrweb's node references
PAGE = 100
DEEP_OFFSET = 9000
BASE = "/api/projects/@current/session_recordings"
WARM_UP = 5  # requests of each path before the clock starts (imports, connections, key cache)
MB = 1e6
CHUNK = 1000  # rows per bulk INSERT
ANSWERS_ENV = "BENCH_POSTHOG_ANSWERS"
SITE = "https://shop.example.com"
PATHS = ("/", "/products", "/products/42", "/products/7", "/cart", "/checkout", "/account", "/search")


@dataclass
class Timed:
    """One path's requests: seconds per request, bytes of the last body."""

    seconds: list[float]
    size: int = 0

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p95(self) -> float:
        if len(self.seconds) < 2:
            return self.seconds[0]
        return statistics.quantiles(self.seconds, n=20)[18]

    def ms(self) -> str:
        return f"{self.p50 * 1000:.1f}/{self.p95 * 1000:.1f}"


# --- the bare app -----------------------------------------------------------------------------------


def bare_from_env() -> Any:
    """gunicorn's app spec `bench.posthog:bare_from_env()`: a Flask app answering each path (with its
    query) the bytes and content type captured from ours (`BENCH_POSTHOG_ANSWERS`: a directory holding
    `index.json` and the bodies), served as meetrec's api is (a2wsgi on MEETREC_API_THREADS threads)."""
    from a2wsgi import WSGIMiddleware
    from flask import Flask, Response, request

    folder = Path(os.environ[ANSWERS_ENV])
    answers = {
        path: ((folder / name).read_bytes(), mimetype)
        for path, (name, mimetype) in json.loads((folder / "index.json").read_text()).items()
    }
    app = Flask("bare-posthog")

    @app.route("/<path:anything>", methods=["GET"])
    def answer(anything: str) -> Response:
        query = request.query_string.decode()
        body, mimetype = answers.get(
            request.path + (f"?{query}" if query else ""), (b"{}", "application/json")
        )
        return Response(body, mimetype=mimetype)

    return WSGIMiddleware(app, workers=int(os.environ.get("MEETREC_API_THREADS", "4")))  # type: ignore[arg-type]


def save_answers(folder: Path, answers: dict[str, tuple[bytes, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    index = {}
    for n, (path, (body, mimetype)) in enumerate(answers.items()):
        (folder / f"{n}.body").write_bytes(body)
        index[path] = (f"{n}.body", mimetype)
    (folder / "index.json").write_text(json.dumps(index))


# --- data -------------------------------------------------------------------------------------------


def _activity(first: int, last: int, active_ms: int, rng: random.Random) -> list[list[int]]:
    """1..4 merged, ordered [start, end] intervals inside [first, last] adding up to about `active_ms`."""
    parts = rng.randint(1, 4)
    span = last - first
    each, gap = active_ms // parts, (span - active_ms) // parts
    found, at = [], first
    for _ in range(parts):
        found.append([at, at + max(1, each)])
        at += each + max(gap, 5001)
        if at >= last:
            break
    return found


def seed(rt: Runtime, project_id: str, viewer_key_id: str, n: int) -> tuple[int, int, str]:
    """`n` web replays put straight into SQL, as ingest leaves them; returns (replays with metadata,
    replays viewed, the external id of a replay with metadata about halfway down the list)."""
    rng = random.Random(7)
    now = rt.now()
    recordings: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    metas: list[dict[str, Any]] = []
    views: list[dict[str, Any]] = []
    middle = ""
    for i in range(n):
        ongoing = i % 50 == 0
        age = timedelta(seconds=rng.uniform(0, 600) if ongoing else rng.uniform(3600, 30 * 86400))
        created = now - age
        duration_ms = 3000 + int(min(3_600_000, rng.expovariate(1 / 240_000)))
        first = int(created.timestamp() * 1000)
        last = first + duration_ms
        last_ingest = created + timedelta(milliseconds=duration_ms)
        if ongoing:  # still being recorded: its events so far
            last_ingest = min(last_ingest, now)
            last = min(last, int(now.timestamp() * 1000))
        seconds = max(1, (last - first) // 1000)
        active_ms = int((last - first) * rng.uniform(0.1, 0.9))
        clicks = rng.randint(0, seconds // 4 + 1)
        keypresses = rng.randint(0, seconds // 3 + 1) if rng.random() < 0.5 else 0
        mouse = clicks + rng.randint(seconds, seconds * 6)
        logs, warns = rng.randint(0, 30), rng.randint(0, 5)
        errors = rng.randint(0, 3) if rng.random() < 0.2 else 0
        events = 2 + clicks + keypresses + mouse + logs + warns + errors + rng.randint(10, 400)
        pages = [SITE + p for p in rng.sample(PATHS, rng.randint(1, 5))]
        recording_id = new_id()
        external_id = uuid7(first, rng)
        recordings.append(
            {
                "id": recording_id,
                "project_id": project_id,
                "external_id": external_id,
                "state": RecordingState.STARTED if ongoing else RecordingState.FINISHED,
                "ingest": Ingest.NONE,
                "media_source": None,
                "created_at": created,
                "stopped_at": None if ongoing else last_ingest + timedelta(minutes=30),
                "finished_at": None if ongoing else last_ingest + timedelta(minutes=30),
                "duration": None if ongoing else (last - first) / 1000,
                "stop_reason": None if ongoing else "idle",
            }
        )
        summaries.append(
            {
                "recording_id": recording_id,
                "project_id": project_id,
                "next_sequence": events + 1,
                "events": events,
                "blocks": max(1, events // 300),
                "bytes": events * 110,
                "first_timestamp": first,
                "last_timestamp": last,
                "created_at": created,
                "last_ingest_at": last_ingest,
                "click_count": clicks,
                "keypress_count": keypresses,
                "mouse_activity_count": mouse,
                "console_log_count": logs,
                "console_warn_count": warns,
                "console_error_count": errors,
                "active_ms": active_ms,
                "activity": _activity(first, last, active_ms, rng),
                "pages": pages,
                "start_url": pages[0],
                "start_url_at": first,
            }
        )
        if i % 4 == 0:
            values: dict[str, Any] = {
                "distinct_id": f"user-{rng.randint(1, 3000)}",
                "$os": rng.choice(["Mac OS X", "Windows", "iOS", "Android", "Linux"]),
                "$browser": rng.choice(["Chrome", "Safari", "Firefox", "Microsoft Edge"]),
                "$device_type": rng.choice(["Desktop", "Mobile"]),
                "$geoip_country_code": rng.choice(["AT", "DE", "US", "GB", "FR"]),
            }
            if i % 8 == 0:
                values["email"] = f"{values['distinct_id']}@example.com"
            for key, value in values.items():
                text, match = metadata.canonical(value)
                metas.append(
                    {
                        "recording_id": recording_id,
                        "key": key,
                        "project_id": project_id,
                        "value": text,
                        "match": match,
                        "version": 1,
                        "updated_at": last_ingest,
                    }
                )
            if i >= n // 2 and not middle:
                middle = external_id
        if i % 10 == 3:
            views.append({"recording_id": recording_id, "api_key_id": viewer_key_id, "viewed_at": now})
    tables: list[tuple[Any, list[dict[str, Any]]]] = [
        (Recording, recordings),
        (ReplaySummary, summaries),
        (RecordingMeta, metas),
        (RecordingView, views),
    ]
    with rt.db.transaction() as s:
        for table, rows in tables:  # parents first (foreign keys)
            for start in range(0, len(rows), CHUNK):
                s.execute(insert(table), rows[start : start + CHUNK])
    return len({m["recording_id"] for m in metas}), len(views), middle or recordings[0]["external_id"]


def make_blocks(blocks: int = BLOCKS, cycles: int = CYCLES_PER_BLOCK) -> list[list[dict[str, Any]]]:
    """`blocks` batches of the fixture cycled `cycles` times each, timestamps rising throughout, checked
    as the HTTP route checks a body. Each cycle's node ids are moved (NODE_IDS) and its pointer
    positions jittered, so a cycle is another DOM rather than a copy zstd stores as a back-reference."""
    fixture = json.loads(FIXTURE.read_bytes())
    span = fixture[-1]["timestamp"] - fixture[0]["timestamp"] + 1000
    rng = random.Random(9)
    batches = []
    for b in range(blocks):
        events = []
        for c in range(cycles):
            cycle = b * cycles + c
            events += [
                {**_varied(e, cycle * 10_000, rng), "timestamp": e["timestamp"] + cycle * span}
                for e in fixture
            ]
        batches.append(payloads.parse_events(json.dumps(events).encode(), "application/json"))
    return batches


def _varied(value: Any, offset: int, rng: random.Random) -> Any:
    """`value` with every node id moved by `offset` and pointer coordinates jittered."""
    if isinstance(value, dict):
        found = {}
        for k, v in value.items():
            if k in NODE_IDS and isinstance(v, int) and v > 0:
                found[k] = v + offset
            elif k in ("x", "y") and isinstance(v, int):
                found[k] = max(0, v + rng.randint(-40, 40))
            else:
                found[k] = _varied(v, offset, rng)
        return found
    if isinstance(value, list):
        return [_varied(v, offset, rng) for v in value]
    return value


def ingest_replay(rt: Runtime, project_id: str) -> tuple[str, int, int, int, list[str]]:
    """One replay of BLOCKS blocks through `replays.ingest`: (external id, events, JSON-lines bytes,
    zstd bytes, the block object keys in order)."""
    external_id = uuid7(int(time.time() * 1000), random.Random(8))
    events = size = 0
    recording_id = ""
    for batch in make_blocks():
        stored = replays.ingest(rt, project_id, external_id, batch)
        recording_id = stored.recording_id
        events += stored.events
        size += len(payloads.encode_lines(batch))
    with rt.db.read() as s:
        found = s.execute(
            select(ReplayBlock.object_key, ReplayBlock.bytes)
            .where(ReplayBlock.recording_id == recording_id)
            .order_by(ReplayBlock.seq)
        ).all()
    return external_id, events, size, sum(row.bytes for row in found), [row.object_key for row in found]


# --- measuring --------------------------------------------------------------------------------------


def get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> tuple[bytes, str]:
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise SystemExit(f"GET {path} answered {resp.status}: {body[:300]!r}")
    return body, (resp.getheader("Content-Type") or "").split(";")[0]


def timed(port: int, path: str, headers: dict[str, str], n: int) -> Timed:
    """`n` GETs of `path` one after another on one keep-alive connection (after WARM_UP untimed)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(WARM_UP):
        get(conn, path, headers)
    found = Timed([])
    for _ in range(n):
        began = time.perf_counter()
        body, _ = get(conn, path, headers)
        found.seconds.append(time.perf_counter() - began)
        found.size = len(body)
    conn.close()
    return found


def raw_read(config: Config, object_keys: list[str], n: int) -> tuple[Timed, int, int]:
    """minio-py alone: `get_object` of each block and a zstd decompress, `n` times over; returns the
    times, the events (lines) and the bytes decompressed by one pass."""
    parts = urlsplit(config.s3_endpoint)
    client = Minio(
        parts.netloc,
        access_key=config.s3_access_key,
        secret_key=config.s3_secret_key,
        secure=False,
        region=config.s3_region,
        http_client=urllib3.PoolManager(maxsize=1, timeout=urllib3.Timeout(connect=5, read=60)),
    )
    decompressor = zstandard.ZstdDecompressor()
    found, events, size = Timed([]), 0, 0
    for attempt in range(WARM_UP + n):
        began = time.perf_counter()
        events = size = 0
        for key in object_keys:
            response = client.get_object(config.s3_bucket, key)
            try:
                raw = decompressor.decompress(response.read())
            finally:
                response.close()
                response.release_conn()
            events += raw.count(b"\n")
            size += len(raw)
        if attempt >= WARM_UP:
            found.seconds.append(time.perf_counter() - began)
    found.size = size
    return found, events, size


# --- the run ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recordings", type=int, default=None, help="web replays listed (default 10000)")
    parser.add_argument("--requests", type=int, default=None, help="requests per latency case (200)")
    parser.add_argument("--reads", type=int, default=None, help="snapshot range reads per path (20)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1000 replays, 20 requests, 3 reads")
    args = parser.parse_args()
    defaults = (1000, 20, 3) if args.quick else (10_000, 200, 20)
    for name, default in zip(("recordings", "requests", "reads"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.recordings < 1 or args.requests < 1 or args.reads < 1:
        parser.error("--recordings, --requests and --reads must be at least 1")
    with bench_stack({"MEETREC_LOG_FORMAT": "json"}) as stack:
        run(stack, args)


def run(stack: Stack, args: Namespace) -> None:
    config, rt, base = stack.config, stack.rt, stack.base
    project = keys.create_project(rt, "bench-posthog-" + secrets.token_hex(3))
    raw_key = keys.create_key(rt, project.id, ("recording:read",), name="bench")[1]
    viewer = keys.create_key(rt, project.id, ("recording:read",), name="alice")[0]
    began = time.perf_counter()
    with_meta, viewed, target = seed(rt, project.id, viewer.id, args.recordings)
    seeded = time.perf_counter() - began
    began = time.perf_counter()
    replay, events, lines_bytes, stored, object_keys = ingest_replay(rt, project.id)
    ingested = time.perf_counter() - began
    rt.db.engine.dispose()  # the servers' workers open their own connections
    database = config.database_url.split(":")[0]
    workers = os.environ.get("MEETREC_API_WORKERS", "2")
    threads = os.environ.get("MEETREC_API_THREADS", "4")
    print(
        f"{args.recordings:,} web replays put into SQL in bulk in {seeded:.1f} s ({with_meta:,} with "
        f"metadata, {viewed:,} viewed by another key); 1 replay of {BLOCKS} blocks ingested through "
        f"replays.ingest in {ingested:.1f} s ({events:,} events, {lines_bytes / MB:.1f} MB of JSON lines"
        f", {stored / MB:.2f} MB zstd)"
    )
    print(
        f"gunicorn: app/gunicorn_conf.py, {workers} workers x {threads} threads; {database}; SeaweedFS; "
        f"one keep-alive client; {args.requests} requests a case, {args.reads} range reads"
    )
    offset = min(DEEP_OFFSET, max(0, args.recordings - PAGE))
    snapshots = f"{BASE}/{replay}/snapshots/"
    blocks = f"{snapshots}?source=blob_v2&start_blob_key=0&end_blob_key={BLOCKS - 1}"
    cases = [
        (f"GET session_recordings/?limit={PAGE}", f"{BASE}/?limit={PAGE}"),
        (f"GET session_recordings/?limit={PAGE}&offset={offset}", f"{BASE}/?limit={PAGE}&offset={offset}"),
        ("GET session_recordings/{id}/", f"{BASE}/{target}/"),
        ("GET session_recordings/{id}/snapshots/ (sources)", snapshots),
    ]
    headers = {"Authorization": f"Bearer {raw_key}"}
    ours_env = {**config.child_env(), "MEETREC_LOG_FORMAT": "json"}
    procs: list[subprocess.Popen] = []
    try:
        proc, ours = serve("app.asgi:create_from_env()", ours_env)
        procs.append(proc)
        # Capture what ours answers once every path has been read (the retrieve marks the replay viewed,
        # which the list then shows): the bare app answers these bytes.
        conn = http.client.HTTPConnection("127.0.0.1", ours, timeout=120)
        for _, path in [*cases, ("", blocks)]:
            get(conn, path, headers)
        answers = {path: get(conn, path, headers) for _, path in [*cases, ("", blocks)]}
        conn.close()
        check(answers, cases, blocks, args.recordings, offset, events)
        save_answers(base / "answers", answers)
        proc, bare = serve("bench.posthog:bare_from_env()", {**ours_env, ANSWERS_ENV: str(base / "answers")})
        procs.append(proc)
        latency(cases, ours, bare, headers, args)
        stream(config, blocks, object_keys, ours, bare, headers, events, args)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def check(
    answers: dict[str, tuple[bytes, str]],
    cases: list[tuple[str, str]],
    blocks: str,
    n: int,
    offset: int,
    events: int,
) -> None:
    """Stop unless ours answered what the bench means to measure: full pages, the count, every event."""
    first, deep = (json.loads(answers[path][0]) for _, path in cases[:2])
    if first["count"] != n + 1 or len(first["results"]) != min(PAGE, n + 1):
        raise SystemExit(f"the list counts {first['count']} with {len(first['results'])} results")
    if len(deep["results"]) != min(PAGE, n + 1 - offset):
        raise SystemExit(f"the page at offset {offset} holds {len(deep['results'])} results")
    lines = answers[blocks][0].count(b"\n")
    if lines != events:
        raise SystemExit(f"the snapshot range holds {lines} events, {events} were ingested")


def latency(
    cases: list[tuple[str, str]], ours: int, bare: int, headers: dict[str, str], args: Namespace
) -> None:
    print()
    print(f"{'request':52} {'bytes':>9} {'ours p50/p95':>13} {'bare p50/p95':>13} {'ours/bare p50, p95':>19}")
    for name, path in cases:
        mine = timed(ours, path, headers, args.requests)
        theirs = timed(bare, path, {}, args.requests)
        ratio = f"{mine.p50 / theirs.p50:.2f}, {mine.p95 / theirs.p95:.2f}"
        print(f"{name:52} {mine.size:>9,} {mine.ms():>13} {theirs.ms():>13} {ratio:>19}")
    print("(ms per request, one keep-alive client; bare = a Flask app answering the same bytes as constants)")


def stream(
    config: Config,
    blocks: str,
    object_keys: list[str],
    ours: int,
    bare: int,
    headers: dict[str, str],
    events: int,
    args: Namespace,
) -> None:
    mine = timed(ours, blocks, headers, args.reads)
    theirs = timed(bare, blocks, {}, args.reads)
    raw, raw_events, raw_bytes = raw_read(config, object_keys, args.reads)
    if raw_events != events:
        raise SystemExit(f"the raw read found {raw_events} events, {events} were ingested")
    print()
    print(
        f"snapshots ?source=blob_v2&start_blob_key=0&end_blob_key={BLOCKS - 1}: {len(object_keys)} blocks, "
        f"{events:,} events, a body of {mine.size / MB:.2f} MB ({raw_bytes / MB:.2f} MB decompressed)"
    )
    print(f"{'path':52} {'p50/p95 ms':>13} {'MB/s':>7} {'events/s':>10} {'time / raw':>10}")
    rows = [
        ("ours: GET .../snapshots (HTTP)", mine, mine.size),
        ("bare Flask: the same body as a constant (HTTP)", theirs, theirs.size),
        (f"raw: minio get_object x{len(object_keys)} + zstd decompress", raw, raw_bytes),
    ]
    for name, t, size in rows:
        print(
            f"{name:52} {t.ms():>13} {size / MB / t.p50:7.0f} {events / t.p50:10,.0f} {t.p50 / raw.p50:10.2f}"
        )
    print("(MB/s = 10^6 bytes of response body, or of decompressed JSON lines for raw, per second at p50)")


if __name__ == "__main__":
    main()
