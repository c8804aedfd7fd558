"""The Eyeson rooms surface: join, read, shut down."""

from __future__ import annotations

import pytest

from tests.helpers import join_room


def test_join_with_form_fields_answers_eyeson_shape(client, auth):
    body = join_room(client, auth, "standup", **{"user[id]": "u-1", "user[avatar]": "https://x/a.png"})
    assert body["access_key"].startswith("ak_")
    assert body["ready"] is True
    assert body["room"]["id"] == "standup"
    assert set(body["room"]) >= {"id", "name", "ready", "started_at", "shutdown", "guest_token"}
    assert body["room"]["shutdown"] is False
    assert body["user"]["name"] == "Jane Doe"
    assert body["user"]["id"] == "u-1"
    assert set(body["links"]) == {"self", "gui", "guest_join", "websocket"}


def test_join_with_json_body(client, auth):
    resp = client.post("/rooms", json={"id": "j", "user": {"name": "Ann"}}, headers=auth)
    assert resp.status_code == 201
    assert resp.get_json()["user"]["name"] == "Ann"


def test_join_with_query_params(client, auth):
    resp = client.post("/rooms?id=q&user[name]=Bob&options[widescreen]=true", headers=auth)
    assert resp.status_code == 201
    assert resp.get_json()["room"]["options"] == {"widescreen": True}


def test_bearer_authorization_is_accepted(client, project_key):
    resp = client.post(
        "/rooms", json={"user": {"name": "A"}}, headers={"Authorization": f"Bearer {project_key}"}
    )
    assert resp.status_code == 201


def test_joining_a_running_room_gives_a_new_access_key_for_the_same_meeting(client, auth):
    first = join_room(client, auth, "shared")
    second = join_room(client, auth, "shared", **{"user[name]": "Other"})
    assert first["access_key"] != second["access_key"]
    assert first["room"]["guest_token"] == second["room"]["guest_token"]
    assert first["room"]["started_at"] == second["room"]["started_at"]


def test_eyeson_options_are_kept_and_unknown_keys_ignored(client, auth):
    body = join_room(
        client,
        auth,
        "opts",
        **{
            "options[layout]": "auto",
            "options[sfu_mode]": "disabled",
            "options[custom_fields][locale]": "de",
            "options[no_such_option]": "x",
            "unknown_top_level": "y",
        },
    )
    assert body["room"]["options"] == {
        "layout": "auto",
        "sfu_mode": "disabled",
        "custom_fields": {"locale": "de"},
    }


def test_get_room_by_access_key(client, auth):
    body = join_room(client, auth, "getme")
    resp = client.get(f"/rooms/{body['access_key']}")
    assert resp.status_code == 200
    assert resp.get_json()["room"]["id"] == "getme"


SECRET_SOURCE = "rtmp://user:secret@127.0.0.1/live?token=t0k3n"


def test_get_room_by_access_key_hides_the_sources_credentials(client, auth):
    body = join_room(client, auth, "cam", **{"options[media_source]": SECRET_SOURCE})
    shown = client.get(f"/rooms/{body['access_key']}").get_json()["room"]["media_source"]
    assert shown == "rtmp://***@127.0.0.1/live?token=***"


def test_join_answers_the_source_without_its_credentials(client, auth):
    body = join_room(client, auth, "cam-2", **{"options[media_source]": SECRET_SOURCE})
    assert "secret" not in body["room"]["media_source"] and "t0k3n" not in body["room"]["media_source"]


def test_get_room_with_unknown_access_key_is_404(client):
    resp = client.get("/rooms/ak_nope")
    assert resp.status_code == 404
    assert resp.get_json()["code"] == 404


def test_shutdown_makes_access_keys_gone(client, auth):
    body = join_room(client, auth, "bye")
    assert client.delete("/rooms/bye", headers=auth).status_code == 204
    assert client.get(f"/rooms/{body['access_key']}").status_code == 410
    assert client.post(f"/rooms/{body['access_key']}/recording").status_code == 410
    assert client.delete(f"/rooms/{body['access_key']}/recording").status_code == 410


def test_shutdown_of_unknown_room_is_404(client, auth):
    assert client.delete("/rooms/never-started", headers=auth).status_code == 404


def test_room_id_can_start_a_new_meeting_after_shutdown(client, auth):
    old = join_room(client, auth, "again")
    client.delete("/rooms/again", headers=auth)
    new = join_room(client, auth, "again")
    assert new["room"]["guest_token"] != old["room"]["guest_token"]
    assert client.get(f"/rooms/{old['access_key']}").status_code == 410
    assert client.get(f"/rooms/{new['access_key']}").status_code == 200


def test_shutdown_of_another_projects_room_is_404(client, auth, other_project_key):
    join_room(client, auth, "mine")
    assert client.delete("/rooms/mine", headers={"Authorization": other_project_key}).status_code == 404


@pytest.mark.parametrize("headers", [{}, {"Authorization": "mr_wrong"}, {"Authorization": "Bearer "}])
def test_join_without_a_valid_key_is_401(client, headers):
    resp = client.post("/rooms", json={"user": {"name": "A"}}, headers=headers)
    assert resp.status_code == 401
    assert resp.get_json()["status"] == "Unauthorized"


def test_key_without_room_scope_is_403(client, rt):
    from app.services.access import keys

    project = keys.create_project(rt, "readonly")
    _, raw = keys.create_key(rt, project.id, ("recording:read",))
    resp = client.post("/rooms", json={"user": {"name": "A"}}, headers={"Authorization": raw})
    assert resp.status_code == 403
