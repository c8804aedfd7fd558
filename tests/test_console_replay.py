"""The console's web replays: the list beside video recordings and its replay filters, the recording
page's facts, and the JSON route the player reads its events from.

The replay is the real recorded session `tests/data/rrweb_session.json`, stored through
`replays.ingest`; what it must show comes from `tests.rrweb_session.FACTS`, not from the code under test.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from app.console import queries, replay
from tests import rrweb_session
from tests.console import WRITE, meeting, project_with_key, sign_in, text, web_replay
from tests.helpers import add_recording
from tests.test_production_key_cache import counted_statements

FACTS = rrweb_session.FACTS
PERSON = "ada@example.com"


@pytest.fixture(scope="module")
def session() -> list[dict]:
    return rrweb_session.load()


@pytest.fixture
def signed(rt, client):  # type: ignore[no-untyped-def]
    """A client signed in with a key that may read and write recordings, and its project."""
    project_id, key = project_with_key(rt, *WRITE)
    sign_in(client, key)
    return SimpleNamespace(client=client, project_id=project_id)


@pytest.fixture
def both(rt, signed, session):  # type: ignore[no-untyped-def]
    """The signed project with a video recording by Grace Hopper and the recorded web replay of PERSON."""
    video = add_recording(
        rt, signed.project_id, meeting(rt, signed.project_id, "standup", user="Grace Hopper")
    )
    web = web_replay(rt, signed.project_id, [session], distinct_id=PERSON)
    return SimpleNamespace(video=video, replay=web, **vars(signed))


def listed(client, **query: str) -> list[str]:  # type: ignore[no-untyped-def]
    resp = client.get("/console/recordings", query_string=query)
    assert resp.status_code == 200
    return re.findall(r'<tr data-recording-id="([0-9a-f]+)"', text(resp))


def row_of(page: str, rec_id: str) -> str:
    return re.search(rf'<tr data-recording-id="{rec_id}".*?</tr>', page, re.S).group(0)


def cell(row: str, role: str) -> str:
    found = re.search(rf'<(td|span|small)[^>]*\sdata-role="{role}"[^>]*>(.*?)</\1>', row, re.S).group(2)
    return re.sub(r"<[^>]+>", "", found).strip()


def test_the_list_shows_a_web_replay_beside_a_video(both):
    page = text(both.client.get("/console/recordings"))
    web, video = row_of(page, both.replay), row_of(page, both.video)
    assert cell(web, "kind") == "web replay" and cell(video, "kind") == "video"
    assert cell(web, "clicks") == str(FACTS["click_count"]) and cell(video, "clicks") == "—"
    assert cell(web, "start-url") == FACTS["start_url"] and cell(video, "start-url") == "—"
    assert cell(web, "person") == PERSON and cell(video, "person") == "Grace Hopper"
    span = (FACTS["last_timestamp"] - FACTS["first_timestamp"]) // 1000  # still running: its span so far
    assert cell(web, "duration") == f"0:{span:02d}"


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ({"kind": "replay"}, ["replay"]),
        ({"kind": "video"}, ["video"]),
        ({"clicks": str(FACTS["click_count"])}, ["replay"]),
        ({"clicks": str(FACTS["click_count"] + 1)}, []),
        ({"url": "rrweb.TEST/"}, ["replay"]),
        ({"url": "checkout"}, []),  # the second page, not the start URL
        ({"person": "ada@"}, ["replay"]),
        ({"person": "hopper"}, ["video"]),
        ({"q": "rrweb.test"}, ["replay"]),
    ],
)
def test_the_list_filters_by_kind_and_replay_facts(both, query, shown):
    assert listed(both.client, **query) == [getattr(both, name) for name in shown]


def test_the_kind_filter_keeps_a_session_without_video_out_of_both_kinds(rt, signed):
    add_recording(rt, signed.project_id, ingest="none", media_source=None, state="started", duration=None)
    assert listed(signed.client, kind="video") == listed(signed.client, kind="replay") == []


def test_the_list_sorts_by_clicks(rt, signed, session):
    few = web_replay(rt, signed.project_id, [session[:40]])
    many = web_replay(rt, signed.project_id, [session])
    assert listed(signed.client, sort="clicks") == [many, few]


def test_a_page_of_replays_is_two_statements_however_many_rows(rt, signed, session):
    """The count and the page: the summary, the person and the room come in the page's one query."""
    for n in range(3):
        web_replay(rt, signed.project_id, [session], distinct_id=f"user-{n}")
    add_recording(rt, signed.project_id, meeting(rt, signed.project_id, "counted"))
    with counted_statements(rt) as statements:
        page = queries.recordings(rt, signed.project_id, queries.RecordingFilter(person="user-"))
    assert sorted(row.person for row in page.items) == ["user-0", "user-1", "user-2"]
    assert [row.replay.click_count for row in page.items] == [FACTS["click_count"]] * 3
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2


def test_the_person_filter_takes_wildcards_literally(both):
    assert listed(both.client, person="%") == []


