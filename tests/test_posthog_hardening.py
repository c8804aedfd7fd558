"""The PostHog dialect's edges: timestamps past year 9999, sharing links and public tokens whose sealed
secret no longer opens, what a deleted recording leaves behind, replay events merged in time order, a
corrupt block at backfill, LIKE wildcards in playlist search, unnamed viewers, and non-object bodies."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
import zstandard
from sqlalchemy import select, update

from app.bootstrap import backfill_replay_facts
from app.errors import NotFound
from app.models import ApiKey, PlaylistItem, RecordingView, ReplayBlock, ReplaySummary, SharingConfiguration
from app.services.access import keys
from app.services.core import recordings
from app.services.interactions import playlists, replays, sharing, snapshots, views

T0 = 1_764_700_000_000
BROKEN_SEAL = "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def clicks(start: int, n: int, step: int = 1) -> list[dict[str, Any]]:
    return [
        {"type": 3, "timestamp": start + i * step, "data": {"source": 2, "type": 2, "id": i, "x": 1, "y": 1}}
        for i in range(n)
    ]


def page(start: int = T0) -> list[dict[str, Any]]:
    meta = {
        "type": 4,
        "timestamp": start,
        "data": {"href": "https://shop.test/", "width": 800, "height": 600},
    }
    return [meta, *clicks(start + 100, 3)]


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def project(rt):  # type: ignore[no-untyped-def]
    return keys.create_project(rt, "hard-" + secrets.token_hex(3))


@pytest.fixture
def writer(rt, project) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(keys.create_key(rt, project.id, ("recording:read", "recording:write"), name="writer")[1])


def store(rt, project, *batches: list[dict[str, Any]]) -> str:  # type: ignore[no-untyped-def]
    """A replay of `batches` (stored in that order); its internal recording id."""
    external = "hard-" + secrets.token_hex(6)
    for batch in batches:
        replays.ingest(rt, project.id, external, json.loads(json.dumps(batch)))
    return replays.replay_of(rt, project.id, external)[0].id


def test_a_timestamp_past_year_9999_is_refused_at_ingest_and_nothing_is_stored(rt, client, project):
    public = bearer(keys.create_key(rt, project.id, ("ingest",))[1])
    external = "late-" + secrets.token_hex(4)
    event = {"type": 3, "timestamp": 253_402_300_800_000, "data": {"source": 1, "positions": []}}
    resp = client.post(f"/rrweb/recordings/{external}/ingest", json=[event], headers=public)
    assert resp.status_code == 400
    assert "0" in resp.get_json()["errors"]["events"]
    with pytest.raises(NotFound):
        replays.replay_of(rt, project.id, external)


def test_refreshing_a_disabled_link_leaves_it_disabled_without_a_token(rt, project):
    recording_id = store(rt, project, page())
    assert sharing.set_enabled(rt, project.id, recording_id, True).access_token
    sharing.set_enabled(rt, project.id, recording_id, False)
    refreshed = sharing.refresh(rt, project.id, recording_id)
    assert (refreshed.enabled, refreshed.access_token) == (False, None)
    with rt.db.read() as s:
        row = s.get(SharingConfiguration, recording_id)
    assert row is not None and (row.enabled, row.token_hash, row.token_sealed) == (False, None, None)


def test_a_sharing_token_that_does_not_open_reads_as_disabled(rt, client, project, writer):
    external = "hard-" + secrets.token_hex(6)
    recording_id = replays.ingest(rt, project.id, external, page()).recording_id
    token = sharing.set_enabled(rt, project.id, recording_id, True).access_token
    assert token is not None
    with rt.db.transaction() as s:  # as if MEETREC_SECRET_KEY had changed
        s.execute(
            update(SharingConfiguration)
            .where(SharingConfiguration.recording_id == recording_id)
            .values(token_sealed=BROKEN_SEAL)
        )
    resp = client.get(f"/api/projects/{project.id}/session_recordings/{external}/sharing/", headers=writer)
    assert resp.status_code == 200
    assert (resp.get_json()["enabled"], resp.get_json()["access_token"]) == (False, None)
    assert sharing.opened_by(rt, token) is None


def test_a_public_token_that_does_not_open_is_replaced_and_stops_authenticating(rt, client, project):
    old = keys.public_token(rt, project.id)
    old_key = keys.authenticate(rt, old)  # cached now: replacing it must forget it too
    assert old_key is not None
    with rt.db.transaction() as s:
        s.execute(update(ApiKey).where(ApiKey.id == old_key.id).values(public_token_sealed=BROKEN_SEAL))
    fresh = keys.public_token(rt, project.id)
    assert fresh != old and keys.public_token(rt, project.id) == fresh
    assert keys.authenticate(rt, old) is None
    resp = client.post(
        f"/rrweb/recordings/tok-{secrets.token_hex(4)}/ingest", json=page(), headers=bearer(fresh)
    )
    assert resp.status_code == 204


def test_a_deleted_recording_leaves_no_views_playlist_items_or_sharing_links(rt, project):
    recording_id = store(rt, project, page())
    viewer, _ = keys.create_key(rt, project.id, ("recording:read",), name="viewer")
    views.mark_viewed(rt, recording_id, viewer.id)
    playlist = playlists.create(rt, project.id, None, {"type": "collection"})
    playlists.add(rt, project.id, playlist.short_id, recording_id)
    sharing.set_enabled(rt, project.id, recording_id, True)
    recordings.delete(rt, project.id, recording_id)
    with rt.db.read() as s:
        for table in (RecordingView, PlaylistItem, SharingConfiguration):
            assert s.scalars(select(table).where(table.recording_id == recording_id)).all() == [], table


def test_interleaved_batches_come_out_in_timestamp_order(rt, project):
    events = clicks(T0, 40, step=10)
    late_half_reversed = list(reversed(events[1::2]))  # a block whose own events are out of order too
    recording_id = store(rt, project, late_half_reversed, events[0::2])
    merged = list(snapshots.events_in_time_order(rt, recording_id))
    assert [e["timestamp"] for _, e in merged] == [e["timestamp"] for e in events]
    assert len({sequence for sequence, _ in merged}) == len(events)


@pytest.mark.parametrize(
    "garbage",
    [b"not zstd at all", zstandard.ZstdCompressor().compress(b"{not json\n")],
    ids=["not-zstd", "not-json"],
)
def test_a_replay_whose_block_is_garbage_does_not_stop_the_backfill(rt, project, garbage):
    broken = store(rt, project, page())
    sound = store(rt, project, page())
    with rt.db.transaction() as s:
        s.execute(
            update(ReplaySummary)
            .where(ReplaySummary.recording_id.in_([broken, sound]))
            .values(click_count=0, facts_complete=False)
        )
        key = s.scalar(select(ReplayBlock.object_key).where(ReplayBlock.recording_id == broken))
    assert key is not None
    rt.storage.put_bytes(key, garbage, "application/zstd")
    assert backfill_replay_facts(rt) >= 1
    with rt.db.read() as s:
        after = {r: s.get(ReplaySummary, r) for r in (broken, sound)}
    assert all(summary is not None and summary.facts_complete for summary in after.values())
    assert after[sound].click_count == 3  # type: ignore[union-attr]


def test_playlist_search_takes_like_wildcards_literally(rt, project):
    wanted = playlists.create(rt, project.id, None, {"type": "collection", "name": "100% done"})
    playlists.create(rt, project.id, None, {"type": "collection", "name": "Other"})
    found = [p.short_id for p in playlists.page(rt, project.id, 10, 0, search="%")[1]]
    assert found == [wanted.short_id]
    assert playlists.page(rt, project.id, 10, 0, search="_")[0] == 0


def test_a_viewer_key_without_a_name_is_shown_by_its_id_not_its_secret(rt, project):
    recording_id = store(rt, project, page())
    unnamed, raw = keys.create_key(rt, project.id, ("recording:read",))
    views.mark_viewed(rt, recording_id, unnamed.id)
    assert views.viewers_of(rt, [recording_id])[recording_id] == [(unnamed.id, f"key {unnamed.id[:8]}")]
    assert raw[:8] not in views.viewers_of(rt, [recording_id])[recording_id][0][1]


def test_a_playlist_body_that_is_not_an_object_is_refused_with_attr_null(client, writer):
    created = client.post(
        "/api/projects/@current/session_recording_playlists/", json={"type": "collection"}, headers=writer
    )
    assert created.status_code == 201
    path = f"/api/projects/@current/session_recording_playlists/{created.get_json()['short_id']}"
    resp = client.patch(path, json=[1], headers=writer)
    assert resp.status_code == 400
    assert resp.get_json()["attr"] is None and resp.get_json()["type"] == "validation_error"
