"""API throughput: meetrec's read endpoints against a bare Flask app sending the same JSON.

Both run under gunicorn with the same settings (2 gthread workers x 4 threads) on SQLite, and the same
keep-alive load (8 client threads for DURATION seconds) hits them. Prints requests/s, p50 and p99
latency and the ratio ours / bare: the cost of auth, the database read and serialization.

    .venv/bin/python bench/api.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import migrate  # noqa: E402
from app.config import Config  # noqa: E402
from app.factory import create_app  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from app.services import keys  # noqa: E402

THREADS = 8
GUNICORN = ["-w", "2", "-k", "gthread", "--threads", "4", "--log-level", "warning"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def load(port: int, path: str, headers: dict[str, str], seconds: float) -> tuple[float, list[float]]:
    """Hit `path` from THREADS keep-alive connections for `seconds`; return (rps, latencies)."""
    latencies: list[list[float]] = [[] for _ in range(THREADS)]
    stop = time.monotonic() + seconds

    def client(mine: list[float]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        while time.monotonic() < stop:
            began = time.perf_counter()
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"GET {path} answered {resp.status}")
            mine.append(time.perf_counter() - began)
        conn.close()

    threads = [threading.Thread(target=client, args=(mine,)) for mine in latencies]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [x for mine in latencies for x in mine]
    return len(flat) / (time.monotonic() - began), flat


def serve(app_spec: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *GUNICORN, "-b", f"127.0.0.1:{port}", app_spec],
        cwd=ROOT,
        env={**os.environ, **env},
    )
    wait_listening(port)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Config.from_env(
            {"MEETREC_DATA_DIR": tmp, "S3_ACCESS_KEY": "bench", "S3_SECRET_KEY": "benchbench"}
        )
        migrate.upgrade(config.database_url)
        rt = Runtime(config)
        project = keys.create_project(rt, "bench")
        raw_key = keys.create_key(rt, project.id)[1]
        client = create_app(runtime=rt).test_client()
        room = client.post(
            "/rooms", data={"id": "bench", "user[name]": "Ann", "options[media_source]": "push"},
            headers={"Authorization": raw_key},
        ).get_json()  # fmt: skip
        client.post(f"/rooms/{room['access_key']}/recording")
        recording = client.get("/rooms/bench/recordings", headers={"Authorization": raw_key}).get_json()[0]
        cases = [
            ("GET /rooms/{access_key}", f"/rooms/{room['access_key']}", {}),
            ("GET /recordings/{id} (auth)", f"/recordings/{recording['id']}", {"Authorization": raw_key}),
        ]
        head = ("endpoint", "ours rps", "bare rps", "ratio", "ours p50/p99 ms", "bare p50/p99 ms")
        print(f"{head[0]:32} {head[1]:>9} {head[2]:>9} {head[3]:>6} {head[4]:>16} {head[5]:>16}")
        for name, path, headers in cases:
            body = json.dumps(client.get(path, headers=headers).get_json())
            port = free_port()
            ours = serve("app.factory:create_app()", port, config.child_env())
            try:
                ours_rps, ours_lat = load(port, path, headers, args.seconds)
            finally:
                ours.terminate()
                ours.wait()
            port = free_port()
            bare = serve("bench.bare_app:app", port, {"BENCH_BODY": body})
            try:
                bare_rps, bare_lat = load(port, path, headers, args.seconds)
            finally:
                bare.terminate()
                bare.wait()
            print(
                f"{name:32} {ours_rps:9.0f} {bare_rps:9.0f} {ours_rps / bare_rps:6.2f} "
                f"{_ms(ours_lat):>16} {_ms(bare_lat):>16}"
            )


def _ms(latencies: list[float]) -> str:
    q = statistics.quantiles(latencies, n=100)
    return f"{q[49] * 1000:.1f}/{q[98] * 1000:.1f}"


if __name__ == "__main__":
    main()
