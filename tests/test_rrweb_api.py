"""The rrweb cloud dialect over HTTP: ingest, meta, events, list, statistics, auth, CORS, lifecycle."""

from __future__ import annotations

import gzip
import json
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import brotli
import pytest
import zstandard
from sqlalchemy import select, update

from app.errors import StreamConflict
from app.models import RecordingState, ReplayBlock, ReplaySummary, WebhookEvent
from app.services.access import keys, signing
from app.services.interactions import replays

COMPRESS = {
    "identity": lambda b: b,
    "gzip": gzip.compress,
    "br": brotli.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}


def events(n: int = 3, start: int = 1_764_700_000_000) -> list[dict[str, Any]]:
    first = [
        {"type": 4, "timestamp": start, "data": {"href": "https://shop.test/", "width": 800, "height": 600}}
    ]
    rest = [
        {"type": 3, "timestamp": start + i, "data": {"source": 2, "type": 2, "id": i, "x": i, "y": 1}}
        for i in range(1, n)
    ]
    return (first + rest)[:n]


@pytest.fixture
def project(rt):  # type: ignore[no-untyped-def]
    return keys.create_project(rt, "rrweb-" + secrets.token_hex(3))


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def private(rt, project) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(keys.create_key(rt, project.id, ("recording:read", "ingest"))[1])


@pytest.fixture
def public(rt, project) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(keys.create_key(rt, project.id, ("ingest",))[1])


@pytest.fixture
def admin(rt, project) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(keys.create_key(rt, project.id, ("admin",))[1])


def rid() -> str:
    return "rec-" + secrets.token_hex(6)


def ingest(client, headers, recording_id, body, **extra):  # type: ignore[no-untyped-def]
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        f"/rrweb/recordings/{recording_id}/ingest",
        data=data,
        headers={"Content-Type": "application/json", **headers, **extra},
    )


def read_events(client, headers, recording_id) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    resp = client.get(f"/rrweb/recordings/{recording_id}/events", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


# --- ingest -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", sorted(COMPRESS))
def test_ingest_takes_every_encoding(client, public, private, encoding):
    recording_id = rid()
    body = COMPRESS[encoding](json.dumps(events(3)).encode())
    headers = {} if encoding == "identity" else {"Content-Encoding": encoding}
    assert ingest(client, public, recording_id, body, **headers).status_code == 204
    assert [e["timestamp"] for e in read_events(client, private, recording_id)] == [
        e["timestamp"] for e in events(3)
    ]


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json", json.dumps(events(3))),
        ("application/json", json.dumps({"events": events(3)})),
        ("application/x-ndjson", "\n".join(json.dumps(e) for e in events(3)) + "\n"),
        ("application/ndjson", "\r\n".join(json.dumps(e) for e in events(3))),
    ],
    ids=["array", "object", "x-ndjson", "ndjson-crlf"],
)
def test_ingest_takes_every_shape(client, public, private, content_type, body):
    recording_id = rid()
    resp = ingest(client, public, recording_id, body.encode(), **{"Content-Type": content_type})
    assert resp.status_code == 204
    assert len(read_events(client, private, recording_id)) == 3


def test_events_come_back_with_sequence_ids_and_the_clients_recording_id(client, public, private):
    recording_id = rid()
    ingest(client, public, recording_id, events(2))
    ingest(client, public, recording_id, events(3, start=1_764_700_100_000))
    got = read_events(client, private, recording_id)
    assert [e["sequenceId"] for e in got] == [1, 2, 3, 4, 5]
    assert {e["recordingId"] for e in got} == {recording_id}
    assert got[0] == {**events(2)[0], "sequenceId": 1, "recordingId": recording_id}


def test_events_answer_as_json_lines_on_request(client, public, private):
    recording_id = rid()
    ingest(client, public, recording_id, events(3))
    resp = client.get(
        f"/rrweb/recordings/{recording_id}/events", headers={**private, "Accept": "application/x-ndjson"}
    )
    assert resp.mimetype == "application/x-ndjson"
    assert [json.loads(line)["sequenceId"] for line in resp.data.splitlines()] == [1, 2, 3]


