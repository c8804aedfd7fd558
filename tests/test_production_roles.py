"""The production roles run natively, as the containers run them: `meetrec migrate`, then `meetrec api`
(gunicorn, two workers), a capture worker, a media worker and `meetrec scheduler` as separate processes,
against this session's database (PostgreSQL when DATABASE_URL says so: CI runs it both ways), Redis and S3.

A meeting is recorded through gunicorn over HTTP, from start to a downloaded WebM. The processes use a
Redis database of their own, so no worker of the test session takes their jobs.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from app.config import Config
from app.media.probe import probe
from app.services.pipeline import segments
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EBML_MAGIC = b"\x1a\x45\xdf\xa3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_db(url: str, db: int) -> str:
    return f"{url.rpartition('/')[0]}/{db}"


class Roles:
    """`meetrec <role>` processes with one environment, each logging to `<log_dir>/<name>.log`."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env = env
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=self.env, capture_output=True,
            text=True, timeout=timeout,
        )  # fmt: skip

    def start(self, name: str, *args: str) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.procs[name] = proc
        return proc

    def log_lines(self, name: str) -> list[dict]:
        """The JSON lines of a process's log (anything else, e.g. ffmpeg's own output, is skipped)."""
        lines = []
        for raw in (self.log_dir / f"{name}.log").read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    pass
        return lines

    def stop(self, name: str, timeout: float = 60) -> int:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


