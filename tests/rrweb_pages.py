"""Record a page with the vendored rrweb in headless Chromium and replay its events with `rrweb.Replayer`.

Plain functions taking a Playwright `Page` (no pytest fixtures here), so browser tests can record real
rrweb events and check what a replay shows. The pages need no server: `route_record_page` answers a
made-up origin (`http://rrweb.test`) from memory and from the vendored files through `page.route`, so
the bundle loads as an ordinary `<script src>` from the same origin as the page.

The bundle is rrweb's UMD build (`dist/rrweb.umd.min.cjs` of the npm package, renamed): as a classic
script it defines `window.rrweb` with `record` and `Replayer`. `rrweb.min.css` only styles the
replayer's wrapper and mouse cursor; the replay works without it.

`python -m tests.rrweb_pages [OUT]` re-records the benchmark sample (`bench/fixtures/rrweb_events.json`
by default) from `rich_page_html()` driven by `record_session`.
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, Route

from tests.browser import MISSING, chromium_path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "app" / "static" / "vendor" / "rrweb"
RRWEB_JS = VENDOR / "rrweb.min.js"
"""The vendored rrweb browser bundle (UMD; defines `window.rrweb` with `record` and `Replayer`)."""
RRWEB_CSS = VENDOR / "rrweb.min.css"
"""The vendored replayer stylesheet (wrapper and mouse cursor only)."""
RRWEB_VERSION_FILE = VENDOR / "VERSION"
RRWEB_LICENSE = VENDOR / "LICENSE"
RRWEB_VERSION = "2.2.2"
"""The npm `rrweb` version vendored (the `latest` dist-tag when it was vendored)."""
RRWEB_SHA256 = "634aae0583bf9d1a857307d28fb49c98c14210929e22166fb150f3ae83d91cca"
"""sha256 of `dist/rrweb.umd.min.cjs` in the npm tarball of `rrweb@RRWEB_VERSION` (= `RRWEB_JS`)."""
BENCH_EVENTS = ROOT / "bench" / "fixtures" / "rrweb_events.json"

ORIGIN = "http://rrweb.test"
"""The made-up origin `route_record_page` serves; requests to it never reach the network."""
BUNDLE_PATH = "/static/vendor/rrweb/rrweb.min.js"
"""Where the bundle is under an origin serving the vendored directory (meetrec's static URL)."""

# rrweb event and incremental-source numbers (rrweb's EventType / IncrementalSource / MouseInteractions).
FULL_SNAPSHOT, INCREMENTAL, META = 2, 3, 4
SOURCE_MUTATION, SOURCE_MOUSE_MOVE, SOURCE_MOUSE_INTERACTION, SOURCE_SCROLL, SOURCE_INPUT = 0, 1, 2, 3, 5
INTERACTION_CLICK = 2


def launch(playwright: Playwright) -> Browser:
    """Headless Chromium as the console tests get it: `tests.browser`'s system or managed binary.

    Raises RuntimeError with `tests.browser.MISSING` (how to get one) when there is no Chromium.
    """
    managed = playwright.chromium.executable_path  # not `managed_chromium()`: it would nest a Playwright
    path = chromium_path() or (managed if managed and Path(managed).exists() else None)
    if path is None:
        raise RuntimeError(MISSING)
    return playwright.chromium.launch(executable_path=path, args=["--mute-audio"])


def _page(title: str, body: str, script_src: str) -> str:
    src = html.escape(script_src, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
  body {{ font: 14px/1.4 sans-serif; margin: 16px; }}
  label {{ display: block; margin: 8px 0; }}
  table {{ border-collapse: collapse; }}
  td, th {{ border: 1px solid #ccc; padding: 2px 6px; }}
  .done {{ text-decoration: line-through; color: #888; }}
</style>
<script src="{src}"></script>
</head>
<body>
{body}
<script>
  window.__events = [];
  window.__stopRecording = rrweb.record({{ emit(e) {{ window.__events.push(e); }} }});
</script>
</body>
</html>
"""


def record_page_html(script_src: str = BUNDLE_PATH) -> str:
    """A page with `#name` (text input), `#notes` (textarea) and `#save` (button), recorded by rrweb.

    The bundle loads from `script_src` in a classic `<script>`; once the body is parsed the page runs
    `rrweb.record({emit(e) { window.__events.push(e) }})` (the stop function is `window.__stopRecording`).
    Clicking the button writes "saved" into `#status`, so the click also makes a DOM mutation.
    """
    body = """<h1>rrweb record page</h1>
<form id="form" onsubmit="return false">
  <label>Name <input id="name" type="text" autocomplete="off"></label>
  <label>Notes <textarea id="notes" rows="3" cols="40"></textarea></label>
  <button id="save" type="button"
    onclick="document.getElementById('status').textContent = 'saved'">Save</button>
</form>
<p id="status"></p>"""
    return _page("meetrec rrweb record page", body, script_src)


def rich_page_html(script_src: str = BUNDLE_PATH) -> str:
    """A longer page for realistic samples: text, a list, a 40-row table, inputs and a checkbox.

    Same inputs as `record_page_html` (`#name`, `#notes`, `#save`) plus `#agree`, `#add` (appends a
    list item) and `#todo` items that toggle a class when clicked; tall enough to scroll.
    """
    paras = "\n".join(
        f"<p>Paragraph {i}: the meeting covered item {i}, its owner and the follow-up date. "
        "Notes are shared with everyone who joined.</p>"
        for i in range(1, 9)
    )
    items = "\n".join(f'<li class="item" id="item-{i}">Action item {i}</li>' for i in range(1, 11))
    rows = "\n".join(
        f"<tr><td>{i}</td><td>participant-{i}</td><td>{(i * 37) % 60} min</td><td>{'yes' if i % 3 else 'no'}"
        "</td></tr>"
        for i in range(1, 41)
    )
    body = f"""<header><h1>Weekly sync</h1>
<nav><a href="#agenda">Agenda</a> | <a href="#people">People</a></nav></header>
<section id="agenda"><h2>Agenda</h2>
{paras}
<ul id="todo">
{items}
</ul>
<button id="add" type="button">Add item</button>
</section>
<form id="form" onsubmit="return false">
  <label>Name <input id="name" type="text" autocomplete="off"></label>
  <label>Notes <textarea id="notes" rows="4" cols="50"></textarea></label>
  <label><input id="agree" type="checkbox"> Share the notes</label>
  <button id="save" type="button">Save</button>
  <p id="status"></p>
</form>
<section id="people"><h2>People</h2>
<table><thead><tr><th>#</th><th>Name</th><th>Talked</th><th>Camera</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</section>
<script>
  let added = 0;
  document.getElementById('add').onclick = () => {{
    const li = document.createElement('li');
    li.className = 'item';
    li.textContent = 'Added item ' + (++added);
    document.getElementById('todo').appendChild(li);
  }};
  document.getElementById('todo').onclick = (e) => {{
    if (e.target.tagName === 'LI') e.target.classList.toggle('done');
  }};
  document.getElementById('save').onclick = () => {{
    document.getElementById('status').textContent =
      'Saved ' + document.getElementById('name').value;
  }};
</script>"""
    return _page("meetrec rrweb rich page", body, script_src)


def route_record_page(page: Page, origin: str = ORIGIN, page_html: str | None = None) -> str:
    """Serve a record page and the vendored rrweb files at `origin` through `page.route`; returns its URL.

    `origin + "/"` answers `page_html` (default `record_page_html()`), and `origin + BUNDLE_PATH` (and
    the rest of `/static/vendor/rrweb/`) answers the vendored files from disk. Nothing listens on
    `origin`: Playwright fulfils the requests itself, so no server or DNS is needed.
    """
    origin = origin.rstrip("/")
    document = record_page_html() if page_html is None else page_html
    types = {".js": "text/javascript", ".css": "text/css"}

    def handle(route: Route) -> None:
        path = route.request.url[len(origin) :].split("?", 1)[0].split("#", 1)[0]
        if path in ("", "/"):
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=document)
            return
        prefix = BUNDLE_PATH.rsplit("/", 1)[0] + "/"
        name = path[len(prefix) :] if path.startswith(prefix) else ""
        file = VENDOR / name
        if name and "/" not in name and file.is_file():
            route.fulfill(
                status=200, content_type=types.get(file.suffix, "text/plain"), body=file.read_bytes()
            )
            return
        route.fulfill(status=404, content_type="text/plain", body="not found")

    page.route(f"{origin}/**", handle)
    return origin + "/"


def events_of(page: Page) -> list[dict[str, Any]]:
    """A copy of `window.__events` (the events rrweb emitted so far) as Python dicts."""
    return page.evaluate("() => JSON.parse(JSON.stringify(window.__events))")


def _wait_recording(page: Page, timeout_ms: float) -> None:
    page.wait_for_function(
        "() => Array.isArray(window.__events) && window.__events.some(e => e.type === 2)", timeout=timeout_ms
    )


def record_typing(page: Page, base_url: str, text: str, timeout_ms: float = 10_000) -> list[dict[str, Any]]:
    """Open the record page at `base_url`, type `text` into `#name`, click the button; return the events.

    `base_url` is the URL of a page built by `record_page_html` (e.g. what `route_record_page` returned,
    or meetrec serving it). Typing is real keyboard input (`page.keyboard.type`, one keydown/input per
    character); the function waits until rrweb has emitted the full snapshot, an input event whose text
    is `text` for `#name`, and the button's click, then returns `window.__events`.
    """
    page.goto(base_url)
    _wait_recording(page, timeout_ms)
    page.click("#name")
    page.keyboard.type(text, delay=15)
    page.click("#save")
    page.wait_for_function(
        """([text, INC, INPUT, MI, CLICK]) => {
          const ev = window.__events;
          const typed = ev.some(e => e.type === INC && e.data.source === INPUT && e.data.text === text);
          const clicked = ev.some(e => e.type === INC && e.data.source === MI && e.data.type === CLICK);
          return typed && clicked;
        }""",
        arg=[text, INCREMENTAL, SOURCE_INPUT, SOURCE_MOUSE_INTERACTION, INTERACTION_CLICK],
        timeout=timeout_ms,
    )
    page.wait_for_timeout(50)  # let the click's mutation (the status text) be flushed too
    return events_of(page)


def record_session(page: Page, base_url: str, timeout_ms: float = 10_000) -> list[dict[str, Any]]:
    """Drive a page built by `rich_page_html` like a user and return its rrweb events.

    Mouse moves across the page, clicks on list items and buttons (which mutate the DOM), typing into
    `#name` and `#notes`, a checkbox and wheel scrolls down and back up: a full snapshot followed by a
    few hundred incremental events.
    """
    page.set_viewport_size({"width": 1024, "height": 700})
    page.goto(base_url)
    _wait_recording(page, timeout_ms)
    for rnd in range(2):
        for step in range(60):  # sweep the mouse; rrweb sends moves in batches every ~500 ms
            page.mouse.move(40 + step * 15, 80 + ((step + rnd * 7) * 53) % 500, steps=4)
            page.wait_for_timeout(40)
        for i in ((1, 3, 4, 7, 9, 3), (2, 5, 8))[rnd]:
            page.click(f"#item-{i}")
            page.wait_for_timeout(60)
        for _ in range(5):
            page.click("#add")
            page.wait_for_timeout(60)
    page.click("#name")
    page.keyboard.type("Ada Lovelace", delay=25)
    for _ in range(len("Lovelace")):
        page.keyboard.press("Backspace")
    page.keyboard.type("King", delay=25)
    page.click("#notes")
    notes = (
        "Ship the recorder behind the flag.\nReview the replay with design next week.\n"
        "Ask ops about retention for the staging bucket.\nFollow up on the webhook retries."
    )
    page.keyboard.type(notes, delay=5)
    page.click("#agree")
    page.click("#save")
    for rnd in range(2):
        page.mouse.move(500, 400)
        for _ in range(10):
            page.mouse.wheel(0, 250)
            page.wait_for_timeout(150)
        for step in range(25):
            page.mouse.move(100 + step * 30, 200 + ((step + rnd) * 37) % 400, steps=3)
            page.wait_for_timeout(40)
        for _ in range(10):
            page.mouse.wheel(0, -250)
            page.wait_for_timeout(150)
    page.wait_for_function(
        "([INC, SCROLL]) => window.__events.some(e => e.type === INC && e.data.source === SCROLL)",
        arg=[INCREMENTAL, SOURCE_SCROLL],
        timeout=timeout_ms,
    )
    page.wait_for_timeout(600)  # the last throttled mouse-move batch
    return events_of(page)


def _load_bundle(page: Page, bundle_url_or_path: str | Path) -> None:
    blank = "<!doctype html><html><head><meta charset='utf-8'></head><body></body></html>"
    source = str(bundle_url_or_path)
    if isinstance(bundle_url_or_path, Path) or Path(source).is_file():
        page.set_content(blank)
        page.add_script_tag(path=source)
        css = Path(source).with_suffix(".css")
        if css.is_file():
            page.add_style_tag(path=str(css))
    else:
        if "://" not in source:
            if not page.url.startswith(("http://", "https://")):
                raise ValueError(f"relative bundle URL {source!r} needs the page on its origin first")
            source = (
                page.url.split("://", 1)[0] + "://" + page.url.split("://", 1)[1].split("/", 1)[0] + source
            )
        page.set_content(blank)
        page.add_script_tag(url=source)
    page.wait_for_function("() => window.rrweb && typeof window.rrweb.Replayer === 'function'")


def replay(page: Page, events: list[dict[str, Any]], bundle_url_or_path: str | Path = RRWEB_JS) -> None:
    """Replay `events` to their end with `rrweb.Replayer` in `page` (as `window.__replayer`), paused there.

    The page is emptied and the bundle loaded into it: a local file (`Path` or existing path, default
    the vendored one, with its sibling `.css`), or a URL (absolute, or relative to the page's current
    origin). The replayer goes in `document.body` and is paused at the last event's offset + 1 ms,
    which applies every event synchronously (no wall-clock playback); then this waits until the
    replayer's iframe document has a body.
    """
    _load_bundle(page, bundle_url_or_path)
    page.evaluate(
        """(events) => {
          const replayer = new rrweb.Replayer(events, { root: document.body, showWarning: false });
          const first = events[0].timestamp, last = events[events.length - 1].timestamp;
          replayer.pause(last - first + 1);
          window.__replayer = replayer;
        }""",
        events,
    )
    page.wait_for_function(
        "() => { const d = window.__replayer.iframe.contentDocument; return !!(d && d.body); }"
    )


def replayed_value(
    page: Page,
    events: list[dict[str, Any]],
    bundle_url_or_path: str | Path = RRWEB_JS,
    selector: str = "#name",
    timeout_ms: float = 10_000,
) -> str:
    """The value of `selector` (default `#name`) after replaying `events` to the end (see `replay`).

    Read through the replayer's iframe (`replayer.iframe.contentDocument`): rrweb sandboxes it with
    `sandbox="allow-same-origin"` only, so the parent page may read its DOM while the recorded page's
    scripts stay off. Waits until the element exists in the replayed document.
    """
    replay(page, events, bundle_url_or_path)
    handle = page.wait_for_function(
        """(sel) => {
          const el = window.__replayer.iframe.contentDocument.querySelector(sel);
          return el ? { value: el.value } : null;
        }""",
        arg=selector,
        timeout=timeout_ms,
    )
    return handle.json_value()["value"]


def main(argv: list[str]) -> int:
    """Record `record_session` on `rich_page_html` and write the events as JSON to argv[0] or BENCH_EVENTS."""
    from playwright.sync_api import sync_playwright

    out = Path(argv[0]) if argv else BENCH_EVENTS
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page()
            url = route_record_page(page, page_html=rich_page_html())
            events = record_session(page, url)
        finally:
            browser.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(events, separators=(",", ":")) + "\n")
    kinds: dict[str, int] = {}
    for e in events:
        key = f"{e['type']}" + (f"/{e['data'].get('source')}" if e["type"] == INCREMENTAL else "")
        kinds[key] = kinds.get(key, 0) + 1
    print(f"{out}: {len(events)} events, {out.stat().st_size} bytes, by type[/source]: {kinds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
