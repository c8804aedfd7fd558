"""Console sign-in: keys and scopes, the session cookie, CSRF, and no page or data without a session."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from app.console import session_secret
from app.factory import create_app
from app.models import ApiKey, utcnow
from app.runtime import Runtime
from tests.console import ADMIN, READ, WEBHOOKS, csrf, post, project_with_key, sign_in, text
from tests.helpers import make_recording


def unsigned_paths(app) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """Every console route as (method, path, endpoint), its arguments filled with a dummy id."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("console.") or rule.endpoint in {
            "console.sign_in",
            "console.sign_in_submit",
            "console.sign_out",
        }:
            continue
        path = re.sub(r"<[^>]+>", "x", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, path, rule.endpoint))
    return found


def test_every_console_route_is_listed(app):
    endpoints = {e for _, _, e in unsigned_paths(app)}
    assert {"console.recordings", "console.recording", "console.delete", "console.system"} <= endpoints


def test_no_console_page_is_reachable_unsigned(app, client):
    for method, path, endpoint in unsigned_paths(app):
        if method != "GET":
            continue
        resp = client.get(path)
        if endpoint == "console.states":
            assert resp.status_code == 401, path
        else:
            assert resp.status_code == 302, path
            assert resp.headers["Location"].startswith("/console/sign-in"), path


def test_no_console_action_runs_unsigned_even_with_a_csrf_token(app, client):
    for method, path, _ in unsigned_paths(app):
        if method == "POST":
            resp = post(client, path)
            assert resp.status_code == 302 and "/console/sign-in" in resp.headers["Location"], path


def test_unsigned_recording_page_shows_no_data(rt, client):
    project_id, _ = project_with_key(rt)
    rec_id = make_recording(rt, project_id)
    page = text(client.get(f"/console/recordings/{rec_id}", follow_redirects=True))
    assert "<h1>Sign in</h1>" in page
    assert "SHA-256" not in page and "State timeline" not in page


def test_the_sign_in_page_remembers_where_you_were_going(client):
    resp = client.get("/console/rooms?page=2")
    assert resp.headers["Location"] == "/console/sign-in?next=/console/rooms?page%3D2"


def test_a_read_key_signs_in(rt, client):
    _, key = project_with_key(rt, *READ)
    resp = sign_in(client, key)
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/console/recordings"
    assert client.get("/console/recordings").status_code == 200


def test_an_admin_key_signs_in(rt, client):
    _, key = project_with_key(rt, *ADMIN)
    assert sign_in(client, key).status_code == 303


def test_a_wrong_key_cannot_sign_in(client):
    resp = sign_in(client, "mr_not_a_key")
    assert resp.status_code == 401
    assert "unknown, revoked" in text(resp)
    assert client.get("/console/recordings").status_code == 302


def test_a_key_without_read_scope_cannot_sign_in(rt, client):
    _, key = project_with_key(rt, "ingest")
    assert sign_in(client, key).status_code == 401


def test_a_revoked_key_is_signed_out_at_its_next_request(rt, client):
    _, key = project_with_key(rt, *READ)
    sign_in(client, key)
    with rt.db.transaction() as s:
        s.execute(update(ApiKey).where(ApiKey.prefix == key[:8]).values(revoked_at=utcnow()))
    assert client.get("/console/recordings").status_code == 302


def test_sign_in_follows_a_console_next(rt, client):
    _, key = project_with_key(rt, *READ)
    resp = client.post(
        "/console/sign-in", data={"api_key": key, "csrf_token": csrf(client), "next": "/console/rooms"}
    )
    assert resp.headers["Location"] == "/console/rooms"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/console/", "/docs", "/console\\@x"]
)
def test_sign_in_refuses_to_redirect_off_the_console(rt, client, target):
    _, key = project_with_key(rt, *READ)
    resp = client.post("/console/sign-in", data={"api_key": key, "csrf_token": csrf(client), "next": target})
    assert resp.headers["Location"] == "/console/recordings"


def test_sign_out_ends_the_session(rt, client):
    _, key = project_with_key(rt, *READ)
    sign_in(client, key)
    assert post(client, "/console/sign-out").status_code == 303
    assert client.get("/console/recordings").status_code == 302


def test_the_session_never_holds_the_key(rt, client):
    _, key = project_with_key(rt, *READ)
    sign_in(client, key)
    with client.session_transaction("/console/") as s:
        assert key not in repr(dict(s))


def test_the_session_cookie_is_httponly_samesite_and_console_only(rt, client):
    _, key = project_with_key(rt, *READ)
    cookie = sign_in(client, key).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # the test config's public URL is http


def test_the_session_cookie_is_secure_behind_https(rt):
    https = create_app(runtime=Runtime(dataclasses.replace(rt.config, public_url="https://rec.example")))
    assert https.config["SESSION_COOKIE_SECURE"] is True


def test_sign_in_rotates_the_csrf_token(rt, client):
    _, key = project_with_key(rt, *READ)
    before = csrf(client)
    sign_in(client, key)
    assert csrf(client) != before


def test_a_form_without_csrf_token_is_refused(rt, client):
    _, key = project_with_key(rt, *READ)
    resp = client.post("/console/sign-in", data={"api_key": key})
    assert resp.status_code == 400
    assert client.get("/console/recordings").status_code == 302


def test_a_form_with_a_wrong_csrf_token_is_refused(rt, client):
    _, key = project_with_key(rt, *READ)
    sign_in(client, key)
    assert client.post("/console/sign-out", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/console/recordings").status_code == 200


def test_a_page_needing_another_scope_is_403(rt, client):
    _, key = project_with_key(rt, *READ)
    sign_in(client, key)
    assert client.get("/console/system").status_code == 403
    assert client.get("/console/webhooks").status_code == 403


def test_the_webhooks_page_needs_webhook_write(rt, client):
    _, key = project_with_key(rt, *WEBHOOKS)
    sign_in(client, key)
    assert client.get("/console/webhooks").status_code == 200


def test_the_nav_offers_only_allowed_sections(rt, client):
    _, key = project_with_key(rt, *READ)
    sign_in(client, key)
    page = text(client.get("/console/recordings"))
    assert 'href="/console/rooms"' in page and 'href="/console/system"' not in page


def test_the_session_key_is_derived_from_the_secret_key(rt, app):
    assert app.secret_key == session_secret(rt.config)
    assert app.secret_key != rt.config.secret_key
    other = dataclasses.replace(rt.config, secret_key=rt.config.secret_key + "x")
    assert session_secret(other) != app.secret_key


def test_without_a_secret_key_the_console_is_503(rt):
    bare = create_app(runtime=Runtime(dataclasses.replace(rt.config, secret_key="")))
    resp = bare.test_client().get("/console/sign-in")
    assert resp.status_code == 503
    assert "MEETREC_SECRET_KEY" in text(resp)


def test_pages_forbid_framing_and_caching(client):
    resp = client.get("/console/sign-in")
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store"


def test_sessions_expire(app):
    assert app.permanent_session_lifetime == timedelta(hours=12)
