"""Structured logs: JSON lines carrying the request id, job id and recording id; X-Request-Id echoed; an idle
stack quiet at INFO; one line per state change, failure and restart."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest

from app import migrate
from app.embedded.supervisor import ChildSpec, Supervisor
from app.factory import create_app
from app.observability import logs
from app.observability.requests import request_id_from
from app.runtime import Runtime
from app.services.core import lifecycle
from tests.helpers import join_room, wait_for
from workers.scheduler import TIMETABLE, tick

CONTEXT_FIELDS = ("request_id", "job_id", "recording_id")


def record(msg: str = "hello", **extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord({"name": "meetrec.test", "levelname": "INFO", "levelno": 20, "msg": msg})
    rec.__dict__.update(extra)
    return rec


@pytest.fixture
def json_lines():  # type: ignore[no-untyped-def]
    """Capture what the named logger writes through the JSON formatter; call it to get the parsed lines."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.JsonFormatter())
    attached: list[logging.Logger] = []

    def lines(*names: str) -> list[dict]:
        for name in names:
            logger = logging.getLogger(name)
            if logger not in attached:
                logger.addHandler(handler)
                logger.setLevel(logging.DEBUG)
                attached.append(logger)
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield lines
    for logger in attached:
        logger.removeHandler(handler)


def test_json_line_has_time_level_logger_and_message():
    line = json.loads(logs.JsonFormatter().format(record("a %s", args=("b",))))
    assert (line["level"], line["logger"], line["msg"]) == ("INFO", "meetrec.test", "a b")
    assert line["ts"].endswith("+00:00")


def test_json_line_carries_the_bound_ids():
    with logs.context(request_id="r1", job_id="j1", recording_id="rec1"):
        line = json.loads(logs.JsonFormatter().format(record()))
    assert {k: line[k] for k in CONTEXT_FIELDS} == {
        "request_id": "r1",
        "job_id": "j1",
        "recording_id": "rec1",
    }


def test_ids_are_unbound_after_the_block():
    with logs.context(job_id="j1"):
        pass
    assert "job_id" not in json.loads(logs.JsonFormatter().format(record()))


def test_json_line_keeps_extra_fields_and_the_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record(status=503, exc_info=sys.exc_info())
    line = json.loads(logs.JsonFormatter().format(rec))
    assert line["status"] == 503
    assert "ValueError: boom" in line["exc"]


@pytest.mark.parametrize(
    "created",
    [0.0, 1.0, 1.0004, 1.0005, 1.9994999, 1.9995, 1.9999994, 1.9999995, 1.99999951, -0.25, -1.0000004]
    + [1_700_000_000 + n / 7 for n in range(30)]
    + [1_700_000_059.9999996, 1_700_000_060.0000004, 4_102_444_799.999, 1_733_270_400.5],
)
def test_json_timestamp_is_datetimes(created):
    """`JsonFormatter.timestamp` formats each second once and must agree with datetime to the millisecond,
    its rounding to microseconds included, whichever second it formatted last."""
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    formatter = logs.JsonFormatter()
    assert formatter.timestamp(created) == expected  # a second not formatted yet
    assert formatter.timestamp(created) == expected  # the cached one
    assert formatter.timestamp(math.floor(created) + 0.5) and formatter.timestamp(created) == expected


def test_json_line_keeps_the_field_order():
    with logs.context(request_id="r1"):
        line = logs.JsonFormatter().format(record("m", b=1, a=2, _private=3))
    assert list(json.loads(line)) == ["ts", "level", "logger", "msg", "request_id", "b", "a"]


def test_json_line_turns_what_json_cannot_hold_into_text():
    line = json.loads(logs.JsonFormatter().format(record(when=datetime(2024, 1, 2, tzinfo=UTC), n=1.5)))
    assert (line["when"], line["n"]) == ("2024-01-02 00:00:00+00:00", 1.5)


def test_bind_request_binds_as_bind_does():
    with logs.context(job_id="j1", recording_id="old"):
        for recording_id in ("rec1", None, "", 42):
            token = logs.bind_request("r1", recording_id)
            fast = logs.current()
            logs.unbind(token)
            token = logs.bind(request_id="r1", recording_id=recording_id)  # type: ignore[arg-type]
            assert logs.current() == fast and list(logs.current()) == list(fast)
            logs.unbind(token)


