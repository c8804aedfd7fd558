"""Record `tests/data/rrweb_session.json`: a scripted two-page session with known counts.

`python -m tests.rrweb_session [OUT]` drives `rrweb_pages.rich_page_html` in headless Chromium with the
vendored rrweb. The vendored bundle has no console plugin, so the page passes rrweb's `record` a small
plugin named `rrweb/console@1` that emits what rrweb's console record plugin does: `{level, trace,
payload}` with each argument JSON-stringified. What `first_page` and `second_page` do is what the
tests count (tests/test_replay_facts.py, SESSION).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from tests import rrweb_pages

OUT = Path(__file__).resolve().parent / "data" / "rrweb_session.json"
START_URL = rrweb_pages.ORIGIN + "/"
CHECKOUT_URL = rrweb_pages.ORIGIN + "/checkout?step=1#pay"
PAUSE_MS = 7000  # > 5 s of inactivity plus rrweb's 500 ms mouse-move flush: a second activity segment

# What the recorded file must yield, from the script and the file itself, not from the code under test:
FACTS = {
    # one Click per page.click / mouse.click: 10 on the first page (4 of them the rage click), 2 on the second
    "click_count": 12,
    # an Input per character typed ("Ada", "hello") and one for the checkbox: 3 + 1 + 5
    "keypress_count": 9,
    # 12 clicks x (MouseDown, MouseUp, Click) = 36, Focus on #add x2, #name x2, #save x2, #agree = 7, a
    # Blur each time focus left an element = 6, and the 6 MouseMove batches rrweb flushed (read off the file)
    "mouse_activity_count": 55,
    "console_log_count": 3,  # console.log x2, console.info
    "console_warn_count": 2,  # console.warn, console.countReset
    "console_error_count": 3,  # console.error x2, console.assert(false, ...)
    # the active events (read off the file) before the 7 s pause, and from the pause to the end (the
    # navigation takes ~1.3 s, so both pages' later activity is one segment): 519 + 2254 ms
    "activity": [[1796292631153, 1796292631672], [1796292639362, 1796292641616]],
    "active_ms": 2773,
    "pages": [START_URL, CHECKOUT_URL],
    "start_url": START_URL,
    "start_url_at": 1796292630776,  # the first Meta event
    "first_timestamp": 1796292630764,
    "last_timestamp": 1796292641616,  # 10.852 s later
    "events": 89,
}
RAGE_CLICK = {"x": 50.0, "y": 183.0, "clicks": 4}  # the first of four clicks 128 ms apart within 9 px


def load() -> list[dict[str, Any]]:
    """The recorded session's events."""
    return json.loads(OUT.read_text())


CONSOLE_PLUGIN = """<script>
  window.__consolePlugin = {
    name: "rrweb/console@1",
    options: {},
    observer(cb, win) {
      const levels = ["log", "info", "warn", "error", "assert", "countReset"];
      const originals = {};
      for (const level of levels) {
        originals[level] = win.console[level];
        win.console[level] = (...args) => {
          if (!(level === "assert" && args[0])) {
            const shown = level === "assert" ? args.slice(1) : args;
            const trace = (new Error().stack || "").split("\\n").slice(2, 4).map((l) => l.trim());
            cb({ level, trace, payload: shown.map((a) => JSON.stringify(a)) });
          }
          return originals[level].apply(win.console, args);
        };
      }
      return () => { for (const level of levels) win.console[level] = originals[level]; };
    },
  };
</script>
</head>"""


def session_html() -> str:
    """`rich_page_html` whose recorder also runs the console plugin."""
    page = rrweb_pages.rich_page_html().replace("</head>", CONSOLE_PLUGIN, 1)
    plain = "rrweb.record({ emit(e) { window.__events.push(e); } })"
    with_plugin = "rrweb.record({ emit(e) { window.__events.push(e); }, plugins: [window.__consolePlugin] })"
    assert plain in page
    return page.replace(plain, with_plugin)


def first_page(page: Page) -> None:
    """Clicks 1-10 (7-10 a rage click on #add), 3 + 1 inputs, console log x2, info, warn, error, a pause."""
    page.mouse.move(300, 200, steps=10)
    page.click("#item-1")
    page.click("#item-3")
    page.click("#add")
    page.click("#name")
    page.keyboard.type("Ada", delay=40)
    page.evaluate(
        """() => { console.log("loaded", 1); console.log({ cart: 2 }); console.info("info goes to log");
                   console.warn("slow network"); console.error("TypeError: x is undefined"); }"""
    )
    page.wait_for_timeout(600 + PAUSE_MS)  # nothing active: the mouse rests, no input
    page.click("#save")
    page.click("#agree")
    box = page.locator("#add").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx in (0, 3, -4, 5):  # four clicks 120 ms apart within 5 px: a rage click
        page.mouse.click(x + dx, y + dx)
        page.wait_for_timeout(120)
    page.wait_for_timeout(600)


def second_page(page: Page) -> None:
    """Clicks 11-12, 5 inputs, console error x1 (+ assert), warn x1 (countReset)."""
    page.click("#name")
    page.keyboard.type("hello", delay=40)
    page.click("#save")
    page.evaluate(
        """() => { console.error("Failed to fetch /api/cart", 500); console.assert(false, "cart is empty");
                   console.assert(true, "not logged"); console.countReset("clicks"); }"""
    )
    page.wait_for_timeout(600)


def record(page: Page) -> list[dict[str, Any]]:
    """The two pages' events, one after the other (the navigation starts a new recording)."""
    html = session_html()
    page.set_viewport_size({"width": 1024, "height": 700})
    rrweb_pages.route_record_page(page, page_html=html)
    page.route(
        rrweb_pages.ORIGIN + "/checkout*",
        lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html),
    )
    events = []
    for url, script in ((START_URL, first_page), (CHECKOUT_URL, second_page)):
        page.goto(url)
        page.wait_for_function("() => window.__events.some((e) => e.type === 2)")
        script(page)
        events += rrweb_pages.events_of(page)
    return events


def main(argv: list[str]) -> int:
    """Record the session and write it as JSON to argv[0] or OUT."""
    out = Path(argv[0]) if argv else OUT
    with sync_playwright() as p:
        browser = rrweb_pages.launch(p)
        try:
            events = record(browser.new_page())
        finally:
            browser.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(events, separators=(",", ":")) + "\n")
    print(f"{out}: {len(events)} events, {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