def role_env(config: Config, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(config.child_env())
    env.update({"MEETREC_LOG_FORMAT": "json", "MEETREC_API_WORKERS": "2", "MEETREC_API_THREADS": "4"})
    env.update(overrides)
    return env


@pytest.fixture(scope="module")
def stack(config, rt, tmp_path_factory):  # type: ignore[no-untyped-def]
    """migrate, then api + capture worker + media worker + scheduler, each its own process."""
    base = tmp_path_factory.mktemp("production")
    port, api_key = free_port(), "mr_prod_" + secrets.token_hex(16)
    prod = Config.from_env(
        {
            **config.child_env(),
            "REDIS_URL": redis_db(config.redis_url, 4),
            "MEETREC_DATA_DIR": str(base / "data"),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "MEETREC_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "MEETREC_API_KEY": api_key,
        }
    )
    roles = Roles(role_env(prod), base)
    migrated = roles.run("migrate")
    from app.runtime import Runtime

    prod_rt = Runtime(prod)
    prod_rt.redis.flushdb()
    roles.start("api", "api")
    roles.start("capture", "worker", "capture")
    roles.start("media", "worker", "media", "webhooks", "default")
    roles.start("scheduler", "scheduler")
    api = f"http://127.0.0.1:{port}"
    wait_for(lambda: _get(api + "/readyz") == 200, timeout=60)
    yield {"roles": roles, "api": api, "key": api_key, "migrated": migrated, "rt": prod_rt}
    roles.stop_all()
    prod_rt.redis.flushdb()


def _get(url: str) -> int | None:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return None


@pytest.fixture(scope="module")
def recorded(stack, rt):  # type: ignore[no-untyped-def]
    """A meeting recorded through gunicorn: start, a few segments, stop, finished; the states seen."""
    api, headers = stack["api"], {"Authorization": stack["key"]}
    room = requests.post(
        f"{api}/rooms",
        data={"id": "prod-room", "user[name]": "Ops", "options[media_source]": "synthetic://meeting"},
        headers=headers,
        timeout=10,
    )
    assert room.status_code == 201, room.text
    access_key = room.json()["access_key"]
    start = requests.post(f"{api}/rooms/{access_key}/recording", timeout=10)
    assert start.status_code == 201, start.text
    rec_id = requests.get(f"{api}/rooms/prod-room/recordings", headers=headers, timeout=10).json()[0]["id"]
    wait_for(lambda: len(segments.for_recording(rt, rec_id)) >= 2, timeout=60)
    stop = requests.delete(f"{api}/rooms/{access_key}/recording", timeout=10)

    def final() -> dict | None:
        body = requests.get(f"{api}/recordings/{rec_id}", headers=headers, timeout=10).json()
        return body if body["state"] in ("finished", "failed") else None

    return {"start": start, "stop": stop, "final": wait_for(final, timeout=120), "id": rec_id}


def test_migrate_role_exits_zero(stack):
    assert stack["migrated"].returncode == 0, stack["migrated"].stderr


def test_api_runs_under_gunicorn_with_two_workers(stack):
    pid = stack["roles"].procs["api"].pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 2


def test_recording_started_and_stopped_over_http(recorded):
    assert recorded["start"].status_code == 201
    assert recorded["stop"].status_code == 200


def test_recording_finished_with_a_download_link(recorded):
    final = recorded["final"]
    assert final["state"] == "finished", final.get("error")
    assert final["links"]["download"] and final["duration"] > 0


def test_download_link_serves_a_webm(recorded, tmp_path):
    resp = requests.get(recorded["final"]["links"]["download"], timeout=30)
    assert resp.status_code == 200 and resp.content[:4] == EBML_MAGIC
    (tmp_path / "meeting.webm").write_bytes(resp.content)
    info = probe(tmp_path / "meeting.webm")
    assert "webm" in info.format_name and info.has_video and info.has_audio


def test_worker_log_lines_carry_job_and_recording_ids(stack, recorded):
    lines = stack["roles"].log_lines("capture")
    mine = [line for line in lines if line.get("recording_id") == recorded["id"]]
    assert mine and all(line["job_id"].startswith("capture-") for line in mine)


def test_api_log_lines_carry_request_ids(stack, recorded):
    lines = [line for line in stack["roles"].log_lines("api") if line.get("logger") == "meetrec.access"]
    assert lines and all(len(line["request_id"]) == 32 for line in lines)


def test_api_echoes_the_request_id(stack):
    resp = requests.get(stack["api"] + "/healthz", headers={"X-Request-Id": "prod-check-1"}, timeout=5)
    assert resp.headers["X-Request-Id"] == "prod-check-1"


@pytest.mark.parametrize("role", ["api", "worker", "scheduler"])
def test_container_healthcheck_passes_for_each_role(stack, recorded, role):
    wait_for(lambda: stack["roles"].run("health", role, timeout=30).returncode == 0, timeout=45)


def test_metrics_sum_requests_served_by_every_gunicorn_worker(stack):
    api = stack["api"]
    for _ in range(20):  # a new connection each: gunicorn spreads them over its workers
        assert requests.get(api + "/openapi.json", timeout=5, headers={"Connection": "close"}).ok
    text = requests.get(api + "/metrics", timeout=10).text
    count = 'meetrec_http_request_duration_seconds_count{endpoint="/openapi.json",method="GET",status="200"}'
    assert f"{count} 20.0" in text


def test_metrics_count_the_finished_recording(stack, recorded):
    text = requests.get(stack["api"] + "/metrics", timeout=10).text
    finished = [line for line in text.splitlines() if line.startswith('meetrec_recordings{state="finished"}')]
    assert finished and float(finished[0].split()[-1]) >= 1


def test_api_does_not_migrate_an_empty_database(config, tmp_path):
    """Only `meetrec migrate` migrates: an api started on an empty database serves, and leaves it empty."""
    port = free_port()
    empty = Config.from_env(
        {**config.child_env(), "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}", "PORT": str(port),
         "HOST": "127.0.0.1", "REDIS_URL": redis_db(config.redis_url, 6)}
    )  # fmt: skip
    roles = Roles(role_env(empty, MEETREC_API_WORKERS="1"), tmp_path)
    roles.start("api", "api")
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, timeout=60)
        assert _get(f"http://127.0.0.1:{port}/readyz") == 200
    finally:
        roles.stop_all()
    from sqlalchemy import create_engine, inspect

    engine = create_engine(empty.database_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_api_drains_a_request_in_flight_on_sigterm(config, rt, tmp_path, project_key):
    """SIGTERM while a request's body is still arriving: that request is answered, then gunicorn exits 0."""
    port = free_port()
    live = Config.from_env({**config.child_env(), "PORT": str(port), "HOST": "127.0.0.1"})
    roles = Roles(role_env(live, MEETREC_API_WORKERS="1"), tmp_path)
    api = roles.start("api", "api")
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, timeout=60)
        body = b"id=drain-room&user%5Bname%5D=Jane"
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        head = (
            f"POST /rooms HTTP/1.1\r\nHost: x\r\nAuthorization: {project_key}\r\nConnection: close\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:10])
        time.sleep(0.5)  # the worker has taken the connection and waits for the rest of the body
        api.send_signal(signal.SIGTERM)
        wait_for(lambda: "Handling signal: term" in (tmp_path / "api.log").read_text(), timeout=10)
        sock.sendall(body[10:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        sock.close()
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        assert api.wait(30) == 0
    finally:
        roles.stop_all()
