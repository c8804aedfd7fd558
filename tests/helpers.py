"""Small helpers shared by tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from app.asgi import create_asgi
from app.embedded.servers import WeedPorts


def wait_for(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


def join_room(client, auth: dict, room_id: str = "room-1", **extra: Any) -> dict:  # type: ignore[no-untyped-def]
    """POST /rooms with Rails-style form fields; returns the JSON answer (asserting 201)."""
    form = {"id": room_id, "user[name]": "Jane Doe", **extra}
    resp = client.post("/rooms", data=form, headers=auth)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def capturing(rt, client, auth: dict, name: str) -> str:  # type: ignore[no-untyped-def]
    """A started recording of a new room `name` that poses as a pull capture's (a synthetic source),
    with no capture job: the test stores its segments as a capture would (`segments.record_captured`
    under the recording's lease). Its id."""
    from sqlalchemy import update

    from app.models import Recording

    room = join_room(client, auth, name, **{"options[media_source]": "push"})
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    recording_id = client.get(f"/rooms/{name}/recordings", headers=auth).get_json()[0]["id"]
    with rt.db.transaction() as s:
        s.execute(
            update(Recording)
            .where(Recording.id == recording_id)
            .values(ingest="pull", media_source="synthetic://meeting")
        )
    return recording_id


def capture_stopped(rt, recording_id: str, duration: float) -> None:  # type: ignore[no-untyped-def]
    """Move a `capturing` recording to `stopped` as its capture's end does, `duration` seconds long; no
    finalize job is enqueued."""
    from sqlalchemy import update

    from app.models import Recording, RecordingState

    with rt.db.transaction() as s:
        s.execute(
            update(Recording)
            .where(Recording.id == recording_id)
            .values(state=RecordingState.STOPPED.value, duration=duration, stopped_at=rt.now())
        )


def add_recording(rt, project_id: str, membership=None, *, age_days: float = 0, **values: Any) -> str:  # type: ignore[no-untyped-def]
    """A recording row written directly in SQL (finished, 10 s, 1000 bytes unless `values` say
    otherwise), `age_days` old, in `membership`'s room when given; returns its id."""
    from datetime import timedelta

    from app.models import Recording, utcnow
    from app.services.ids import new_id

    fields: dict[str, Any] = {
        "id": new_id(),
        "state": "finished",
        "duration": 10.0,
        "size": 1000,
        "sha256": "ab" * 32,
        "media_source": "synthetic://meeting",
        # Pushed: no capture job is ever started for a row made here, so a `started` one does not look
        # like a lost capture the reconciler must resume (it would hold a capture worker for minutes).
        "ingest": "push",
        "created_at": utcnow() - timedelta(days=age_days),
        **values,
    }
    if membership is not None:
        fields.update(room_id=membership.room.id, participant_id=membership.participant.id)
    with rt.db.transaction() as s:
        s.add(Recording(project_id=project_id, **fields))
    return fields["id"]


def make_recording(  # type: ignore[no-untyped-def]
    rt, project_id: str, age_days: float = 0, state: str = "finished", objects: int = 1
) -> str:
    """A recording row (see `add_recording`) with `objects` stored objects, the first one its final
    file; returns its id."""
    from app.services.core import recordings
    from app.services.ids import new_id

    rec_id = new_id()
    prefix = recordings.object_prefix(rec_id)
    key = f"{prefix}recording.webm"
    for i in range(objects):
        rt.storage.put_bytes(key if i == 0 else f"{prefix}segments/seg-{i:06d}.mkv", b"webm", "video/webm")
    finished = state == "finished"
    return add_recording(
        rt,
        project_id,
        age_days=age_days,
        id=rec_id,
        state=state,
        object_key=key if finished else None,
        size=4,
        duration=None,
        sha256=None,
    )


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (racy by nature)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_weed_ports() -> WeedPorts:
    """Eight distinct ports that are free right now, for an embedded S3 server beside others."""
    sockets = [socket.socket() for _ in range(8)]
    try:
        for s in sockets:  # held open together so the kernel hands out eight different ports
            s.bind(("127.0.0.1", 0))
        return WeedPorts(*(s.getsockname()[1] for s in sockets))
    finally:
        for s in sockets:
            s.close()


@contextmanager
def runtime_on_redis_db(rt, db: int) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """A runtime like `rt` on Redis database `db`, emptied before and after (no worker consumes its
    queues, so what a test enqueues there stays put)."""
    from dataclasses import replace

    from app.runtime import Runtime

    base, _, _ = rt.config.redis_url.rpartition("/")
    other = Runtime(replace(rt.config, redis_url=f"{base}/{db}"))
    other.redis.flushdb()
    try:
        yield other
    finally:
        other.redis.flushdb()


class Server:
    """The ASGI app on uvicorn in a background thread, on one loopback port across `stop` and `start`
    (a client sees the server go away and come back at the same address)."""

    def __init__(self, app, port: int | None = None):  # type: ignore[no-untyped-def]
        self.app, self.port = app, port or free_port()
        self.urls = {"ws": f"ws://127.0.0.1:{self.port}", "http": f"http://127.0.0.1:{self.port}"}
        self.uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve (a fresh ASGI app: the last one's thread pools closed with its lifespan)."""
        config = uvicorn.Config(
            create_asgi(self.app, 4), host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        srv = self.uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(target=srv.run, daemon=True)
        self._thread.start()
        wait_for(lambda: srv.started, timeout=15, interval=0.05)

    def stop(self) -> None:
        """Shut down as uvicorn does on SIGTERM: open sockets are closed (1012), the port is released."""
        if self.uvicorn is not None and self._thread is not None:
            self.uvicorn.should_exit = True
            self._thread.join(15)
        self.uvicorn = self._thread = None


@contextmanager
def restartable_serving(app) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """A started `Server` that the block may stop and start again; stopped when the block ends."""
    server = Server(app)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def serving(app) -> Iterator[tuple[uvicorn.Server, dict[str, str]]]:  # type: ignore[no-untyped-def]
    """The ASGI app on uvicorn in a background thread, on a free loopback port, until the block ends."""
    with restartable_serving(app) as server:
        assert server.uvicorn is not None
        yield server.uvicorn, server.urls


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium (`tests.rrweb_pages.launch`) under Playwright until the block ends."""
    from playwright.sync_api import sync_playwright

    from tests.rrweb_pages import launch

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()
