"""The sessions API (`sessions-api.txt`) and its write side, against the real database and S3."""

from __future__ import annotations

import base64
import io
import json

import pytest
import requests
from sqlalchemy import func, select

from app.models import SessionEvent, WebhookEvent
from app.services.access import keys

T0 = 1_700_000_000  # a Unix second in 2023

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def start(client, auth, **body) -> str:  # type: ignore[no-untyped-def]
    resp = client.post("/recordings", json={"description": "checkout flow", **body}, headers=auth)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["session_id"]


def click(event_id: str | None = None, ts: float = T0, **extra) -> dict:  # type: ignore[no-untyped-def]
    event = {"type": "click", "timestamp": ts, "coordinates": {"x": 100, "y": 200}, **extra}
    if event_id:
        event["id"] = event_id
    return event


def key(event_id: str, ts: float, name: str = "a") -> dict:
    return {"id": event_id, "type": "key", "timestamp": ts, "key_data": {"key": name}}


def post_events(client, auth, session_id: str, events):  # type: ignore[no-untyped-def]
    return client.post(f"/recordings/{session_id}/events", json=events, headers=auth)


def session(client, auth, session_id: str) -> dict:  # type: ignore[no-untyped-def]
    resp = client.get(f"/recordings/{session_id}", headers=auth)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return json.loads(resp.get_data(as_text=True))


@pytest.fixture
def sid(client, auth) -> str:  # type: ignore[no-untyped-def]
    return start(client, auth)


@pytest.fixture
def other_auth(other_project_key: str) -> dict[str, str]:
    return {"Authorization": other_project_key}


# --- POST /recordings ---------------------------------------------------------------------------


def test_start_answers_only_the_session_id(client, auth):
    resp = client.post("/recordings", json={"description": "demo"}, headers=auth)
    assert resp.status_code == 201
    assert list(resp.get_json()) == ["session_id"]


def test_start_without_a_body_field_is_allowed(client, auth):
    assert client.post("/recordings", json={}, headers=auth).status_code == 201


def test_start_refuses_an_unknown_field(client, auth):
    resp = client.post("/recordings", json={"descripton": "typo"}, headers=auth)
    assert resp.status_code == 422
    assert "descripton" in resp.get_json()["errors"]["eyeson"]


def test_start_refuses_a_local_file_as_media_source(client, auth):
    resp = client.post("/recordings", json={"media_source": "file:///etc/passwd"}, headers=auth)
    assert resp.status_code == 422


def test_start_takes_form_fields(client, auth):
    form = {"description": "from a form", "media_source": "push"}
    sid = client.post("/recordings", data=form, headers=auth).get_json()["session_id"]
    body = session(client, auth, sid)
    assert (body["description"], body["ingest"]) == ("from a form", "push")


def test_start_refuses_an_unknown_form_field(client, auth):
    resp = client.post("/recordings", data={"bogus": "1"}, headers=auth)
    assert resp.status_code == 422
    assert "bogus" in str(resp.get_json()["errors"])


def test_start_refuses_a_local_file_as_media_source_in_a_form(client, auth):
    resp = client.post("/recordings", data={"media_source": "file:///etc/passwd"}, headers=auth)
    assert resp.status_code == 422


def test_start_without_a_body_is_allowed(client, auth):
    assert client.post("/recordings", headers=auth).status_code == 201


def test_start_documents_its_body_as_optional_json_or_form(client):
    body = client.get("/openapi.json").get_json()["paths"]["/recordings"]["post"]["requestBody"]
    assert body["required"] is False
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(body["content"])


def test_start_needs_a_key(client):
    assert client.post("/recordings", json={"description": "x"}).status_code == 401


def test_start_needs_the_write_scope(client, rt, auth):
    project_id = keys.authenticate(rt, auth["Authorization"]).project_id
    read_only = {"Authorization": keys.create_key(rt, project_id, ("recording:read",))[1]}
    assert client.post("/recordings", json={}, headers=read_only).status_code == 403


def test_start_sends_a_recording_update_webhook_event(client, rt, auth, sid):
    with rt.db.read() as s:
        types = s.scalars(select(WebhookEvent.type).where(WebhookEvent.resource_id == sid)).all()
    assert types == ["recording_update"]


