"""Interaction events: ingest rate through `POST /recordings/{id}/events` and read-back rate.

The api runs as in production (`meetrec api`: gunicorn, gthread) on this machine against SQLite (a
file under a temporary directory) and PostgreSQL (a scratch database made on this machine's server and
dropped afterwards). Client threads each start a session and post batches of 500 events (clicks and keys
with client ids) over keep-alive connections. Then every session is read back with
`GET /recordings/{id}` (the streamed superset) and every acknowledged event must be there.

- ingest: events stored per second across all clients. Target: 20,000/s on this 2-core machine.
- raw: the same rows put straight into the same database from one process, a batch a transaction, the
  fastest way each offers: SQLAlchemy Core `executemany` on SQLite, `COPY FROM STDIN` on PostgreSQL
  (no HTTP, no JSON, no validation, no duplicate check); ratio = ours / raw.
- read-back: events per second streamed out of `GET /recordings/{id}`.

    .venv/bin/python bench/events.py [--batches 400] [--clients 4] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402

from app import migrate  # noqa: E402
from app.config import Config  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.models import SessionEvent  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from app.services.access import keys  # noqa: E402
from app.services.core import sessions  # noqa: E402

BATCH = 500
T0 = 1_700_000_000.0
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_batch(client: int, n: int) -> bytes:
    events = []
    for i in range(BATCH):
        ts = T0 + (n * BATCH + i) / 100
        event_id = f"c{client}-{n}-{i}"
        if i % 2:
            events.append({"id": event_id, "type": "key", "timestamp": ts, "key_data": {"key": "a"}})
        else:
            events.append(
                {
                    "id": event_id,
                    "type": "click",
                    "timestamp": ts,
                    "coordinates": {"x": i, "y": n},
                    "click_data": {"button": "left", "pressed": True},
                }
            )
    return json.dumps(events).encode()


class Api:
    """`meetrec api` in a child process, as production runs it."""

    def __init__(self, config: Config, port: int, log: Path):
        env = {**os.environ, **config.child_env(), "PORT": str(port), "MEETREC_LOG_LEVEL": "WARNING"}
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "api"],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the api did not come up; see {log}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def ingest(port: int, auth: str, session_ids: list[str], bodies: list[list[bytes]]) -> tuple[float, int]:
    """Post every client's batches concurrently; returns (seconds, events stored)."""
    stored = [0] * len(session_ids)
    errors: list[str] = []

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        for body in bodies[index]:
            conn.request("POST", f"/recordings/{session_ids[index]}/events", body=body, headers=headers)
            resp = conn.getresponse()
            answer = resp.read()
            if resp.status != 201:
                errors.append(f"{resp.status}: {answer[:200]!r}")
                return
            stored[index] += json.loads(answer)["stored"]
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(session_ids))]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} batches refused, e.g. {errors[0]}")
    return elapsed, sum(stored)


def read_back(port: int, auth: str, session_ids: list[str]) -> tuple[float, int]:
    """Stream every session out of GET /recordings/{id}; returns (seconds, events read)."""
    read = 0
    began = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for session_id in session_ids:
        conn.request("GET", f"/recordings/{session_id}", headers={"Authorization": auth})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        timestamps = [e["timestamp"] for e in body["events"]]
        if timestamps != sorted(timestamps):
            raise RuntimeError(f"session {session_id}: events out of timestamp order")
        read += len(timestamps)
    return time.perf_counter() - began, read


def raw_insert(database_url: str, session_id: str, batches: int) -> float:
    """Rows per second with SQLAlchemy Core executemany in one process: the database's own pace (the
    same engine settings as meetrec's: WAL and synchronous=NORMAL on SQLite)."""
    engine = make_engine(database_url)
    rows = [
        [
            {
                "recording_id": session_id,
                "event_id": uuid.uuid4().hex,
                "type": "click",
                "ts": T0 + i,
                "data": {"coordinates": {"x": i, "y": n}, "click_data": {"button": "left", "pressed": True}},
                "wants_frame": False,
            }
            for i in range(BATCH)
        ]
        for n in range(batches)
    ]
    began = time.perf_counter()
    for batch in rows:
        if engine.dialect.name == "postgresql":
            _copy(engine, batch)
        else:
            with engine.begin() as conn:
                conn.execute(insert(SessionEvent.__table__), batch)
    elapsed = time.perf_counter() - began
    engine.dispose()
    return batches * BATCH / elapsed


def _copy(engine, batch: list[dict]) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL's fastest way in: COPY FROM STDIN, one batch a transaction."""
    conn = engine.raw_connection()
    try:
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY session_events (recording_id, event_id, type, ts, data, wants_frame) FROM STDIN"
            ) as copy,
        ):
            for r in batch:
                copy.write_row(
                    (
                        r["recording_id"],
                        r["event_id"],
                        r["type"],
                        r["ts"],
                        json.dumps(r["data"]),
                        r["wants_frame"],
                    )
                )
        conn.commit()
    finally:
        conn.close()


def run(backend: str, database_url: str, tmp: Path, args: argparse.Namespace) -> None:
    config = Config.from_env(
        {
            "MEETREC_DATA_DIR": str(tmp),
            "DATABASE_URL": database_url,
            "MEETREC_SECRET_KEY": secrets.token_hex(32),
            "MEETREC_API_WORKERS": str(args.api_workers),
        }
    )
    migrate.upgrade(config.database_url)
    rt = Runtime(config)
    project = keys.create_project(rt, "bench")
    auth = keys.create_key(rt, project.id)[1]
    session_ids = [sessions.start(rt, project.id, f"bench {i}").id for i in range(args.clients)]
    per_client = args.batches // args.clients
    bodies = [[make_batch(c, n) for n in range(per_client)] for c in range(args.clients)]
    api = Api(config, free_port(), tmp / f"api-{backend}.log")
    try:
        warm = sessions.start(rt, project.id, "warm-up").id
        ingest(api.port, auth, [warm], [[make_batch(99, 0)]])
        seconds, stored = ingest(api.port, auth, session_ids, bodies)
        read_seconds, read = read_back(api.port, auth, session_ids)
    finally:
        api.stop()
    if read != stored:
        raise RuntimeError(f"{stored} events acknowledged but {read} read back")
    raw = raw_insert(config.database_url, sessions.start(rt, project.id, "raw").id, min(per_client, 100))
    rate = stored / seconds
    print(f"{backend}: {stored} events in {seconds:.2f} s from {args.clients} clients, batches of {BATCH}")
    print(f"  ingest    {rate:>9,.0f} events/s   (target 20,000)")
    print(f"  raw       {raw:>9,.0f} rows/s      ratio ours / raw {rate / raw:.2f}")
    print(f"  read-back {read / read_seconds:>9,.0f} events/s   ({read}: all acknowledged, in order)")


def postgres_scratch() -> tuple[str, callable]:  # type: ignore[valid-type]
    name = "meetrec_bench_" + secrets.token_hex(4)
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()

    return url, drop


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=400, help="batches of 500 events in all")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients, one session each")
    parser.add_argument("--api-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            run("sqlite", f"sqlite:///{tmp}/bench.db", Path(tmp), args)
    if args.backend in ("postgresql", "both"):
        url, drop = postgres_scratch()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                run("postgresql", url, Path(tmp), args)
        finally:
            drop()


if __name__ == "__main__":
    main()
