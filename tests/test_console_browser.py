"""The console in a real headless Chromium: sign in, find a finished recording, play it, seek, delete it.

The recordings are real: captured from the synthetic meeting by the `workers` fixture's RQ workers,
finalized into WebM and played from the S3 server through presigned links. Screenshots go to
test-artifacts/console/.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from app.services.access import keys
from app.services.core import recordings
from tests.browser import ARTIFACTS, MISSING, chromium_path, live_server, managed_chromium
from tests.helpers import add_recording, join_room, wait_for

pytestmark = pytest.mark.slow
RECORD_SECONDS = 4


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path() or managed_chromium()
    if path is None:
        pytest.fail(MISSING, pytrace=False)
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=path, args=["--autoplay-policy=no-user-gesture-required", "--mute-audio"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def base_url(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with live_server(app) as url:
        yield url


def record(app, rt, rooms: tuple[str, ...]) -> SimpleNamespace:  # type: ignore[no-untyped-def]
    """One project with a real finished recording per room, recorded at the same time."""
    client = app.test_client()
    project = keys.create_project(rt, "console-browser")
    raw = keys.create_key(rt, project.id)[1]
    auth = {"Authorization": raw}
    access = [
        join_room(client, auth, r, **{"options[media_source]": "synthetic://meeting"})["access_key"]
        for r in rooms
    ]
    for a in access:
        assert client.post(f"/rooms/{a}/recording").status_code == 201
    ids = [client.get(f"/rooms/{r}/recordings", headers=auth).get_json()[0]["id"] for r in rooms]
    wait_for(lambda: all(any((rt.config.spool_dir / i).glob("*/seg-*.mkv")) for i in ids), timeout=30)
    for n in range(2):  # two interaction events on the first recording, a second or so apart
        time.sleep(RECORD_SECONDS / 3)
        mark = {
            "id": f"mark-{n}",
            "type": "custom",
            "timestamp": time.time(),
            "name": f"console-mark-{n}",
            "custom_data": {"n": n},
        }
        assert client.post(f"/recordings/{ids[0]}/events", json=[mark], headers=auth).status_code == 201
    time.sleep(RECORD_SECONDS / 3)
    for a in access:
        client.delete(f"/rooms/{a}/recording")
    finished = [
        wait_for(lambda i=i: (r := recordings.load(rt, i)).state in ("finished", "failed") and r, timeout=90)
        for i in ids
    ]
    assert [r.state for r in finished] == ["finished"] * len(ids), [r.error for r in finished]
    return SimpleNamespace(key=raw, project_id=project.id, by_room=dict(zip(rooms, finished, strict=True)))


@pytest.fixture(scope="module")
def made(app, rt, workers) -> SimpleNamespace:  # type: ignore[no-untyped-def]
    return record(app, rt, ("console-play", "console-delete"))


def sign_in(page: Page, base_url: str, key: str) -> None:
    page.goto(f"{base_url}/console/")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")  # keyboard only


@pytest.fixture(scope="module")
def page(browser: Browser, base_url: str, made: SimpleNamespace) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    signed = context.new_page()
    sign_in(signed, base_url, made.key)
    expect(signed.get_by_role("heading", name="Recordings", exact=True)).to_be_visible()
    yield signed
    context.close()


def open_detail(page: Page, base_url: str, rec_id: str) -> None:
    page.goto(f"{base_url}/console/recordings/{rec_id}")
    expect(page.locator("h1")).to_contain_text(rec_id)


def test_a_wrong_key_cannot_sign_in(browser: Browser, base_url: str):
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base_url, "mr_this_is_not_a_key")
    expect(page.get_by_role("alert")).to_contain_text("unknown, revoked")
    shot(page, "wrong-key")
    page.goto(f"{base_url}/console/recordings")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    context.close()


def test_the_skip_link_is_the_first_tab_stop(page: Page, base_url: str):
    page.goto(f"{base_url}/console/recordings")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to main content")
    page.keyboard.press("Enter")
    expect(page.locator(":focus")).to_have_id("main")


def test_the_list_finds_the_finished_recording(page: Page, base_url: str, made: SimpleNamespace):
    rec = made.by_room["console-play"]
    page.goto(f"{base_url}/console/recordings")
    page.get_by_label("Room id").fill("console-play")
    page.get_by_label("State").select_option("finished")
    page.get_by_role("button", name="Apply filters").click()
    row = page.locator(f"tr[data-recording-id='{rec.id}']")
    expect(row.locator("[data-role=state]")).to_have_text("finished")
    expect(page.locator("tr[data-recording-id]")).to_have_count(1)
    shot(page, "list-filtered")
    row.get_by_role("link", name=rec.id).click()
    expect(page.locator("h1")).to_contain_text(rec.id)


def test_the_video_knows_its_duration(page: Page, base_url: str, made: SimpleNamespace):
    rec = made.by_room["console-play"]
    open_detail(page, base_url, rec.id)
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    duration = page.evaluate("document.getElementById('player').duration")
    assert duration == pytest.approx(rec.duration, abs=0.5)
    shot(page, "detail")


def test_playing_advances_the_current_time(page: Page, base_url: str, made: SimpleNamespace):
    open_detail(page, base_url, made.by_room["console-play"].id)
    page.evaluate("document.getElementById('player').play()")
    page.wait_for_function("() => document.getElementById('player').currentTime > 1", timeout=15_000)
    shot(page, "playing")


def test_seeking_moves_the_video(page: Page, base_url: str, made: SimpleNamespace):
    rec = made.by_room["console-play"]
    open_detail(page, base_url, rec.id)
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    target = round(rec.duration / 2, 1)
    assert page.evaluate(f"window.meetrecConsole.seek({target})") is True
    page.wait_for_function("() => !document.getElementById('player').seeking")
    assert page.evaluate("document.getElementById('player').currentTime") == pytest.approx(target, abs=0.1)
    page.evaluate("document.getElementById('player').play()")
    page.wait_for_function(
        f"() => document.getElementById('player').currentTime > {target + 0.5}", timeout=15_000
    )
    shot(page, "seeked")


def test_clicking_an_event_seeks_the_video(page: Page, base_url: str, made: SimpleNamespace):
    rec = made.by_room["console-play"]
    open_detail(page, base_url, rec.id)
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    event = page.get_by_role("button", name="console-mark-1")
    offset = float(event.get_attribute("data-seek"))
    assert 0 < offset < rec.duration
    event.focus()
    page.keyboard.press("Enter")  # a button: keyboard and mouse alike
    page.wait_for_function(f"() => Math.abs(document.getElementById('player').currentTime - {offset}) < 0.1")
    expect(page.locator("li[aria-current=true]")).to_contain_text("console-mark-1")
    shot(page, "event-seek")


def test_a_running_recordings_state_updates_live(page: Page, base_url: str, made: SimpleNamespace, rt):
    running = add_recording(rt, made.project_id, state="started", duration=None, size=None)
    page.goto(f"{base_url}/console/recordings?state=started")
    badge = page.locator(f"tr[data-recording-id='{running}'] [data-role=state]")
    expect(badge).to_have_text("started")
    recordings.fail(rt, running, "stopped by the console browser test")
    expect(badge).to_have_text("failed", timeout=10_000)  # polled, no reload
    shot(page, "live-state")


def test_deleting_removes_the_recording(page: Page, base_url: str, made: SimpleNamespace):
    rec = made.by_room["console-delete"]
    open_detail(page, base_url, rec.id)
    page.get_by_role("link", name="Delete…").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Delete recording")
    shot(page, "confirm-delete")
    page.get_by_role("button", name="Delete permanently").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Recording {rec.id} deleted")
    expect(page.locator(f"tr[data-recording-id='{rec.id}']")).to_have_count(0)
    shot(page, "deleted")
    page.goto(f"{base_url}/console/recordings/{rec.id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("404")