# --- GET /recordings -----------------------------------------------------------------------------


def test_list_holds_this_projects_ids_only(client, auth, other_auth, sid):
    foreign = start(client, other_auth)
    ids = client.get("/recordings", headers=auth).get_json()["recordings"]
    assert ids == [sid]
    assert foreign not in ids


def test_list_pages_with_a_link_header(client, auth):
    made = [start(client, auth) for _ in range(3)]
    first = client.get("/recordings?limit=2", headers=auth)
    assert first.get_json() == {"recordings": made[:2]}
    assert first.headers["Link"] == '<http://meetrec.test/recordings?limit=2&offset=2>; rel="next"'
    last = client.get("/recordings?limit=2&offset=2", headers=auth)
    assert last.get_json() == {"recordings": made[2:]}
    assert "Link" not in last.headers


def test_list_refuses_a_zero_limit(client, auth):
    assert client.get("/recordings?limit=0", headers=auth).status_code == 422


def test_list_leaves_deleted_recordings_out(client, auth, sid):
    client.post(f"/recordings/{sid}/stop", headers=auth)
    assert client.delete(f"/recordings/{sid}", headers=auth).status_code == 200
    assert client.get("/recordings", headers=auth).get_json() == {"recordings": []}


# --- GET /recordings/{id} ------------------------------------------------------------------------


def test_get_has_the_sessions_fields_next_to_the_eyeson_ones(client, auth, sid):
    body = session(client, auth, sid)
    assert body["id"] == sid
    assert body["description"] == "checkout flow"
    assert body["start_time"] == body["created_at"]
    assert body["end_time"] is None
    assert body["events"] == []
    assert body["links"]["download"] is None and body["state"] == "started"


def test_get_returns_events_in_timestamp_order_whatever_the_order_sent(client, auth, sid):
    post_events(client, auth, sid, [key("k3", T0 + 3), click("c1", T0 + 1), key("k2", T0 + 2.5)])
    assert [e["id"] for e in session(client, auth, sid)["events"]] == ["c1", "k2", "k3"]


def test_get_streams_a_long_session_whole_and_in_order(client, auth, sid):
    for part in range(2):  # 1,600 events, sent newest first: streamed in several writes
        batch = [key(f"k{part}-{i}", T0 + 800 * (1 - part) + (799 - i)) for i in range(800)]
        assert post_events(client, auth, sid, batch).status_code == 201
    resp = client.get(f"/recordings/{sid}", headers=auth)
    assert resp.is_streamed
    timestamps = [e["timestamp"] for e in json.loads(resp.get_data(as_text=True))["events"]]
    assert timestamps == [T0 + n for n in range(1600)]


def test_get_shows_an_event_as_the_spec_does(client, auth, sid):
    post_events(client, auth, sid, [click("c1", T0 + 5, click_data={"button": "right", "pressed": False})])
    (event,) = session(client, auth, sid)["events"]
    assert event == {
        "id": "c1",
        "type": "click",
        "timestamp": T0 + 5,
        "coordinates": {"x": 100, "y": 200},
        "click_data": {"button": "right", "pressed": False},
        "screenshot_path": None,
        "offset": None,
    }


def test_get_of_an_unknown_session_is_404(client, auth):
    assert client.get("/recordings/doesnotexist", headers=auth).status_code == 404


def test_get_of_another_projects_session_is_404(client, other_auth, sid):
    assert client.get(f"/recordings/{sid}", headers=other_auth).status_code == 404


# --- POST /recordings/{id}/events ----------------------------------------------------------------


def test_events_are_stored_and_counted(client, auth, sid):
    resp = post_events(client, auth, sid, [click("c1"), key("k1", T0 + 1)])
    assert resp.status_code == 201
    assert resp.get_json() == {"stored": 2, "duplicates": 0, "ids": ["c1", "k1"]}
    assert session(client, auth, sid)["event_count"] == 2


def test_events_without_an_id_get_a_uuid(client, auth, sid):
    (event_id,) = post_events(client, auth, sid, [click()]).get_json()["ids"]
    assert len(event_id) == 36 and event_id.count("-") == 4


