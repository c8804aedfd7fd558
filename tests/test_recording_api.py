"""Starting and stopping a room's recording: every documented status code."""

from __future__ import annotations

import dataclasses

import pytest

from app.api.schemas import RecordingSchema
from app.factory import create_app
from tests.helpers import join_room

SYNTHETIC = {"options[media_source]": "synthetic://meeting"}


@pytest.fixture
def room(client, auth):  # type: ignore[no-untyped-def]
    """A running meeting with the synthetic source; shut down afterwards so no capture outlives the test."""
    body = join_room(client, auth, "rec-room", **SYNTHETIC)
    yield body
    client.delete("/rooms/rec-room", headers=auth)


def test_start_answers_201_without_body(client, room):
    resp = client.post(f"/rooms/{room['access_key']}/recording")
    assert resp.status_code == 201
    assert resp.get_data() == b""


def test_start_names_the_new_recording_in_location(client, room, auth):
    resp = client.post(f"/rooms/{room['access_key']}/recording")
    (rec,) = client.get("/rooms/rec-room/recordings", headers=auth).get_json()
    assert resp.headers["Location"] == f"http://meetrec.test/recordings/{rec['id']}"


def test_start_documents_the_location_header(client):
    doc = client.get("/openapi.json").get_json()["paths"]["/rooms/{access_key}/recording"]["post"]
    assert "Location" in doc["responses"]["201"]["headers"]


def test_start_with_unknown_access_key_is_404(client):
    assert client.post("/rooms/ak_unknown/recording").status_code == 404


def test_start_when_recording_not_available_is_405(client, auth):
    body = join_room(client, auth, "no-rec", **SYNTHETIC, **{"options[recording_available]": "false"})
    resp = client.post(f"/rooms/{body['access_key']}/recording")
    assert resp.status_code == 405
    assert "not available" in resp.get_json()["message"]


def test_second_start_while_recording_is_406(client, room):
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    resp = client.post(f"/rooms/{room['access_key']}/recording")
    assert resp.status_code == 406
    assert "already running" in resp.get_json()["message"]


def test_start_in_a_room_without_media_source_is_406(client, auth):
    body = join_room(client, auth, "silent")
    resp = client.post(f"/rooms/{body['access_key']}/recording")
    assert resp.status_code == 406
    assert "media source" in resp.get_json()["message"]


def test_start_after_shutdown_is_410(client, auth, room):
    client.delete("/rooms/rec-room", headers=auth)
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 410


def test_stop_answers_200_with_the_recording(client, room, auth):
    client.post(f"/rooms/{room['access_key']}/recording")
    resp = client.delete(f"/rooms/{room['access_key']}/recording")
    assert resp.status_code == 200
    rec = resp.get_json()
    assert rec["state"] == "started"
    assert rec["links"]["download"] is None
    assert client.get(f"/recordings/{rec['id']}", headers=auth).status_code == 200


def test_the_stop_answer_is_the_documented_recording_schema(client, room):
    client.post(f"/rooms/{room['access_key']}/recording")
    body = client.delete(f"/rooms/{room['access_key']}/recording").get_json()
    assert RecordingSchema().dump(body) == body  # written without the schema, exactly as it would write


def test_stop_when_nothing_records_is_404(client, room):
    assert client.delete(f"/rooms/{room['access_key']}/recording").status_code == 404


def test_stop_with_unknown_access_key_is_404(client):
    assert client.delete("/rooms/ak_unknown/recording").status_code == 404


def test_a_new_recording_can_start_after_stop(client, room):
    key = room["access_key"]
    client.post(f"/rooms/{key}/recording")
    client.delete(f"/rooms/{key}/recording")
    assert client.post(f"/rooms/{key}/recording").status_code == 201


def test_start_appears_in_the_room_recordings_list_at_start_state(client, room, auth):
    client.post(f"/rooms/{room['access_key']}/recording")
    listed = client.get("/rooms/rec-room/recordings", headers=auth).get_json()
    assert len(listed) == 1
    assert listed[0]["duration"] is None
    assert listed[0]["links"]["download"] is None
    assert listed[0]["user"]["name"] == "Jane Doe"
    assert listed[0]["room"]["id"] == "rec-room"


