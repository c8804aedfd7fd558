"""The console's "Record web pages" section: the project token and the two snippets, filled in with
this meetrec's address; admins rotate the token."""

from __future__ import annotations

import html
import re

from app.services.access import keys
from tests.console import ADMIN, READ, key_for, post, project_with_key, sign_in, text


def snippet(page: str, element_id: str) -> str:
    found = re.search(rf'<code id="{element_id}">(.*?)</code>', page, re.S)
    assert found, element_id
    return html.unescape(found.group(1))


def test_the_page_shows_the_project_token_in_both_snippets(rt, client):
    project_id, raw = project_with_key(rt, *READ)
    sign_in(client, raw)
    page = text(client.get("/console/capture"))
    token = keys.public_token(rt, project_id)
    base = rt.config.public_url
    posthog = snippet(page, "snippet-posthog")
    assert f'<script src="{base}/static/array.js"></script>' in posthog
    assert f'posthog.init("{token}", {{ api_host: "{base}" }});' in posthog
    own = snippet(page, "snippet-meetrec")
    assert f'<script src="{base}/rrweb/record.js" data-autostart>' in own
    assert f'{{"publicAPIkey": "{token}"}}' in own


def test_the_section_is_in_the_navigation(rt, client):
    _, raw = project_with_key(rt, *READ)
    sign_in(client, raw)
    assert 'href="/console/capture"' in text(client.get("/console/recordings"))


def test_an_admin_rotates_the_token(rt, client):
    project_id, raw = project_with_key(rt, *READ)
    old = keys.public_token(rt, project_id)
    sign_in(client, key_for(rt, project_id, *ADMIN))
    resp = post(client, "/console/capture/rotate")
    assert resp.status_code == 303
    fresh = keys.public_token(rt, project_id)
    assert fresh != old and keys.authenticate(rt, old) is None
    assert fresh in text(client.get("/console/capture"))


def test_a_reader_cannot_rotate_the_token(rt, client):
    project_id, raw = project_with_key(rt, *READ)
    old = keys.public_token(rt, project_id)
    sign_in(client, raw)
    assert "Rotate the token" not in text(client.get("/console/capture"))
    assert post(client, "/console/capture/rotate").status_code == 403
    assert keys.public_token(rt, project_id) == old


def test_rotating_needs_the_forms_csrf_token(rt, client):
    project_id, _ = project_with_key(rt, *READ)
    old = keys.public_token(rt, project_id)
    sign_in(client, key_for(rt, project_id, *ADMIN))
    assert client.post("/console/capture/rotate").status_code in (400, 403)
    assert keys.public_token(rt, project_id) == old
