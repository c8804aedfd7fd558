"""posthog-js's ingest calls over HTTP: remote config, flags, capture in every compression posthog-js
uses, snapshot events packed by posthog-js, other events kept with the replay, refusals, token rules."""

from __future__ import annotations

import base64
import gzip
import json
import secrets
from typing import Any
from urllib.parse import quote

import pytest

from app.errors import NotFound
from app.services.access import keys
from app.services.interactions import metadata, replays
from tests import rrweb_session

T0 = 1_764_700_000_000


@pytest.fixture
def project(rt):  # type: ignore[no-untyped-def]
    return keys.create_project(rt, "phc-" + secrets.token_hex(3))


@pytest.fixture
def token(rt, project) -> str:  # type: ignore[no-untyped-def]
    return keys.public_token(rt, project.id)


def session_id() -> str:
    return "0193a6f0-" + secrets.token_hex(8)


def snapshot(token: str, session: str, events: list[dict[str, Any]], uuid: str | None = None) -> dict:
    return {
        "event": "$snapshot",
        "uuid": uuid or secrets.token_hex(16),
        "properties": {
            "token": token,
            "distinct_id": "visitor-1",
            "$session_id": session,
            "$window_id": "w-1",
            "$snapshot_data": events,
            "$snapshot_bytes": 100,
        },
    }


def pageview(token: str, session: str | None, uuid: str | None = None) -> dict:
    props: dict[str, Any] = {"token": token, "distinct_id": "visitor-1", "$current_url": "https://shop.test/"}
    if session is not None:
        props["$session_id"] = session
    return {
        "event": "$pageview",
        "uuid": uuid or secrets.token_hex(16),
        "timestamp": "2025-12-02T18:26:41.000Z",
        "properties": props,
    }


def rrweb_events() -> list[dict[str, Any]]:
    return rrweb_session.load()


def packed(text: str) -> str:
    """What posthog-js's `gzipToString` makes of a JSON text: gzip bytes as a latin-1 string."""
    return gzip.compress(text.encode()).decode("latin-1")


def post_gzip(client, path: str, body: Any):  # type: ignore[no-untyped-def]
    raw = gzip.compress(json.dumps(body).encode())
    return client.post(path, data=raw, content_type="text/plain", headers={"Origin": "http://127.0.0.2:9"})


