"""Bad input answers a clear 4xx in the one error shape, never a 500, and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.models import Room

ERROR_KEYS = {"code", "status", "message", "errors"}


def assert_error(resp, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == ERROR_KEYS
    assert body["code"] == status
    return body


def room_count(rt) -> int:  # type: ignore[no-untyped-def]
    with rt.db.read() as s:
        return s.scalar(select(func.count()).select_from(Room))


def test_malformed_json_is_400(client, auth, rt):
    before = room_count(rt)
    resp = client.post("/rooms", data="{not json", headers={**auth, "Content-Type": "application/json"})
    body = assert_error(resp, 400)
    assert "JSON" in str(body["errors"])
    assert room_count(rt) == before


def test_json_array_body_is_400(client, auth):
    resp = client.post("/rooms", data="[1, 2]", headers={**auth, "Content-Type": "application/json"})
    assert_error(resp, 400)


def test_missing_user_name_is_422_naming_the_field(client, auth, rt):
    before = room_count(rt)
    body = assert_error(client.post("/rooms", data={"id": "x"}, headers=auth), 422)
    assert "user" in str(body["errors"])
    assert room_count(rt) == before


def test_empty_user_name_is_422(client, auth):
    assert_error(client.post("/rooms", data={"user[name]": ""}, headers=auth), 422)


def test_option_with_wrong_type_is_422(client, auth, rt):
    before = room_count(rt)
    resp = client.post(
        "/rooms", data={"user[name]": "A", "options[recording_available]": "maybe"}, headers=auth
    )
    body = assert_error(resp, 422)
    assert "recording_available" in str(body["errors"])
    assert room_count(rt) == before


def test_user_as_a_string_is_422(client, auth):
    assert_error(client.post("/rooms", json={"user": "Jane"}, headers=auth), 422)


def test_oversize_body_is_413(client, auth, config):
    big = "x" * (config.max_body_bytes + 10)
    resp = client.post("/rooms", data={"user[name]": "A", "id": big}, headers=auth)
    assert_error(resp, 413)


def test_unsupported_method_is_405_in_error_shape(client, auth):
    assert_error(client.put("/rooms", headers=auth), 405)


def test_unknown_path_is_404_in_error_shape(client):
    assert_error(client.get("/no/such/path"), 404)


@pytest.mark.parametrize("page", ["0", "-1", "abc"])
def test_bad_page_is_422(client, auth, page):
    client.post("/rooms", data={"id": "pg", "user[name]": "A"}, headers=auth)
    assert_error(client.get(f"/rooms/pg/recordings?page={page}", headers=auth), 422)


def test_bad_started_at_is_422(client, auth):
    client.post("/rooms", data={"id": "sa", "user[name]": "A"}, headers=auth)
    assert_error(client.get("/rooms/sa/recordings?started_at=yesterday", headers=auth), 422)