def test_text_format_appends_the_ids():
    with logs.context(request_id="r1"):
        assert logs.TextFormatter().format(record()).endswith("hello [request_id=r1]")


@pytest.mark.parametrize("fmt, formatter", [("json", "JsonFormatter"), ("text", "TextFormatter")])
def test_dict_config_chooses_the_formatter(fmt, formatter):
    assert logs.dict_config(fmt)["formatters"]["meetrec"]["()"].endswith(formatter)


def test_auto_format_is_json_off_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert logs.resolve_format("auto") == "json"


@pytest.mark.parametrize("incoming", ["abc-123", "0f8e2c1a9b7d4e6f", "trace.id:42/b=c"])
def test_a_sane_request_id_is_kept(incoming):
    assert request_id_from(incoming) == incoming


@pytest.mark.parametrize("incoming", [None, "", "has space", "x" * 129, "<script>", "-leading-dash", "é"])
def test_an_absent_or_insane_request_id_is_replaced(incoming):
    generated = request_id_from(incoming)
    assert generated != incoming and len(generated) == 32


def test_response_echoes_the_callers_request_id(client):
    assert client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"


def test_response_carries_a_generated_request_id(client):
    resp = client.get("/healthz", headers={"X-Request-Id": "bad id"})
    assert resp.headers["X-Request-Id"] != "bad id" and len(resp.headers["X-Request-Id"]) == 32


def test_errors_carry_a_request_id_too(client):
    assert client.get("/no/such/path").headers["X-Request-Id"]


def test_access_line_names_the_route_and_request_id(client, auth, json_lines):
    json_lines("meetrec.access")
    client.get("/recordings/nosuchrecording", headers={**auth, "X-Request-Id": "req-1"})
    line = json_lines()[-1]
    assert line["route"] == "/recordings/<recording_id>" and line["status"] == 404
    assert (line["request_id"], line["recording_id"]) == ("req-1", "nosuchrecording")


def test_access_line_never_holds_a_room_access_key(client, json_lines):
    json_lines("meetrec.access")
    client.get("/rooms/secret-access-key-123")
    assert "secret-access-key-123" not in json.dumps(json_lines()[-1])


def test_access_line_has_its_fields_in_order_and_goes_through_the_handlers(client, auth, json_lines, caplog):
    json_lines("meetrec.access")
    caplog.set_level(logging.INFO, logger="meetrec.access")
    client.get("/recordings/nosuchrecording", headers={**auth, "X-Request-Id": "req-2"})
    line = json_lines()[-1]
    assert list(line) == [
        "ts", "level", "logger", "msg", "request_id", "recording_id",
        "method", "route", "ids", "status", "duration_ms", "remote_addr",
    ]  # fmt: skip
    assert (line["level"], line["logger"], line["msg"]) == ("INFO", "meetrec.access", line["msg"])
    assert line["msg"] == "GET /recordings/<recording_id> 404" and line["ids"] == {
        "recording_id": "nosuchrecording"
    }
    [rec] = [r for r in caplog.records if r.name == "meetrec.access"]
    assert (rec.levelname, rec.getMessage(), rec.status) == ("INFO", line["msg"], 404)  # type: ignore[attr-defined]


def test_access_line_of_a_probe_is_debug(client, json_lines):
    json_lines("meetrec.access")
    client.get("/healthz")
    line = json_lines()[-1]
    assert (line["level"], line["route"], line["ids"]) == ("DEBUG", "/healthz", {})


def test_no_access_line_when_its_level_is_off(client, caplog):
    caplog.set_level(logging.WARNING, logger="meetrec.access")
    resp = client.get("/recordings/nosuchrecording")
    assert resp.headers["X-Request-Id"] and not [r for r in caplog.records if r.name == "meetrec.access"]


