"""Hostile input answers a clear 4xx in the one error shape, never a 500, costs little and changes nothing:
nesting, huge integers, lone surrogates, huge bodies of tiny values, deep form keys, huge offsets."""

from __future__ import annotations

import io
import json
import tracemalloc
import uuid

import marshmallow as ma
import pytest
from sqlalchemy import func, select

from app.api.recordings.schemas import FlagsArgs
from app.api.schemas import RecordingLinksSchema
from app.models import Room
from tests.helpers import join_room
from tests.test_bad_input import assert_error
from tests.test_sessions_api import T0, post_events, session, start

JSON = {"Content-Type": "application/json"}
# Every JSON route an API key reaches: the `eyeson` location, the `json` one, and `request.get_json()`.
JSON_ROUTES = [
    ("POST", "/rooms"),
    ("POST", "/recordings"),
    ("POST", "/recordings/{sid}/events"),
    ("PATCH", "/recordings/{sid}"),
    ("POST", "/webhooks"),
    ("POST", "/rrweb/recordings/{uuid}/meta"),
]


def room_count(rt) -> int:  # type: ignore[no-untyped-def]
    with rt.db.read() as s:
        return s.scalar(select(func.count()).select_from(Room))


def send(client, auth, method: str, path: str, body: bytes | str, sid: str):  # type: ignore[no-untyped-def]
    url = path.format(sid=sid, uuid=uuid.uuid4())
    return client.open(url, method=method, data=body, headers={**auth, **JSON})


@pytest.fixture
def sid(client, auth) -> str:  # type: ignore[no-untyped-def]
    return start(client, auth)


# --- nesting ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
@pytest.mark.parametrize("depth", [65, 100_000], ids=["past-the-limit", "past-the-recursion-limit"])
def test_deeply_nested_json_is_400_on_every_json_route(client, auth, rt, sid, method, path, depth):
    before = room_count(rt)
    body = '{"a":' + "[" * depth + "]" * depth + "}"
    resp = assert_error(send(client, auth, method, path, body, sid), 400)
    assert "nests deeper" in resp["message"]
    assert room_count(rt) == before


def test_nesting_up_to_the_limit_is_taken(client, auth, sid):
    event = {"type": "custom", "timestamp": T0, "custom_data": json.loads("[" * 60 + "]" * 60)}
    assert post_events(client, auth, sid, [event]).status_code == 201


# --- a huge body of tiny values -----------------------------------------------------------------


