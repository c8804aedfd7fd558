"""Every console page in headless Chromium, at a desktop width and at a phone's (390 px), and the Stop
button on a real capture.

One project holds what the pages show: a real recording of the synthetic meeting (captured, finalized
and played from the S3 server) with a click and a key event, a session of events with a screenshot, a
webhook whose deliveries fail (nothing listens), all seen with an admin key. Screenshots of each page go
to test-artifacts/console/<page>.png and <page>-narrow.png.
"""

from __future__ import annotations

import base64
import re
import subprocess
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from playwright.sync_api import Browser, Page, expect

from app.services.access import keys
from app.services.core import recordings
from app.services.outbox import endpoints
from tests.console_shots import served_app, shot  # noqa: F401 - served_app is the base_url fixture
from tests.helpers import join_room, wait_for

pytestmark = pytest.mark.slow
NARROW = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 900}
HOOK_URL = "http://127.0.0.1:9/hook"  # loopback: allow-listed by the test config; nothing listens
PAGES = {
    "recordings": "/console/recordings",
    "recording": "/console/recordings/{session}",
    "video": "/console/recordings/{video}",
    "rooms": "/console/rooms",
    "room": "/console/rooms/console-pages",
    "webhooks": "/console/webhooks",
    "webhook": "/console/webhooks/{hook}",
    "system": "/console/system",
    "capture": "/console/capture",
}


def start_capture(app, rt, auth: dict[str, str], room: str) -> str:  # type: ignore[no-untyped-def]
    """Start a real capture of the synthetic meeting in `room`; its id once its first segment is open."""
    client = app.test_client()
    access = join_room(client, auth, room, **{"options[media_source]": "synthetic://meeting"})["access_key"]
    assert client.post(f"/rooms/{access}/recording").status_code == 201
    rec_id = client.get(f"/rooms/{room}/recordings", headers=auth).get_json()[0]["id"]
    wait_for(lambda: any((rt.config.spool_dir / rec_id).glob("*/seg-*.mkv")), timeout=30)
    return rec_id


def finished(rt, rec_id: str):  # type: ignore[no-untyped-def]
    done = wait_for(
        lambda: (r := recordings.load(rt, rec_id)).state in ("finished", "failed") and r, timeout=90
    )
    assert done.state == "finished", done.error
    return done


def screenshot_png(rt) -> str:  # type: ignore[no-untyped-def]
    """A real PNG (ffmpeg's test pattern), base64 as the sessions API takes a screenshot."""
    argv = [
        rt.config.ffmpeg_path,
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x200",
        "-frames:v",
        "1",
    ]
    png = subprocess.run([*argv, "-f", "image2", "-c:v", "png", "-"], capture_output=True, check=True).stdout
    return base64.b64encode(png).decode()


def click(event_id: str, x: int, y: int, **extra: str) -> dict[str, object]:
    """A left click at (x, y) now, as the sessions API takes it."""
    data = {"coordinates": {"x": x, "y": y}, "click_data": {"button": "left", "pressed": True}}
    return {"id": event_id, "type": "click", "timestamp": time.time(), **data, **extra}


@pytest.fixture(scope="module")
def made(app, rt, workers) -> SimpleNamespace:  # type: ignore[no-untyped-def]
    project = keys.create_project(rt, "console-pages")
    api_key, raw = keys.create_key(rt, project.id)
    auth = {"Authorization": raw}
    hook = endpoints.register(rt, project.id, api_key.id, raw, HOOK_URL, ["recording_update"]).endpoint
    client = app.test_client()
    video = start_capture(app, rt, auth, "console-pages")
    time.sleep(1.5)
    events = [
        click("c1", 120, 64),
        {"id": "k1", "type": "key", "timestamp": time.time() + 0.5, "key_data": {"key": "Enter"}},
    ]
    assert client.post(f"/recordings/{video}/events", json=events, headers=auth).status_code == 201
    time.sleep(1.5)
    recordings.stop_recording(rt, video)
    session = client.post(
        "/recordings", json={"description": "Checkout flow, new payment form"}, headers=auth
    )
    sid = session.get_json()["session_id"]
    shown = [
        click("s1", 40, 80, screenshot=screenshot_png(rt)),
        {
            "id": "s2",
            "type": "text",
            "timestamp": time.time() + 1,
            "text_data": {"text": "4242 4242 4242 4242", "target": "input#card-number"},
        },
    ]
    assert client.post(f"/recordings/{sid}/events", json=shown, headers=auth).status_code == 201
    finished(rt, video)
    admin = keys.create_key(rt, project.id, ("admin",))[1]
    return SimpleNamespace(key=admin, auth=auth, video=video, session=sid, hook=hook.id)


def signed_in(browser: Browser, base_url: str, key: str, viewport: dict[str, int]) -> Page:
    page = browser.new_context(viewport=viewport).new_page()
    page.goto(f"{base_url}/console/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    expect(page.get_by_role("heading", name="Recordings", exact=True)).to_be_visible()
    return page


@pytest.fixture(scope="module")
def pages(browser: Browser, base_url: str, made: SimpleNamespace) -> Iterator[dict[str, Page]]:
    """A signed-in page at each width: "wide" (a desktop) and "narrow" (a phone)."""
    found = {
        name: signed_in(browser, base_url, made.key, size)
        for name, size in (("wide", WIDE), ("narrow", NARROW))
    }
    yield found
    for page in found.values():
        page.context.close()


@pytest.mark.parametrize("name", PAGES)
def test_a_console_page_fits_a_phone(name: str, pages: dict[str, Page], base_url: str, made: SimpleNamespace):
    url = base_url + PAGES[name].format(session=made.session, video=made.video, hook=made.hook)
    narrow = pages["narrow"]
    for page, suffix in ((pages["wide"], ""), (narrow, "-narrow")):
        page.goto(url)
        expect(page.locator("h1")).to_be_visible()
        if name == "video":
            page.wait_for_function("() => document.getElementById('player').readyState >= 1")
        shot(page, name + suffix)
    width = narrow.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], f"{name} is {width} px wide at a {NARROW['width']} px viewport"


def test_the_video_page_shows_event_fields_and_their_screenshots(
    pages: dict[str, Page], base_url: str, made: SimpleNamespace
):
    wide = pages["wide"]
    wide.goto(f"{base_url}/console/recordings/{made.video}")
    click = wide.locator(".events li").filter(has_text="click")
    expect(click.locator(".field")).to_contain_text(["x: 120", "y: 64", "button: left", "pressed: yes"])
    expect(click.locator("a.shot img")).to_be_visible()  # the frame grabbed for the click, in its row
    expect(wide.locator(".video-timeline .mark-event")).to_have_count(2)


def test_the_stop_button_stops_a_running_recording(
    app, rt, pages: dict[str, Page], base_url: str, made: SimpleNamespace
):
    wide = pages["wide"]
    rec_id = start_capture(app, rt, made.auth, "console-stop")
    wide.goto(f"{base_url}/console/recordings/{rec_id}")
    badge = wide.locator("h1 [data-role=state]")
    expect(badge).to_have_text("started")
    shot(wide, "stop-running")
    wide.get_by_role("button", name="Stop recording").click()
    expect(wide.locator(".flash").first).to_contain_text("Stop requested")
    expect(badge).to_have_text(re.compile("^(stopped|finished)$"), timeout=60_000)  # the page reloads itself
    shot(wide, "stop-stopped")
    assert finished(rt, rec_id).stop_requested_at is not None