def test_a_long_replay_streams_across_many_blocks(client, rt, public, private, project):
    recording_id = rid()
    for batch in range(replays.READ_PAGE + 5):  # more blocks than one index page
        replays.ingest(rt, project.id, recording_id, events(2, start=1_764_700_000_000 + batch * 10))
    got = read_events(client, private, recording_id)
    assert [e["sequenceId"] for e in got] == list(range(1, 2 * (replays.READ_PAGE + 5) + 1))


def test_a_client_sent_sequence_id_is_replaced(client, public, private):
    recording_id = rid()
    ingest(client, public, recording_id, [{**events(1)[0], "sequenceId": 99, "recordingId": "x"}])
    assert read_events(client, private, recording_id)[0]["sequenceId"] == 1
    assert read_events(client, private, recording_id)[0]["recordingId"] == recording_id


def test_a_retried_batch_with_its_idempotency_key_is_stored_once(client, public, private):
    recording_id = rid()
    for _ in range(2):
        resp = ingest(client, public, recording_id, events(3), **{"Idempotency-Key": "batch-1"})
        assert resp.status_code == 204
    assert len(read_events(client, private, recording_id)) == 3


def test_the_first_batch_creates_a_started_recording_known_by_the_clients_id(rt, client, public, project):
    recording_id = rid()
    ingest(client, public, recording_id, events(2))
    recording, summary = replays.replay_of(rt, project.id, recording_id)
    assert (recording.external_id, recording.state, summary.events) == (
        recording_id,
        RecordingState.STARTED,
        2,
    )
    assert recording.id != recording_id


def test_blocks_are_indexed_with_their_ranges_and_sizes(rt, client, public, project):
    recording_id = rid()
    ingest(client, public, recording_id, events(3))
    ingest(client, public, recording_id, events(2, start=1_764_700_500_000))
    recording, summary = replays.replay_of(rt, project.id, recording_id)
    with rt.db.read() as s:
        blocks = list(s.scalars(select(ReplayBlock).where(ReplayBlock.recording_id == recording.id)))
    ranges = [(b.seq, b.first_sequence, b.last_sequence, b.events) for b in blocks]
    assert sorted(ranges) == [(0, 1, 3, 3), (1, 4, 5, 2)]
    assert summary.bytes == sum(b.bytes for b in blocks) > 0
    assert (summary.first_timestamp, summary.last_timestamp) == (1_764_700_000_000, 1_764_700_500_001)
    assert all(rt.storage.stat(b.object_key).size == b.bytes for b in blocks)


# --- bad input ----------------------------------------------------------------------------------------


def stored(rt, project, recording_id) -> int:  # type: ignore[no-untyped-def]
    try:
        return replays.replay_of(rt, project.id, recording_id)[1].events
    except Exception:  # noqa: BLE001 - no replay at all: nothing stored
        return 0


@pytest.mark.parametrize(
    "body, headers, status",
    [
        (b"[{", {}, 400),
        (b"not json at all", {}, 400),
        (b"\x1f\x8b\x08garbage", {"Content-Encoding": "gzip"}, 400),
        (json.dumps(events(1)).encode(), {"Content-Encoding": "compress"}, 415),
        (json.dumps(events(1)).encode(), {"Content-Type": "text/html"}, 415),
        (json.dumps([{"timestamp": 1}]).encode(), {}, 400),
        (json.dumps([{"type": 3}]).encode(), {}, 400),
        (json.dumps([{"type": "3", "timestamp": 1}]).encode(), {}, 400),
        (b"[]", {}, 400),
        (b"[" * 100_000, {}, 400),
    ],
    ids=[
        "truncated-json",
        "not-json",
        "corrupt-gzip",
        "unknown-encoding",
        "html",
        "no-type",
        "no-timestamp",
        "string-type",
        "empty",
        "deep",
    ],
)
def test_bad_batches_are_refused_and_store_nothing(rt, client, public, project, body, headers, status):
    recording_id = rid()
    ingest(client, public, recording_id, events(1))
    resp = ingest(client, public, recording_id, body, **headers)
    assert resp.status_code == status
    assert resp.get_json()["code"] == status
    assert stored(rt, project, recording_id) == 1


def test_a_bad_event_is_named_in_the_errors(client, public):
    resp = ingest(client, public, rid(), [events(1)[0], {"type": 3}])
    assert resp.status_code == 400
    assert "1" in json.dumps(resp.get_json()["errors"])


