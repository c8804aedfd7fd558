"""Structured logs: JSON lines carrying the request id, job id and recording id; X-Request-Id echoed."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from app.factory import create_app
from app.observability import logs
from app.observability.requests import request_id_from

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


def test_lines_logged_while_handling_a_request_carry_its_id(rt, json_lines):
    app = create_app(runtime=rt)
    app.add_url_rule("/_log", "log", lambda: logging.getLogger("meetrec.view").warning("inside") or "ok")
    json_lines("meetrec.view")
    app.test_client().get("/_log", headers={"X-Request-Id": "req-inside"})
    assert json_lines()[-1]["request_id"] == "req-inside"