def test_lines_logged_while_handling_a_request_carry_its_id(rt, json_lines):
    app = create_app(runtime=rt)
    app.add_url_rule("/_log", "log", lambda: logging.getLogger("meetrec.view").warning("inside") or "ok")
    json_lines("meetrec.view")
    app.test_client().get("/_log", headers={"X-Request-Id": "req-inside"})
    assert json_lines()[-1]["request_id"] == "req-inside"


# An idle stack is quiet: what ticks is DEBUG; a state change, a failure, a restart is one line.


def library_record(name: str, msg: str, *args: object, level: int = logging.INFO) -> logging.LogRecord:
    """A record as the library logging under `name` makes it (the template is what `Routine` reads)."""
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


ROUTINE = {
    "apscheduler-run": ("apscheduler.executors.default", 'Running job "%s" (scheduled at %s)', "tick", "now"),
    "apscheduler-done": ("apscheduler.executors.default", 'Job "%s" executed successfully', "tick"),
    "apscheduler-added": ("apscheduler.scheduler", 'Added job "%s" to job store "%s"', "tick", "default"),
    "rq-dequeued": ("rq.worker", "Worker %s: %s: %s (%s)", "w1", "default", "reconcile()", "reconcile-1"),
    "rq-result": ("rq.worker", "Worker %s: job %s result is kept for %s seconds", "w1", "reconcile-1", 60),
    "rq-registries": ("rq.worker", "Worker %s: cleaning registries for queue: %s", "w1", "default"),
    "rq-scheduler": ("rq.scheduler", "Acquired scheduler lock for %s", "default"),
    "job-start": ("meetrec.worker", "job %s (%s) starting on %s", "reconcile-1", "reconcile", "default"),
    "gunicorn-boot": ("gunicorn.error", "Booting worker with pid: %s", 42),
}


@pytest.mark.parametrize("line", ROUTINE.values(), ids=ROUTINE.keys())
def test_routine_lines_are_debug_and_hidden_at_info(line):
    rec = library_record(*line)
    assert logs.Routine("INFO").filter(rec) is False
    assert rec.levelname == "DEBUG"


@pytest.mark.parametrize("line", ROUTINE.values(), ids=ROUTINE.keys())
def test_routine_lines_show_at_debug(line):
    assert logs.Routine("DEBUG").filter(library_record(*line)) is True


@pytest.mark.parametrize(
    "record",
    [
        library_record("rq.worker", "Worker %s: started with PID %d, version %s", "w1", 7, "3.0.0"),
        library_record("gunicorn.error", "Listening at: %s (%s)", "http://127.0.0.1:8080", 7),
        library_record("gunicorn.error", "Handling signal: %s", "term"),
        library_record("rq.worker", "Worker %s: moving job %s to failed", "w1", "j", level=logging.WARNING),
        library_record(
            "apscheduler.scheduler", "Run time of job %s was missed", "tick", level=logging.WARNING
        ),
        library_record("meetrec.recordings", "%s", "recording r1 finished (project p1, 10.0 s)"),
    ],
    ids=["worker-start", "api-start", "api-stop", "rq-warning", "apscheduler-warning", "state-change"],
)
def test_starts_warnings_and_domain_lines_keep_their_level(record):
    level = record.levelname
    assert logs.Routine("INFO").filter(record) is True
    assert record.levelname == level


def test_the_threshold_holds_for_loggers_that_set_their_own_level():
    """RQ sets its logger to INFO whatever the process asked for: the handler's filter still decides."""
    rec = library_record("rq.worker", "Worker %s: started with PID %d, version %s", "w1", 7, "3.0.0")
    assert logs.Routine("WARNING").filter(rec) is False


def test_dict_config_filters_the_handler():
    config = logs.dict_config("json", "warning")
    assert config["filters"]["routine"] == {"()": "app.observability.logs.Routine", "level": "WARNING"}
    assert config["handlers"]["stderr"]["filters"] == ["routine"]


