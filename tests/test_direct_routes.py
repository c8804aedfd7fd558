"""Direct routes (app.api.direct): the recording calls a meeting app makes most are answered by the ASGI
app without Flask, and answer exactly as Flask answers the same call, errors included. Every test
serves the real ASGI app on uvicorn and compares with the Flask app's own answer to the same request."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import pytest
from flask import request_started

from app.api import direct
from app.factory import create_app
from app.observability import logs
from app.runtime import Runtime
from app.services.access import keys
from tests.helpers import free_port, join_room, make_recording, serving

SYNTHETIC = {"options[media_source]": "synthetic://meeting"}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class Served:
    """The app served on a loopback port, counting the requests that went through Flask."""

    def __init__(self, url: str):
        self.port = urlsplit(url).port
        self.through_flask = 0

    def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()


@contextmanager
def served_app(app) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    with serving(app) as (_server, urls):
        served = Served(urls["http"])

        def seen(_sender, **_extra) -> None:  # type: ignore[no-untyped-def]
            served.through_flask += 1

        request_started.connect(seen, app)
        try:
            yield served
        finally:
            request_started.disconnect(seen, app)


@pytest.fixture(scope="module")
def served(app) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    with served_app(app) as s:
        yield s


def flask_answer(client, method: str, path: str, headers: dict[str, str] | None = None) -> Answer:  # type: ignore[no-untyped-def]
    resp = client.open(path, method=method, headers=headers or {})
    return Answer(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.get_data())


def assert_same(ours: Answer, flasks: Answer) -> None:
    """Status, body and the headers a client reads are the same as Flask's."""
    assert (ours.status, ours.body) == (flasks.status, flasks.body)
    for name in ("content-type", "content-length", "location", "retry-after"):
        assert ours.headers.get(name) == flasks.headers.get(name), name
    assert ours.headers["x-request-id"]


@pytest.fixture
def room(client, auth) -> dict:  # type: ignore[no-untyped-def]
    return join_room(client, auth, "direct-room", **SYNTHETIC)


# --- which calls go direct ------------------------------------------------------------------------


def test_every_direct_route_is_a_documented_flask_rule_with_the_same_method(app):
    served_by_flask = {(rule.rule, method) for rule in app.url_map.iter_rules() for method in rule.methods}
    for method, routes in direct.routes().by_method.items():
        for route in routes:
            assert (route.rule, method) in served_by_flask


def test_a_recordings_read_does_not_go_through_flask(served, rt, auth, project_key):
    rec_id = make_recording(rt, keys.authenticate(rt, project_key).project_id, state="started", objects=0)
    before = served.through_flask
    assert served.call("GET", f"/recordings/{rec_id}", auth).status == 200
    assert served.through_flask == before


def test_a_start_with_a_body_goes_through_flask_and_is_answered_as_before(served, room):
    before = served.through_flask
    path = f"/rooms/{room['access_key']}/recording"
    answer = served.call("POST", path, {"Content-Type": "application/json"}, b"{}")
    assert answer.status == 201 and answer.headers["location"]
    assert served.through_flask == before + 1
    assert served.call("DELETE", path).status == 200


def test_a_start_with_query_parameters_goes_through_flask(served, room):
    before = served.through_flask
    answer = served.call("POST", f"/rooms/{room['access_key']}/recording?media_source=file:///etc/passwd")
    # Flask read the parameter and refused it (a media source of the caller's choice needs a key).
    assert answer.status == 403 and answer.json()["errors"] == {
        "media_source": ["not the room's media source"]
    }
    assert served.through_flask == before + 1


def test_a_head_request_goes_through_flask(served, rt, auth, project_key):
    rec_id = make_recording(rt, keys.authenticate(rt, project_key).project_id, state="started", objects=0)
    before = served.through_flask
    assert served.call("HEAD", f"/recordings/{rec_id}", auth).status == 200
    assert served.through_flask == before + 1