def test_a_compression_bomb_is_refused_with_413(rt, client, public, project):
    recording_id = rid()
    bomb = gzip.compress(b"[" + b" " * (rt.config.max_inflated_bytes + 1024) + b"]")
    assert len(bomb) < rt.config.max_ingest_body_bytes
    resp = ingest(client, public, recording_id, bomb, **{"Content-Encoding": "gzip"})
    assert resp.status_code == 413
    assert stored(rt, project, recording_id) == 0


def test_a_body_over_the_limit_is_refused_with_413(rt, client, public):
    body = b"[" + b" " * rt.config.max_ingest_body_bytes + b"]"
    assert ingest(client, public, rid(), body).status_code == 413


def test_an_id_longer_than_allowed_is_refused(client, public):
    assert ingest(client, public, "x" * 65, events(1)).status_code == 422


def test_an_id_with_odd_characters_is_refused(client, public):
    assert ingest(client, public, "a b", events(1)).status_code == 422


# --- meta ---------------------------------------------------------------------------------------------


def post_meta(client, headers, recording_id, body):  # type: ignore[no-untyped-def]
    return client.post(f"/rrweb/recordings/{recording_id}/meta", json=body, headers=headers)


def meta(client, headers, recording_id) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    resp = client.get(f"/rrweb/recordings/{recording_id}", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return {m["key"]: m for m in resp.get_json()}


def test_meta_keeps_a_version_that_rises_on_every_change(client, public, private):
    recording_id = rid()
    assert post_meta(client, public, recording_id, {"userId": "u1", "plan": "free"}).status_code == 204
    post_meta(client, public, recording_id, {"plan": "pro"})
    post_meta(client, public, recording_id, {"plan": "team"})
    got = meta(client, private, recording_id)
    assert (got["userId"]["version"], got["plan"]["version"], got["plan"]["value"]) == (1, 3, "team")


def test_meta_sent_again_unchanged_keeps_its_version_and_timestamp(client, public, private):
    recording_id = rid()
    post_meta(client, public, recording_id, {"userId": "u1"})
    before = meta(client, private, recording_id)["userId"]
    time.sleep(0.01)
    post_meta(client, public, recording_id, {"userId": "u1"})
    assert meta(client, private, recording_id)["userId"] == before


def test_meta_timestamp_is_the_time_of_the_change_in_ms(client, public, private):
    recording_id = rid()
    before = int(time.time() * 1000)
    post_meta(client, public, recording_id, {"userId": "u1"})
    assert before - 5000 <= meta(client, private, recording_id)["userId"]["timestamp"] <= before + 5000


def test_meta_keeps_json_scalars_as_sent(client, public, private):
    recording_id = rid()
    post_meta(client, public, recording_id, {"n": 3, "ok": True, "none": None, "s": "3"})
    got = meta(client, private, recording_id)
    assert [got[k]["value"] for k in ("n", "ok", "none", "s")] == [3, True, None, "3"]


@pytest.mark.parametrize(
    "body, status",
    [([1, 2], 400), ({}, 422), ({"a": {"nested": 1}}, 422), ({"k" * 201: "v"}, 422), ({"a": "v" * 501}, 422)],
    ids=["array", "empty", "nested", "long-key", "long-value"],
)
def test_bad_meta_is_refused(client, public, body, status):
    assert post_meta(client, public, rid(), body).status_code == status


def test_meta_before_any_events_creates_the_recording(client, public, private):
    recording_id = rid()
    post_meta(client, public, recording_id, {"userId": "u1"})
    ingest(client, public, recording_id, events(2))
    assert len(read_events(client, private, recording_id)) == 2


def test_meta_of_an_unknown_recording_is_404(client, private):
    assert client.get(f"/rrweb/recordings/{rid()}", headers=private).status_code == 404


# --- list and statistics ----------------------------------------------------------------------------


def listed(client, headers, query: str = "") -> list[str]:  # type: ignore[no-untyped-def]
    resp = client.get(f"/rrweb/recordings?{query}", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return [r["recordingId"] for r in resp.get_json()["recordings"]]


def test_list_filters_by_meta_with_and(client, public, private):
    a, b, c = rid(), rid(), rid()
    post_meta(client, public, a, {"userId": "u1", "plan": "pro"})
    post_meta(client, public, b, {"userId": "u1", "plan": "free"})
    post_meta(client, public, c, {"userId": "u2", "plan": "pro"})
    assert listed(client, private, "meta[userId]=u1&meta[plan]=pro") == [a]
    assert sorted(listed(client, private, "meta[plan]=pro")) == sorted([a, c])


def test_list_matches_url_encoded_keys_and_values(client, public, private):
    a = rid()
    post_meta(client, public, a, {"user id": "ada & co/1"})
    assert listed(client, private, urlencode({"meta[user id]": "ada & co/1"})) == [a]


def test_list_is_most_recent_first_with_limit_and_offset(client, public, private):
    ids = [rid() for _ in range(3)]
    for recording_id in ids:
        post_meta(client, public, recording_id, {"batch": "order"})
        time.sleep(0.002)
    assert listed(client, private, "meta[batch]=order") == ids[::-1]
    assert listed(client, private, "meta[batch]=order&limit=1&offset=1") == [ids[1]]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "offset=-1", "limit=ten"])
