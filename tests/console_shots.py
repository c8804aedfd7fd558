"""Helpers for the console's browser tests: the app served on loopback, and screenshots saved to
test-artifacts/console/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.browser import ARTIFACTS, live_server


def shot(page: Page, name: str) -> None:
    """Save a full-page screenshot as test-artifacts/console/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module", name="base_url")
def served_app(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """`base_url`: the session's app served on a free loopback port for the module's tests (import
    `served_app` into a test module to use it)."""
    with live_server(app) as url:
        yield url
