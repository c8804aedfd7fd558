"""posthog-js's capture path (`POST /s/`) against the rrweb batch path (`POST /rrweb/recordings/{id}/ingest`)
on the same rrweb events: events/s, MB/s, latency per request and the api's CPU per 1,000 events.

A stack of its own on this machine (bench/backing.py: redis-server, a SeaweedFS S3 server, SQLite in a
temporary directory or DATABASE_URL); the app served as bench/posthog.py serves it: gunicorn with
`app/gunicorn_conf.py` (MEETREC_API_WORKERS uvicorn workers x MEETREC_API_THREADS threads, 2 x 4).

- events: the 89 events of `tests/data/rrweb_session.json` (two page loads, full snapshots, mutations,
  mouse moves, console plugin events) cycled --cycles times a batch (3: 267 events, ~230 KB of JSON),
  each cycle with its own node ids and jittered pointer positions (bench/posthog.py's `make_blocks`),
  --batches batches with rising timestamps; SESSION_BATCHES batches in a row are one recording.
- rrweb: a batch is one POST of its events as a gzip JSON array, `Content-Encoding: gzip`, the
  project's ingest key as Bearer; 204 once stored.
- posthog-js: a batch is one POST of what posthog-js sends for those events (bench/posthog_js.py): each
  event packed as it packs them (`cv: 2024-10`), in `$snapshot` events of at most its 0.9 MB buffer,
  the JSON array gzip-compressed as `text/plain` to `/s/?compression=gzip-js`, the project's public
  token in every event; 200 naming the events stored.
- Every body is made before the clock starts. For each --clients count, each path in turn sends every
  batch once: that many threads, each taking the next recording and posting its batches in order on a
  keep-alive connection (a new one per recording, so recordings spread over the api's workers as page
  views do); WARM_RECORDINGS recordings of each path go first, untimed (imports, caches).
  Printed: events/s; MB/s of the rrweb events as JSON (decompressed and expanded: what both paths
  store); p50/p95 ms per request; CPU seconds per 1,000 events of the api (gunicorn and its workers) and
  of the S3 server; and posthog-js / rrweb of each.
- check: every recording read back from `GET /rrweb/recordings/{id}/events` holds exactly the events
  sent, in order (posthog-js's expanded back to what rrweb made). OK, or MISMATCH and exit status 1.

Timings are printed, never asserted.

    .venv/bin/python bench/capture.py [--batches 200] [--cycles 3] [--clients 1 4] [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import random
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.services.access import keys  # noqa: E402
from bench import posthog_js  # noqa: E402
from bench.api import _run_threads, serve  # noqa: E402
from bench.backing import Stack, bench_stack  # noqa: E402
from bench.pipeline import cpu_seconds  # noqa: E402
from bench.posthog import make_blocks  # noqa: E402

SESSION_BATCHES = 5  # batches in a row a recording (a posthog-js session) gets
WARM_RECORDINGS = 4  # recordings of a path sent untimed first, concurrently
GZIP_LEVEL = 6  # zlib's default: what a browser's CompressionStream uses
MB = 1e6
Events = list[dict[str, Any]]


@dataclass(frozen=True)
class Corpus:
    """The batches of events, made once: as sent by rrweb clients (gzip JSON) and packed by posthog-js."""

    batches: list[Events]
    json_bytes: int  # the events as JSON, all batches
    rrweb_bodies: list[bytes]
    packed: list[Events]

    @classmethod
    def make(cls, batches: int, cycles: int) -> Corpus:
        made = make_blocks(batches, cycles)
        plain = [posthog_js.js_json(batch) for batch in made]
        bodies = [gzip.compress(raw, GZIP_LEVEL, mtime=0) for raw in plain]
        packed = [[posthog_js.packed(e) for e in batch] for batch in made]
        return cls(made, sum(map(len, plain)), bodies, packed)

    @property
    def events(self) -> int:
        return sum(map(len, self.batches))

    def recordings(self) -> list[range]:
        """The batch indexes of each recording."""
        n = len(self.batches)
        return [range(i, min(i + SESSION_BATCHES, n)) for i in range(0, n, SESSION_BATCHES)]


@dataclass(frozen=True)
class Recording:
    id: str
    requests: list[tuple[str, bytes]]  # (path, body) a batch
    batches: list[Events]


@dataclass(frozen=True)
class Way:
    """One ingest path's requests, and how a stored batch is answered."""

    name: str
    headers: dict[str, str]
    recordings: list[Recording]
    refused: Callable[[int, bytes, Recording, int], str | None]  # (status, answer, recording, events)