def test_a_huge_body_of_empty_arrays_is_413_without_building_them(client, auth, rt, sid):
    limit = rt.config.max_events_body_bytes
    body = b"[" + b"[]," * (limit // 3 - 2) + b"[]]"
    tracemalloc.start()
    try:
        resp = client.post(f"/recordings/{sid}/events", data=body, headers={**auth, **JSON})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_error(resp, 413)
    # Parsed, these 11 million lists cost ~790 MiB; the request (body copies included) must stay far below.
    assert peak < 200 * 2**20, f"peak {peak >> 20} MiB"
    assert session(client, auth, sid)["event_count"] == 0


def test_events_for_an_unknown_recording_are_404_before_the_body_is_parsed(client, auth):
    resp = client.post("/recordings/no-such-recording/events", data="[{", headers={**auth, **JSON})
    assert_error(resp, 404)


# --- numbers ------------------------------------------------------------------------------------

HUGE = "9" * 400


@pytest.mark.parametrize(
    "event",
    [
        f'{{"type": "click", "timestamp": {HUGE}, "coordinates": {{"x": 1, "y": 2}}}}',
        f'{{"type": "click", "timestamp": {T0}, "coordinates": {{"x": {HUGE}, "y": 2}}}}',
    ],
    ids=["timestamp", "coordinates"],
)
def test_a_400_digit_integer_in_an_event_is_400(client, auth, sid, event):
    resp = client.post(f"/recordings/{sid}/events", data=f"[{event}]", headers={**auth, **JSON})
    assert "64 bits" in assert_error(resp, 400)["message"]
    assert session(client, auth, sid)["event_count"] == 0


def test_a_huge_integer_that_reaches_the_event_parser_is_422_not_an_overflow():
    from app.api.sessions.events import parse_batch
    from app.errors import Unprocessable

    with pytest.raises(Unprocessable):
        parse_batch([{"type": "click", "timestamp": 10**400, "coordinates": {"x": 1, "y": 2}}], None, 100)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_nan_in_custom_data_is_400_and_the_session_stays_readable(client, auth, sid, constant):
    body = f'[{{"type": "custom", "timestamp": {T0}, "custom_data": {{"v": {constant}}}}}]'
    resp = client.post(f"/recordings/{sid}/events", data=body, headers={**auth, **JSON})
    assert "json" in assert_error(resp, 400)["errors"]
    assert session(client, auth, sid)["event_count"] == 0


def test_nan_in_a_rooms_custom_fields_is_400_and_makes_no_room(client, auth):
    body = '{"id": "nan-room", "user": {"name": "Jane"}, "options": {"custom_fields": {"a": NaN}}}'
    assert_error(client.post("/rooms", data=body, headers={**auth, **JSON}), 400)
    assert client.get("/rooms/nan-room/recordings", headers=auth).status_code == 404


@pytest.mark.parametrize("query", ["offset=9223372036854775808", "offset=1000000001", "limit=10001"])
def test_a_huge_limit_or_offset_is_422(client, auth, query):
    assert_error(client.get(f"/recordings?{query}", headers=auth), 422)


def test_the_largest_offset_is_taken(client, auth):
    resp = client.get("/recordings?offset=1000000000&limit=10", headers=auth)
    assert resp.status_code == 200 and resp.get_json()["recordings"] == []


# --- Rails-style keys ---------------------------------------------------------------------------

DEEP_KEY = "user" + "[a]" * 950


def test_a_form_key_nested_950_deep_is_400(client, auth, rt):
    before = room_count(rt)
    resp = client.post("/rooms", data={DEEP_KEY: "x", "user[name]": "A"}, headers=auth)
    assert "nests deeper" in assert_error(resp, 400)["message"]
    assert room_count(rt) == before


def test_the_same_deep_key_in_query_and_form_is_400(client, auth, rt):
    before = room_count(rt)
    resp = client.post(f"/rooms?{DEEP_KEY}=q", data={DEEP_KEY: "f", "user[name]": "A"}, headers=auth)
    assert_error(resp, 400)
    assert room_count(rt) == before


def test_a_deep_key_in_a_json_body_is_400(client, auth):
    assert_error(client.post("/rooms", json={DEEP_KEY: "x", "user": {"name": "A"}}, headers=auth), 400)


# --- lone surrogates: refused at the door, on every input path -----------------------------------

LONE = "\ud800"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/rooms", {"id": LONE, "user": {"name": "A"}}),
        ("/rooms", {"name": f"x{LONE}", "user": {"name": "A"}}),
        ("/rooms", {"user": {"name": "A"}, "options": {"custom_fields": {"k": LONE}}}),
        ("/rooms", {"user": {"name": "A"}, "options": {"custom_fields": {LONE: "v"}}}),
        ("/recordings", {"description": LONE}),
    ],
    ids=["room-id", "room-name", "custom-field-value", "custom-field-key", "description"],
)
def test_a_lone_surrogate_in_a_json_body_is_400_and_nothing_is_made(client, auth, rt, path, body):
    before = room_count(rt)
    resp = assert_error(client.post(path, json=body, headers=auth), 400)
    assert "surrogate" in resp["message"]
    assert room_count(rt) == before


def test_a_lone_surrogate_in_an_event_text_is_400_and_the_session_stays_readable(client, auth, sid):
    event = {"type": "text", "timestamp": T0, "text_data": {"text": f"hi {LONE}"}}
    assert_error(post_events(client, auth, sid, [event]), 400)
    assert session(client, auth, sid)["event_count"] == 0


def test_a_lone_surrogate_in_a_multipart_events_field_is_400(client, auth, sid):
    events = json.dumps([{"type": "text", "timestamp": T0, "text_data": {"text": LONE}}])
    resp = client.post(
        f"/recordings/{sid}/events", data={"events": events}, headers=auth, content_type="multipart/form-data"
    )
    assert_error(resp, 400)