# --- reads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["started", "finished"])
def test_a_recordings_read_answers_as_flask_does(served, client, rt, auth, project_key, state):
    rec_id = make_recording(rt, keys.authenticate(rt, project_key).project_id, state=state, objects=1)
    ours = served.call("GET", f"/recordings/{rec_id}", auth)
    # Both reads fall in one link reuse window: the same download link is handed out.
    assert_same(ours, flask_answer(client, "GET", f"/recordings/{rec_id}", auth))
    assert (ours.json()["links"]["download"] is None) == (state == "started")


def test_a_session_with_more_events_than_one_body_holds_is_streamed_as_flask_streams_it(served, client, auth):
    sid = client.post("/recordings", json={"description": "long"}, headers=auth).get_json()["session_id"]
    events = [
        {"type": "key", "timestamp": 1_700_000_000 + i / 10, "id": f"e{i}", "key_data": {"key": "a"}}
        for i in range(1200)
    ]
    for batch in (events[:400], events[400:800], events[800:]):
        assert client.post(f"/recordings/{sid}/events", json=batch, headers=auth).status_code in (200, 201)
    ours = served.call("GET", f"/recordings/{sid}", auth)
    assert "content-length" not in ours.headers  # streamed, chunk by chunk
    assert_same(ours, flask_answer(client, "GET", f"/recordings/{sid}", auth))
    assert [e["id"] for e in ours.json()["events"]] == [f"e{i}" for i in range(1200)]


@pytest.mark.parametrize(
    "who", ["no key", "unknown key", "key without recording:read", "another project's key", "unknown id"]
)
def test_a_refused_read_answers_as_flask_does(served, client, rt, project_key, other_project_key, who):
    project_id = keys.authenticate(rt, project_key).project_id
    rec_id = make_recording(rt, project_id, state="started", objects=0)
    ingest_only = keys.create_key(rt, project_id, scopes=("ingest",))[1]
    headers = {
        "no key": {},
        "unknown key": {"Authorization": "Bearer nope"},
        "key without recording:read": {"Authorization": ingest_only},
        "another project's key": {"Authorization": other_project_key},
        "unknown id": {"Authorization": project_key},
    }[who]
    path = f"/recordings/{'f' * 24 if who == 'unknown id' else rec_id}"
    ours = served.call("GET", path, headers)
    assert ours.status in (401, 403, 404)
    assert_same(ours, flask_answer(client, "GET", path, headers))


# --- start and stop -------------------------------------------------------------------------------


def test_a_direct_start_and_stop_move_the_recording_as_flask_does(served, client, auth, room):
    path = f"/rooms/{room['access_key']}/recording"
    before = served.through_flask
    started = served.call("POST", path)
    assert started.status == 201
    assert served.through_flask == before
    rec_path = urlsplit(started.headers["location"]).path
    assert client.get(rec_path, headers=auth).get_json()["duration"] is None
    before = served.through_flask
    stopped = served.call("DELETE", path)
    assert served.through_flask == before
    assert stopped.status == 200 and stopped.headers["content-type"] == "application/json"
    assert stopped.json()["id"] == rec_path.rsplit("/", 1)[1]
    # The recording reads the same through Flask as the stop answered it.
    shown = client.get(rec_path, headers=auth).get_json()
    assert {k: shown[k] for k in ("id", "room", "user")} == {
        k: stopped.json()[k] for k in ("id", "room", "user")
    }


@pytest.mark.parametrize(
    "case", ["second start", "stop with nothing recording", "unknown access key", "shut down"]
)
def test_a_refused_start_or_stop_answers_as_flask_does(served, client, auth, case):
    room = join_room(client, auth, f"refused-{case.replace(' ', '-')}", **SYNTHETIC)
    path = f"/rooms/{room['access_key']}/recording"
    method = "DELETE" if case == "stop with nothing recording" else "POST"
    if case == "second start":
        assert client.post(path).status_code == 201
    if case == "unknown access key":
        path = "/rooms/ak_nosuchkey/recording"
    if case == "shut down":
        assert client.delete(f"/rooms/{room['room']['id']}", headers=auth).status_code == 204
    ours = served.call(method, path)
    assert ours.status in (404, 406, 410)
    assert_same(ours, flask_answer(client, method, path))


