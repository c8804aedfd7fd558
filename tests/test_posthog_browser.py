"""posthog-js, the npm package's `array.js` served by meetrec, records a real page in headless Chromium
into meetrec: it fetches its remote config, lazily loads the recorder, and sends gzip `$snapshot` and
`$pageview` events; the session then reads back through both dialects with the clicks and keypresses
made on the page, and plays in the console (screenshot in test-artifacts/console/).

The page lives on its own loopback origin, as a customer's site would, so every call is cross-origin.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from app.errors import NotFound
from app.services.access import keys
from app.services.interactions import replays
from tests.browser import ARTIFACTS
from tests.helpers import serving, wait_for

CLICKS_ON_BUTTON = 3
# posthog-js drops every event of a browser that looks like a bot: "HeadlessChrome" in the user agent or
# its client hints, or `navigator.webdriver` (set under automation). The test browser presents itself as
# the desktop Chrome a visitor would have, so the page's posthog-js runs exactly as configured.
DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
NOT_AUTOMATED = """
Object.defineProperty(Navigator.prototype, "webdriver", { get: () => false });
Object.defineProperty(Navigator.prototype, "userAgentData", { get: () => undefined });
"""
TYPED = "meetrec"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>shop</title>
<script src="{meetrec}/static/array.js"></script>
<script>
  posthog.init({token}, {{ api_host: {meetrec_json}, capture_pageview: true, autocapture: false }});
</script></head>
<body>
  <h1>Checkout</h1>
  <button id="add">Add to cart</button> <span id="count">0</span>
  <label>Name <input id="name" type="text"></label>
  <script>
    document.getElementById("add").addEventListener("click", () => {{
      const count = document.getElementById("count");
      count.textContent = String(Number(count.textContent) + 1);
    }});
  </script>
</body></html>
"""


@pytest.fixture(scope="module")
def meetrec(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with serving(app) as (_, urls):
        yield urls["http"]


def summary_when(rt, project_id: str, session: str, check) -> Any:  # type: ignore[no-untyped-def]
    """The replay's summary once `check(summary)` holds (posthog-js flushes every few seconds)."""

    def ready() -> Any:
        try:
            _, summary = replays.replay_of(rt, project_id, session)
        except NotFound:
            return None
        return summary if check(summary) else None

    return wait_for(ready, timeout=45, interval=0.5)


def watch_in_the_console(page: Page, meetrec: str, key: str, recording_id: str) -> None:
    """Sign in to the console, find the replay in the list of web replays and play it."""
    page.goto(f"{meetrec}/console/")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    page.goto(f"{meetrec}/console/recordings?kind=replay")
    page.locator(f'a[href="/console/recordings/{recording_id}"]').first.click()
    expect(page.locator("[data-role=replay-status]")).to_contain_text("Ready", timeout=15_000)
    expect(page.locator(".replay-markers .marker-click")).to_have_count(CLICKS_ON_BUTTON + 1)
    page.locator("[data-role=timeline]").focus()
    page.keyboard.press("End")  # the last moment: the button was clicked three times
    replayed = "window.meetrecReplay.replayer.iframe.contentDocument"
    page.wait_for_function(f"() => {replayed}.querySelector('#count')?.textContent === '{CLICKS_ON_BUTTON}'")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "posthog-js-replay.png"), full_page=True)


def test_posthog_js_records_a_page_into_meetrec(rt, meetrec, web_site, browser):
    origin, html = web_site
    project = keys.create_project(rt, "posthog-js-" + secrets.token_hex(3))
    token = keys.public_token(rt, project.id)
    reader = keys.create_key(rt, project.id, ("recording:read",))[1]
    html["page"] = PAGE.format(meetrec=meetrec, meetrec_json=json.dumps(meetrec), token=json.dumps(token))
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    context.add_init_script(NOT_AUTOMATED)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(origin + "/")
        page.wait_for_function("window.posthog && posthog.sessionRecordingStarted()", timeout=20_000)
        page.wait_for_timeout(500)  # the full snapshot is taken
        for _ in range(CLICKS_ON_BUTTON):
            page.click("#add")
        page.click("#name")
        page.keyboard.type(TYPED, delay=30)
        session = page.evaluate("posthog.get_session_id()")
        summary = summary_when(
            rt,
            project.id,
            session,
            lambda s: s.click_count >= CLICKS_ON_BUTTON + 1 and s.keypress_count >= len(TYPED),
        )
        assert not errors
        watch_in_the_console(page, meetrec, reader, replays.replay_of(rt, project.id, session)[0].id)
    finally:
        context.close()
    assert summary.click_count == CLICKS_ON_BUTTON + 1  # the button three times, then the input
    assert summary.keypress_count == len(TYPED)

    answer = requests.get(
        f"{meetrec}/api/projects/@current/session_recordings/{session}",
        headers={"Authorization": f"Bearer {reader}"},
        timeout=10,
    ).json()
    assert answer["click_count"] == CLICKS_ON_BUTTON + 1 and answer["keypress_count"] == len(TYPED)
    assert answer["start_url"] == origin + "/"
    assert answer["distinct_id"]

    events = requests.get(
        f"{meetrec}/rrweb/recordings/{session}/events",
        headers={"Authorization": f"Bearer {reader}"},
        timeout=10,
    ).json()
    assert any(e["type"] == 2 for e in events)  # a full snapshot, stored unpacked
    assert all("cv" not in e for e in events)
    pageviews = [e for e in events if e["type"] == 5 and e["data"]["tag"] == "$pageview"]
    assert pageviews and pageviews[0]["data"]["payload"]["properties"]["$current_url"] == origin + "/"