def test_list_refuses_bad_paging(client, private, query):
    assert client.get(f"/rrweb/recordings?{query}", headers=private).status_code == 422


def test_list_defaults_to_50(client, rt, project, private):
    for _ in range(51):
        replays.open_replay(rt, project.id, rid())
    assert len(listed(client, private)) == 50


def test_list_links_carry_the_rrweb_prefix_and_work_as_given(client, public, private):
    recording_id = rid()
    ingest(client, public, recording_id, events(2))
    links = client.get("/rrweb/recordings?includeSignedUrls=true", headers=private).get_json()["recordings"][
        0
    ]["links"]
    assert links["self"] == f"/rrweb/recordings/{recording_id}"
    assert client.get(links["events"], headers=private).status_code == 200
    assert len(client.get(links["eventsSigned"]).get_json()) == 2  # no key: the link itself authorizes


def test_list_has_no_signed_links_unless_asked(client, public, private):
    ingest(client, public, rid(), events(1))
    links = client.get("/rrweb/recordings", headers=private).get_json()["recordings"][0]["links"]
    assert "eventsSigned" not in links


def test_statistics_count_replays_and_their_stored_bytes(rt, client, public, private, project):
    for recording_id in (rid(), rid()):
        ingest(client, public, recording_id, events(3))
    stats = client.get("/rrweb/statistics", headers=private).get_json()
    with rt.db.read() as s:
        stored_bytes = sum(
            s.scalars(select(ReplaySummary.bytes).where(ReplaySummary.project_id == project.id))
        )
    assert stats == {"totalRecordings": 2, "recordingsThisMonth": 2, "totalStorageBytes": stored_bytes}
    assert stored_bytes > 0


# --- auth, tenants, presigned links, CORS -----------------------------------------------------------


def test_a_public_key_can_write_but_not_read(client, public):
    recording_id = rid()
    assert ingest(client, public, recording_id, events(1)).status_code == 204
    assert client.get(f"/rrweb/recordings/{recording_id}/events", headers=public).status_code == 403
    assert client.get("/rrweb/recordings", headers=public).status_code == 403


def test_no_key_is_401(client):
    assert ingest(client, {}, rid(), events(1)).status_code == 401
    assert client.get("/rrweb/statistics").status_code == 401


def test_a_read_only_key_cannot_ingest(client, rt, project):
    reader = bearer(keys.create_key(rt, project.id, ("recording:read",))[1])
    assert ingest(client, reader, rid(), events(1)).status_code == 403


def test_projects_with_the_same_recording_id_stay_apart(client, rt, public, private):
    other = keys.create_project(rt, "other-" + secrets.token_hex(3))
    other_key = bearer(keys.create_key(rt, other.id, ("recording:read", "ingest"))[1])
    recording_id = rid()
    ingest(client, public, recording_id, events(2))
    ingest(client, other_key, recording_id, events(3))
    assert len(read_events(client, private, recording_id)) == 2
    assert len(read_events(client, other_key, recording_id)) == 3


def test_another_projects_recording_is_404(client, public, rt):
    other = keys.create_project(rt, "other-" + secrets.token_hex(3))
    other_key = bearer(keys.create_key(rt, other.id, ("recording:read",))[1])
    recording_id = rid()
    ingest(client, public, recording_id, events(1))
    assert client.get(f"/rrweb/recordings/{recording_id}/events", headers=other_key).status_code == 404
    assert client.get(f"/rrweb/recordings/{recording_id}", headers=other_key).status_code == 404
    assert listed(client, other_key) == []