def test_a_surrogate_pair_is_a_character_and_is_taken(client, auth, sid):
    event = {"type": "text", "timestamp": T0, "text_data": {"text": "\ud83d\ude00"}}
    assert post_events(client, auth, sid, [event]).status_code == 201
    assert session(client, auth, sid)["events"][0]["text_data"]["text"] == "\U0001f600"


@pytest.mark.parametrize(
    "send_name",
    [
        lambda c, a: c.post("/rooms?name=%ED%A0%80&user[name]=A", headers=a),
        lambda c, a: c.post("/rooms", data=b"name=%ED%A0%80&user%5Bname%5D=A", headers=a,
                            content_type="application/x-www-form-urlencoded"),
        lambda c, a: c.post("/rooms", data={"name": (io.BytesIO(b"\xed\xa0\x80"), ""), "user[name]": "A"},
                            headers=a, content_type="multipart/form-data"),
    ],
    ids=["query", "form", "multipart"],
)  # fmt: skip
def test_surrogate_bytes_in_query_form_or_multipart_never_make_an_unreadable_room(client, auth, send_name):
    resp = send_name(client, auth)
    assert resp.status_code in (201, 400, 422), resp.get_data(as_text=True)
    if resp.status_code == 201:
        resp.get_data().decode("utf-8")  # the name was stored as something UTF-8 can write
        assert client.get(f"/rooms/{resp.get_json()['access_key']}").status_code == 200


# --- schema lies --------------------------------------------------------------------------------


def test_a_deleted_recordings_links_match_its_schema(client, auth, sid):
    body = client.delete(f"/recordings/{sid}", headers=auth).get_json()
    assert set(body["links"]) == set(RecordingLinksSchema().fields)
    assert body["links"]["self"].endswith(f"/recordings/{sid}")
    assert body["links"]["download"] is None and body["links"]["poster"] is None


@pytest.mark.parametrize("value", [0, 1, 0.0, "yes", "on", "1"])
def test_a_flag_must_be_a_real_boolean(value):
    with pytest.raises(ma.ValidationError, match="boolean"):
        FlagsArgs().load({"persist": value})


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), (False, False), ("true", True), ("False", False)]
)
def test_a_flag_takes_json_booleans_and_form_true_or_false(value, expected):
    assert FlagsArgs().load({"persist": value}) == {"persist": expected}


def test_legal_hold_0_is_422_and_changes_nothing(client, rt, auth, sid):
    assert_error(client.patch(f"/recordings/{sid}", json={"legal_hold": 0}, headers=auth), 422)
    assert_error(client.patch(f"/recordings/{sid}", json={"persist": 1}, headers=auth), 422)
    assert session(client, auth, sid)["persist"] is False


def test_persist_as_a_form_field_true_is_taken(client, auth, sid):
    resp = client.patch(f"/recordings/{sid}", data={"persist": "true"}, headers=auth)
    assert resp.status_code == 200 and resp.get_json()["persist"] is True


@pytest.mark.parametrize("room_id", ["a/b", "a\x00b", "a b", "a%2Fb", "a?b", "x" * 201, "a\n"])
def test_a_room_id_outside_the_safe_charset_is_422_and_makes_no_room(client, auth, rt, room_id):
    before = room_count(rt)
    resp = client.post("/rooms", json={"id": room_id, "user": {"name": "A"}}, headers=auth)
    assert "id" in assert_error(resp, 422)["errors"]["eyeson"]
    assert room_count(rt) == before


def test_a_room_id_of_the_safe_charset_is_addressable(client, auth):
    room_id = "Team.standup_2026-12:02@hq+x=[1]~"
    join_room(client, auth, room_id)
    assert client.get(f"/rooms/{room_id}/recordings", headers=auth).status_code == 200


def test_a_deeply_nested_control_sized_websocket_frame_is_not_a_control_message():
    from app.api.rrweb.socket import CONTROL_MAX_CHARS, control_type

    assert control_type('{"a":' + "[" * (CONTROL_MAX_CHARS - 5)) is None