def test_a_retried_batch_stores_nothing_twice(client, auth, sid):
    batch = [click("c1"), key("k1", T0 + 1)]
    post_events(client, auth, sid, batch)
    again = post_events(client, auth, sid, batch)
    assert again.status_code == 200
    assert again.get_json()["duplicates"] == 2
    body = session(client, auth, sid)
    assert len(body["events"]) == 2 and body["event_count"] == 2


def test_an_id_twice_in_one_batch_is_stored_once(client, auth, sid):
    resp = post_events(client, auth, sid, [click("same", T0), click("same", T0 + 9)])
    assert resp.get_json()["stored"] == 1 and resp.get_json()["duplicates"] == 1
    assert [e["timestamp"] for e in session(client, auth, sid)["events"]] == [T0]


def test_events_accept_an_object_with_an_events_list(client, auth, sid):
    assert post_events(client, auth, sid, {"events": [click("c1")]}).status_code == 201


@pytest.mark.parametrize(
    "event, field",
    [
        ({"type": "click", "timestamp": T0}, "coordinates"),
        ({"type": "click", "timestamp": T0, "coordinates": {"x": "1", "y": 2}}, "coordinates"),
        (click(click_data={"button": "thumb"}), "click_data"),
        ({"type": "tap", "timestamp": T0}, "type"),
        ({"timestamp": T0}, "type"),
        ({"type": "key", "key_data": {"key": "a"}}, "timestamp"),
        ({"type": "key", "timestamp": "now", "key_data": {"key": "a"}}, "timestamp"),
        ({"type": "key", "timestamp": T0 * 1000, "key_data": {"key": "a"}}, "timestamp"),
        ({"type": "key", "timestamp": True, "key_data": {"key": "a"}}, "timestamp"),
        ({"type": "key", "timestamp": T0, "key_data": {}}, "key_data"),
        ({"type": "key", "timestamp": T0, "key_data": {"key": "a" * 65}}, "key_data"),
        ({"type": "scroll", "timestamp": T0, "scroll_data": {"x": 0}}, "scroll_data"),
        ({"type": "text", "timestamp": T0, "text_data": {"text": 5}}, "text_data"),
        ({"type": "custom", "timestamp": T0}, "custom_data"),
        (click(colour="red"), "colour"),
        (click("has spaces"), "id"),
        (click(grab_frame="yes"), "grab_frame"),
        ("not an object", "_schema"),
    ],
)
def test_an_invalid_event_is_422_naming_its_index_and_field(client, auth, sid, event, field):
    resp = post_events(client, auth, sid, [click("fine"), event])
    assert resp.status_code == 422
    assert field in resp.get_json()["errors"]["events"]["1"]


def test_an_invalid_event_stores_none_of_its_batch(client, auth, sid):
    post_events(client, auth, sid, [click("fine"), {"type": "tap", "timestamp": T0}])
    body = session(client, auth, sid)
    assert body["events"] == [] and body["event_count"] == 0


def test_a_nan_timestamp_is_400(client, auth, sid):
    """NaN is no JSON: the body is refused at the door like any malformed one, and nothing is stored."""
    body = '[{"type": "key", "timestamp": NaN, "key_data": {"key": "a"}}]'
    resp = client.post(f"/recordings/{sid}/events", data=body, content_type="application/json", headers=auth)
    assert resp.status_code == 400
    assert session(client, auth, sid)["event_count"] == 0


def test_every_event_type_is_accepted(client, auth, sid):
    batch = [
        click("c"),
        key("k", T0, "Enter") | {"key_data": {"key": "Enter", "modifiers": ["ctrl"], "pressed": True}},
        {"id": "s", "type": "scroll", "timestamp": T0, "scroll_data": {"x": 0, "y": 640, "dy": 40}},
        {"id": "t", "type": "text", "timestamp": T0, "text_data": {"text": "hello", "target": "#name"}},
        {"id": "u", "type": "custom", "timestamp": T0, "name": "cart", "custom_data": {"items": [1, 2]}},
    ]
    assert post_events(client, auth, sid, batch).get_json()["stored"] == 5


def test_a_body_that_is_not_a_list_is_422(client, auth, sid):
    assert post_events(client, auth, sid, {"type": "click"}).status_code == 422