def presigned(rt, project, path: str, method: str = "GET") -> dict[str, str]:  # type: ignore[no-untyped-def]
    return signing.sign(rt, project.id, method, path)


def test_a_presigned_url_reads_without_a_key(client, rt, project, public):
    recording_id = rid()
    ingest(client, public, recording_id, events(2))
    path = f"/rrweb/recordings/{recording_id}/events"
    assert client.get(path, query_string=presigned(rt, project, path)).status_code == 200


def test_a_presigned_url_works_for_ingest_too(client, rt, project, private):
    recording_id = rid()
    path = f"/rrweb/recordings/{recording_id}/ingest"
    resp = client.post(
        path,
        query_string=presigned(rt, project, path, "POST"),
        data=json.dumps(events(2)),
        content_type="application/json",
    )
    assert resp.status_code == 204
    assert len(read_events(client, private, recording_id)) == 2


@pytest.mark.parametrize(
    "tamper",
    [
        lambda q: {**q, "signature": q["signature"][:-1] + ("0" if q["signature"][-1] != "0" else "1")},
        lambda q: {**q, "expires": str(int(q["expires"]) + 60)},
        lambda q: {**q, "keyId": "key-unknown"},
        lambda q: {**q, "expires": "soon"},
        lambda q: {k: v for k, v in q.items() if k != "keyId"},
    ],
    ids=["signature", "expires", "unknown-key", "bad-expires", "no-key-id"],
)
def test_a_tampered_presigned_url_is_401(client, rt, project, public, tamper):
    recording_id = rid()
    ingest(client, public, recording_id, events(1))
    path = f"/rrweb/recordings/{recording_id}/events"
    assert client.get(path, query_string=tamper(presigned(rt, project, path))).status_code == 401


def test_a_presigned_url_is_bound_to_its_path(client, rt, project, public):
    a, b = rid(), rid()
    ingest(client, public, a, events(1))
    ingest(client, public, b, events(1))
    query = presigned(rt, project, f"/rrweb/recordings/{a}/events")
    assert client.get(f"/rrweb/recordings/{b}/events", query_string=query).status_code == 401


def test_an_expired_presigned_url_is_401(client, rt, project, public, monkeypatch):
    recording_id = rid()
    ingest(client, public, recording_id, events(1))
    path = f"/rrweb/recordings/{recording_id}/events"
    query = presigned(rt, project, path)
    later = rt.now() + timedelta(seconds=rt.config.link_ttl_seconds + 1)
    monkeypatch.setattr(rt, "now", lambda: later)
    assert client.get(path, query_string=query).status_code == 401


def test_rotation_keeps_old_links_until_their_key_is_retired(client, rt, project, public, admin):
    recording_id = rid()
    ingest(client, public, recording_id, events(1))
    path = f"/rrweb/recordings/{recording_id}/events"
    old = presigned(rt, project, path)
    rotated = client.post("/rrweb/signing-keys", headers=admin)
    assert rotated.status_code == 201
    new_id = rotated.get_json()[0]["keyId"]
    assert new_id != old["keyId"] and rotated.get_json()[0]["current"] is True
    assert presigned(rt, project, path)["keyId"] == new_id
    assert client.get(path, query_string=old).status_code == 200
    assert client.delete(f"/rrweb/signing-keys/{old['keyId']}", headers=admin).status_code == 204
    assert client.get(path, query_string=old).status_code == 401
    assert client.get(path, query_string=presigned(rt, project, path)).status_code == 200


def test_signing_keys_are_for_admins_only(client, private):
    assert client.post("/rrweb/signing-keys", headers=private).status_code == 403


def test_another_projects_signing_key_cannot_be_retired(client, rt, admin):
    other = keys.create_project(rt, "other-" + secrets.token_hex(3))
    foreign = signing.create_key(rt, other.id)
    assert client.delete(f"/rrweb/signing-keys/{foreign.id}", headers=admin).status_code == 404


def test_cors_preflight_lets_another_origin_send_events(client):
    resp = client.options(
        f"/rrweb/recordings/{rid()}/ingest",
        headers={
            "Origin": "https://shop.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, content-encoding",
        },
    )
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "https://shop.test"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    allowed = resp.headers["Access-Control-Allow-Headers"].lower()
    assert all(h in allowed for h in ("authorization", "content-type", "content-encoding"))


