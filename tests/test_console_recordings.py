"""The console's recordings: the filtered list, live states, the detail page and its actions."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.models import LinkIssuance
from app.services.access import keys, links
from app.services.core import recordings
from tests.console import (
    ADMIN,
    READ,
    WRITE,
    meeting,
    post,
    project_with_key,
    sign_in,
    text,
)
from tests.helpers import add_recording, make_recording


@pytest.fixture
def signed(rt, client):  # type: ignore[no-untyped-def]
    """A client signed in with a key that may read and write recordings, and its project."""
    project_id, key = project_with_key(rt, *WRITE)
    sign_in(client, key)
    return SimpleNamespace(client=client, project_id=project_id, key=key)


def section(page: str, role: str) -> str:
    """The element of `page` marked data-role=`role`, up to the end of its list."""
    start = page.index(f'data-role="{role}"')
    return page[start : page.index("</ol>", start)]


def listed(client, **query: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The recording ids the list shows for `query`, in order."""
    resp = client.get("/console/recordings", query_string=query)
    assert resp.status_code == 200
    return re.findall(r'<tr data-recording-id="([0-9a-f]+)"', text(resp))


def test_the_list_shows_only_this_projects_recordings(rt, signed):
    mine = add_recording(rt, signed.project_id)
    other_project, _ = project_with_key(rt)
    add_recording(rt, other_project)
    assert listed(signed.client) == [mine]


def test_the_list_leaves_deleted_recordings_out(rt, signed):
    add_recording(rt, signed.project_id, state="deleted")
    assert listed(signed.client) == []


def test_the_list_is_newest_first(rt, signed):
    old = add_recording(rt, signed.project_id, age_days=2)
    new = add_recording(rt, signed.project_id)
    assert listed(signed.client) == [new, old]


def test_the_list_filters_by_state(rt, signed):
    add_recording(rt, signed.project_id)
    failed = add_recording(rt, signed.project_id, state="failed")
    assert listed(signed.client, state="failed") == [failed]


def test_the_list_filters_by_room(rt, signed):
    standup = add_recording(rt, signed.project_id, meeting(rt, signed.project_id, "standup"))
    add_recording(rt, signed.project_id, meeting(rt, signed.project_id, "retro"))
    assert listed(signed.client, room="standup") == [standup]


def test_the_list_filters_by_date_range(rt, signed):
    add_recording(rt, signed.project_id, age_days=10)
    middle = add_recording(rt, signed.project_id, age_days=5)
    add_recording(rt, signed.project_id)
    today = recordings.load(rt, middle).created_at.date()
    assert listed(signed.client, **{"from": str(today), "to": str(today)}) == [middle]


def test_the_list_filters_by_text_in_the_participant_name(rt, signed):
    grace = add_recording(rt, signed.project_id, meeting(rt, signed.project_id, "r1", user="Grace Hopper"))
    add_recording(rt, signed.project_id, meeting(rt, signed.project_id, "r2", user="Alan Turing"))
    assert listed(signed.client, q="hopper") == [grace]


def test_the_text_filter_takes_wildcards_literally(rt, signed):
    add_recording(rt, signed.project_id, meeting(rt, signed.project_id, "plain"))
    assert listed(signed.client, q="%") == []


def test_the_list_sorts_by_duration(rt, signed):
    long = add_recording(rt, signed.project_id, duration=90.0)
    short = add_recording(rt, signed.project_id, duration=5.0)
    assert listed(signed.client, sort="duration", dir="asc") == [short, long]
    assert listed(signed.client, sort="duration") == [long, short]


def test_the_list_has_25_a_page(rt, signed):
    for _ in range(27):
        add_recording(rt, signed.project_id)
    assert len(listed(signed.client)) == 25
    assert len(listed(signed.client, page="2")) == 2