@dataclass
class Run:
    events: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by process
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def ms(self, q: int) -> float:
        """The q-th percentile latency in ms."""
        if len(self.latencies) < 2:
            return sum(self.latencies) * 1000
        return statistics.quantiles(self.latencies, n=100)[q - 1] * 1000

    def cpu_per_k(self, name: str) -> float:
        return self.cpu[name] / self.events * 1000 if self.events else 0.0


def rrweb_way(corpus: Corpus, key: str, tag: str) -> Way:
    """Each batch as a gzip JSON array POSTed to its recording's ingest route."""
    recordings = []
    for n, indexes in enumerate(corpus.recordings()):
        recording = f"rrweb-{tag}-{n}"
        path = f"/rrweb/recordings/{recording}/ingest"
        requests = [(path, corpus.rrweb_bodies[i]) for i in indexes]
        recordings.append(Recording(recording, requests, [corpus.batches[i] for i in indexes]))
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }

    def refused(status: int, answer: bytes, _: Recording, events: int) -> str | None:
        return None if status == 204 else f"answered {status}: {answer[:200]!r}"

    return Way("POST /rrweb/recordings/{id}/ingest", headers, recordings, refused)


def posthog_way(corpus: Corpus, token: str, seed: int) -> Way:
    """Each batch as the `/s/` request posthog-js makes of it, a posthog-js session a recording."""
    rng = random.Random(seed)
    path = f"/s/?compression=gzip-js&ver={posthog_js.VERSION}"
    recordings = []
    for n, indexes in enumerate(corpus.recordings()):
        started = corpus.batches[indexes[0]][0]["timestamp"]
        session = posthog_js.Session(token, rng, f"visitor-{seed}-{n}", started)
        requests = [(path, posthog_js.request_body(session.snapshots(corpus.packed[i]))) for i in indexes]
        recordings.append(Recording(session.id, requests, [corpus.batches[i] for i in indexes]))

    def refused(status: int, answer: bytes, recording: Recording, events: int) -> str | None:
        if status != 200:
            return f"answered {status}: {answer[:200]!r}"
        if json.loads(answer).get("stored") != {recording.id: events}:
            return f"{events} events sent, the answer: {answer[:200]!r}"
        return None

    return Way("POST /s/ (posthog-js)", {"Content-Type": "text/plain"}, recordings, refused)


def send(port: int, way: Way, clients: int) -> Run:
    """`clients` threads posting every recording's batches, each recording in order on a connection of
    its own; a batch counts once answered as stored."""
    run, lock = Run(), threading.Lock()
    todo = list(reversed(way.recordings))
    latencies: list[list[float]] = [[] for _ in range(clients)]
    events = [0] * clients

    def client(i: int) -> None:
        while not run.errors:
            with lock:
                if not todo:
                    return
                recording = todo.pop()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            for (path, body), batch in zip(recording.requests, recording.batches, strict=True):
                began = time.perf_counter()
                try:
                    conn.request("POST", path, body=body, headers=way.headers)
                    resp = conn.getresponse()
                    answer = resp.read()
                except (OSError, http.client.HTTPException) as e:  # the batch's fate is unknown: stop
                    run.errors.append(f"{way.name} to {recording.id}: {type(e).__name__}: {e}")
                    return
                latencies[i].append(time.perf_counter() - began)
                problem = way.refused(resp.status, answer, recording, len(batch))
                if problem:
                    run.errors.append(f"{way.name} to {recording.id}: {problem}")
                    return
                events[i] += len(batch)
            conn.close()

    began = time.perf_counter()
    _run_threads(client, clients)
    run.seconds = time.perf_counter() - began
    run.latencies = [x for mine in latencies for x in mine]
    run.events = sum(events)
    return run