def stored(rt, project, session: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    recording, _ = replays.replay_of(rt, project.id, session)
    return [json.loads(line) for line in replays.iter_event_lines(rt, recording.id, session)]


# --- remote config and flags ----------------------------------------------------------------------


def test_remote_config_turns_session_recording_on_towards_meetrec(client, token):
    resp = client.get(f"/array/{token}/config")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["sessionRecording"]["endpoint"] == "/s/"
    assert body["supportedCompression"] == ["gzip-js", "base64"]
    assert body["hasFeatureFlags"] is False


def test_remote_config_script_files_the_config_under_the_token(client, token):
    resp = client.get(f"/array/{token}/config.js")
    assert resp.status_code == 200 and resp.mimetype == "text/javascript"
    assert f"window._POSTHOG_REMOTE_CONFIG[{json.dumps(token)}]" in resp.get_data(as_text=True)


def test_an_unknown_token_gets_no_config(client):
    resp = client.get("/array/phc_unknown/config")
    assert resp.status_code == 401
    assert resp.get_json()["type"] == "authentication_error"


def test_flags_answer_no_flags_and_the_recording_config(client, token):
    resp = client.post("/flags/?v=2&config=true", json={"token": token, "distinct_id": "visitor-1"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["featureFlags"] == {} and body["errorsWhileComputingFlags"] is False
    assert body["sessionRecording"]["endpoint"] == "/s/"


def test_decide_answers_as_flags_for_older_clients(client, token):
    data = base64.b64encode(json.dumps({"token": token}).encode()).decode()
    resp = client.post(
        "/decide/?v=3", data=f"data={quote(data)}", content_type="application/x-www-form-urlencoded"
    )
    assert resp.status_code == 200 and resp.get_json()["sessionRecording"]["endpoint"] == "/s/"


def test_answers_let_the_calling_page_read_them(client, token):
    resp = client.options(
        "/s/", headers={"Origin": "http://127.0.0.2:9", "Access-Control-Request-Method": "POST"}
    )
    assert resp.headers["Access-Control-Allow-Origin"] == "http://127.0.0.2:9"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]


# --- capture --------------------------------------------------------------------------------------


def test_gzipped_snapshots_become_the_sessions_replay_with_its_facts(rt, client, project, token):
    session = session_id()
    resp = post_gzip(client, "/s/", [snapshot(token, session, rrweb_events())])
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["stored"] == {session: len(rrweb_events())}
    _, summary = replays.replay_of(rt, project.id, session)
    assert summary.click_count == rrweb_session.FACTS["click_count"]
    assert summary.keypress_count == rrweb_session.FACTS["keypress_count"]
    assert resp.headers["Access-Control-Allow-Origin"] == "http://127.0.0.2:9"


def test_a_gzip_body_is_read_without_the_compression_parameter(rt, client, project, token):
    session = session_id()
    assert (
        post_gzip(client, "/s/?compression=gzip-js", [snapshot(token, session, rrweb_events())]).status_code
        == 200
    )
    assert post_gzip(client, "/s/", [snapshot(token, session_id(), rrweb_events())]).status_code == 200


def test_base64_form_bodies_are_read(rt, client, project, token):
    session = session_id()
    data = base64.b64encode(json.dumps([snapshot(token, session, rrweb_events())]).encode()).decode()
    resp = client.post(
        "/s/?compression=base64", data=f"data={quote(data)}", content_type="application/x-www-form-urlencoded"
    )
    assert resp.status_code == 200, resp.get_json()
    assert len(stored(rt, project, session)) == len(rrweb_events())


def test_plain_json_batches_with_api_key_are_read(rt, client, project, token):
    session = session_id()
    resp = client.post("/batch/", json={"api_key": token, "batch": [pageview(token, session)]})
    assert resp.status_code == 200
    assert [e["data"]["tag"] for e in stored(rt, project, session)] == ["$pageview"]


def test_events_packed_by_posthog_js_are_stored_as_rrweb_made_them(rt, client, project, token):
    full = {"node": {"type": 0, "childNodes": [], "id": 1}, "initialOffset": {"left": 0, "top": 0}}
    mutation = {
        "source": 0,
        "texts": [],
        "attributes": [{"id": 5, "attributes": {"class": "x"}}],
        "removes": [],
        "adds": [{"parentId": 1, "nextId": None, "node": {"type": 3, "textContent": "hi", "id": 9}}],
    }
    sent = [
        {"type": 4, "timestamp": T0, "data": {"href": "https://shop.test/", "width": 800, "height": 600}},
        {"type": 2, "timestamp": T0 + 1, "data": packed(json.dumps(full)), "cv": "2024-10"},
        {
            "type": 3,
            "timestamp": T0 + 2,
            "cv": "2024-10",
            "data": {
                "source": 0,
                **{k: packed(json.dumps(mutation[k])) for k in ("texts", "attributes", "removes", "adds")},
            },
        },
    ]
    session = session_id()
    assert post_gzip(client, "/s/", [snapshot(token, session, sent)]).status_code == 200
    events = stored(rt, project, session)
    assert events[1]["data"] == full and "cv" not in events[1]
    assert events[2]["data"] == mutation


def test_an_unknown_packing_version_is_refused_and_nothing_stored(rt, client, project, token):
    session = session_id()
    sent = [{"type": 2, "timestamp": T0, "data": packed("{}"), "cv": "2031-01"}]
    resp = post_gzip(client, "/s/", [snapshot(token, session, sent)])
    assert resp.status_code == 400 and "compression version" in resp.get_json()["detail"]
    with pytest.raises(NotFound):
        replays.replay_of(rt, project.id, session)


def test_other_events_are_kept_with_the_replay_as_custom_events(rt, client, project, token):
    session = session_id()
    uuid = secrets.token_hex(16)
    assert post_gzip(client, "/e/", [pageview(token, session, uuid)]).status_code == 200
    [event] = stored(rt, project, session)
    assert event["type"] == 5 and event["data"]["tag"] == "$pageview"
    assert event["data"]["payload"]["uuid"] == uuid
    assert event["timestamp"] == 1_764_700_001_000


def test_a_retried_request_stores_nothing_twice(rt, client, project, token):
    session = session_id()
    body = [snapshot(token, session, rrweb_events(), uuid="retry-1")]
    assert post_gzip(client, "/s/", body).status_code == 200
    assert post_gzip(client, "/s/", body).status_code == 200
    assert len(stored(rt, project, session)) == len(rrweb_events())


def test_the_visitors_distinct_id_becomes_the_recordings_person(rt, client, project, token):
    session = session_id()
    post_gzip(client, "/s/", [snapshot(token, session, rrweb_events())])
    [meta] = [m for m in metadata.meta_of(rt, project.id, session) if m.key == "distinct_id"]
    assert metadata.value_of(meta) == "visitor-1"


def test_events_without_a_session_are_refused_in_the_answer(rt, client, project, token):
    session = session_id()
    resp = post_gzip(client, "/e/", [pageview(token, None, "lost-1"), pageview(token, session)])
    assert resp.status_code == 200
    [refused] = resp.get_json()["refused"]
    assert refused["index"] == 0 and refused["uuid"] == "lost-1" and "$session_id" in refused["reason"]


def test_a_request_with_nothing_to_keep_is_a_clear_400(client, token):
    resp = post_gzip(client, "/e/", [pageview(token, None)])
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["type"] == "validation_error" and "$session_id" in body["detail"]


def test_an_event_naming_another_projects_token_is_refused(rt, client, project, token):
    other = keys.public_token(rt, keys.create_project(rt, "phc-o-" + secrets.token_hex(3)).id)
    session = session_id()
    resp = post_gzip(client, "/e/", [pageview(token, session), pageview(other, session_id())])
    assert resp.status_code == 200
    assert [r["index"] for r in resp.get_json()["refused"]] == [1]


def test_capture_without_a_token_is_401(client):
    resp = post_gzip(client, "/e/", [{"event": "$pageview", "properties": {"$session_id": "s-1"}}])
    assert resp.status_code == 401 and resp.get_json()["type"] == "authentication_error"


def test_a_private_key_without_ingest_is_403(rt, client, project):
    private = keys.create_key(rt, project.id, ("recording:read",))[1]
    resp = post_gzip(client, "/e/", [pageview(private, session_id())])
    assert resp.status_code == 403


def test_a_token_bound_to_origins_is_refused_elsewhere(rt, client, project):
    bound = keys.create_key(rt, project.id, ("ingest",), origins=("http://127.0.0.3:8",))[1]
    resp = post_gzip(client, "/e/", [pageview(bound, session_id())])  # sent from http://127.0.0.2:9
    assert resp.status_code == 403


@pytest.mark.parametrize(
    ("body", "compression"),
    [
        (b"\x1f\x8b\x08\x00garbage", None),
        (b"{not json", None),
        (b"data=%%%", None),
        (b"[]", None),
        (b'"text"', None),
        (b"[1]", "lz64"),
    ],
)
def test_unreadable_bodies_are_clear_4xx_in_posthogs_shape(client, body, compression):
    path = "/e/" + (f"?compression={compression}" if compression else "")
    resp = client.post(path, data=body, content_type="text/plain")
    assert resp.status_code in (400, 415)
    assert set(resp.get_json()) == {"type", "code", "detail", "attr"}


def test_rotating_the_token_retires_the_old_one(rt, client, project, token):
    admin = keys.create_key(rt, project.id, ("admin",))[1]
    resp = client.patch(
        f"/api/projects/{project.id}/reset_token/", headers={"Authorization": f"Bearer {admin}"}
    )
    assert resp.status_code == 200
    fresh = resp.get_json()["api_token"]
    assert fresh != token and fresh.startswith("phc_")
    assert client.get(f"/array/{token}/config").status_code == 401
    assert client.get(f"/array/{fresh}/config").status_code == 200


def test_rotating_the_token_needs_project_write(rt, client, project, token):
    reader = keys.create_key(rt, project.id, ("recording:read",))[1]
    resp = client.patch("/api/projects/@current/reset_token", headers={"Authorization": f"Bearer {reader}"})
    assert resp.status_code == 403
    assert client.get(f"/array/{token}/config").status_code == 200


# --- the files posthog-js loads -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/static/array.js", "/static/lazy-recorder.js", "/static/1.449.2/lazy-recorder.js"]
)
def test_posthog_js_files_are_served_where_posthog_js_asks(client, path):
    resp = client.get(path)
    assert resp.status_code == 200 and resp.mimetype == "text/javascript"
    assert len(resp.get_data()) > 100_000


def test_the_tokens_array_js_carries_its_config(client, token):
    resp = client.get(f"/array/{token}/array.js")
    assert resp.status_code == 200
    text = resp.get_data(as_text=True)
    assert text.startswith("(function(){window._POSTHOG_REMOTE_CONFIG") and len(text) > 100_000


def test_the_apps_own_static_files_are_still_served(client):
    assert client.get("/static/vendor/rrweb/rrweb.min.js").status_code == 200


def test_matching_events_finds_captured_events_by_their_own_uuid(rt, client, project, token):
    session, uuid = session_id(), secrets.token_hex(16)
    meta = {"type": 4, "timestamp": T0, "data": {"href": "https://shop.test/", "width": 800, "height": 600}}
    post_gzip(client, "/s/", [snapshot(token, session, [meta]), pageview(token, session, uuid)])
    reader = keys.create_key(rt, project.id, ("recording:read",))[1]
    resp = client.get(
        "/api/projects/@current/session_recordings/matching_events",
        query_string={"session_ids": json.dumps([session]), "events": json.dumps([{"id": "$pageview"}])},
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert [m["uuid"] for m in resp.get_json()["results"]] == [uuid]  # not also the rrweb Meta event


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2025-12-02T18:26:41", 1_764_700_001_000),  # no zone: UTC
        ("2025-12-02T19:26:41+01:00", 1_764_700_001_000),
        (1_764_700_001_000, 1_764_700_001_000),
        ("0001-01-01T00:00:00Z", None),  # before the epoch: when it arrived
        ("yesterday", None),
    ],
)
def test_an_events_timestamp_is_read_or_replaced_by_its_arrival(
    rt, client, project, token, timestamp, expected
):
    session = session_id()
    event = pageview(token, session) | {"timestamp": timestamp}
    assert post_gzip(client, "/e/", [event]).status_code == 200
    [stored_event] = stored(rt, project, session)
    assert (
        stored_event["timestamp"] == expected if expected else stored_event["timestamp"] > 1_764_700_001_000
    )