@pytest.fixture(scope="module")
def idle_config(config, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The suite's services, with a database and a Redis db of its own holding nothing in flight."""
    base = tmp_path_factory.mktemp("idle")
    redis_base, _, _ = config.redis_url.rpartition("/")
    idle = dataclasses.replace(
        config, database_url=f"sqlite:///{base / 'idle.db'}", redis_url=f"{redis_base}/11", data_dir=base
    )
    migrate.upgrade(idle.database_url)
    Runtime(idle).redis.flushdb()
    return idle


def test_an_idle_worker_running_every_periodic_job_logs_nothing_at_info(idle_config):
    rt = Runtime(idle_config)
    for entry in TIMETABLE:
        assert tick(rt, entry)
    env = {**os.environ, **idle_config.child_env(), "MEETREC_LOG_FORMAT": "json", "MEETREC_LOG_LEVEL": "INFO"}
    queues = sorted({entry.spec.queue for entry in TIMETABLE})
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", "--burst", *queues],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["msg"] for line in lines if "started with PID" not in line["msg"]] == []
    assert not rt.jobs.queue("default").count and not rt.jobs.queue("webhooks").count  # they all ran


@pytest.fixture
def changes(caplog):  # type: ignore[no-untyped-def]
    """The recording state changes logged (as (level, message) pairs) since the last call."""
    caplog.set_level(logging.INFO, logger="meetrec.recordings")

    def logged() -> list[tuple[str, str]]:
        found = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "meetrec.recordings"]
        caplog.clear()
        return found

    return logged


def test_each_state_change_is_one_line_naming_the_recording(client, auth, changes):
    sid = client.post("/recordings", json={"description": "logs"}, headers=auth).get_json()["session_id"]
    [(level, line)] = changes()
    assert level == "INFO" and line.startswith(f"recording {sid} started (project ") and "events only" in line
    client.post(f"/recordings/{sid}/stop", headers=auth)
    assert [(level, line.split(" (")[0]) for level, line in changes()] == [
        ("INFO", f"recording {sid} stopped"),
        ("INFO", f"recording {sid} finished"),
    ]
    client.post(f"/recordings/{sid}/stop", headers=auth)  # a no-op changes nothing, logs nothing
    assert changes() == []


def test_a_room_recording_names_its_room(client, auth, changes):
    room = join_room(client, auth, "logged-room", **{"options[media_source]": "push"})
    changes()
    client.post(f"/rooms/{room['access_key']}/recording")
    [(_, line)] = changes()
    client.delete(f"/rooms/{room['access_key']}/recording")
    assert "room logged-room, project " in line and "push media" in line


def test_a_failure_is_one_warning_saying_why(client, auth, changes):
    body = {"media_source": "push"}
    sid = client.post("/recordings", json=body, headers=auth).get_json()["session_id"]
    changes()
    client.post(f"/recordings/{sid}/stop", headers=auth)  # nothing was pushed: it fails
    [(level, line)] = changes()
    assert level == "WARNING" and line.startswith(f"recording {sid} failed (") and "no media" in line


def test_a_change_rolled_back_is_not_logged(rt, client, auth, changes):
    sid = client.post("/recordings", json={}, headers=auth).get_json()["session_id"]
    changes()
    with pytest.raises(RuntimeError), rt.db.transaction() as s:
        assert lifecycle.apply(rt, s, lifecycle.STOP, [sid]) == [sid]
        raise RuntimeError("rolled back")
    assert changes() == []


def test_a_restart_is_one_warning(caplog):
    caplog.set_level(logging.DEBUG, logger="app.embedded.supervisor")
    flaky = ChildSpec("flaky", [sys.executable, "-c", "import time; time.sleep(0.2)"])
    supervisor = Supervisor([flaky], backoff_initial=0.05, poll_interval=0.02)
    supervisor.start()
    runner = threading.Thread(target=supervisor.run)
    runner.start()
    try:
        wait_for(lambda: sum("started flaky" in r.getMessage() for r in caplog.records) >= 3, timeout=10)
    finally:
        supervisor.request_stop()
        runner.join()
    shown = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno > logging.DEBUG]
    starts = [line for line in shown if line[1].startswith("started flaky")]
    restarts = [line for line in shown if "restarting in" in line[1]]
    assert [level for level, _ in starts] == ["INFO"]  # the first start; a restart's start is a detail
    assert len(restarts) >= 2 and all(level == "WARNING" for level, _ in restarts)
    assert restarts[0][1].startswith("child flaky exited with ")
