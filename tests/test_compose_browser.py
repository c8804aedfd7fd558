"""A recording joined in the object store plays and seeks in a real headless Chromium."""

from __future__ import annotations

import pytest

from app.services.core import recordings
from app.services.pipeline import finalize
from tests import test_compose
from tests.helpers import capture_stopped, capturing
from tests.test_compose import capture_segments

big_segments, part_rt = test_compose.big_segments, test_compose.part_rt  # the fixtures, shared


def test_a_joined_recording_plays_and_seeks_in_a_browser(
    part_rt, client, auth, big_segments, tmp_path, browser
):
    recording_id = capturing(part_rt, client, auth, "compose-browser")
    capture_segments(part_rt, recording_id, "cap-1", big_segments, tmp_path)
    capture_stopped(part_rt, recording_id, 6.0)
    assert "joined" in finalize.finalize(part_rt, recording_id)
    final = recordings.load(part_rt, recording_id)
    link = part_rt.storage.presign_get(final.object_key, 600)
    page = browser.new_page()
    try:
        page.set_content(f'<video id="v" preload="auto" muted src="{link}"></video>')
        page.wait_for_function("() => document.getElementById('v').readyState >= 1", timeout=30_000)
        duration = page.evaluate("document.getElementById('v').duration")
        assert duration == pytest.approx(final.duration, abs=0.2)  # from the head: no scan to the end
        target = round(final.duration * 0.7, 2)
        page.evaluate(f"document.getElementById('v').currentTime = {target}")
        page.wait_for_function(
            "() => { const v = document.getElementById('v'); return !v.seeking && v.readyState >= 2 }",
            timeout=30_000,
        )
        assert page.evaluate("document.getElementById('v').currentTime") == pytest.approx(target, abs=0.05)
        assert page.evaluate("document.getElementById('v').error") is None
    finally:
        page.close()
