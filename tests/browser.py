"""Real headless Chromium for the console tests, driven by Playwright.

The tests launch a system Chromium through `executable_path` (`MEETREC_CHROMIUM` overrides where it
is; `.ci/run` installs Debian's when it is missing) or, without one, the Chromium Playwright manages.
`python -m tests.browser` (run by `make test`) downloads the managed one when neither is there: on a
fresh machine with only Python and pip, that is how the console tests get a browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from werkzeug.serving import make_server

CANDIDATES = ("chromium", "chromium-browser", "/usr/lib/chromium/chromium", "google-chrome")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "console"
MISSING = (
    "No Chromium found for the console browser tests. Run `.venv/bin/python -m playwright install "
    "chromium`, install Debian's package (`sudo apt-get update && sudo apt-get install -y chromium`, as "
    ".ci/run does) or point MEETREC_CHROMIUM at a Chromium binary."
)


def chromium_path() -> str | None:
    """The system Chromium binary to drive: MEETREC_CHROMIUM, or the first candidate found."""
    explicit = os.environ.get("MEETREC_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """Serve `app` on a free loopback port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="console-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def managed_chromium() -> str | None:
    """The Chromium `playwright install chromium` put in place, if it did."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        path = p.chromium.executable_path
    return path if path and Path(path).exists() else None


def ensure() -> int:
    """Download Playwright's Chromium unless a Chromium is already there; never fails the build."""
    if chromium_path() or managed_chromium():
        return 0
    print("tests/browser.py: no Chromium found; trying `playwright install chromium`", flush=True)
    done = subprocess.run([sys.executable, "-m", "playwright", "install", "chromium"], check=False)
    if done.returncode != 0:
        print(MISSING, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(ensure())
