"""The console's web replay player in a real headless Chromium: the recorded session
`tests/data/rrweb_session.json`, stored through `replays.ingest`, played with rrweb's Replayer on the
recording page; and the list showing it beside a video recording. Screenshots go to
test-artifacts/console/.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from playwright.sync_api import Browser, Page, expect

from tests import rrweb_session
from tests.browser import ARTIFACTS, live_server
from tests.console import READ, meeting, project_with_key, web_replay
from tests.helpers import add_recording

pytestmark = pytest.mark.slow
FACTS = rrweb_session.FACTS
TOTAL_MS = FACTS["last_timestamp"] - FACTS["first_timestamp"]
PERSON = "ada@example.com"
REPLAYED = "window.meetrecReplay.replayer.iframe.contentDocument"


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def made(app, rt) -> Iterator[SimpleNamespace]:  # type: ignore[no-untyped-def]
    """A project with the recorded web replay of PERSON and a video recording, served live."""
    project_id, key = project_with_key(rt, *READ)
    video = add_recording(rt, project_id, meeting(rt, project_id, "replay-standup", user="Grace Hopper"))
    web = web_replay(rt, project_id, [rrweb_session.load()], distinct_id=PERSON)
    with live_server(app) as url:
        yield SimpleNamespace(base_url=url, key=key, video=video, replay=web)


@pytest.fixture(scope="module")
def page(browser: Browser, made: SimpleNamespace) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    signed = context.new_page()
    signed.goto(f"{made.base_url}/console/")
    signed.get_by_label("API key").fill(made.key)
    signed.get_by_label("API key").press("Enter")
    expect(signed.get_by_role("heading", name="Recordings", exact=True)).to_be_visible()
    yield signed
    context.close()


def open_replay(page: Page, made: SimpleNamespace) -> None:
    page.goto(f"{made.base_url}/console/recordings/{made.replay}")
    expect(page.locator("[data-role=replay-status]")).to_contain_text("Ready", timeout=15_000)


def now_ms(page: Page) -> float:
    return page.evaluate("window.meetrecReplay.replayer.getCurrentTime()")


def test_the_timeline_marks_every_click_and_console_error(page: Page, made: SimpleNamespace):
    open_replay(page, made)
    expect(page.locator(".replay-markers .marker-click")).to_have_count(FACTS["click_count"])
    expect(page.locator(".replay-markers .marker-error")).to_have_count(FACTS["console_error_count"])
    assert page.evaluate("window.meetrecReplay.total") == TOTAL_MS
    expect(page.locator("[data-role=total]")).to_have_text("0:10")


def test_seeking_on_the_timeline_shows_the_recorded_page(page: Page, made: SimpleNamespace):
    open_replay(page, made)
    timeline = page.locator("[data-role=timeline]")
    box = timeline.bounding_box()
    assert box is not None
    timeline.click(position={"x": box["width"] * 0.5, "y": box["height"] / 2})
    assert now_ms(page) == pytest.approx(TOTAL_MS * 0.5, abs=TOTAL_MS * 0.02)
    expect(page.locator("[data-role=time]")).to_have_text("0:05")
    page.wait_for_function(f"() => {REPLAYED}.querySelector('h1')?.textContent === 'Weekly sync'")
    assert page.evaluate(f"{REPLAYED}.querySelector('#name').value") == "Ada"  # typed on the first page
    timeline.focus()
    page.keyboard.press("End")  # the end: the second page, with what was typed there
    page.wait_for_function(f"() => {REPLAYED}.querySelector('#name')?.value === 'hello'")
    # the recorded page's inline styles apply inside the replay (the page's policy allows them)
    assert page.evaluate(f"getComputedStyle({REPLAYED}.body).marginTop") == "16px"
    shot(page, "replay-seeked")


def test_playing_moves_the_replay_on(page: Page, made: SimpleNamespace):
    open_replay(page, made)
    play = page.locator("[data-role=play]")
    play.click()
    expect(play).to_have_text("Pause")
    page.wait_for_function("() => window.meetrecReplay.replayer.getCurrentTime() > 500", timeout=15_000)
    expect(page.locator("[data-role=time]")).not_to_have_text("0:00", timeout=15_000)
    shot(page, "replay-playing")
    play.click()
    expect(play).to_have_text("Play")
    assert page.evaluate("window.meetrecReplay.replayer.service.state.value") == "paused"


def test_speed_and_skip_inactivity_change_the_player(page: Page, made: SimpleNamespace):
    open_replay(page, made)
    config = "window.meetrecReplay.replayer.config"
    assert page.evaluate(f"[{config}.speed, {config}.skipInactive]") == [1, True]
    page.get_by_label("Speed").select_option("4")
    page.get_by_label("Skip inactivity").uncheck()
    assert page.evaluate(f"[{config}.speed, {config}.skipInactive]") == [4, False]
    page.get_by_label("Speed").select_option("8")
    page.get_by_label("Skip inactivity").check()
    assert page.evaluate(f"[{config}.speed, {config}.skipInactive]") == [8, True]
    shot(page, "replay-controls")


def test_the_replay_page_shows_its_facts(page: Page, made: SimpleNamespace):
    open_replay(page, made)
    expect(page.locator("[data-role=replay-clicks]")).to_have_text(str(FACTS["click_count"]))
    expect(page.locator("[data-role=replay-start-url]")).to_have_text(FACTS["start_url"])
    expect(page.locator("[data-role=replay-person]")).to_have_text(PERSON)
    shot(page, "replay")


def test_the_list_shows_the_replay_beside_the_video(page: Page, made: SimpleNamespace):
    page.goto(f"{made.base_url}/console/recordings")
    web = page.locator(f"tr[data-recording-id='{made.replay}']")
    video = page.locator(f"tr[data-recording-id='{made.video}']")
    expect(web.locator("[data-role=kind]")).to_have_text("web replay")
    expect(web.locator("[data-role=clicks]")).to_have_text(str(FACTS["click_count"]))
    expect(web.locator("[data-role=start-url]")).to_have_text(FACTS["start_url"])
    expect(web.locator("[data-role=person]")).to_have_text(PERSON)
    expect(video.locator("[data-role=kind]")).to_have_text("video")
    expect(video.locator("[data-role=person]")).to_have_text("Grace Hopper")
    shot(page, "list-replay-and-video")
    page.get_by_label("Kind").select_option("replay")
    page.get_by_label("Clicks at least").fill(str(FACTS["click_count"]))
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("tr[data-recording-id]")).to_have_count(1)
    expect(web).to_be_visible()
    web.get_by_role("link", name=made.replay).click()
    expect(page.get_by_role("heading", name="Web replay")).to_be_visible()


def test_the_replay_page_fits_a_phone(browser: Browser, made: SimpleNamespace):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    narrow = context.new_page()
    narrow.goto(f"{made.base_url}/console/sign-in")
    narrow.get_by_label("API key").fill(made.key)
    narrow.get_by_label("API key").press("Enter")
    open_replay(narrow, made)
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 390
    shot(narrow, "replay-narrow")
    context.close()