def measured(pids: dict[str, int], port: int, way: Way, clients: int) -> Run:
    """`send`, with the CPU seconds each of `pids` (with the processes below it) used meanwhile."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    run = send(port, way, clients)
    run.cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    return run


def read_back(port: int, key: str, recordings: list[Recording]) -> list[str]:
    """Each recording's stored events against the events sent; what differs."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    problems = []
    for recording in recordings:
        sent = [e for batch in recording.batches for e in batch]
        conn.request(
            "GET", f"/rrweb/recordings/{recording.id}/events", headers={"Authorization": f"Bearer {key}"}
        )
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            problems.append(f"{recording.id}: {len(sent)} events sent, GET answered {resp.status}")
            continue
        stored = json.loads(body)
        plain = [{k: v for k, v in e.items() if k not in ("recordingId", "sequenceId")} for e in stored]
        if len(stored) != len(sent):
            problems.append(f"{recording.id}: {len(sent)} events sent, {len(stored)} stored")
        elif plain != sent:
            problems.append(f"{recording.id}: {len(sent)} events stored, but not the events sent in order")
    conn.close()
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=None, help="batches sent through each path (200)")
    parser.add_argument("--cycles", type=int, default=3, help="fixture cycles (89 events) a batch")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4], help="concurrent clients, each run")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 batches")
    args = parser.parse_args()
    if args.batches is None:
        args.batches = 20 if args.quick else 200
    if args.batches < 1 or args.cycles < 1 or min(args.clients) < 1:
        parser.error("--batches, --cycles and --clients must be at least 1")
    with bench_stack({"MEETREC_LOG_FORMAT": "json"}) as stack:
        ok = run(stack, args)
    sys.exit(0 if ok else 1)


def run(stack: Stack, args: Namespace) -> bool:
    rt = stack.rt
    project = keys.create_project(rt, "bench-capture-" + secrets.token_hex(3))
    ingest_key = keys.create_key(rt, project.id, ("ingest",), name="rrweb")[1]
    read_key = keys.create_key(rt, project.id, ("recording:read",), name="check")[1]
    token = keys.public_token(rt, project.id)
    rt.db.engine.dispose()  # the servers' workers open their own connections
    began = time.perf_counter()
    corpus = Corpus.make(args.batches, args.cycles)
    warm = Corpus.make(WARM_RECORDINGS * SESSION_BATCHES, 1)
    database = stack.config.database_url.split(":")[0]
    _describe(corpus, posthog_way(corpus, token, 0), time.perf_counter() - began, database)
    proc, port = serve(
        "app.asgi:create_from_env()", {**stack.config.child_env(), "MEETREC_LOG_FORMAT": "json"}
    )
    pids = {"api": proc.pid, "s3": stack.s3.process.pid}  # type: ignore[union-attr]
    results: list[tuple[int, Run, Run]] = []
    checked: list[Recording] = []
    warm_errors: list[str] = []
    try:
        for way in (rrweb_way(warm, ingest_key, "warm"), posthog_way(warm, token, secrets.randbits(32))):
            warm_errors += send(port, way, WARM_RECORDINGS).errors
        for clients in args.clients:
            ways = (
                rrweb_way(corpus, ingest_key, f"{clients}-{secrets.token_hex(3)}"),
                posthog_way(corpus, token, secrets.randbits(32)),
            )
            rrweb, theirs = (measured(pids, port, way, clients) for way in ways)
            results.append((clients, rrweb, theirs))
            checked += [r for way in ways for r in way.recordings]
        problems = read_back(port, read_key, checked)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for error in warm_errors[:3]:
        print(f"error while warming up: {error}")
    return _report(results, problems, corpus, len(checked)) and not warm_errors


