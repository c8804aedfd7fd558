"""The PostHog dialect over HTTP: projects, session recordings, snapshots, sharing, playlists, auth,
errors in PostHog's shape, and tenant isolation."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from app.api.posthog import presenters
from app.services.access import keys
from app.services.interactions import metadata, replays
from tests import rrweb_session

T0 = 1_764_700_000_000


def page_events(href: str, start: int = T0, clicks: int = 2) -> list[dict[str, Any]]:
    meta = {"type": 4, "timestamp": start, "data": {"href": href, "width": 800, "height": 600}}
    moves = [{"type": 3, "timestamp": start + 100, "data": {"source": 1, "positions": []}}]
    taps = [
        {"type": 3, "timestamp": start + 200 + i, "data": {"source": 2, "type": 2, "id": 5, "x": 10, "y": 10}}
        for i in range(clicks)
    ]
    typing = [{"type": 3, "timestamp": start + 1000, "data": {"source": 5, "text": "a", "id": 7}}]
    log = {
        "type": 6,
        "timestamp": start + 2000,
        "data": {"plugin": "rrweb/console@1", "payload": {"level": "error", "payload": ['"boom"']}},
    }
    return [meta, *moves, *taps, *typing, log]


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def project(rt):  # type: ignore[no-untyped-def]
    return keys.create_project(rt, "ph-" + secrets.token_hex(3))


@pytest.fixture
def reader(rt, project) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(keys.create_key(rt, project.id, ("recording:read",), name="reader")[1])


@pytest.fixture
def writer(rt, project) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(keys.create_key(rt, project.id, ("recording:read", "recording:write"), name="writer")[1])


@pytest.fixture
def stranger(rt) -> dict[str, str]:  # type: ignore[no-untyped-def]
    other = keys.create_project(rt, "ph-other-" + secrets.token_hex(3))
    return bearer(keys.create_key(rt, other.id, ("admin",))[1])


@pytest.fixture
def replay(rt, project) -> str:  # type: ignore[no-untyped-def]
    """A recording of two blocks: a page with two clicks, then a second page."""
    external = "sess-" + secrets.token_hex(6)
    replays.ingest(rt, project.id, external, page_events("https://shop.test/cart?x=1"))
    replays.ingest(rt, project.id, external, page_events("https://shop.test/pay", start=T0 + 4000, clicks=0))
    return external


def url(project, tail: str = "") -> str:  # type: ignore[no-untyped-def]
    return f"/api/projects/{project.id}/{tail}"


def is_posthog_error(body: dict, kind: str, code: str) -> bool:
    return body["type"] == kind and body["code"] == code and "detail" in body and "attr" in body


# --- projects and auth ----------------------------------------------------------------------------


def test_projects_list_the_keys_project_with_its_public_token(client, project, reader):
    body = client.get("/api/projects/", headers=reader).get_json()
    assert body["count"] == 1 and body["next"] is None
    assert body["results"][0]["id"] == project.id
    assert body["results"][0]["api_token"].startswith("phc_")


def test_the_api_token_is_the_same_on_every_read_and_can_only_ingest(client, rt, project, reader):
    token = client.get(f"/api/projects/{project.id}", headers=reader).get_json()["api_token"]
    assert client.get(f"/api/projects/{project.id}/", headers=reader).get_json()["api_token"] == token
    key = keys.authenticate(rt, token)
    assert key is not None and key.scope_set == {"ingest"}


def test_current_names_the_keys_project(client, project, reader, replay):
    assert client.get("/api/projects/@current/", headers=reader).get_json()["id"] == project.id
    listed = client.get("/api/projects/@current/session_recordings/", headers=reader).get_json()
    assert [r["id"] for r in listed["results"]] == [replay]


def test_another_projects_id_is_not_found_in_posthogs_shape(client, project, stranger, replay):
    resp = client.get(url(project, "session_recordings/"), headers=stranger)
    assert resp.status_code == 404 and is_posthog_error(resp.get_json(), "invalid_request", "not_found")


def test_another_projects_recording_is_not_found_through_its_own_project(client, stranger, replay):
    resp = client.get(f"/api/projects/@current/session_recordings/{replay}", headers=stranger)
    assert resp.status_code == 404


def test_no_key_is_unauthenticated_in_posthogs_shape(client, project):
    resp = client.get(url(project, "session_recordings"))
    assert resp.status_code == 401
    assert is_posthog_error(resp.get_json(), "authentication_error", "not_authenticated")


def test_a_public_ingest_key_cannot_read_recordings(client, rt, project):
    public = bearer(keys.create_key(rt, project.id, ("ingest",))[1])
    resp = client.get(url(project, "session_recordings"), headers=public)
    assert resp.status_code == 403
    assert is_posthog_error(resp.get_json(), "authentication_error", "permission_denied")


def test_a_key_with_posthogs_read_scope_reads_but_cannot_delete(client, rt, project, replay):
    scoped = bearer(keys.create_key(rt, project.id, ("session_recording:read",))[1])
    assert client.get(url(project, f"session_recordings/{replay}"), headers=scoped).status_code == 200
    assert client.delete(url(project, f"session_recordings/{replay}"), headers=scoped).status_code == 403


# --- listing and the recording object -------------------------------------------------------------


def test_the_list_pages_with_absolute_next_and_previous_links(client, rt, project, reader):
    for _ in range(5):
        replays.ingest(rt, project.id, "p-" + secrets.token_hex(4), page_events("https://a.test/"))
    first = client.get(url(project, "session_recordings?limit=2"), headers=reader).get_json()
    assert first["count"] == 5 and len(first["results"]) == 2 and first["previous"] is None
    assert first["next"].startswith(f"{rt.config.public_url}/api/projects/") and "offset=2" in first["next"]
    second = client.get(first["next"], headers=reader).get_json()
    last = client.get(second["next"], headers=reader).get_json()
    assert len(last["results"]) == 1 and last["next"] is None and "offset=2" in last["previous"]
    seen = [r["id"] for r in first["results"] + second["results"] + last["results"]]
    assert len(set(seen)) == 5


def test_a_limit_out_of_range_is_a_validation_error_naming_the_field(client, project, reader):
    resp = client.get(url(project, "session_recordings?limit=0"), headers=reader)
    assert resp.status_code == 400
    body = resp.get_json()
    assert is_posthog_error(body, "validation_error", "invalid_input") and body["attr"] == "limit"


def test_the_recording_carries_facts_computed_at_ingest(client, project, reader, replay):
    resp = client.get(url(project, f"session_recordings/{replay}/"), headers=reader)
    rec = resp.get_json()
    assert resp.status_code == 200, rec
    assert rec["click_count"] == 2 and rec["keypress_count"] == 2
    assert rec["mouse_activity_count"] == 4 and rec["console_error_count"] == 2
    assert rec["start_url"] == "https://shop.test/cart?x=1"
    assert rec["start_time"] == "2025-12-02T18:26:40Z" and rec["recording_duration"] == 6
    assert rec["active_seconds"] + rec["inactive_seconds"] == 6
    assert rec["ongoing"] is True and rec["snapshot_source"] == "web"
    assert rec["retention_period_days"] == 14 and rec["recording_ttl"] in (13, 14)


def test_distinct_id_and_person_come_from_the_metadata(client, rt, project, reader, replay):
    metadata.set_meta(rt, project.id, replay, {"distinct_id": "user-7", "email": "ann@shop.test"})
    rec = client.get(url(project, f"session_recordings/{replay}"), headers=reader).get_json()
    assert rec["distinct_id"] == "user-7"
    assert rec["person"]["distinct_ids"] == ["user-7"] and rec["person"]["name"] == "ann@shop.test"


def test_a_read_marks_the_recording_viewed_by_that_key(client, project, reader, writer, replay):
    listed = client.get(url(project, "session_recordings"), headers=reader).get_json()["results"]
    assert listed[0]["viewed"] is False
    client.get(url(project, f"session_recordings/{replay}"), headers=reader)
    assert client.get(url(project, "session_recordings"), headers=reader).get_json()["results"][0]["viewed"]
    other = client.get(url(project, f"session_recordings/{replay}"), headers=writer).get_json()
    assert other["viewed"] is True and other["viewers"] == ["reader"]


def test_patch_viewed_answers_success(client, project, writer, replay):
    resp = client.patch(url(project, f"session_recordings/{replay}"), json={"viewed": True}, headers=writer)
    assert resp.status_code == 200 and resp.get_json() == {"success": True}


def test_patch_without_viewed_or_analyzed_is_a_validation_error(client, project, writer, replay):
    resp = client.patch(url(project, f"session_recordings/{replay}"), json={}, headers=writer)
    assert resp.status_code == 400 and resp.get_json()["type"] == "validation_error"


def test_delete_answers_204_then_the_recording_is_gone(client, project, writer, replay):
    assert client.delete(url(project, f"session_recordings/{replay}/"), headers=writer).status_code == 204
    assert client.get(url(project, f"session_recordings/{replay}"), headers=writer).status_code == 404


def test_persist_exempts_the_recording_from_retention(client, project, writer, replay):
    resp = client.post(url(project, f"session_recordings/{replay}/persist/"), headers=writer)
    assert resp.status_code == 200 and resp.get_json() == {"success": True}
    rec = client.get(url(project, f"session_recordings/{replay}"), headers=writer).get_json()
    assert rec["retention_period_days"] is None and rec["expiry_time"] is None


# --- snapshots ------------------------------------------------------------------------------------


def test_snapshot_sources_list_one_blob_v2_per_block(client, project, reader, replay):
    body = client.get(url(project, f"session_recordings/{replay}/snapshots"), headers=reader).get_json()
    assert [(s["source"], s["blob_key"]) for s in body["sources"]] == [("blob_v2", "0"), ("blob_v2", "1")]
    assert body["sources"][0]["start_timestamp"] == "2025-12-02T18:26:40Z"


def test_a_range_of_blocks_is_json_lines_of_window_and_event(client, project, reader, replay):
    query = "source=blob_v2&start_blob_key=0&end_blob_key=1"
    resp = client.get(url(project, f"session_recordings/{replay}/snapshots?{query}"), headers=reader)
    assert resp.status_code == 200 and resp.mimetype == "application/jsonl"
    lines = [json.loads(line) for line in resp.data.decode().splitlines()]
    assert len(lines) == 10 and all(window == replay for window, _ in lines)
    assert lines[0][1]["data"]["href"] == "https://shop.test/cart?x=1"


@pytest.mark.parametrize(
    "query",
    [
        "source=blob",
        "source=blob_v2&start_blob_key=0",
        "source=blob_v2&start_blob_key=a&end_blob_key=1",
        "source=blob_v2&start_blob_key=0&end_blob_key=100",
    ],
)
def test_bad_snapshot_parameters_are_validation_errors(client, project, reader, replay, query):
    resp = client.get(url(project, f"session_recordings/{replay}/snapshots?{query}"), headers=reader)
    assert resp.status_code == 400 and resp.get_json()["type"] == "validation_error"


def test_a_block_past_the_last_is_not_found(client, project, reader, replay):
    query = "source=blob_v2&start_blob_key=1&end_blob_key=2"
    resp = client.get(url(project, f"session_recordings/{replay}/snapshots?{query}"), headers=reader)
    assert resp.status_code == 404 and resp.get_json()["code"] == "not_found"


# --- smart endpoints ------------------------------------------------------------------------------


def test_similar_sessions_rank_the_same_journey_first(client, rt, project, reader, replay):
    twin, stranger = "twin-" + secrets.token_hex(4), "odd-" + secrets.token_hex(4)
    replays.ingest(rt, project.id, twin, page_events("https://shop.test/cart?y=2"))
    replays.ingest(rt, project.id, twin, page_events("https://shop.test/pay", start=T0 + 4000, clicks=0))
    replays.ingest(rt, project.id, stranger, page_events("https://blog.test/post", clicks=40))
    body = client.get(url(project, f"session_recordings/{replay}/similar_sessions?limit=2"), headers=reader)
    results = body.get_json()["results"]
    assert [r["id"] for r in results] == [twin, stranger]
    assert results[0]["similarity"] > results[1]["similarity"]


def test_summarize_is_deterministic_and_says_no_model_wrote_it(client, project, reader, replay):
    first = client.post(url(project, f"session_recordings/{replay}/summarize/"), headers=reader).get_json()
    again = client.post(url(project, f"session_recordings/{replay}/summarize"), headers=reader).get_json()
    assert first == again and "no language model" in first["generated_by"]
    assert [p["url"] for p in first["pages"]] == ["https://shop.test/cart?x=1", "https://shop.test/pay"]
    assert len(first["errors"]) == 2


def test_matching_events_needs_exactly_one_session(client, project, reader, replay):
    events = json.dumps([{"id": "$pageview"}])
    two = json.dumps([replay, replay + "x"])
    for query in (f"events={events}", f"session_ids={two}&events={events}"):
        resp = client.get(url(project, f"session_recordings/matching_events?{query}"), headers=reader)
        assert resp.status_code == 400 and resp.get_json()["detail"] == "Must specify exactly one session_id"


def test_matching_events_needs_an_event_filter(client, project, reader, replay):
    query = f"session_ids={json.dumps([replay])}"
    resp = client.get(url(project, f"session_recordings/matching_events?{query}"), headers=reader)
    assert resp.status_code == 400 and "event" in resp.get_json()["detail"]


def test_matching_events_finds_the_page_views(client, project, reader, replay):
    query = f"session_ids={json.dumps([replay])}&events={json.dumps([{'id': '$pageview'}])}"
    body = client.get(url(project, f"session_recordings/matching_events/?{query}"), headers=reader).get_json()
    assert [e["timestamp"] for e in body["results"]] == ["2025-12-02T18:26:40Z", "2025-12-02T18:26:44Z"]
    assert len({e["uuid"] for e in body["results"]}) == 2


def test_properties_need_session_ids(client, project, reader):
    resp = client.get(url(project, "session_recordings/properties"), headers=reader)
    assert resp.status_code == 400 and resp.get_json()["type"] == "validation_error"


def test_properties_give_the_first_page(client, project, reader, replay):
    query = f"session_ids={json.dumps([replay, 'unknown'])}"
    body = client.get(url(project, f"session_recordings/properties?{query}"), headers=reader).get_json()
    assert body["results"] == [
        {
            "id": replay,
            "properties": {
                "$current_url": "https://shop.test/cart?x=1",
                "$host": "shop.test",
                "$pathname": "/cart",
            },
        }
    ]


# --- sharing --------------------------------------------------------------------------------------


def share(client, project, writer, replay, enabled: bool) -> dict:  # type: ignore[no-untyped-def]
    resp = client.patch(
        url(project, f"session_recordings/{replay}/sharing"), json={"enabled": enabled}, headers=writer
    )
    assert resp.status_code == 200
    return resp.get_json()


def test_sharing_is_off_until_turned_on(client, project, reader, replay):
    body = client.get(url(project, f"session_recordings/{replay}/sharing/"), headers=reader).get_json()
    assert body["enabled"] is False and body["access_token"] is None and body["created_at"]


def test_a_sharing_token_opens_that_recording_and_its_snapshots(client, project, writer, replay):
    token = share(client, project, writer, replay, True)["access_token"]
    rec = client.get(url(project, f"session_recordings/{replay}?sharing_access_token={token}"))
    assert rec.status_code == 200 and set(rec.get_json()) == {
        "id",
        "recording_duration",
        "start_time",
        "end_time",
    }
    query = f"sharing_access_token={token}&source=blob_v2&start_blob_key=0&end_blob_key=0"
    assert client.get(url(project, f"session_recordings/{replay}/snapshots?{query}")).status_code == 200


def test_a_sharing_token_opens_nothing_else(client, rt, project, writer, replay):
    other = "other-" + secrets.token_hex(4)
    replays.ingest(rt, project.id, other, page_events("https://shop.test/"))
    token = share(client, project, writer, replay, True)["access_token"]
    assert (
        client.get(url(project, f"session_recordings/{other}?sharing_access_token={token}")).status_code
        == 404
    )
    assert client.get(url(project, f"session_recordings?sharing_access_token={token}")).status_code == 401
    assert (
        client.delete(url(project, f"session_recordings/{replay}?sharing_access_token={token}")).status_code
        == 401
    )


def test_turning_sharing_off_revokes_the_token_at_once(client, project, writer, replay):
    token = share(client, project, writer, replay, True)["access_token"]
    share(client, project, writer, replay, False)
    resp = client.get(url(project, f"session_recordings/{replay}?sharing_access_token={token}"))
    assert resp.status_code == 401 and resp.get_json()["type"] == "authentication_error"
    again = share(client, project, writer, replay, True)["access_token"]
    assert again != token


def test_refreshing_the_token_retires_the_old_one(client, project, writer, replay):
    token = share(client, project, writer, replay, True)["access_token"]
    fresh = client.post(url(project, f"session_recordings/{replay}/sharing/refresh"), headers=writer)
    new = fresh.get_json()["access_token"]
    assert new != token
    assert (
        client.get(url(project, f"session_recordings/{replay}?sharing_access_token={token}")).status_code
        == 401
    )
    assert (
        client.get(url(project, f"session_recordings/{replay}?sharing_access_token={new}")).status_code == 200
    )


# --- playlists ------------------------------------------------------------------------------------


def make_playlist(client, project, writer, **fields) -> dict:  # type: ignore[no-untyped-def]
    resp = client.post(
        url(project, "session_recording_playlists/"), json={"type": "collection", **fields}, headers=writer
    )
    assert resp.status_code == 201
    return resp.get_json()


def test_a_playlist_is_created_with_a_short_id(client, project, writer):
    body = make_playlist(client, project, writer, name="Checkout bugs")
    assert len(body["short_id"]) == 8 and body["name"] == "Checkout bugs" and body["deleted"] is False
    listed = client.get(url(project, "session_recording_playlists"), headers=writer).get_json()
    assert listed["count"] == 1 and listed["results"][0]["short_id"] == body["short_id"]


def test_a_playlist_needs_a_type(client, project, writer):
    resp = client.post(url(project, "session_recording_playlists"), json={"name": "x"}, headers=writer)
    assert resp.status_code == 400 and resp.get_json()["attr"] == "type"


def test_a_playlist_is_updated_and_soft_deleted(client, project, writer):
    short = make_playlist(client, project, writer)["short_id"]
    path = url(project, f"session_recording_playlists/{short}/")
    assert client.patch(path, json={"name": "Renamed", "pinned": True}, headers=writer).get_json()["pinned"]
    assert client.get(path, headers=writer).get_json()["name"] == "Renamed"
    assert client.delete(path, headers=writer).status_code == 204
    assert client.get(path, headers=writer).status_code == 404
    assert client.patch(path, json={"deleted": False}, headers=writer).status_code == 200
    assert client.get(path, headers=writer).status_code == 200


def test_recordings_are_added_listed_and_removed(client, project, writer, replay):
    short = make_playlist(client, project, writer)["short_id"]
    item = url(project, f"session_recording_playlists/{short}/recordings/{replay}")
    resp = client.post(item + "/", headers=writer)
    assert resp.status_code == 200 and resp.get_json() == {"success": True}
    listed = client.get(url(project, f"session_recording_playlists/{short}/recordings/"), headers=writer)
    body = listed.get_json()
    assert [r["id"] for r in body["results"]] == [replay] and body["has_next"] is False
    counts = client.get(url(project, f"session_recording_playlists/{short}"), headers=writer).get_json()
    assert counts["recordings_counts"]["collection"]["count"] == 1
    assert client.delete(item, headers=writer).status_code == 204
    assert client.delete(item, headers=writer).status_code == 404


def test_an_unknown_recording_cannot_be_added(client, project, writer):
    short = make_playlist(client, project, writer)["short_id"]
    resp = client.post(url(project, f"session_recording_playlists/{short}/recordings/nope"), headers=writer)
    assert resp.status_code == 404


def test_a_filters_playlist_holds_no_recordings(client, project, writer, replay):
    short = make_playlist(client, project, writer, type="filters")["short_id"]
    resp = client.post(
        url(project, f"session_recording_playlists/{short}/recordings/{replay}"), headers=writer
    )
    assert resp.status_code == 400


def test_another_projects_playlist_is_not_found(client, project, writer, stranger):
    short = make_playlist(client, project, writer)["short_id"]
    resp = client.get(f"/api/projects/@current/session_recording_playlists/{short}", headers=stranger)
    assert resp.status_code == 404


# --- the recorded session -------------------------------------------------------------------------


@pytest.fixture
def recorded(client, rt, project) -> str:  # type: ignore[no-untyped-def]
    """The recorded two-page session, ingested over HTTP in three batches, the last one first."""
    external = "recorded-" + secrets.token_hex(4)
    public = bearer(keys.create_key(rt, project.id, ("ingest",))[1])
    events = rrweb_session.load()
    third = len(events) // 3
    for batch in (events[2 * third :], events[:third], events[third : 2 * third]):
        resp = client.post(f"/rrweb/recordings/{external}/ingest", json=batch, headers=public)
        assert resp.status_code == 204
    return external


def test_the_recorded_sessions_known_facts_are_served(client, project, reader, recorded):
    rec = client.get(url(project, f"session_recordings/{recorded}"), headers=reader).get_json()
    facts = rrweb_session.FACTS
    for name in ("click_count", "keypress_count", "mouse_activity_count", "start_url"):
        assert rec[name] == facts[name], name
    for level in ("log", "warn", "error"):
        assert rec[f"console_{level}_count"] == facts[f"console_{level}_count"], level
    assert rec["recording_duration"] == round((facts["last_timestamp"] - facts["first_timestamp"]) / 1000)
    assert rec["active_seconds"] == round(facts["active_ms"] / 1000)
    assert rec["inactive_seconds"] == rec["recording_duration"] - rec["active_seconds"]
    assert rec["start_time"] == presenters.iso_ms(facts["first_timestamp"])


def test_the_recorded_sessions_summary_finds_its_rage_click(client, project, reader, recorded):
    body = client.post(url(project, f"session_recordings/{recorded}/summarize"), headers=reader).get_json()
    assert [p["url"] for p in body["pages"]] == rrweb_session.FACTS["pages"]
    assert [r["clicks"] for r in body["rage_clicks"]] == [rrweb_session.RAGE_CLICK["clicks"]]
    assert len(body["errors"]) == rrweb_session.FACTS["console_error_count"]


# --- every per-recording route: unknown ids and held recordings -----------------------------------


@pytest.mark.parametrize(
    ("method", "tail", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"viewed": True}),
        ("DELETE", "", None),
        ("POST", "persist/", None),
        ("GET", "snapshots/", None),
        ("GET", "similar_sessions/", None),
        ("POST", "summarize/", None),
        ("GET", "sharing/", None),
        ("PATCH", "sharing/", {"enabled": True}),
        ("POST", "sharing/refresh/", None),
    ],
)
def test_every_recording_route_answers_404_for_an_unknown_id(client, project, writer, method, tail, body):
    resp = client.open(
        url(project, f"session_recordings/nope-{secrets.token_hex(3)}/{tail}"),
        method=method,
        json=body,
        headers=writer,
    )
    assert resp.status_code == 404 and resp.get_json()["detail"] == "Not found."  # ours, not routing's


def test_a_recording_under_legal_hold_is_not_deleted(client, rt, project, writer, replay):
    admin = bearer(keys.create_key(rt, project.id, ("admin",))[1])
    recording_id = replays.replay_of(rt, project.id, replay)[0].id
    assert (
        client.patch(f"/recordings/{recording_id}", json={"legal_hold": True}, headers=admin).status_code
        == 200
    )
    resp = client.delete(url(project, f"session_recordings/{replay}"), headers=writer)
    assert resp.status_code == 409 and resp.get_json()["code"] == "conflict"
    assert client.get(url(project, f"session_recordings/{replay}"), headers=writer).status_code == 200


def test_sharing_needs_enabled(client, project, writer, replay):
    resp = client.patch(url(project, f"session_recordings/{replay}/sharing"), json={}, headers=writer)
    assert resp.status_code == 400 and resp.get_json()["attr"] == "enabled"


def test_similar_sessions_limit_is_bounded(client, project, reader, replay):
    resp = client.get(url(project, f"session_recordings/{replay}/similar_sessions?limit=51"), headers=reader)
    assert resp.status_code == 400 and resp.get_json()["attr"] == "limit"


def test_playlists_page_by_limit_and_offset(client, project, writer):
    for i in range(3):
        make_playlist(client, project, writer, name=f"list {i}")
    first = client.get(url(project, "session_recording_playlists?limit=2"), headers=writer).get_json()
    assert first["count"] == 3 and len(first["results"]) == 2 and "offset=2" in first["next"]
    rest = client.get(first["next"], headers=writer).get_json()
    assert len(rest["results"]) == 1 and rest["next"] is None


def test_playlists_are_found_by_name_and_by_recording(client, project, writer, replay):
    wanted = make_playlist(client, project, writer, name="Checkout bugs")["short_id"]
    make_playlist(client, project, writer, name="Other")
    client.post(url(project, f"session_recording_playlists/{wanted}/recordings/{replay}"), headers=writer)
    by_name = client.get(
        url(project, "session_recording_playlists?search=checkout"), headers=writer
    ).get_json()
    by_recording = client.get(
        url(project, f"session_recording_playlists?session_recording_id={replay}"), headers=writer
    ).get_json()
    assert [p["short_id"] for p in by_name["results"]] == [wanted]
    assert [p["short_id"] for p in by_recording["results"]] == [wanted]


def test_a_key_with_only_playlist_read_cannot_change_a_playlist(client, rt, project, writer):
    short = make_playlist(client, project, writer)["short_id"]
    scoped = bearer(keys.create_key(rt, project.id, ("session_recording_playlist:read",))[1])
    path = url(project, f"session_recording_playlists/{short}")
    assert client.get(path, headers=scoped).status_code == 200
    assert client.patch(path, json={"name": "x"}, headers=scoped).status_code == 403


# --- isolation and hostile input ------------------------------------------------------------------

RECORDING_ROUTES = [
    ("GET", ""),
    ("PATCH", ""),
    ("DELETE", ""),
    ("POST", "persist/"),
    ("GET", "snapshots/"),
    ("GET", "similar_sessions/"),
    ("POST", "summarize/"),
    ("GET", "sharing/"),
    ("PATCH", "sharing/"),
    ("POST", "sharing/refresh/"),
]


@pytest.mark.parametrize(("method", "tail"), RECORDING_ROUTES)
def test_a_foreign_key_on_the_victims_project_id_is_not_found(
    client, project, stranger, replay, method, tail
):
    body = {"enabled": True} if "sharing" in tail else {"viewed": True}
    path = url(project, f"session_recordings/{replay}/{tail}")
    assert client.open(path, method=method, json=body, headers=stranger).status_code == 404


def test_a_foreign_key_cannot_touch_the_victims_playlists(client, project, writer, stranger, replay):
    short = make_playlist(client, project, writer)["short_id"]
    for method, tail in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "recordings/")):
        path = url(project, f"session_recording_playlists/{short}/{tail}")
        assert client.open(path, method=method, json={}, headers=stranger).status_code == 404
    item = url(project, f"session_recording_playlists/{short}/recordings/{replay}")
    assert client.post(item, headers=stranger).status_code == 404


def test_another_projects_recording_cannot_join_my_playlist(client, rt, stranger):
    victim = keys.create_project(rt, "victim-" + secrets.token_hex(3))
    replays.ingest(rt, victim.id, "victim-tab", page_events("https://victim.test/"))
    mine = client.post(
        "/api/projects/@current/session_recording_playlists", json={"type": "collection"}, headers=stranger
    ).get_json()["short_id"]
    path = f"/api/projects/@current/session_recording_playlists/{mine}/recordings/victim-tab"
    assert client.post(path, headers=stranger).status_code == 404


def test_a_sharing_token_under_another_projects_path_is_not_found(client, rt, project, writer, replay):
    token = share(client, project, writer, replay, True)["access_token"]
    other = keys.create_project(rt, "other-" + secrets.token_hex(3))
    resp = client.get(f"/api/projects/{other.id}/session_recordings/{replay}?sharing_access_token={token}")
    assert resp.status_code == 404


def test_a_write_scope_grants_the_read_scope_as_in_posthog(client, rt, project, replay):
    scoped = bearer(keys.create_key(rt, project.id, ("session_recording:write",))[1])
    assert client.get(url(project, f"session_recordings/{replay}"), headers=scoped).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "session_recordings/a%00b",
        "session_recording_playlists/a%00b",
        "session_recording_playlists?search=a%00b",
        "session_recording_playlists?session_recording_id=a%00b",
        'session_recordings/properties?session_ids=["a\u0000b"]',
    ],
)
def test_a_nul_in_an_id_or_filter_is_never_a_server_error(client, project, writer, path):
    assert client.get(url(project, path), headers=writer).status_code in (200, 400, 404)


def test_a_nul_in_a_playlist_name_is_refused(client, project, writer):
    resp = client.post(
        url(project, "session_recording_playlists"),
        json={"type": "collection", "name": "a\x00"},
        headers=writer,
    )
    assert resp.status_code == 400 and resp.get_json()["attr"] == "name"


def test_a_huge_blob_key_is_out_of_range(client, project, reader, replay):
    query = f"source=blob_v2&start_blob_key={2**63}&end_blob_key={2**63}"
    resp = client.get(url(project, f"session_recordings/{replay}/snapshots?{query}"), headers=reader)
    assert resp.status_code == 404


@pytest.mark.parametrize("events", ["[[1]]", '[{"id": []}]', '[{"id": {"a": 1}}]'])
def test_odd_event_filters_are_refused_not_crashed_on(client, project, reader, replay, events):
    query = f"session_ids={json.dumps([replay])}&events={events}"
    resp = client.get(url(project, f"session_recordings/matching_events?{query}"), headers=reader)
    assert resp.status_code == 400


def test_a_shared_snapshot_is_never_cached(client, project, writer, replay):
    token = share(client, project, writer, replay, True)["access_token"]
    query = f"sharing_access_token={token}&source=blob_v2&start_blob_key=0&end_blob_key=0"
    resp = client.get(url(project, f"session_recordings/{replay}/snapshots?{query}"))
    assert resp.headers["Cache-Control"] == "no-store"