def test_cors_answers_carry_the_allow_origin_header(client, public):
    resp = ingest(client, public, rid(), events(1), Origin="https://shop.test")
    assert resp.headers["Access-Control-Allow-Origin"] == "https://shop.test"
    resp = post_meta(client, {**public, "Origin": "https://shop.test"}, rid(), {"a": "b"})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://shop.test"


def test_a_key_with_allowed_origins_refuses_other_pages(client, rt, project):
    key = bearer(keys.create_key(rt, project.id, ("ingest",), origins=("https://shop.test",))[1])
    assert ingest(client, key, rid(), events(1), Origin="https://evil.test").status_code == 403
    assert ingest(client, key, rid(), events(1), Origin="https://shop.test").status_code == 204


def test_trailing_slashes_are_accepted(client, public, private):
    recording_id = rid()
    resp = client.post(f"/rrweb/recordings/{recording_id}/ingest/", json=events(1), headers=public)
    assert resp.status_code == 204
    assert client.get("/rrweb/statistics/", headers=private).status_code == 200


def test_the_openapi_document_names_the_success_codes(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert "204" in paths["/rrweb/recordings/{recording_id}/ingest"]["post"]["responses"]
    assert "204" in paths["/rrweb/recordings/{recording_id}/meta"]["post"]["responses"]


# --- lifecycle: idle finish, continue, delete -------------------------------------------------------


def backdate(rt, project, recording_id, seconds: int) -> str:  # type: ignore[no-untyped-def]
    recording, _ = replays.replay_of(rt, project.id, recording_id)
    with rt.db.transaction() as s:
        s.execute(
            update(ReplaySummary)
            .where(ReplaySummary.recording_id == recording.id)
            .values(last_ingest_at=rt.now() - timedelta(seconds=seconds))
        )
    return recording.id


def test_an_idle_replay_is_finished_with_the_span_of_its_events(rt, client, public, project):
    recording_id = rid()
    ingest(client, public, recording_id, events(3, start=1_764_700_000_000))
    ingest(client, public, recording_id, events(1, start=1_764_700_012_500))
    internal = backdate(rt, project, recording_id, rt.config.replay_idle_seconds + 1)
    assert internal in replays.finish_idle(rt, rt.config.replay_idle_seconds)
    recording, _ = replays.replay_of(rt, project.id, recording_id)
    assert (recording.state, recording.duration, recording.stop_reason) == (
        RecordingState.FINISHED,
        12.5,
        "idle",
    )


def test_a_busy_replay_is_not_finished(rt, client, public, project):
    recording_id = rid()
    ingest(client, public, recording_id, events(1))
    recording, _ = replays.replay_of(rt, project.id, recording_id)
    assert recording.id not in replays.finish_idle(rt, rt.config.replay_idle_seconds)


def test_a_later_batch_continues_a_finished_replay(rt, client, public, private, project):
    recording_id = rid()
    ingest(client, public, recording_id, events(2))
    backdate(rt, project, recording_id, rt.config.replay_idle_seconds + 1)
    replays.finish_idle(rt, rt.config.replay_idle_seconds)
    assert ingest(client, public, recording_id, events(2, start=1_764_700_900_000)).status_code == 204
    recording, _ = replays.replay_of(rt, project.id, recording_id)
    assert (recording.state, recording.duration) == (RecordingState.STARTED, None)
    assert [e["sequenceId"] for e in read_events(client, private, recording_id)] == [1, 2, 3, 4]


def test_a_deleted_replay_loses_its_blocks_and_its_id_starts_afresh(rt, client, public, private, project):
    recording_id = rid()
    ingest(client, public, recording_id, events(2))
    recording, _ = replays.replay_of(rt, project.id, recording_id)
    with rt.db.read() as s:
        keys_before = list(
            s.scalars(select(ReplayBlock.object_key).where(ReplayBlock.recording_id == recording.id))
        )
    writer = bearer(keys.create_key(rt, project.id, ("recording:write",))[1])
    assert client.delete(f"/recordings/{recording.id}", headers=writer).status_code == 200
    assert client.get(f"/rrweb/recordings/{recording_id}/events", headers=private).status_code == 404
    assert all(rt.storage.stat(k) is None for k in keys_before)
    assert client.get("/rrweb/statistics", headers=private).get_json()["totalRecordings"] == 0
    ingest(client, public, recording_id, events(1))
    assert [e["sequenceId"] for e in read_events(client, private, recording_id)] == [1]


def test_a_replay_under_legal_hold_cannot_be_deleted(rt, client, public, project):
    recording_id = rid()
    ingest(client, public, recording_id, events(1))
    recording, _ = replays.replay_of(rt, project.id, recording_id)
    admin_key = bearer(keys.create_key(rt, project.id, ("admin",))[1])
    assert client.post(f"/recordings/{recording.id}/legal-hold", headers=admin_key).status_code == 200
    assert client.delete(f"/recordings/{recording.id}", headers=admin_key).status_code == 409


def test_a_replay_emits_webhook_events_like_every_recording(rt, client, public, project):
    recording_id = rid()
    ingest(client, public, recording_id, events(2))
    internal = backdate(rt, project, recording_id, rt.config.replay_idle_seconds + 1)
    replays.finish_idle(rt, rt.config.replay_idle_seconds)
    with rt.db.read() as s:
        payloads = list(
            s.scalars(
                select(WebhookEvent.payload)
                .where(WebhookEvent.resource_id == internal)
                .order_by(WebhookEvent.seq)
            )
        )
    assert [p["recording"]["state"] for p in payloads] == ["started", "stopped", "finished"]


def test_a_connection_behind_its_stream_stores_nothing(rt, client, private, project):
    recording_id = rid()
    replays.ingest(rt, project.id, recording_id, events(2), stream=replays.StreamPosition("tab", 2, 0))
    replays.ingest(rt, project.id, recording_id, events(1), stream=replays.StreamPosition("tab", 3, 2))
    with pytest.raises(StreamConflict):  # a stale connection still thinks the stream holds 2 frames
        replays.ingest(rt, project.id, recording_id, events(1), stream=replays.StreamPosition("tab", 3, 2))
    with pytest.raises(StreamConflict):  # or that it is new
        replays.ingest(rt, project.id, recording_id, events(1), stream=replays.StreamPosition("tab", 1, 0))
    assert replays.stream_frames(rt, project.id, recording_id, "tab") == 3
    assert len(read_events(client, private, recording_id)) == 3


def test_a_finished_session_of_another_kind_is_not_reopened_by_a_batch(client, rt, project):
    key = bearer(keys.create_key(rt, project.id)[1])  # default scopes: write sessions and ingest
    session_id = client.post("/recordings", json={"description": "checkout"}, headers=key).get_json()[
        "session_id"
    ]
    assert client.post(f"/recordings/{session_id}/stop", headers=key).status_code == 200
    assert ingest(client, key, session_id, events(1)).status_code == 409
    assert client.get(f"/recordings/{session_id}", headers=key).get_json()["state"] == "finished"


def test_a_running_session_takes_a_web_replay_too(client, rt, project):
    key = bearer(keys.create_key(rt, project.id, ("recording:write", "recording:read", "ingest"))[1])
    session_id = client.post("/recordings", json={"description": "checkout"}, headers=key).get_json()[
        "session_id"
    ]
    assert ingest(client, key, session_id, events(2)).status_code == 204
    assert len(read_events(client, key, session_id)) == 2


def test_events_are_streamed_a_block_at_a_time(client, rt, private, project, monkeypatch):
    recording_id = rid()
    for i in range(10):  # each block alone fills a written piece of the answer
        big = {"type": 3, "timestamp": 1_764_700_000_000 + i, "data": {"source": 5, "text": "x" * 70_000}}
        replays.ingest(rt, project.id, recording_id, [big])
    reads: list[str] = []
    real = rt.storage.get_bytes
    monkeypatch.setattr(rt.storage, "get_bytes", lambda key: reads.append(key) or real(key))
    resp = client.get(f"/rrweb/recordings/{recording_id}/events", headers=private, buffered=False)
    pieces = iter(resp.response)
    next(pieces), next(pieces)
    assert len(reads) <= 3  # the answer is being written before the replay is read whole
    body = b"".join(pieces)
    assert len(reads) == 10 and body.endswith(b"]")
    resp.close()