def _describe(corpus: Corpus, way: Way, seconds: float, database: str) -> None:
    n = len(corpus.batches)
    rrweb_gz = sum(map(len, corpus.rrweb_bodies))
    posthog_gz = [body for r in way.recordings for _, body in r.requests]
    posthog_json = [gzip.decompress(body) for body in posthog_gz]
    snapshots = sum(len(json.loads(raw)) for raw in posthog_json)
    print(
        f"{n} batches of {corpus.events // n} fixture events, {corpus.events:,} events "
        f"({corpus.json_bytes / MB:.1f} MB as JSON), made in {seconds:.1f} s. A request on average: "
        f"rrweb {rrweb_gz / n / 1e3:.1f} KB gzip of {corpus.json_bytes / n / 1e3:.0f} KB JSON; posthog-js "
        f"{sum(map(len, posthog_gz)) / n / 1e3:.1f} KB gzip of {sum(map(len, posthog_json)) / n / 1e3:.0f} "
        f"KB JSON (packed) in {snapshots / n:.3g} $snapshot event(s)"
    )
    workers = os.environ.get("MEETREC_API_WORKERS", "2")
    threads = os.environ.get("MEETREC_API_THREADS", "4")
    print(
        f"gunicorn: app/gunicorn_conf.py, {workers} workers x {threads} threads; {database}; SeaweedFS; "
        f"{SESSION_BATCHES} batches a recording, on a connection of its own"
    )


def _report(
    results: list[tuple[int, Run, Run]], problems: list[str], corpus: Corpus, recordings: int
) -> bool:
    mb = corpus.json_bytes / MB / corpus.events  # MB of JSON an event
    print()
    print(
        f"{'clients':>7}  {'path':36} {'events/s':>9} {'MB/s':>6} {'p50/p95 ms':>13} "
        f"{'api CPU s/1k ev':>15} {'s3 CPU s/1k ev':>14}"
    )
    for clients, rrweb, theirs in results:
        for name, r in (("POST /rrweb/recordings/{id}/ingest", rrweb), ("POST /s/ (posthog-js)", theirs)):
            latency = f"{r.ms(50):.1f}/{r.ms(95):.1f}"
            print(
                f"{clients:>7}  {name:36} {r.rate:9,.0f} {r.rate * mb:6.1f} {latency:>13} "
                f"{r.cpu_per_k('api'):15.3f} {r.cpu_per_k('s3'):14.3f}"
            )
        rate = theirs.rate / rrweb.rate if rrweb.rate else 0.0
        latency = "/".join(f"{theirs.ms(q) / max(rrweb.ms(q), 1e-9):.2f}" for q in (50, 95))
        api, s3 = (theirs.cpu_per_k(n) / max(rrweb.cpu_per_k(n), 1e-9) for n in ("api", "s3"))
        print(
            f"{clients:>7}  {'posthog-js / rrweb':36} {rate:9.2f} {rate:6.2f} {latency:>13} "
            f"{api:15.2f} {s3:14.2f}"
        )
    print(
        "(MB/s: the rrweb events as JSON, decompressed and expanded; latency per request; CPU: the api's "
        "gunicorn and workers, SeaweedFS)"
    )
    runs = [r for _, *pair in results for r in pair]
    errors = [e for r in runs for e in r.errors]
    for error in errors[:3]:
        print(f"error: {error}")
    if problems:
        print(
            f"check: MISMATCH in {len(problems)} of {recordings} recordings, e.g. {'; '.join(problems[:3])}"
        )
    else:
        sent = sum(r.events for r in runs)
        print(f"check: OK, {recordings} recordings, {sent:,} events stored and every one read back as sent")
    return not problems and not errors


if __name__ == "__main__":
    main()
