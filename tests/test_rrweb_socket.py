"""rrweb WebSocket ingest (`/rrweb/recordings/{id}/ingest/ws`) on a real uvicorn server serving the api
process's ASGI app (app.asgi), with a real WebSocket client; events are read back over HTTP through the
same server (the Flask side, via a2wsgi)."""

from __future__ import annotations

import gzip
import json
import secrets
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import brotli
import pytest
import requests
import zstandard
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from app.models import utcnow
from app.runtime import Runtime
from app.services.access import keys, signing
from tests.helpers import serving, wait_for

NDJSON, JSON = "application/x-ndjson", "application/json"
COMPRESS = {
    "gzip": gzip.compress,
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


@pytest.fixture(scope="module")
def server(app) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    with serving(app) as (_, urls):
        yield urls


@pytest.fixture
def project(rt: Runtime) -> str:
    return keys.create_project(rt, "ws-" + secrets.token_hex(3)).id


@pytest.fixture
def key(rt: Runtime, project: str) -> str:
    """A key of `project` that may ingest and read."""
    return keys.create_key(rt, project, ("ingest", "recording:read"))[1]


def new_id() -> str:
    return "rec-" + secrets.token_hex(6)


def path(recording_id: str) -> str:
    return f"/rrweb/recordings/{recording_id}/ingest/ws"


def url(server: dict[str, str], recording_id: str, **query: str) -> str:
    return server["ws"] + path(recording_id) + (f"?{urlencode(query)}" if query else "")


def open_socket(server: dict[str, str], recording_id: str, key: str | None, **query: str) -> ClientConnection:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return connect(url(server, recording_id, **query), additional_headers=headers, open_timeout=10)


def events(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"type": 3, "timestamp": 1_700_000_000_000 + i, "data": {"source": 1, "i": i}}
        for i in range(start, start + count)
    ]


def encoded(batch: list[dict[str, Any]], content_type: str = NDJSON) -> bytes:
    if content_type == JSON:
        return json.dumps(batch).encode()
    return "\n".join(json.dumps(e) for e in batch).encode()


def recv_json(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=10))


def ready(ws: ClientConnection) -> dict[str, Any]:
    message = recv_json(ws)
    assert message["type"] == "ready", message
    return message


def flush(ws: ClientConnection) -> dict[str, Any]:
    ws.send(json.dumps({"type": "flush"}))
    return recv_json(ws)


def end(ws: ClientConnection) -> dict[str, Any]:
    ws.send(json.dumps({"type": "end"}))
    return recv_json(ws)


def close_code(ws: ClientConnection) -> int | None:
    """The code the server closed with, once it has."""
    try:
        while True:
            ws.recv(timeout=10)
    except ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None


def drop(ws: ClientConnection) -> None:
    """Lose the connection without a close handshake, as a tab that crashed would."""
    ws.socket.shutdown(socket.SHUT_RDWR)
    ws.socket.close()


