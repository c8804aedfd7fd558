"""The first-party recorder's server side over plain HTTP: `GET /rrweb/record.js`, and what a page's
unload beacon needs from the batch ingest (`?key=`, text/plain bodies, `?contentEncoding=`, stream
positioning with `?stream=&after=&frames=`)."""

from __future__ import annotations

import gzip
import json
import secrets
from typing import Any

import pytest

from app.services.access import keys
from app.services.interactions import replays
from app.services.interactions.replays import StreamPosition

PAGE = "https://shop.test"


def events(n: int, start: int = 1_764_700_000_000) -> list[dict[str, Any]]:
    return [{"type": 3, "timestamp": start + i, "data": {"source": 2, "type": 2, "id": i}} for i in range(n)]


def ndjson(batch: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in batch).encode()


def rid() -> str:
    return "tab-" + secrets.token_hex(6)


@pytest.fixture
def project(rt):  # type: ignore[no-untyped-def]
    return keys.create_project(rt, "recorder-" + secrets.token_hex(3))


@pytest.fixture
def public(rt, project) -> str:  # type: ignore[no-untyped-def]
    return keys.create_key(rt, project.id, ("ingest",), origins=(PAGE,))[1]


@pytest.fixture
def private(rt, project) -> str:  # type: ignore[no-untyped-def]
    return keys.create_key(rt, project.id, ("recording:read",))[1]


def beacon(client, key: str, recording_id: str, body: bytes, **query: Any):  # type: ignore[no-untyped-def]
    """A POST as navigator.sendBeacon makes it: key in the query, text/plain, the page's Origin."""
    return client.post(
        f"/rrweb/recordings/{recording_id}/ingest",
        query_string={"key": key, **query},
        data=body,
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": PAGE},
    )