def test_an_invalid_filter_is_ignored_and_said(rt, signed):
    add_recording(rt, signed.project_id)
    resp = signed.client.get("/console/recordings", query_string={"state": "bogus", "from": "yesterday"})
    assert resp.status_code == 200
    assert "unknown state" in text(resp) and "from is not a date" in text(resp)


def test_live_states_answer_this_projects_recordings(rt, signed):
    started = add_recording(rt, signed.project_id, state="started", duration=None, size=None)
    foreign = add_recording(rt, project_with_key(rt)[0])
    body = signed.client.get("/console/recordings/states", query_string={"ids": f"{started},{foreign}"}).json
    assert body == {
        started: {"state": "started", "duration": None, "size": None, "capture_attempts": 0, "reconnects": 0}
    }


def test_live_states_show_a_deleted_recording_gone(rt, signed):
    rec = make_recording(rt, signed.project_id)
    recordings.delete(rt, signed.project_id, rec)
    body = signed.client.get("/console/recordings/states", query_string={"ids": rec}).json
    assert body[rec]["state"] == "deleted"


def test_the_detail_page_shows_duration_size_and_digest(rt, signed):
    rec = add_recording(rt, signed.project_id, duration=75.5, size=2048, sha256="c0" * 32)
    page = text(signed.client.get(f"/console/recordings/{rec}"))
    assert "1:15" in page and "2.0 KiB" in page and "c0" * 32 in page


def test_the_detail_page_plays_a_finished_recording_through_a_fresh_link(rt, signed):
    rec = make_recording(rt, signed.project_id)
    page = text(signed.client.get(f"/console/recordings/{rec}"))
    src = re.search(r'<video id="player"[^>]*src="([^"]+)"', page, re.S).group(1)
    assert src.startswith(rt.config.s3_public_endpoint) and "X-Amz-Signature" in src


def test_the_players_link_goes_to_the_link_audit(rt, signed):
    rec = make_recording(rt, signed.project_id)
    signed.client.get(f"/console/recordings/{rec}")
    links.drain(rt)  # the page logged it to the audit stream; the drain writes it to SQL
    with rt.db.read() as s:
        purposes = list(s.scalars(select(LinkIssuance.purpose).where(LinkIssuance.recording_id == rec)))
    assert purposes == ["console"]


def test_a_running_recording_has_no_player_yet(rt, signed):
    rec = add_recording(rt, signed.project_id, state="started", duration=None)
    page = text(signed.client.get(f"/console/recordings/{rec}"))
    assert "<video" not in page and "this page updates itself" in page


def test_the_detail_page_shows_the_state_timeline(rt, signed):
    rec = make_recording(rt, signed.project_id, state="started")
    recordings.request_stop(rt, rec)
    recordings.fail(rt, rec, "the source went away")
    page = text(signed.client.get(f"/console/recordings/{rec}"))
    timeline = section(page, "state-timeline")
    assert timeline.index("Created") < timeline.index("Stop requested") < timeline.index("Failed")
    assert "the source went away" in timeline


def test_another_projects_recording_is_404(rt, signed):
    foreign = add_recording(rt, project_with_key(rt)[0])
    assert signed.client.get(f"/console/recordings/{foreign}").status_code == 404


def test_download_redirects_to_a_fresh_link(rt, signed):
    rec = make_recording(rt, signed.project_id)
    resp = signed.client.get(f"/console/recordings/{rec}/download")
    assert resp.status_code == 302
    assert "X-Amz-Signature" in resp.headers["Location"] and "attachment" in resp.headers["Location"]


def test_download_of_an_unfinished_recording_is_409(rt, signed):
    rec = add_recording(rt, signed.project_id, state="started")
    assert signed.client.get(f"/console/recordings/{rec}/download").status_code == 409


def test_persist_sets_the_flag(rt, signed):
    rec = add_recording(rt, signed.project_id)
    resp = post(signed.client, f"/console/recordings/{rec}/persist", persist="1")
    assert resp.status_code == 303
    assert recordings.load(rt, rec).persist is True


