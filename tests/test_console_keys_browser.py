"""Console API keys in a real headless Chromium: an admin opens the keys page from the navigation,
creates a key and reads its secret (shown once), then revokes it after confirming. Screenshots go to
test-artifacts/console/ (keys.png, keys-created.png)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from app.services.access import keys
from tests.console import ADMIN, READ, project_with_key
from tests.console_shots import served_app, shot  # noqa: F401 - served_app is the base_url fixture

pytestmark = pytest.mark.slow


@pytest.fixture
def admin_key(rt) -> str:  # type: ignore[no-untyped-def]
    """The admin key of a fresh project that has one more key, "reporting"."""
    project_id, admin = project_with_key(rt, *ADMIN)
    keys.create_key(rt, project_id, READ, name="reporting")
    return admin


@pytest.fixture
def page(browser: Browser, base_url: str, admin_key: str) -> Iterator[Page]:
    """A page signed in to the console with the project's admin key, on the keys page."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    signed = context.new_page()
    signed.goto(f"{base_url}/console/")
    signed.get_by_label("API key").fill(admin_key)
    signed.get_by_label("API key").press("Enter")
    signed.get_by_role("link", name="API keys").click()
    expect(signed.get_by_role("heading", name="API keys", exact=True)).to_be_visible()
    yield signed
    context.close()


def create(page: Page, name: str) -> str:
    """Fill in and submit the create form; returns the secret the answer shows."""
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("recording:write", exact=True).uncheck()
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("[data-role=secret]")
    expect(secret).to_be_visible()
    return secret.inner_text()


def test_the_keys_page_lists_the_projects_keys(page: Page):
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody tr", has_text="reporting")).to_contain_text("recording:read")
    shot(page, "keys")


def test_a_created_key_shows_its_secret_once_and_it_works(page: Page, base_url: str, rt):
    secret = create(page, "browser-made")
    key = keys.authenticate(rt, secret)
    assert key is not None and key.name == "browser-made" and "recording:write" not in key.scope_set
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    shot(page, "keys-created")
    page.goto(f"{base_url}/console/keys")
    expect(page.locator("tbody tr", has_text="browser-made")).to_be_visible()
    expect(page.locator("[data-role=secret]")).to_have_count(0)


def test_a_revoked_key_stops_working(page: Page, rt):
    secret = create(page, "to-revoke")
    page.locator("tbody tr", has_text="to-revoke").get_by_role("link", name="Revoke").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("to-revoke")
    page.get_by_role("button", name="Revoke the key").click()
    expect(page.get_by_role("status").filter(has_text="revoked")).to_be_visible()
    row = page.locator("tbody tr", has_text="to-revoke")
    expect(row.locator("[data-label=Revoked] time")).to_be_visible()
    expect(row.get_by_role("link", name="Revoke")).to_have_count(0)
    assert keys.authenticate(rt, secret) is None