def test_room_recordings_of_unknown_room_is_404(client, auth):
    assert client.get("/rooms/nope/recordings", headers=auth).status_code == 404


def test_room_recordings_needs_a_key(client, room):
    assert client.get("/rooms/rec-room/recordings").status_code == 401


def test_start_choosing_a_media_source_by_access_key_alone_is_403(client, room, auth):
    resp = client.post(f"/rooms/{room['access_key']}/recording", data={"media_source": "push"})
    assert resp.status_code == 403
    assert "room:write" in resp.get_json()["message"]
    assert client.get("/rooms/rec-room/recordings", headers=auth).get_json() == []


def test_start_naming_the_rooms_own_media_source_by_access_key_is_201(client, room):
    resp = client.post(f"/rooms/{room['access_key']}/recording", data={"media_source": "synthetic://meeting"})
    assert resp.status_code == 201


def test_start_with_a_room_write_key_may_choose_the_media_source(client, room, auth):
    resp = client.post(f"/rooms/{room['access_key']}/recording", data={"media_source": "push"}, headers=auth)
    assert resp.status_code == 201
    (rec,) = client.get("/rooms/rec-room/recordings", headers=auth).get_json()
    assert rec["ingest"] == "push"


def test_another_projects_key_cannot_choose_the_media_source(client, room, other_project_key):
    headers = {"Authorization": other_project_key}
    resp = client.post(
        f"/rooms/{room['access_key']}/recording", data={"media_source": "push"}, headers=headers
    )
    assert resp.status_code == 403


def test_a_key_without_room_write_cannot_choose_the_media_source(client, rt, room, auth):
    from app.services.access import keys

    project_id = keys.authenticate(rt, auth["Authorization"]).project_id
    reader = {"Authorization": keys.create_key(rt, project_id, ("recording:read",))[1]}
    resp = client.post(
        f"/rooms/{room['access_key']}/recording", data={"media_source": "push"}, headers=reader
    )
    assert resp.status_code == 403


@pytest.mark.parametrize(
    "source", ["http://169.254.169.254/latest", "srt://10.0.0.8:9000", "rtmp://192.168.1.2/x"]
)
def test_start_with_private_media_source_is_422(client, room, auth, source):
    resp = client.post(f"/rooms/{room['access_key']}/recording", data={"media_source": source}, headers=auth)
    assert resp.status_code == 422
    assert "media_source" in resp.get_json()["errors"]


def test_default_settings_refuse_a_loopback_source(rt, auth):
    """The suite allow-lists loopback to serve test sources; out of the box it is refused."""
    app = create_app(dataclasses.replace(rt.config, url_allowlist=()))
    client = app.test_client()
    room = join_room(client, auth, "ssrf-room")
    resp = client.post(
        f"/rooms/{room['access_key']}/recording", data={"media_source": "http://127.0.0.1:9/x"}, headers=auth
    )
    assert resp.status_code == 422
    assert "MEETREC_URL_ALLOWLIST" in resp.get_json()["message"]


@pytest.mark.parametrize("source", ["file:///etc/passwd", "concat:a|b", "/etc/passwd", "data:,x"])
def test_room_with_forbidden_source_scheme_is_422(client, auth, source):
    resp = client.post("/rooms", data={"user[name]": "A", "options[media_source]": source}, headers=auth)
    assert resp.status_code == 422


def test_unknown_recording_is_404(client, auth):
    assert client.get("/recordings/0123456789abcdef01234567", headers=auth).status_code == 404


def test_recording_of_another_project_is_404(client, room, other_project_key, auth):
    client.post(f"/rooms/{room['access_key']}/recording")
    rec = client.delete(f"/rooms/{room['access_key']}/recording").get_json()
    resp = client.get(f"/recordings/{rec['id']}", headers={"Authorization": other_project_key})
    assert resp.status_code == 404
    resp = client.delete(f"/recordings/{rec['id']}", headers={"Authorization": other_project_key})
    assert resp.status_code == 404


def test_recording_without_key_is_401(client):
    assert client.get("/recordings/0123456789abcdef01234567").status_code == 401