def test_persist_can_be_undone(rt, signed):
    rec = add_recording(rt, signed.project_id, persist=True)
    post(signed.client, f"/console/recordings/{rec}/persist", persist="0")
    assert recordings.load(rt, rec).persist is False


def test_a_read_key_may_not_persist(rt, client):
    project_id, key = project_with_key(rt, *READ)
    rec = add_recording(rt, project_id)
    sign_in(client, key)
    assert post(client, f"/console/recordings/{rec}/persist", persist="1").status_code == 403
    assert recordings.load(rt, rec).persist is False


def test_a_read_key_is_offered_no_write_actions(rt, client):
    project_id, key = project_with_key(rt, *READ)
    rec = add_recording(rt, project_id)
    sign_in(client, key)
    page = text(client.get(f"/console/recordings/{rec}"))
    assert "Delete…" not in page and "Persist" not in page


def test_the_delete_link_asks_first(rt, signed):
    rec = make_recording(rt, signed.project_id)
    page = text(signed.client.get(f"/console/recordings/{rec}/delete"))
    assert "cannot be undone" in page and "Delete permanently" in page
    assert recordings.load(rt, rec).state == "finished"


def test_delete_removes_the_recording_and_its_media(rt, signed):
    rec = make_recording(rt, signed.project_id, objects=2)
    resp = post(signed.client, f"/console/recordings/{rec}/delete")
    assert resp.status_code == 303 and resp.headers["Location"] == "/console/recordings"
    assert recordings.load(rt, rec).state == "deleted"
    assert list(rt.storage.iter_keys(recordings.object_prefix(rec))) == []
    assert signed.client.get(f"/console/recordings/{rec}").status_code == 404


def test_a_read_key_may_not_delete(rt, client):
    project_id, key = project_with_key(rt, *READ)
    rec = add_recording(rt, project_id)
    sign_in(client, key)
    assert post(client, f"/console/recordings/{rec}/delete").status_code == 403
    assert recordings.load(rt, rec).state == "finished"


def test_delete_under_legal_hold_is_refused_with_a_message(rt, signed):
    rec = add_recording(rt, signed.project_id, legal_hold=True)
    resp = post(signed.client, f"/console/recordings/{rec}/delete")
    assert resp.headers["Location"] == f"/console/recordings/{rec}"
    assert "legal hold" in text(signed.client.get(resp.headers["Location"]))
    assert recordings.load(rt, rec).state == "finished"


def test_legal_hold_needs_an_admin_key(rt, signed):
    rec = add_recording(rt, signed.project_id)
    assert post(signed.client, f"/console/recordings/{rec}/legal-hold", hold="1").status_code == 403


def test_an_admin_key_sets_a_legal_hold(rt, client):
    project_id, key = project_with_key(rt, *ADMIN)
    rec = add_recording(rt, project_id)
    sign_in(client, key)
    post(client, f"/console/recordings/{rec}/legal-hold", hold="1")
    assert recordings.load(rt, rec).legal_hold is True


def test_a_sessions_events_are_listed_in_timestamp_order(app, rt, signed):
    api = app.test_client()
    auth = {"Authorization": keys.create_key(rt, signed.project_id)[1]}
    session_id = api.post("/recordings", json={"description": "checkout"}, headers=auth).get_json()[
        "session_id"
    ]
    events = [
        {"id": "k1", "type": "key", "timestamp": 1_700_000_002.0, "key_data": {"key": "Enter"}},
        {"id": "c1", "type": "click", "timestamp": 1_700_000_001.0, "coordinates": {"x": 5, "y": 6}},
    ]
    assert api.post(f"/recordings/{session_id}/events", json=events, headers=auth).status_code == 201
    page = text(signed.client.get(f"/console/recordings/{session_id}"))
    assert page.index('<span class="type">click</span>') < page.index('<span class="type">key</span>')
    assert "Enter" in page
    assert "it has no video" in page and "disabled" in page