def stored(client, private: str, recording_id: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    resp = client.get(
        f"/rrweb/recordings/{recording_id}/events", headers={"Authorization": f"Bearer {private}"}
    )
    if resp.status_code == 404:
        return []
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


# --- record.js --------------------------------------------------------------------------------------


def test_record_js_is_the_rrweb_bundle_then_the_client(client):
    resp = client.get("/rrweb/record.js")
    assert resp.status_code == 200
    assert resp.mimetype == "text/javascript"
    body = resp.get_data(as_text=True)
    assert body.index("rrweb") < body.index("window.rrwebCloud = {")


def test_record_js_is_cacheable_and_loads_from_any_origin(client):
    resp = client.get("/rrweb/record.js", headers={"Origin": PAGE})
    assert "max-age=86400" in resp.headers["Cache-Control"]
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers["Cross-Origin-Resource-Policy"] == "cross-origin"


def test_record_js_comes_gzipped_to_a_browser_that_accepts_gzip(client):
    plain = client.get("/rrweb/record.js").data
    resp = client.get("/rrweb/record.js", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert resp.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in resp.headers["Vary"]
    assert gzip.decompress(resp.data) == plain


def test_record_js_answers_304_to_its_etag(client):
    etag = client.get("/rrweb/record.js").headers["ETag"]
    resp = client.get("/rrweb/record.js", headers={"If-None-Match": etag})
    assert resp.status_code == 304 and resp.data == b""


# --- ?key=, text/plain, ?contentEncoding= --------------------------------------------------------------


def test_a_public_key_in_the_query_ingests_a_text_plain_body(client, public, private):
    recording_id = rid()
    assert beacon(client, public, recording_id, ndjson(events(3))).status_code == 204
    assert len(stored(client, private, recording_id)) == 3


def test_a_text_plain_json_array_is_read_as_json(client, public, private):
    recording_id = rid()
    assert beacon(client, public, recording_id, json.dumps(events(2)).encode()).status_code == 204
    assert len(stored(client, private, recording_id)) == 2


def test_content_encoding_in_the_query_inflates_concatenated_gzip_members(client, public, private):
    recording_id = rid()
    body = gzip.compress(ndjson(events(2))) + gzip.compress(ndjson(events(3, start=1_764_700_001_000)))
    assert beacon(client, public, recording_id, body, contentEncoding="gzip").status_code == 204
    assert len(stored(client, private, recording_id)) == 5


def test_a_query_key_is_refused_from_an_origin_it_does_not_name(client, public):
    resp = client.post(
        f"/rrweb/recordings/{rid()}/ingest",
        query_string={"key": public},
        data=ndjson(events(1)),
        headers={"Content-Type": "text/plain", "Origin": "https://evil.test"},
    )
    assert resp.status_code == 403
    assert resp.get_json()["message"] == "this API key may not be used from this origin"


def test_a_query_key_without_the_ingest_scope_is_refused(client, private):
    assert beacon(client, private, rid(), ndjson(events(1))).status_code == 403


def test_an_unknown_query_key_is_unauthorized(client):
    assert beacon(client, "mr_" + secrets.token_urlsafe(16), rid(), ndjson(events(1))).status_code == 401


def test_the_meta_route_still_wants_its_key_in_a_header(client, public):
    resp = client.post(f"/rrweb/recordings/{rid()}/meta", query_string={"key": public}, json={"plan": "pro"})
    assert resp.status_code == 401


# --- stream positioning ----------------------------------------------------------------------------


def test_positioned_frames_are_stored_and_counted_in_the_stream(client, rt, project, public, private):
    recording_id = rid()
    resp = beacon(client, public, recording_id, ndjson(events(3)), stream="pv-1", after=0, frames=2)
    assert resp.status_code == 204
    assert replays.stream_frames(rt, project.id, recording_id, "pv-1") == 2
    assert [e["sequenceId"] for e in stored(client, private, recording_id)] == [1, 2, 3]


def test_positioned_frames_continue_a_socket_stream(client, rt, project, public, private):
    recording_id = rid()
    replays.ingest(rt, project.id, recording_id, events(2), stream=StreamPosition("pv-1", 1, 0))
    resp = beacon(
        client,
        public,
        recording_id,
        ndjson(events(2, start=1_764_700_005_000)),
        stream="pv-1",
        after=1,
        frames=1,
    )
    assert resp.status_code == 204
    assert replays.stream_frames(rt, project.id, recording_id, "pv-1") == 2
    assert len(stored(client, private, recording_id)) == 4


def test_a_repeated_positioned_batch_is_a_no_op(client, public, private):
    recording_id = rid()
    body = ndjson(events(3))
    for _ in range(2):
        assert beacon(client, public, recording_id, body, stream="pv-1", after=0, frames=1).status_code == 204
    assert len(stored(client, private, recording_id)) == 3


def test_frames_the_stream_holds_beyond_are_a_no_op(client, rt, project, public, private):
    recording_id = rid()
    replays.ingest(rt, project.id, recording_id, events(4), stream=StreamPosition("pv-1", 3, 0))
    resp = beacon(client, public, recording_id, ndjson(events(2)), stream="pv-1", after=1, frames=2)
    assert resp.status_code == 204
    assert len(stored(client, private, recording_id)) == 4


def test_frames_overlapping_what_the_stream_holds_conflict(client, rt, project, public, private):
    recording_id = rid()
    replays.ingest(rt, project.id, recording_id, events(2), stream=StreamPosition("pv-1", 2, 0))
    resp = beacon(client, public, recording_id, ndjson(events(3)), stream="pv-1", after=1, frames=3)
    assert resp.status_code == 409
    assert resp.get_json()["errors"] == {"acked": 2}
    assert len(stored(client, private, recording_id)) == 2


def test_frames_after_a_gap_conflict(client, public, private):
    recording_id = rid()
    resp = beacon(client, public, recording_id, ndjson(events(2)), stream="pv-1", after=4, frames=1)
    assert resp.status_code == 409
    assert resp.get_json()["errors"] == {"acked": 0}
    assert stored(client, private, recording_id) == []


@pytest.mark.parametrize(
    "query",
    [
        {"stream": "pv-1", "after": 0},
        {"after": 0, "frames": 1},
        {"stream": "bad id", "after": 0, "frames": 1},
        {"stream": "pv-1", "after": -1, "frames": 1},
        {"stream": "pv-1", "after": 0, "frames": 0},
        {"stream": "pv-1", "after": 0, "frames": 3},  # more frames than the 2 events
    ],
    ids=["no-frames", "no-stream", "bad-stream", "negative-after", "zero-frames", "frames-over-events"],
)
def test_bad_stream_positioning_is_unprocessable(client, public, query):
    resp = beacon(client, public, rid(), ndjson(events(2)), **query)
    assert resp.status_code == 422
    assert set(resp.get_json()) >= {"code", "message"}


def test_stream_positioning_refuses_an_idempotency_key(client, public):
    resp = client.post(
        f"/rrweb/recordings/{rid()}/ingest",
        query_string={"key": public, "stream": "pv-1", "after": 0, "frames": 1},
        data=ndjson(events(1)),
        headers={"Content-Type": "text/plain", "Idempotency-Key": "k-1"},
    )
    assert resp.status_code == 422