def test_malformed_json_is_400(client, auth, sid):
    resp = client.post(f"/recordings/{sid}/events", data="[{", content_type="application/json", headers=auth)
    assert resp.status_code == 400


def test_a_plain_text_body_is_415(client, auth, sid):
    resp = client.post(f"/recordings/{sid}/events", data="click", content_type="text/plain", headers=auth)
    assert resp.status_code == 415


def test_more_than_1000_events_is_413(client, auth, sid):
    assert post_events(client, auth, sid, [click() for _ in range(1001)]).status_code == 413


def test_events_on_a_stopped_session_are_409(client, auth, sid):
    client.post(f"/recordings/{sid}/stop", headers=auth)
    assert post_events(client, auth, sid, [click()]).status_code == 409


def test_events_on_an_unknown_session_are_404(client, auth):
    assert post_events(client, auth, "doesnotexist", [click()]).status_code == 404


def test_events_on_another_projects_session_are_404(client, other_auth, sid):
    assert post_events(client, other_auth, sid, [click()]).status_code == 404


def test_events_need_the_write_scope(client, rt, auth, sid):
    project_id = keys.authenticate(rt, auth["Authorization"]).project_id
    read_only = {"Authorization": keys.create_key(rt, project_id, ("recording:read",))[1]}
    assert post_events(client, read_only, sid, [click()]).status_code == 403


# --- screenshots ---------------------------------------------------------------------------------


def test_a_base64_screenshot_resolves_to_a_one_hour_link(client, auth, sid):
    post_events(client, auth, sid, [click("c1", screenshot=base64.b64encode(PNG).decode())])
    link = session(client, auth, sid)["events"][0]["screenshot_path"]
    assert "X-Amz-Expires=3600" in link
    assert requests.get(link, timeout=10).content == PNG


def test_a_data_url_screenshot_is_stored(client, auth, sid):
    shot = "data:image/png;base64," + base64.b64encode(PNG).decode()
    post_events(client, auth, sid, [click("c1", screenshot=shot)])
    link = session(client, auth, sid)["events"][0]["screenshot_path"]
    assert requests.get(link, timeout=10).content == PNG


def test_a_multipart_screenshot_is_stored(client, auth, sid):
    form = {"events": json.dumps([click("c1", screenshot="shot-1")]), "shot-1": (io.BytesIO(PNG), "s.png")}
    resp = client.post(
        f"/recordings/{sid}/events", data=form, headers=auth, content_type="multipart/form-data"
    )
    assert resp.status_code == 201, resp.get_json()
    link = session(client, auth, sid)["events"][0]["screenshot_path"]
    assert requests.get(link, timeout=10).content == PNG


def test_a_multipart_screenshot_naming_a_missing_part_is_422(client, auth, sid):
    form = {"events": json.dumps([click("c1", screenshot="nope")])}
    resp = client.post(
        f"/recordings/{sid}/events", data=form, headers=auth, content_type="multipart/form-data"
    )
    assert resp.status_code == 422


def test_a_screenshot_that_is_not_an_image_is_422(client, auth, sid):
    resp = post_events(client, auth, sid, [click(screenshot=base64.b64encode(b"<svg/>").decode())])
    assert resp.status_code == 422
    assert "screenshot" in resp.get_json()["errors"]["events"]["0"]


def test_a_screenshot_that_is_not_base64_is_422(client, auth, sid):
    assert post_events(client, auth, sid, [click(screenshot="!!not base64!!")]).status_code == 422


def test_a_screenshot_past_the_limit_is_413(client, auth, sid, rt):
    big = PNG + b"\0" * rt.config.max_screenshot_bytes
    assert (
        post_events(client, auth, sid, [click(screenshot=base64.b64encode(big).decode())]).status_code == 413
    )


# --- GET / DELETE /recordings/{id}/event/{event_id} ----------------------------------------------


def test_get_event(client, auth, sid):
    post_events(client, auth, sid, [key("k1", T0 + 1, "space")])
    resp = client.get(f"/recordings/{sid}/event/k1", headers=auth)
    assert resp.status_code == 200
    assert resp.get_json()["key_data"] == {"key": "space"}


def test_get_of_an_unknown_event_is_404(client, auth, sid):
    assert client.get(f"/recordings/{sid}/event/nope", headers=auth).status_code == 404


