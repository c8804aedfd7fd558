"""A real page recorded in headless Chromium with the npm `rrweb` package (served by meetrec), its events
sent from the browser through both ingest paths, and replayed from meetrec with rrweb's `Replayer`.

The page lives on its own origin (another loopback port), so the batch path goes through a real CORS
preflight with a public key bound to that origin; both paths send gzip, compressed by the browser.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Page

from app.services.access import keys
from tests import rrweb_pages
from tests.helpers import serving

TYPED = "hello meetrec"

SENDER = """
<script>
  const cfg = JSON.parse(document.getElementById("meetrec").textContent);
  let batch = [];
  window.__acks = [];
  rrweb.record({ emit: (e) => batch.push(e) });
  const socket = new WebSocket(`${cfg.ws}/rrweb/recordings/${cfg.socketId}/ingest/ws?` +
    new URLSearchParams({ key: cfg.key, contentType: "application/json", contentEncoding: "gzip",
                          stream: "tab-1" }));
  socket.binaryType = "arraybuffer";
  socket.onmessage = (m) => window.__acks.push(JSON.parse(m.data));
  const opened = new Promise((resolve) => socket.addEventListener("open", resolve));
  async function gzip(text) {
    const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  // Both paths get the same events: a gzip POST (CORS, Bearer key) and a gzip WebSocket frame.
  window.sendAll = async () => {
    const events = batch; batch = [];
    const body = await gzip(JSON.stringify(events));
    const answer = await fetch(`${cfg.http}/rrweb/recordings/${cfg.batchId}/ingest`, {
      method: "POST", body,
      headers: { Authorization: `Bearer ${cfg.key}`, "Content-Type": "application/json",
                 "Content-Encoding": "gzip" } });
    await opened;
    socket.send(body);
    socket.send(JSON.stringify({ type: "end" }));
    return { status: answer.status, events: events.length };
  };
</script>
"""


def page_html(meetrec: dict[str, str], config: dict[str, str]) -> str:
    """The record page (rrweb from meetrec's static files) with a sender for both ingest paths."""
    page = rrweb_pages.record_page_html(script_src=f"{meetrec['http']}{rrweb_pages.BUNDLE_PATH}")
    setup = f'<script type="application/json" id="meetrec">{json.dumps(config)}</script>{SENDER}'
    return page.replace("</body>", setup + "</body>")


@pytest.fixture(scope="module")
def meetrec(app) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    with serving(app) as (_, urls):
        yield urls


def stored_events(meetrec: dict[str, str], key: str, recording_id: str) -> list[dict[str, Any]]:
    resp = requests.get(
        f"{meetrec['http']}/rrweb/recordings/{recording_id}/events",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def record(page: Page, url: str) -> dict[str, Any]:
    """Type into the page like a user, then send what rrweb recorded; the batch answer and count."""
    page.goto(url)
    page.wait_for_function("window.rrweb && document.getElementById('name')")
    page.click("#name")
    page.keyboard.type(TYPED, delay=20)
    page.click("#save")
    page.wait_for_function(f"document.getElementById('name').value === {json.dumps(TYPED)}")
    page.wait_for_timeout(300)  # rrweb emits input events on the next tick
    result = page.evaluate("window.sendAll()")
    page.wait_for_function("window.__acks.some((a) => a.final === true)", timeout=15_000)
    return result


def test_a_page_recorded_in_chromium_replays_from_meetrec_through_both_paths(rt, meetrec, web_site, browser):
    origin, html = web_site
    project = keys.create_project(rt, "browser-" + secrets.token_hex(3))
    public = keys.create_key(rt, project.id, ("ingest",), origins=(origin,))[1]
    private = keys.create_key(rt, project.id, ("recording:read",))[1]
    ids = {"batchId": "batch-" + secrets.token_hex(4), "socketId": "socket-" + secrets.token_hex(4)}
    html["page"] = page_html(meetrec, {"http": meetrec["http"], "ws": meetrec["ws"], "key": public, **ids})
    context = browser.new_context()
    try:
        recorder = context.new_page()
        errors: list[str] = []
        recorder.on("pageerror", lambda e: errors.append(str(e)))
        result = record(recorder, origin + "/")
        assert result["status"] == 204 and not errors
        player = context.new_page()
        for recording_id in ids.values():
            events = stored_events(meetrec, private, recording_id)
            assert len(events) == result["events"]
            assert [e["sequenceId"] for e in events] == list(range(1, len(events) + 1))
            replay = [{k: v for k, v in e.items() if k not in ("sequenceId", "recordingId")} for e in events]
            assert rrweb_pages.replayed_value(player, replay) == TYPED
    finally:
        context.close()
