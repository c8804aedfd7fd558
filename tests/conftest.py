"""Test fixtures: real Redis, a real S3 server, real ffmpeg and a real SQL database.

The session starts its own redis-server and SeaweedFS S3 server on free ports unless `REDIS_URL` /
`S3_ENDPOINT` are set, uses SQLite in a temporary directory unless `DATABASE_URL` is set (PostgreSQL in
CI), and starts real `meetrec worker` processes for tests that need jobs to run.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from app import migrate
from app.config import Config
from app.embedded.servers import RedisServer, S3Server
from app.factory import create_app
from app.runtime import Runtime
from app.services.access import keys
from tests.helpers import chromium, descendants, free_weed_ports, join_room
from tests.helpers import free_port as _free_port  # the name other tests import from here

ROOT = Path(__file__).resolve().parent.parent

# MEETREC_REQUIRE_CRITICAL=1 (CI): the session fails unless every test in tests/critical.txt ran and passed.
pytest_plugins = ["tests.critical"]


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("meetrec")


@pytest.fixture(scope="session")
def redis_url(base_dir: Path) -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = RedisServer(_free_port(), base_dir / "redis", persist=False)
    server.start()
    server.wait_ready(15)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def s3_settings(base_dir: Path) -> Iterator[dict[str, str]]:
    if os.environ.get("S3_ENDPOINT"):
        yield {k: os.environ[k] for k in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY")}
        return
    access, secret = "AK" + secrets.token_hex(8), secrets.token_hex(20)
    server = S3Server(free_weed_ports(), base_dir / "s3", access, secret)
    server.start()
    server.wait_ready(60)
    yield {"S3_ENDPOINT": server.endpoint, "S3_ACCESS_KEY": access, "S3_SECRET_KEY": secret}
    server.stop()


@pytest.fixture(scope="session")
def database_url(base_dir: Path) -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return f"sqlite:///{base_dir / 'meetrec.db'}"
    if url.startswith("postgres"):
        engine = create_engine(url)
        with engine.begin() as conn:  # a clean slate: the suite owns this database
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def config(base_dir: Path, redis_url: str, s3_settings: dict[str, str], database_url: str) -> Config:
    env = {
        "MEETREC_DATA_DIR": str(base_dir / "data"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "S3_BUCKET": "meetrec-test-" + secrets.token_hex(4),
        "MEETREC_SYNTHETIC_SIZE": "320x240",
        "MEETREC_SYNTHETIC_RATE": "15",
        "MEETREC_PUBLIC_URL": "http://meetrec.test",
        "MEETREC_MAX_RECORDING_SECONDS": "120",
        "MEETREC_SEGMENT_SECONDS": "2",
        "MEETREC_CAPTURE_LEASE_SECONDS": "6",
        "MEETREC_STALL_SECONDS": "15",
        "MEETREC_MAX_RECONNECTS": "2",
        # The tests serve network sources on loopback, which the default refuses (tests/test_urlsafety.py).
        "MEETREC_URL_ALLOWLIST": "127.0.0.1,::1,localhost",
        # Webhooks: a short retry schedule and timeout keep the delivery tests fast.
        "MEETREC_SECRET_KEY": secrets.token_hex(32),
        "MEETREC_WEBHOOK_RETRY_SCHEDULE": "1,1,2",
        "MEETREC_WEBHOOK_TIMEOUT": "3",
        **s3_settings,
    }
    return Config.from_env(env)


@pytest.fixture(scope="session")
def rt(config: Config) -> Runtime:
    migrate.upgrade(config.database_url)
    runtime = Runtime(config)
    runtime.storage.ensure_bucket()
    return runtime


@pytest.fixture(scope="session")
def app(rt: Runtime):  # type: ignore[no-untyped-def]
    flask_app = create_app(runtime=rt)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def project_key(rt: Runtime) -> str:
    """A fresh project with a default-scoped API key; returns the raw key."""
    project = keys.create_project(rt, "test-" + secrets.token_hex(3))
    return keys.create_key(rt, project.id)[1]


@pytest.fixture
def other_project_key(rt: Runtime) -> str:
    project = keys.create_project(rt, "other-" + secrets.token_hex(3))
    return keys.create_key(rt, project.id)[1]


@pytest.fixture
def auth(project_key: str) -> dict[str, str]:
    return {"Authorization": project_key}


class WorkerProcesses:
    """Real `meetrec worker` processes for the capture and media/default queues."""

    def __init__(self, config: Config, log_dir: Path):
        self.config = config
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.queues: dict[str, tuple[str, ...]] = {}

    def start(self, name: str, *queues: str) -> subprocess.Popen:
        env = {**os.environ, **self.config.child_env()}
        log = open(self.log_dir / f"worker-{name}.log", "ab")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", *queues],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `crash` takes the work horse and ffmpeg too
        )
        self.procs[name] = proc
        self.queues[name] = queues
        return proc

    def revive(self) -> list[str]:
        """Start again every worker that exited (as `meetrec up`'s supervisor would); their names."""
        dead = [name for name, proc in self.procs.items() if proc.poll() is not None]
        for name in dead:
            self.start(name, *self.queues[name])
        return dead

    def crash(self, *names: str) -> None:
        """SIGKILL each named worker with every process below it (RQ's work horse runs in a session of
        its own, ffmpeg below that), as if its machine died."""
        for name in names:
            proc = self.procs[name]
            for pid in [proc.pid, *descendants(proc.pid)]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def pushed(client, auth, request):  # type: ignore[no-untyped-def]
    """A started push recording: its room's access key and the recording id."""
    room = join_room(client, auth, f"push-{request.node.name[-40:]}", **{"options[media_source]": "push"})
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    rec = client.get(f"/rooms/{room['room']['id']}/recordings", headers=auth).get_json()[0]
    return {"access_key": room["access_key"], "id": rec["id"]}


@pytest.fixture(scope="session")
def workers(config: Config, rt: Runtime, base_dir: Path) -> Iterator[WorkerProcesses]:
    procs = WorkerProcesses(config, base_dir)
    procs.start("capture-1", "capture")
    procs.start("capture-2", "capture")
    procs.start("media", "media", "webhooks", "default")
    yield procs
    procs.stop()


@pytest.fixture(scope="session")
def mediarecorder_stream(config) -> bytes:  # type: ignore[no-untyped-def]
    """A 4-second live WebM like a browser's MediaRecorder writes it (no cues, written to a pipe)."""
    out = subprocess.run(
        [
            config.ffmpeg_path,
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=15",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "4",
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-c:a",
            "libopus",
            "-f",
            "webm",
            "-live",
            "1",
            "pipe:1",
        ],  # fmt: skip
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out.stdout


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (`tests.rrweb_pages.launch`) for a module's browser tests."""
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def web_site() -> Iterator[tuple[str, dict[str, str]]]:
    """A web site on its own loopback origin (a customer's page, cross-origin to meetrec) answering `/`
    with the page `html["page"]` holds: yields (origin, html)."""
    from flask import Flask, Response

    from tests.browser import live_server

    site = Flask("recorded-site")
    html: dict[str, str] = {}
    site.add_url_rule("/", "page", lambda: Response(html.get("page", ""), mimetype="text/html"))
    site.add_url_rule("/favicon.ico", "icon", lambda: Response(status=204))  # no 404 in the page's console
    with live_server(site) as origin:
        yield origin, html