def test_get_of_an_event_through_another_session_is_404(client, auth, sid):
    post_events(client, auth, sid, [click("c1")])
    other = start(client, auth)
    assert client.get(f"/recordings/{other}/event/c1", headers=auth).status_code == 404


def test_get_of_another_projects_event_is_404(client, auth, other_auth, sid):
    post_events(client, auth, sid, [click("c1")])
    assert client.get(f"/recordings/{sid}/event/c1", headers=other_auth).status_code == 404


def test_delete_event_answers_the_session_without_it(client, auth, sid):
    post_events(client, auth, sid, [click("c1"), key("k1", T0 + 1)])
    resp = client.delete(f"/recordings/{sid}/event/c1", headers=auth)
    assert resp.status_code == 200
    body = json.loads(resp.get_data(as_text=True))
    assert [e["id"] for e in body["events"]] == ["k1"]
    assert body["event_count"] == 1 and body["description"] == "checkout flow"


def test_delete_of_a_missing_event_is_404(client, auth, sid):
    assert client.delete(f"/recordings/{sid}/event/nope", headers=auth).status_code == 404


def test_delete_of_another_projects_event_is_404_and_keeps_it(client, auth, other_auth, sid):
    post_events(client, auth, sid, [click("c1")])
    assert client.delete(f"/recordings/{sid}/event/c1", headers=other_auth).status_code == 404
    assert client.get(f"/recordings/{sid}/event/c1", headers=auth).status_code == 200


def test_delete_event_removes_its_screenshot(client, auth, sid):
    post_events(client, auth, sid, [click("c1", screenshot=base64.b64encode(PNG).decode())])
    link = session(client, auth, sid)["events"][0]["screenshot_path"]
    client.delete(f"/recordings/{sid}/event/c1", headers=auth)
    assert requests.get(link, timeout=10).status_code == 404


def test_get_event_shows_a_whole_second_timestamp_and_coordinates_as_integers(client, auth, sid):
    post_events(client, auth, sid, [click("c1", T0 + 5)])
    body = json.loads(client.get(f"/recordings/{sid}/event/c1", headers=auth).get_data(as_text=True))
    assert body["timestamp"] == T0 + 5 and isinstance(body["timestamp"], int)
    assert body["coordinates"] == {"x": 100, "y": 200}
    assert all(isinstance(v, int) for v in body["coordinates"].values())


def test_get_event_keeps_a_fractional_timestamp(client, auth, sid):
    post_events(client, auth, sid, [click("c1", T0 + 0.25)])
    assert client.get(f"/recordings/{sid}/event/c1", headers=auth).get_json()["timestamp"] == T0 + 0.25


def hold(client, rt, auth, session_id: str) -> None:  # type: ignore[no-untyped-def]
    project_id = keys.authenticate(rt, auth["Authorization"]).project_id
    admin = {"Authorization": keys.create_key(rt, project_id, ("admin",))[1]}
    assert client.post(f"/recordings/{session_id}/legal-hold", headers=admin).status_code == 200


def test_delete_event_under_legal_hold_is_409_like_deleting_the_recording(client, rt, auth, sid):
    post_events(client, auth, sid, [click("c1")])
    hold(client, rt, auth, sid)
    resp = client.delete(f"/recordings/{sid}/event/c1", headers=auth)
    assert resp.status_code == 409
    assert resp.get_json() == client.delete(f"/recordings/{sid}", headers=auth).get_json()
    assert session(client, auth, sid)["event_count"] == 1


def test_delete_event_under_legal_hold_keeps_its_screenshot(client, rt, auth, sid):
    post_events(client, auth, sid, [click("c1", screenshot=base64.b64encode(PNG).decode())])
    hold(client, rt, auth, sid)
    client.delete(f"/recordings/{sid}/event/c1", headers=auth)
    link = client.get(f"/recordings/{sid}/event/c1", headers=auth).get_json()["screenshot_path"]
    assert requests.get(link, timeout=10).content == PNG


