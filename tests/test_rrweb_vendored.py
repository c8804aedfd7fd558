"""The vendored rrweb records typing in headless Chromium and `rrweb.Replayer` replays it, with no server.

The record page and the bundle are served by `page.route` (see `tests.rrweb_pages`); the replay runs in a
second page with the bundle loaded from disk. Uses the Chromium the console tests use (`tests.browser`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests import rrweb_pages
from tests.rrweb_pages import (
    INCREMENTAL,
    RRWEB_JS,
    RRWEB_LICENSE,
    RRWEB_SHA256,
    RRWEB_VERSION,
    RRWEB_VERSION_FILE,
    SOURCE_INPUT,
)

TYPED = "hello meetrec"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        try:
            launched = rrweb_pages.launch(p)
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)
        yield launched
        launched.close()


def test_vendored_files() -> None:
    assert RRWEB_VERSION_FILE.read_text().strip() == RRWEB_VERSION
    # The bundle carries no version string: its checksum is that of rrweb@VERSION's dist/rrweb.umd.min.cjs.
    assert hashlib.sha256(RRWEB_JS.read_bytes()).hexdigest() == RRWEB_SHA256
    assert "MIT License" in RRWEB_LICENSE.read_text()
    assert not list(RRWEB_JS.parent.glob("*.map"))


def test_record_and_replay_typing(browser: Browser) -> None:
    recorder = browser.new_page()
    errors: list[str] = []
    recorder.on("pageerror", lambda e: errors.append(str(e)))
    url = rrweb_pages.route_record_page(recorder)
    events = rrweb_pages.record_typing(recorder, url, TYPED)
    assert recorder.evaluate("typeof rrweb.record === 'function' && typeof rrweb.Replayer === 'function'")
    recorder.close()
    assert not errors

    assert [e["type"] for e in events if e["type"] in (2, 4)] == [4, 2]  # meta, then the full snapshot
    inputs = [e for e in events if e["type"] == INCREMENTAL and e["data"]["source"] == SOURCE_INPUT]
    assert inputs[-1]["data"]["text"] == TYPED
    assert len(inputs) >= len(TYPED) - 1  # real keystrokes: one input event per character (give or take)

    player = browser.new_page()
    assert rrweb_pages.replayed_value(player, events) == TYPED
    assert rrweb_pages.replayed_value(player, events, selector="#notes") == ""
    # The value comes from replaying the input events: without them #name replays empty.
    before = events[: events.index(inputs[0])]
    assert rrweb_pages.replayed_value(player, before) == ""
    player.close()