def stored(server: dict[str, str], recording_id: str, key: str) -> list[dict[str, Any]]:
    resp = requests.get(
        f"{server['http']}/rrweb/recordings/{recording_id}/events",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    if resp.status_code == 404:
        return []
    assert resp.status_code == 200, resp.text
    return resp.json()


def marks(found: list[dict[str, Any]]) -> list[int]:
    return [e["data"]["i"] for e in found]


def refused_status(server: dict[str, str], recording_id: str, key: str | None, **options: Any) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    query = options.pop("query", {})
    with pytest.raises(InvalidStatus) as refused:
        connect(url(server, recording_id, **query), additional_headers=headers, open_timeout=10, **options)
    return refused.value.response.status_code


@pytest.mark.parametrize("content_type", [NDJSON, "application/ndjson", JSON])
@pytest.mark.parametrize("encoding", ["identity", "gzip", "br", "zstd"])
def test_each_content_type_and_encoding_stores_events(server, key, content_type, encoding):
    rid = new_id()
    query = {"contentType": content_type} | ({"contentEncoding": encoding} if encoding != "identity" else {})
    with open_socket(server, rid, key, **query) as ws:
        ready(ws)
        for batch in (events(3), events(2, start=3)):
            body = encoded(batch, content_type)
            ws.send(COMPRESS[encoding](body) if encoding != "identity" else body.decode())
        assert end(ws)["final"] is True
    assert marks(stored(server, rid, key)) == [0, 1, 2, 3, 4]


def test_binary_frames_without_content_encoding_are_read_uncompressed(server, key):
    rid = new_id()
    with open_socket(server, rid, key) as ws:
        ready(ws)
        ws.send(encoded(events(2)))
        end(ws)
    assert marks(stored(server, rid, key)) == [0, 1]


def test_ready_names_the_recording_and_stream(server, key):
    rid = new_id()
    with open_socket(server, rid, key, stream="tab-1") as ws:
        assert ready(ws) == {"type": "ready", "recordingId": rid, "stream": "tab-1", "acked": 0}


def test_ready_without_a_stream_acks_nothing(server, key):
    with open_socket(server, new_id(), key) as ws:
        message = ready(ws)
    assert (message["stream"], message["acked"]) == (None, 0)


def test_flush_acks_the_frames_stored_and_the_last_sequence_id(server, key):
    with open_socket(server, new_id(), key) as ws:
        ready(ws)
        ws.send(encoded(events(3)).decode())
        ws.send(encoded(events(2, start=3)).decode())
        first = flush(ws)
        ws.send(encoded(events(4, start=5)).decode())
        second = flush(ws)
    assert first == {
        "type": "upstream-result",
        "ok": True,
        "status": 204,
        "final": False,
        "acked": 2,
        "lastSequenceId": 5,
    }
    assert (second["acked"], second["lastSequenceId"]) == (3, 9)


def test_a_flush_with_nothing_buffered_still_acks(server, key):
    with open_socket(server, new_id(), key) as ws:
        ready(ws)
        ack = flush(ws)
    assert (ack["type"], ack["acked"], ack["lastSequenceId"]) == ("upstream-result", 0, None)


def test_the_buffer_is_stored_after_a_second_without_frames(server, key):
    with open_socket(server, new_id(), key) as ws:
        ready(ws)
        ws.send(encoded(events(2)).decode())
        ack = recv_json(ws)  # no flush asked for
    assert ack["type"] == "upstream-result" and ack["acked"] == 1


def test_a_buffer_past_256_kb_is_stored_at_once(server, key):
    big = [{"type": 3, "timestamp": 1_700_000_000_000, "data": {"i": 0, "pad": "x" * 300_000}}]
    with open_socket(server, new_id(), key) as ws:
        ready(ws)
        ws.send(encoded(big).decode())
        ack = ws.recv(timeout=0.9)  # before the idle flush would come
    assert json.loads(ack)["acked"] == 1


def test_stream_resumes_after_a_dropped_connection_without_duplicates(server, key):
    rid = new_id()
    ws = open_socket(server, rid, key, stream="tab-1")
    ready(ws)
    for i in range(3):
        ws.send(encoded(events(1, start=i)).decode())
    assert flush(ws)["acked"] == 3
    for i in (3, 4):  # sent, never acked
        ws.send(encoded(events(1, start=i)).decode())
    drop(ws)
    wait_for(lambda: len(stored(server, rid, key)) == 5, timeout=10)  # stored on disconnect
    with open_socket(server, rid, key, stream="tab-1") as again:
        acked = ready(again)["acked"]
        assert acked == 5
        for i in range(acked, 7):  # the client resends only the frames after `acked`
            again.send(encoded(events(1, start=i)).decode())
        assert end(again)["acked"] == 7
    assert marks(stored(server, rid, key)) == list(range(7))


def test_a_stream_counts_frames_across_connections(server, key):
    rid = new_id()
    for _ in range(2):
        with open_socket(server, rid, key, stream="s") as ws:
            base = ready(ws)["acked"]
            ws.send(encoded(events(1)).decode())
            assert end(ws)["acked"] == base + 1
    with open_socket(server, rid, key, stream="s") as ws:
        assert ready(ws)["acked"] == 2


def test_a_disconnect_without_end_stores_the_buffered_frames(server, key):
    rid = new_id()
    ws = open_socket(server, rid, key)
    ready(ws)
    ws.send(encoded(events(2)).decode())
    ws.close()
    assert marks(wait_for(lambda: stored(server, rid, key), timeout=10)) == [0, 1]


def test_a_server_shutdown_closes_1012_after_storing_the_buffered_frames(app, server, key):
    rid = new_id()
    with serving(app) as (srv, own):
        ws = open_socket(own, rid, key)
        ready(ws)
        ws.send(encoded(events(2)).decode())
        time.sleep(0.3)  # received and buffered (the idle flush would come after 1 s)
        srv.should_exit = True
        code = close_code(ws)
    assert code == 1012
    assert marks(stored(server, rid, key)) == [0, 1]


def test_end_sends_the_final_result_and_closes_1000(server, key):
    with open_socket(server, new_id(), key) as ws:
        ready(ws)
        ws.send(encoded(events(2)).decode())
        result = end(ws)
        code = close_code(ws)
    assert result["final"] is True and result["acked"] == 1 and result["lastSequenceId"] == 2
    assert code == 1000


def test_a_bad_frame_answers_400_closes_1011_and_stores_only_the_frames_before_it(server, key):
    rid = new_id()
    with open_socket(server, rid, key) as ws:
        ready(ws)
        ws.send(encoded(events(2)).decode())
        ws.send('{"type": 3, "timestamp": 1}\n{not json')
        error = recv_json(ws)
        code = close_code(ws)
    assert error["type"] == "error" and error["status"] == 400 and error["acked"] == 1
    assert code == 1011
    assert marks(stored(server, rid, key)) == [0, 1]


def test_corrupt_compression_answers_400(server, key):
    with open_socket(server, new_id(), key, contentEncoding="gzip") as ws:
        ready(ws)
        ws.send(b"\x1f\x8b definitely not gzip")
        assert recv_json(ws)["status"] == 400


def test_a_compression_bomb_answers_413_and_stores_nothing(server, key, rt):
    rid = new_id()
    bomb = zstandard.ZstdCompressor().compress(b" " * (rt.config.max_inflated_bytes + 1))
    with open_socket(server, rid, key, contentEncoding="zstd") as ws:
        ready(ws)
        ws.send(bomb)
        error = recv_json(ws)
        code = close_code(ws)
    assert (error["status"], code) == (413, 1011)
    assert stored(server, rid, key) == []


def test_a_frame_over_the_body_limit_answers_413(server, key, rt):
    with open_socket(server, new_id(), key) as ws:
        ready(ws)
        ws.send(b" " * (rt.config.max_ingest_body_bytes + 1))
        assert recv_json(ws)["status"] == 413


def test_a_missing_key_is_refused_401(server):
    assert refused_status(server, new_id(), None) == 401


def test_an_unknown_key_is_refused_401(server):
    assert refused_status(server, new_id(), "mr_" + secrets.token_hex(20)) == 401


def test_a_key_without_the_ingest_scope_is_refused_403(server, rt, project):
    reader = keys.create_key(rt, project, ("recording:read",))[1]
    assert refused_status(server, new_id(), reader) == 403


def test_a_public_key_in_the_query_is_accepted(server, key):
    rid = new_id()
    with connect(url(server, rid, key=key), open_timeout=10) as ws:
        ready(ws)
        ws.send(encoded(events(1)).decode())
        end(ws)
    assert marks(stored(server, rid, key)) == [0]


def test_a_key_with_origins_refuses_another_page(server, rt, project):
    public = keys.create_key(rt, project, ("ingest",), origins=("https://shop.example",))[1]
    status = refused_status(server, new_id(), None, query={"key": public}, origin="https://evil.example")
    assert status == 403


def test_a_key_with_origins_accepts_its_page(server, rt, project):
    public = keys.create_key(rt, project, ("ingest",), origins=("https://shop.example",))[1]
    with connect(url(server, new_id(), key=public), origin="https://shop.example", open_timeout=10) as ws:
        assert ready(ws)["acked"] == 0


def test_a_presigned_url_is_accepted(server, rt, project, key):
    rid = new_id()
    with connect(url(server, rid, **signing.sign(rt, project, "GET", path(rid))), open_timeout=10) as ws:
        ready(ws)
        ws.send(encoded(events(1)).decode())
        end(ws)
    assert marks(stored(server, rid, key)) == [0]


def test_an_expired_presigned_url_is_refused_401(server, rt, project):
    rid = new_id()
    past = Runtime(rt.config, clock=lambda: utcnow() - timedelta(seconds=rt.config.link_ttl_seconds + 60))
    assert refused_status(server, rid, None, query=signing.sign(past, project, "GET", path(rid))) == 401


def test_a_tampered_presigned_url_is_refused_401(server, rt, project):
    query = signing.sign(rt, project, "GET", path("rec-a"))
    assert refused_status(server, "rec-b", None, query=query) == 401


def test_two_projects_with_one_recording_id_get_two_recordings(server, rt, key, project):
    other = keys.create_key(rt, keys.create_project(rt, "ws-other").id, ("ingest", "recording:read"))[1]
    rid = new_id()
    for owner, start in ((key, 0), (other, 10)):
        with open_socket(server, rid, owner) as ws:
            ready(ws)
            ws.send(encoded(events(2, start=start)).decode())
            end(ws)
    assert marks(stored(server, rid, key)) == [0, 1]
    assert marks(stored(server, rid, other)) == [10, 11]


def test_debug_echoes_each_decoded_payload(server, key):
    with open_socket(server, new_id(), key, debug="true", contentEncoding="gzip") as ws:
        ready(ws)
        ws.send(gzip.compress(encoded(events(2))))
        echo = recv_json(ws)
    assert echo == {"type": "debug", "events": events(2)}


def test_a_bad_recording_id_is_refused_422(server, key):
    assert refused_status(server, "x" * 65, key) == 422


def test_an_unsupported_content_encoding_is_refused_415(server, key):
    assert refused_status(server, new_id(), key, query={"contentEncoding": "lz4"}) == 415


def test_another_websocket_path_is_refused_404(server, key):
    with pytest.raises(InvalidStatus) as refused:
        connect(server["ws"] + "/rrweb/recordings/x/events", open_timeout=10)
    assert refused.value.response.status_code == 404


def test_a_trailing_slash_is_accepted(server, key):
    with connect(url(server, new_id()) + "/", additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        assert ready(ws)["type"] == "ready"


def test_http_is_served_by_the_flask_app(server):
    resp = requests.get(server["http"] + "/healthz", headers={"X-Request-Id": "asgi-check"}, timeout=10)
    assert resp.status_code == 200 and resp.headers["X-Request-Id"] == "asgi-check"