def test_a_duplicate_event_leaves_the_stored_screenshot_alone(client, auth, sid):
    post_events(client, auth, sid, [click("c1", screenshot=base64.b64encode(PNG).decode())])
    other = PNG[:-4] + b"\0\0\0\0"  # still a PNG to the sniffer, other bytes
    again = post_events(client, auth, sid, [click("c1", screenshot=base64.b64encode(other).decode())])
    assert again.status_code == 200 and again.get_json()["duplicates"] == 1
    link = client.get(f"/recordings/{sid}/event/c1", headers=auth).get_json()["screenshot_path"]
    assert requests.get(link, timeout=10).content == PNG


def test_a_duplicate_event_with_a_screenshot_stores_no_object(client, rt, auth, sid):
    from app.services.core import recordings

    post_events(client, auth, sid, [click("c1", screenshot=base64.b64encode(PNG).decode())])
    post_events(client, auth, sid, [click("c1", screenshot=base64.b64encode(PNG).decode())])
    shots = [k for k in rt.storage.iter_keys(recordings.object_prefix(sid)) if "/screenshots/" in k]
    assert len(shots) == 1


# --- actions, active sessions, stop --------------------------------------------------------------


def test_actions_are_clicks_and_keypresses_with_details(client, auth, sid):
    post_events(
        client,
        auth,
        sid,
        [
            key("k1", T0 + 2, "space"),
            click("c1", T0 + 1),
            {"id": "x", "type": "custom", "timestamp": T0, "custom_data": 1},
        ],
    )
    actions = client.get(f"/recordings/{sid}/actions", headers=auth).get_json()["actions"]
    assert [(a["id"], a["type"]) for a in actions] == [("c1", "click"), ("k1", "keypress")]
    assert actions[0]["details"] == {"coordinates": {"x": 100, "y": 200}, "button": "left", "pressed": True}
    assert actions[1]["details"] == {"key": "space"}


def test_actions_of_an_unknown_session_are_404(client, auth):
    assert client.get("/recordings/nope/actions", headers=auth).status_code == 404


def test_active_sessions_lists_running_ones_only(client, auth, other_auth):
    running, stopped = start(client, auth), start(client, auth)
    start(client, other_auth)
    client.post(f"/recordings/{stopped}/stop", headers=auth)
    assert client.get("/active_sessions", headers=auth).get_json() == {"recordings": [running]}


def test_stop_finishes_a_session_without_video(client, auth, sid):
    resp = client.post(f"/recordings/{sid}/stop", headers=auth)
    assert resp.status_code == 200
    assert resp.get_json() == {"success": True, "session_id": sid, "state": "finished"}
    body = session(client, auth, sid)
    assert body["end_time"] is not None and body["duration"] is not None


def test_stop_twice_is_a_no_op(client, auth, sid):
    client.post(f"/recordings/{sid}/stop", headers=auth)
    again = client.post(f"/recordings/{sid}/stop", headers=auth)
    assert again.status_code == 200 and again.get_json()["state"] == "finished"


def test_stop_of_an_unknown_session_is_404(client, auth):
    assert client.post("/recordings/nope/stop", headers=auth).status_code == 404


def test_stop_of_another_projects_session_is_404(client, auth, other_auth, sid):
    assert client.post(f"/recordings/{sid}/stop", headers=other_auth).status_code == 404
    assert session(client, auth, sid)["state"] == "started"


def test_stop_sends_stopped_and_finished_webhook_events(client, rt, auth, sid):
    client.post(f"/recordings/{sid}/stop", headers=auth)
    with rt.db.read() as s:
        payloads = s.scalars(
            select(WebhookEvent.payload).where(WebhookEvent.resource_id == sid).order_by(WebhookEvent.seq)
        ).all()
    assert [p["recording"]["state"] for p in payloads] == ["started", "stopped", "finished"]


def test_deleting_a_session_deletes_its_events(client, rt, auth, sid):
    post_events(client, auth, sid, [click("c1"), key("k1", T0)])
    client.post(f"/recordings/{sid}/stop", headers=auth)
    client.delete(f"/recordings/{sid}", headers=auth)
    with rt.db.read() as s:
        assert s.scalar(select(func.count()).where(SessionEvent.recording_id == sid)) == 0


def test_the_openapi_document_describes_the_sessions_api(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in ("/recordings", "/recordings/{recording_id}/events", "/active_sessions"):
        assert path in paths
    assert "/recordings/{recording_id}/event/{event_id}" in paths
