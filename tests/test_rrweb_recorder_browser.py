"""meetrec's first-party recorder (`GET /rrweb/record.js`) on a real page in headless Chromium: the
snippet records a session, a server that goes away loses nothing, and a page hidden while its socket
cannot deliver sends its frames by beacon, each stored once.

The page has its own loopback origin (a second server: Chromium lets only a loopback page reach a
loopback meetrec) and a public key bound to it; meetrec runs on uvicorn (`tests.helpers.Server`),
stopped and started again on the same port where a test needs it to go away.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute

from app.services.access import keys
from app.services.interactions import replays
from tests import rrweb_pages
from tests.helpers import restartable_serving, wait_for

DELIVERED = (
    "(() => { const s = rrwebCloud.stats(); return s.pendingFrames === 0 && s.pendingEvents === 0; })()"
)


def snippet_page(meetrec: str, config: dict[str, Any]) -> str:
    """A page recorded by the README's snippet: record.js from meetrec, configured in the tag."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>shop</title></head>
<body>
<label>Name <input id="name" type="text" autocomplete="off"></label>
<button id="save" type="button"
  onclick="document.getElementById('status').textContent = 'saved'">Save</button>
<p id="status"></p>
<script src="{meetrec}/rrweb/record.js" data-autostart>{json.dumps(config)}</script>
</body></html>"""


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context()
    yield context
    context.close()


@pytest.fixture
def site(rt, web_site) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The page's origin and `html` (what it answers), a project, its public key bound to that origin
    and a private key."""
    origin, html = web_site
    project = keys.create_project(rt, "recorder-" + secrets.token_hex(3))
    return {
        "origin": origin,
        "html": html,
        "project": project.id,
        "public": keys.create_key(rt, project.id, ("ingest",), origins=(origin,))[1],
        "private": keys.create_key(rt, project.id, ("recording:read",))[1],
    }


def open_page(context: BrowserContext, site: dict[str, Any], meetrec: str) -> Page:
    page = context.new_page()
    site["html"]["page"] = snippet_page(meetrec, {"publicAPIkey": site["public"]})
    page.goto(site["origin"] + "/")
    page.wait_for_function("window.rrwebCloud && rrwebCloud.stats() && rrwebCloud.stats().recordedEvents > 0")
    return page


def type_into(page: Page, text: str) -> None:
    """Type `text` at the end of `#name` like a user, then click Save."""
    before = page.input_value("#name")
    page.click("#name")
    page.keyboard.press("End")
    page.keyboard.type(text, delay=20)
    page.click("#save")
    page.wait_for_function(f"document.getElementById('name').value === {json.dumps(before + text)}")
    page.wait_for_timeout(300)  # rrweb emits input events on the next tick


def finish(page: Page) -> dict[str, Any]:
    """Stop recording, wait until every recorded event is acknowledged; the recorder's stats."""
    page.evaluate("() => { rrwebCloud.stop(); }")
    page.wait_for_function(DELIVERED, timeout=30_000)
    return page.evaluate("rrwebCloud.stats()")


def set_visibility(page: Page, state: str) -> dict[str, Any]:
    """Make the page `state` ("hidden" or "visible"); the recorder's stats as its listeners left them,
    taken in the same task (rrweb's batched mouse moves may add an event a moment later)."""
    return page.evaluate(
        """(state) => {
          Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
          document.dispatchEvent(new Event("visibilitychange"));
          return rrwebCloud.stats();
        }""",
        state,
    )


def stored_events(meetrec: str, site: dict[str, Any], recording_id: str) -> list[dict[str, Any]]:
    """The recording's stored events as meetrec answers them (none before its first is stored)."""
    auth = {"Authorization": f"Bearer {site['private']}"}
    resp = requests.get(f"{meetrec}/rrweb/recordings/{recording_id}/events", headers=auth, timeout=10)
    if resp.status_code == 404:
        return []
    resp.raise_for_status()
    return resp.json()


def replays_to(context: BrowserContext, events: list[dict[str, Any]]) -> str:
    """What `#name` holds once the stored events are replayed with rrweb's Replayer."""
    replay = [{k: v for k, v in e.items() if k not in ("sequenceId", "recordingId")} for e in events]
    return rrweb_pages.replayed_value(context.new_page(), replay)


def assert_stored_once(events: list[dict[str, Any]], stats: dict[str, Any]) -> None:
    assert stats["droppedFrames"] == 0
    assert len(events) == stats["recordedEvents"]
    assert [e["sequenceId"] for e in events] == list(range(1, len(events) + 1))


@pytest.fixture(scope="module")
def server(app) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    with restartable_serving(app) as server:
        yield server


def test_the_snippet_records_a_session_that_replays_from_meetrec(context, site, server):
    page = open_page(context, site, server.urls["http"])
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    type_into(page, "hello meetrec")
    stats = finish(page)
    recording_id = page.evaluate("rrwebCloud.getRecordingId()")
    events = stored_events(server.urls["http"], site, recording_id)
    assert_stored_once(events, stats)
    assert replays_to(context, events) == "hello meetrec" and not errors


