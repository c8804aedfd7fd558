"""Chunked request bodies (no Content-Length) on every route: taken whole, or refused whole with 413.

Over a real uvicorn server (the api process's stack: a2wsgi in front of Flask) and as a plain WSGI unit.
"""

from __future__ import annotations

import http.client
import io
import json

from app.api.chunked import DechunkedBodies
from tests.helpers import serving
from tests.test_sessions_api import click, start


def send_chunked(base: str, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.putrequest(method, path)
    for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
        conn.putheader(name, value)
    conn.endheaders()
    try:
        for i in range(0, len(body), 1 << 16):
            part = body[i : i + (1 << 16)]
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):  # answered before the body ended
        pass
    try:
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else {}
    finally:
        conn.close()


def events_body(count: int) -> bytes:
    return json.dumps([click(f"c{i}", ts=1_700_000_000 + i) for i in range(count)]).encode()


def test_a_chunked_event_batch_is_stored_whole(app, client, auth):
    session_id = start(client, auth)
    with serving(app) as (_, urls):
        headers = {**auth, "Content-Type": "application/json"}
        status, body = send_chunked(
            urls["http"], "POST", f"/recordings/{session_id}/events", headers, events_body(3)
        )
    assert status == 201, body
    assert body["stored"] == 3


def test_an_oversize_chunked_event_batch_is_413_and_stores_nothing(app, client, auth, rt):
    session_id = start(client, auth)
    oversize = b" " * rt.config.max_events_body_bytes + events_body(1)  # JSON whitespace, then one event
    with serving(app) as (_, urls):
        headers = {**auth, "Content-Type": "application/json"}
        status, body = send_chunked(
            urls["http"], "POST", f"/recordings/{session_id}/events", headers, oversize
        )
    assert status == 413, body
    assert client.get(f"/recordings/{session_id}", headers=auth).get_json()["event_count"] == 0


def wsgi_body(environ: dict) -> tuple[str | None, bytes, bool]:
    seen: dict = {}

    def app(env, start_response):  # type: ignore[no-untyped-def]
        seen.update(env)
        start_response("200 OK", [])
        return [b""]

    DechunkedBodies(app, largest_limit=10)(environ, lambda *_: None)
    return seen.get("CONTENT_LENGTH"), seen["wsgi.input"].read(), "HTTP_TRANSFER_ENCODING" in seen


def test_the_middleware_gives_a_chunked_body_its_length():
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"abc")}
    assert wsgi_body(environ) == ("3", b"abc", False)


def test_the_middleware_reads_one_byte_past_the_largest_limit_and_no_more():
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"x" * 100)}
    assert wsgi_body(environ)[:2] == ("11", b"x" * 11)


def test_a_content_length_beside_chunked_is_ignored():
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": "1", "wsgi.input": io.BytesIO(b"abcd")}
    assert wsgi_body(environ)[:2] == ("4", b"abcd")


def test_a_body_with_a_length_passes_untouched():
    stream = io.BytesIO(b"abcd")
    assert wsgi_body({"CONTENT_LENGTH": "4", "wsgi.input": stream}) == ("4", b"abcd", False)


def test_an_oversize_chunked_media_chunk_is_413_and_nothing_is_stored(app, client, auth, rt, pushed):
    oversize = b"x" * (rt.config.max_chunk_bytes + (4 << 20))  # past the chunk limit, within the largest
    with serving(app) as (_, urls):
        headers = {**auth, "Content-Type": "video/webm"}
        status, body = send_chunked(
            urls["http"], "PUT", f"/recordings/{pushed['id']}/media/0", headers, oversize
        )
    assert status == 413, body
    # Had a cut copy been kept under number 0, other bytes there would be a 409.
    resp = client.put(
        f"/recordings/{pushed['id']}/media/0", data=b"webm", headers=auth, content_type="video/webm"
    )
    assert resp.status_code == 201, resp.get_json()


def test_an_oversize_chunked_form_is_413_and_makes_no_room(app, client, auth, rt):
    pad = b"x" * rt.config.max_body_bytes
    form = b"id=chunked-form&user%5Bname%5D=A&pad=" + pad + b"&name=last-field"
    with serving(app) as (_, urls):
        headers = {**auth, "Content-Type": "application/x-www-form-urlencoded"}
        status, body = send_chunked(urls["http"], "POST", "/rooms", headers, form)
    assert status == 413, body
    assert client.get("/rooms/chunked-form/recordings", headers=auth).status_code == 404


def test_an_oversize_chunked_json_body_is_413_not_400(app, auth, rt):
    body = b'{"user": {"name": "A"}, "pad": "' + b"x" * rt.config.max_body_bytes + b'"}'
    with serving(app) as (_, urls):
        status, answer = send_chunked(
            urls["http"], "POST", "/rooms", {**auth, "Content-Type": "application/json"}, body
        )
    assert status == 413, answer