@pytest.mark.parametrize("raw", ["x", "-1", "1.5"])
def test_an_invalid_click_count_is_ignored_and_said(both, raw):
    resp = both.client.get("/console/recordings", query_string={"clicks": raw})
    assert "clicks is not a whole number" in text(resp)
    assert set(listed(both.client, clicks=raw)) == {both.video, both.replay}


def test_the_new_filters_round_trip_through_the_query_string():
    args = {"kind": "replay", "clicks": "3", "url": "/checkout", "person": "ada"}
    f = queries.RecordingFilter.from_args(args)
    assert (f.kind, f.min_clicks, f.start_url, f.person) == ("replay", 3, "/checkout", "ada")
    assert f.args() == args and not f.problems


def test_the_recording_page_shows_the_replays_facts(both):
    page = text(both.client.get(f"/console/recordings/{both.replay}"))
    facts = dict(re.findall(r'<dd data-role="replay-([a-z-]+)">(.*?)</dd>', page, re.S))
    plain = {k: re.sub(r"<[^>]+>|\s+", " ", v).strip() for k, v in facts.items()}
    assert plain["duration"] == "0:10" and plain["active"] == "0:02"
    assert plain["clicks"] == str(FACTS["click_count"])
    assert plain["keypresses"] == str(FACTS["keypress_count"])
    assert plain["errors"].startswith(str(FACTS["console_error_count"]) + " ")
    assert plain["start-url"] == FACTS["start_url"] and plain["person"] == PERSON
    assert f'data-events-url="/console/recordings/{both.replay}/replay"' in page
    assert "vendor/rrweb/rrweb.min.js" in page and "<video" not in page


def test_a_video_recording_page_has_no_replay_player(both):
    page = text(both.client.get(f"/console/recordings/{both.video}"))
    assert "data-events-url" not in page and "rrweb.min.js" not in page


def test_only_a_replay_page_lets_the_replayed_page_bring_its_styles(both):
    replayed = both.client.get(f"/console/recordings/{both.replay}").headers["Content-Security-Policy"]
    plain = both.client.get(f"/console/recordings/{both.video}").headers["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in replayed and "unsafe-inline" not in plain
    assert "script-src" not in replayed  # scripts stay 'self' only (default-src)


def test_the_replay_route_gives_the_events_in_time_order(rt, signed, session):
    half = len(session) // 2
    stored = [session[half:], session[:half]]  # the later batch first
    rec = web_replay(rt, signed.project_id, stored)
    resp = signed.client.get(f"/console/recordings/{rec}/replay")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    body = resp.get_json()
    # by timestamp, ties in the order stored (the sequenceIds): a tie spans the two batches here
    assert body["events"] == sorted(stored[0] + stored[1], key=lambda e: e["timestamp"])
    assert (body["loaded"], body["total"], body["truncated"]) == (FACTS["events"], FACTS["events"], False)


def test_the_replay_route_marks_every_click_and_console_error(rt, signed, session):
    rec = web_replay(rt, signed.project_id, [session])
    markers = signed.client.get(f"/console/recordings/{rec}/replay").get_json()["markers"]
    kinds = [kind for _, kind in markers]
    assert kinds.count("click") == FACTS["click_count"]
    assert kinds.count("error") == FACTS["console_error_count"]
    times = [t for t, _ in markers]
    assert times == sorted(times) and FACTS["first_timestamp"] <= times[0] <= times[-1]


def test_the_replay_route_needs_a_signed_in_console(rt, client, session):
    project_id, _ = project_with_key(rt, *WRITE)
    rec = web_replay(rt, project_id, [session])
    resp = client.get(f"/console/recordings/{rec}/replay")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/console/sign-in")


def test_another_projects_replay_is_404(rt, signed, session):
    foreign = web_replay(rt, project_with_key(rt)[0], [session])
    resp = signed.client.get(f"/console/recordings/{foreign}/replay")
    assert resp.status_code == 404 and resp.is_json
    assert signed.client.get(f"/console/recordings/{foreign}").status_code == 404


def test_a_video_recording_has_no_replay_events(both):
    resp = both.client.get(f"/console/recordings/{both.video}/replay")
    assert resp.status_code == 404 and "no web replay" in resp.get_json()["message"]


def test_a_replay_page_load_is_capped_and_says_so(rt, signed, session):
    rec = web_replay(rt, signed.project_id, [session])
    capped = json.loads(b"".join(replay.events_body(rt, rec, FACTS["events"], max_events=10)))
    assert (capped["loaded"], capped["total"], capped["truncated"]) == (10, FACTS["events"], True)
    assert capped["events"] == sorted(session, key=lambda e: e["timestamp"])[:10]
    by_size = json.loads(b"".join(replay.events_body(rt, rec, FACTS["events"], max_bytes=1)))
    assert by_size["loaded"] == 1 and by_size["truncated"]  # the first event always goes


def test_an_empty_replay_streams_valid_json(rt, signed):
    from app.services.interactions import replays

    rec = replays.open_replay(rt, signed.project_id, "console-empty-replay")
    body = signed.client.get(f"/console/recordings/{rec}/replay").get_json()
    assert body == {"events": [], "markers": [], "loaded": 0, "total": 0, "truncated": False}