def test_the_recording_id_lasts_the_tab_and_the_stream_the_page_view(context, site, server):
    page = open_page(context, site, server.urls["http"])
    first = page.evaluate("[rrwebCloud.getRecordingId(), rrwebCloud.stats().stream]")
    page.reload()
    page.wait_for_function("window.rrwebCloud && rrwebCloud.stats()")
    second = page.evaluate("[rrwebCloud.getRecordingId(), rrwebCloud.stats().stream]")
    assert second[0] == first[0] and re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", first[0])
    assert second[1] != first[1]


def test_add_meta_attaches_metadata_to_the_recording(context, site, server):
    page = open_page(context, site, server.urls["http"])
    assert page.evaluate("rrwebCloud.addMeta({plan: 'pro'})") is True
    recording_id = page.evaluate("rrwebCloud.getRecordingId()")
    resp = requests.get(
        f"{server.urls['http']}/rrweb/recordings/{recording_id}",
        headers={"Authorization": f"Bearer {site['private']}"},
        timeout=10,
    )
    assert [(m["key"], m["value"]) for m in resp.json()] == [("plan", "pro")]


def test_events_recorded_while_meetrec_is_down_are_stored_once_it_is_back(app, context, site):
    with restartable_serving(app) as server:
        page = open_page(context, site, server.urls["http"])
        type_into(page, "hello")
        page.wait_for_function(DELIVERED, timeout=30_000)
        server.stop()
        page.wait_for_function("!rrwebCloud.stats().connected")
        type_into(page, " meetrec")  # recorded while nothing listens on the port
        page.wait_for_function("rrwebCloud.stats().pendingFrames > 0")
        server.start()
        page.wait_for_function("rrwebCloud.stats().connected", timeout=30_000)
        stats = finish(page)
        events = stored_events(server.urls["http"], site, page.evaluate("rrwebCloud.getRecordingId()"))
        assert stats["connections"] >= 2
        assert_stored_once(events, stats)
        assert replays_to(context, events) == "hello meetrec"


def blocked_sockets(page: Page) -> dict[str, bool]:
    """Route the page's ingest sockets: while `blocked["on"]` each is closed before `ready` (it cannot
    deliver), else it reaches meetrec."""
    blocked = {"on": True}

    def route(ws: WebSocketRoute) -> None:
        if blocked["on"]:
            ws.close()
        else:
            ws.connect_to_server()

    page.route_web_socket(re.compile(r".*/ingest/ws.*"), route)
    return blocked


def test_a_page_hidden_while_its_socket_cannot_deliver_sends_a_beacon(rt, context, site, server):
    meetrec = server.urls["http"]
    page = context.new_page()
    blocked = blocked_sockets(page)
    site["html"]["page"] = snippet_page(meetrec, {"publicAPIkey": site["public"]})
    page.goto(site["origin"] + "/")
    type_into(page, "hello")
    hidden = set_visibility(page, "hidden")
    assert hidden["beacons"] == 1 and hidden["connections"] == 0
    recording_id = page.evaluate("rrwebCloud.getRecordingId()")
    wait_for(lambda: len(stored_events(meetrec, site, recording_id)) == hidden["recordedEvents"])
    frames = replays.stream_frames(rt, site["project"], recording_id, hidden["stream"])
    assert frames == hidden["beaconFrames"]

    blocked["on"] = False
    set_visibility(page, "visible")  # back: the socket connects at once, `ready` acks the beacon's frames
    page.wait_for_function("rrwebCloud.stats().connected", timeout=30_000)
    type_into(page, " again")
    stats = finish(page)
    assert_stored_once(stored_events(meetrec, site, recording_id), stats)
    assert replays_to(context, stored_events(meetrec, site, recording_id)) == "hello again"


def test_a_full_buffer_drops_its_oldest_frames_and_counts_them(context, site, server):
    meetrec = server.urls["http"]
    page = context.new_page()
    blocked = blocked_sockets(page)
    config = {"publicAPIkey": site["public"], "maxBufferFrames": 2, "flushIntervalMs": 50}
    site["html"]["page"] = snippet_page(meetrec, config)
    page.goto(site["origin"] + "/")
    page.wait_for_function("window.rrwebCloud && rrwebCloud.stats().frames > 0")
    for word in ("one", " two", " three"):
        type_into(page, word)
    page.wait_for_function("rrwebCloud.stats().droppedFrames > 0")
    assert page.evaluate("rrwebCloud.stats().pendingFrames") <= 2
    blocked["on"] = False
    set_visibility(page, "visible")
    page.wait_for_function("rrwebCloud.stats().connected", timeout=30_000)
    stats = finish(page)
    events = stored_events(meetrec, site, page.evaluate("rrwebCloud.getRecordingId()"))
    assert len(events) == stats["recordedEvents"] - stats["droppedEvents"]
    assert [e["sequenceId"] for e in events] == list(range(1, len(events) + 1))