def test_a_start_while_the_job_queue_is_down_answers_503_as_flask_does(config, rt, auth, client):
    down = Runtime(replace(config, redis_url=f"redis://127.0.0.2:{free_port()}/0"))
    down.__dict__.update(db=rt.db, storage=rt.storage)
    app = create_app(runtime=down)
    rooms = [join_room(client, auth, f"no-queue-{i}", **SYNTHETIC) for i in range(2)]
    with served_app(app) as served_down:
        ours = served_down.call("POST", f"/rooms/{rooms[0]['access_key']}/recording")
    flasks = flask_answer(app.test_client(), "POST", f"/rooms/{rooms[1]['access_key']}/recording")
    assert ours.status == 503 and ours.json()["message"] == "the job queue is unavailable, try again"
    assert ours.headers["retry-after"] == "5"
    assert_same(ours, flasks)


# --- the request's traces -------------------------------------------------------------------------


@pytest.fixture
def json_access() -> Iterator[Callable[[], list[dict]]]:
    """The access lines written during the test as the JSON formatter writes them: in the thread that
    logs them, where the request's log context is bound."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("meetrec.access")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_direct_call_echoes_the_request_id_and_writes_flasks_access_line(
    served, rt, auth, project_key, json_access
):
    rec_id = make_recording(rt, keys.authenticate(rt, project_key).project_id, state="started", objects=0)
    answer = served.call("GET", f"/recordings/{rec_id}", {**auth, "X-Request-Id": "direct-1"})
    assert answer.headers["x-request-id"] == "direct-1"
    [line] = json_access()
    assert line["msg"] == "GET /recordings/<recording_id> 200"
    assert (line["request_id"], line["recording_id"]) == ("direct-1", rec_id)
    assert (line["ids"], line["remote_addr"]) == ({"recording_id": rec_id}, "127.0.0.1")


def test_a_direct_room_call_never_logs_its_access_key(served, room, json_access):
    path = f"/rooms/{room['access_key']}/recording"
    assert served.call("POST", path).status == 201
    assert served.call("DELETE", path).status == 200
    lines = json_access()
    assert [line["msg"] for line in lines] == [
        "POST /rooms/<access_key>/recording 201",
        "DELETE /rooms/<access_key>/recording 200",
    ]
    assert [line["ids"] for line in lines] == [{}, {}]
    assert room["access_key"] not in json.dumps(lines)


def test_a_direct_call_is_counted_in_the_request_latency_metric(served, room, client):
    def count() -> float:
        text = client.get("/metrics").get_data(as_text=True)
        for line in text.splitlines():
            if line.startswith("meetrec_http_request_duration_seconds_count") and 'method="POST"' in line:
                if "/rooms/<access_key>/recording" in line and 'status="201"' in line:
                    return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = count()
    path = f"/rooms/{room['access_key']}/recording"
    assert served.call("POST", path).status == 201
    assert count() == before + 1
    served.call("DELETE", path)


# --- on the event loop ----------------------------------------------------------------------------


@pytest.fixture
def answered_on() -> Iterator[list[str]]:
    """Where each direct call's access line was written, "loop" or "thread", in order: a direct route
    answers on the event loop (`Route.on_loop`) or on a pool thread, and logs its line where it answers."""
    where: list[str] = []

    class Where(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                asyncio.get_running_loop()
                where.append("loop")
            except RuntimeError:
                where.append("thread")

    handler = Where()
    logger = logging.getLogger("meetrec.access")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield where
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_started_recordings_read_is_answered_on_the_event_loop(
    served, client, rt, auth, project_key, answered_on
):
    rec_id = make_recording(rt, keys.authenticate(rt, project_key).project_id, state="started", objects=0)
    ours = served.call("GET", f"/recordings/{rec_id}", auth)
    assert answered_on == ["loop"]
    assert_same(ours, flask_answer(client, "GET", f"/recordings/{rec_id}", auth))


def test_a_finished_recordings_first_read_logs_its_link_on_a_thread_and_the_next_reads_are_on_the_loop(
    served, client, rt, auth, project_key, answered_on
):
    rec_id = make_recording(rt, keys.authenticate(rt, project_key).project_id, state="finished", objects=1)
    first = served.call("GET", f"/recordings/{rec_id}", auth)
    again = served.call("GET", f"/recordings/{rec_id}", auth)
    assert answered_on == ["thread", "loop"]
    assert first.body == again.body  # the same link, handed out again in its reuse window
    assert_same(again, flask_answer(client, "GET", f"/recordings/{rec_id}", auth))


def test_a_read_with_a_key_this_process_has_not_checked_yet_is_answered_on_a_thread(
    served, rt, auth, project_key, answered_on
):
    rec_id = make_recording(rt, keys.authenticate(rt, project_key).project_id, state="started", objects=0)
    keys.forget_cached()
    assert served.call("GET", f"/recordings/{rec_id}", auth).status == 200
    assert served.call("GET", f"/recordings/{rec_id}", auth).status == 200
    assert answered_on == ["thread", "loop"]  # the first checked the key in SQL, and this process holds it


def test_a_read_refused_for_its_keys_scope_on_the_loop_answers_as_flask_does(
    served, client, rt, project_key, answered_on
):
    project_id = keys.authenticate(rt, project_key).project_id
    rec_id = make_recording(rt, project_id, state="started", objects=0)
    ingest_only = {"Authorization": keys.create_key(rt, project_id, scopes=("ingest",))[1]}
    keys.authenticate(rt, ingest_only["Authorization"])
    ours = served.call("GET", f"/recordings/{rec_id}", ingest_only)
    assert answered_on == ["loop"] and ours.status == 403
    assert_same(ours, flask_answer(client, "GET", f"/recordings/{rec_id}", ingest_only))


def test_a_read_of_another_projects_recording_on_the_loop_is_404_as_flask_answers_it(
    served, client, rt, project_key, other_project_key, answered_on
):
    rec_id = make_recording(rt, keys.authenticate(rt, project_key).project_id, state="started", objects=0)
    foreign = {"Authorization": other_project_key}
    keys.authenticate(rt, other_project_key)
    ours = served.call("GET", f"/recordings/{rec_id}", foreign)
    assert answered_on == ["loop"] and ours.status == 404
    assert_same(ours, flask_answer(client, "GET", f"/recordings/{rec_id}", foreign))


def test_a_session_with_events_is_read_on_a_thread(served, client, rt, auth, project_key, answered_on):
    sid = client.post("/recordings", json={"description": "events"}, headers=auth).get_json()["session_id"]
    event = {"type": "key", "timestamp": 1_700_000_000, "id": "e0", "key_data": {"key": "a"}}
    assert client.post(f"/recordings/{sid}/events", json=[event], headers=auth).status_code in (200, 201)
    keys.authenticate(rt, project_key)
    answered_on.clear()  # the events' posts above
    ours = served.call("GET", f"/recordings/{sid}", auth)
    assert answered_on == ["thread"]
    assert [e["id"] for e in ours.json()["events"]] == ["e0"]


def test_a_read_whose_loop_connection_the_server_dropped_is_answered_on_a_thread(
    served, client, rt, auth, project_key, answered_on
):
    if rt.db.engine.dialect.name != "postgresql":
        pytest.skip("the loop's own connections are PostgreSQL's (SQLite is read inline)")
    rec_id = make_recording(rt, keys.authenticate(rt, project_key).project_id, state="started", objects=0)
    assert served.call("GET", f"/recordings/{rec_id}", auth).status == 200
    with rt.db.engine.connect() as other:
        for held in rt.db.on_loop._free:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({held.conn.info.backend_pid})")
    dropped = served.call("GET", f"/recordings/{rec_id}", auth)
    assert served.call("GET", f"/recordings/{rec_id}", auth).status == 200
    assert answered_on == ["loop", "thread", "loop"]  # the third on a new connection of the loop's
    assert_same(dropped, flask_answer(client, "GET", f"/recordings/{rec_id}", auth))
