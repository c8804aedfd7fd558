"""Sessions with video: events line up with the video, and clicks get a frame grabbed from it.

Real workers, Redis, S3 and ffmpeg: a pushed session (the browser's MediaRecorder stream) and a pulled
one (the synthetic meeting source), each with click events and no screenshots.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.helpers import wait_for

pytestmark = pytest.mark.slow

JPEG = b"\xff\xd8\xff"


def session(client, auth, session_id: str) -> dict:  # type: ignore[no-untyped-def]
    resp = client.get(f"/recordings/{session_id}", headers=auth)
    assert resp.status_code == 200
    return json.loads(resp.get_data(as_text=True))


def ended(client, auth, session_id: str) -> dict:  # type: ignore[no-untyped-def]
    return wait_for(
        lambda: (r := session(client, auth, session_id))["state"] in ("finished", "failed") and r, timeout=90
    )


def click(event_id: str, ts: float, **extra) -> dict:  # type: ignore[no-untyped-def]
    return {"id": event_id, "type": "click", "timestamp": ts, "coordinates": {"x": 5, "y": 5}, **extra}


@pytest.fixture(scope="module")
def pushed(app, rt, workers, mediarecorder_stream):  # type: ignore[no-untyped-def]
    """A session with pushed video (4 s) and events 1.5 s and 3 s into it, stopped and finished."""
    from app.services.access import keys
    from app.services.core import recordings

    client = app.test_client()
    auth = {"Authorization": keys.create_key(rt, keys.create_project(rt, "push-session").id)[1]}
    session_id = client.post("/recordings", json={"media_source": "push"}, headers=auth).get_json()[
        "session_id"
    ]
    start = recordings.load(rt, session_id).created_at.timestamp()  # the precise start_time
    events = [
        click("grabbed", start + 1.5),
        click("opted-out", start + 2, grab_frame=False),
        {
            "id": "key-grab",
            "type": "key",
            "timestamp": start + 3,
            "key_data": {"key": "a"},
            "grab_frame": True,
        },
        {"id": "key-plain", "type": "key", "timestamp": start + 3, "key_data": {"key": "b"}},
    ]
    assert client.post(f"/recordings/{session_id}/events", json=events, headers=auth).status_code == 201
    put = client.put(f"/recordings/{session_id}/media/0", data=mediarecorder_stream, headers=auth)
    assert put.status_code == 201
    assert client.post(f"/recordings/{session_id}/stop", headers=auth).status_code == 200
    final = ended(client, auth, session_id)
    return {"client": client, "auth": auth, "id": session_id, "final": final}


def _event(body: dict, event_id: str) -> dict:
    return next(e for e in body["events"] if e["id"] == event_id)


def test_a_pushed_session_finishes_with_its_video(pushed):
    assert pushed["final"]["state"] == "finished", pushed["final"]["error"]
    assert pushed["final"]["links"]["download"]


def test_a_click_gets_a_frame_of_the_video(pushed):
    link = _event(pushed["final"], "grabbed")["screenshot_path"]
    assert link and requests.get(link, timeout=10).content.startswith(JPEG)


def test_events_carry_their_offset_into_the_video(pushed):
    assert _event(pushed["final"], "grabbed")["offset"] == pytest.approx(1.5, abs=0.01)


def test_a_click_can_opt_out_of_the_frame(pushed):
    assert _event(pushed["final"], "opted-out")["screenshot_path"] is None


def test_any_event_can_ask_for_a_frame(pushed):
    assert _event(pushed["final"], "key-grab")["screenshot_path"]
    assert _event(pushed["final"], "key-plain")["screenshot_path"] is None


def test_a_pulled_session_lines_clicks_up_with_its_video(app, rt, workers):
    from app.services.access import keys

    client = app.test_client()
    auth = {"Authorization": keys.create_key(rt, keys.create_project(rt, "pull-session").id)[1]}
    resp = client.post("/recordings", json={"media_source": "synthetic://meeting"}, headers=auth)
    session_id = resp.get_json()["session_id"]
    wait_for(lambda: any((rt.config.spool_dir / session_id).glob("*/seg-*.mkv")), timeout=30)
    time.sleep(3)
    clicked = time.time()
    client.post(f"/recordings/{session_id}/events", json=[click("mid", clicked)], headers=auth)
    time.sleep(2)
    client.post(f"/recordings/{session_id}/stop", headers=auth)
    final = ended(client, auth, session_id)
    assert final["state"] == "finished", final["error"]
    event = _event(final, "mid")
    assert 0 < event["offset"] < final["duration_ms"] / 1000
    assert requests.get(event["screenshot_path"], timeout=10).content.startswith(JPEG)
