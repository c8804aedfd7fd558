"""Console API keys (admin only): the list, minting a key whose secret is shown once, revoking one."""

from __future__ import annotations

import re

from app.services.access import key_use, keys
from tests.console import ADMIN, READ, WRITE, csrf, key_for, post, project_with_key, sign_in, text


def admin_client(client, rt) -> str:  # type: ignore[no-untyped-def]
    """Sign `client` in with a fresh project's admin key; returns the project id."""
    project_id, raw = project_with_key(rt, *ADMIN)
    assert sign_in(client, raw).status_code == 303
    return project_id


def created_secret(resp) -> str:  # type: ignore[no-untyped-def]
    """The secret a create answer shows."""
    found = re.search(r'data-role="secret">([^<]+)<', text(resp))
    assert found, text(resp)
    return found.group(1)


def create(client, name: str = "ci", scopes: tuple[str, ...] = WRITE, origins: str = ""):  # type: ignore[no-untyped-def]
    """POST the create form with the session's CSRF token."""
    return client.post(
        "/console/keys",
        data={"csrf_token": csrf(client), "name": name, "scope": list(scopes), "origins": origins},
    )


def test_the_page_lists_the_projects_keys(client, rt):
    project_id = admin_client(client, rt)
    other = keys.create_key(rt, project_id, READ, name="reporting")[0]
    page = text(client.get("/console/keys"))
    assert "reporting" in page and f"{other.prefix}…" in page and "recording:read" in page


def test_the_page_leaves_out_other_projects_keys(client, rt):
    admin_client(client, rt)
    foreign_project, _ = project_with_key(rt, *READ)
    foreign = keys.create_key(rt, foreign_project, READ, name="someone-elses")[0]
    assert foreign.id not in text(client.get("/console/keys"))


def test_the_page_shows_when_a_key_was_last_used(client, rt):
    project_id = admin_client(client, rt)
    raw = key_for(rt, project_id, *READ)
    keys.authenticate(rt, raw)
    key_use.flush()
    row = re.search(rf"<code>{re.escape(raw[:8])}…</code>.*?</tr>", text(client.get("/console/keys")), re.S)
    last_used = re.search(r'data-label="Last used">(.*?)</td>', row.group(0) if row else "")
    assert last_used and "<time" in last_used.group(1)


def test_admins_see_the_keys_link(client, rt):
    admin_client(client, rt)
    assert 'href="/console/keys"' in text(client.get("/console/recordings"))


def test_other_keys_neither_see_the_link_nor_open_the_page(client, rt):
    _, raw = project_with_key(rt, *WRITE)
    sign_in(client, raw)
    assert 'href="/console/keys"' not in text(client.get("/console/recordings"))
    assert client.get("/console/keys").status_code == 403


def test_a_non_admin_cannot_create_a_key(client, rt):
    project_id, raw = project_with_key(rt, *WRITE)
    sign_in(client, raw)
    assert create(client).status_code == 403
    assert len(keys.list_keys(rt, project_id)) == 1


def test_a_created_key_is_shown_once(client, rt):
    admin_client(client, rt)
    secret = created_secret(create(client))
    assert secret not in text(client.get("/console/keys"))


def test_a_created_secret_authenticates_with_the_chosen_scopes_and_origins(client, rt):
    project_id = admin_client(client, rt)
    secret = created_secret(create(client, "shop", ("ingest",), "https://Shop.test, https://b.test"))
    key = keys.authenticate(rt, secret)
    assert key is not None and key.project_id == project_id and key.name == "shop"
    assert key.scope_set == {"ingest"} and key.allowed_origins == "https://b.test https://shop.test"


def test_a_key_without_scopes_is_not_created(client, rt):
    project_id = admin_client(client, rt)
    resp = create(client, scopes=())
    assert resp.status_code == 303
    assert "at least one scope" in text(client.get(resp.headers["Location"]))
    assert len(keys.list_keys(rt, project_id)) == 1


def test_a_bad_origin_is_refused(client, rt):
    admin_client(client, rt)
    resp = create(client, origins="shop.test")
    assert "not an origin" in text(client.get(resp.headers["Location"]))


def test_creating_needs_the_csrf_token(client, rt):
    project_id = admin_client(client, rt)
    resp = client.post("/console/keys", data={"name": "forged", "scope": ["admin"]})
    assert resp.status_code == 400
    assert len(keys.list_keys(rt, project_id)) == 1


def test_the_revoke_confirmation_names_the_key(client, rt):
    project_id = admin_client(client, rt)
    key = keys.create_key(rt, project_id, READ, name="old laptop")[0]
    page = text(client.get(f"/console/keys/{key.id}/revoke"))
    assert "old laptop" in page and f"/console/keys/{key.id}/revoke" in page


def test_a_revoked_key_no_longer_authenticates(client, rt):
    project_id = admin_client(client, rt)
    raw = key_for(rt, project_id, *READ)
    key = keys.authenticate(rt, raw)
    resp = post(client, f"/console/keys/{key.id}/revoke")
    assert resp.status_code == 303 and resp.headers["Location"] == "/console/keys"
    assert keys.authenticate(rt, raw) is None


def test_revoking_needs_the_csrf_token(client, rt):
    project_id = admin_client(client, rt)
    raw = key_for(rt, project_id, *READ)
    key = keys.authenticate(rt, raw)
    assert client.post(f"/console/keys/{key.id}/revoke").status_code == 400
    assert keys.authenticate(rt, raw) is not None


def test_another_projects_key_is_not_found(client, rt):
    admin_client(client, rt)
    _, foreign_raw = project_with_key(rt, *READ)
    foreign = keys.authenticate(rt, foreign_raw)
    assert client.get(f"/console/keys/{foreign.id}/revoke").status_code == 404
    assert post(client, f"/console/keys/{foreign.id}/revoke").status_code == 404
    assert keys.authenticate(rt, foreign_raw) is not None


def test_an_unknown_key_is_not_found(client, rt):
    admin_client(client, rt)
    assert post(client, "/console/keys/no-such-key/revoke").status_code == 404


def test_revoking_the_key_you_signed_in_with_signs_you_out(client, rt):
    _, raw = project_with_key(rt, *ADMIN)
    sign_in(client, raw)
    own = keys.authenticate(rt, raw)
    assert "revoking it signs you out" in text(client.get(f"/console/keys/{own.id}/revoke"))
    resp = post(client, f"/console/keys/{own.id}/revoke")
    assert resp.headers["Location"].startswith("/console/sign-in")
    assert client.get("/console/keys").status_code == 302
