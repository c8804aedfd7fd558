"""The webhooks API: Eyeson-style registration, listing, deletion, SSRF refusal and secret rotation."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.config import Config
from app.embedded.up import SECRET_KEY_FILE, resolve_secret_key
from app.factory import create_app
from app.models import WebhookEndpoint
from app.runtime import Runtime
from app.services.access import keys
from app.services.operations import revocation
from app.services.outbox import endpoints

URL = "http://127.0.0.1:9/hook"  # loopback: the test config allow-lists it


def register(client, auth, url=URL, types="recording_update,room_update", how="json"):  # type: ignore[no-untyped-def]
    params = {"url": url, "types": types}
    if how == "json":
        return client.post("/webhooks", json=params, headers=auth)
    if how == "form":
        return client.post("/webhooks", data=params, headers=auth)
    return client.post("/webhooks", query_string=params, headers=auth)


def client_for(config, **changes):  # type: ignore[no-untyped-def]
    return create_app(runtime=Runtime(dataclasses.replace(config, **changes))).test_client()


@pytest.mark.parametrize("how", ["json", "form", "query"])
def test_registration_is_201_with_a_secret_shown_once(client, auth, how):
    resp = register(client, auth, how=how)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["url"] == URL
    assert body["types"] == ["recording_update", "room_update"]
    assert body["secret"].startswith("whsec_")
    assert body["last_request_sent_at"] is None and body["last_response_code"] is None


def test_registering_again_replaces_the_keys_webhook(client, auth):
    first = register(client, auth).get_json()
    again = register(client, auth, url="http://127.0.0.1:10/new", types="room_update").get_json()
    assert again["id"] == first["id"]
    assert again["secret"] is None  # the secret is kept, and not shown again
    listed = client.get("/webhooks/list", headers=auth).get_json()
    assert [(w["url"], w["types"]) for w in listed] == [("http://127.0.0.1:10/new", ["room_update"])]


def test_each_api_key_has_its_own_webhook(client, auth, rt):
    second = {"Authorization": sibling_key(rt, auth)}
    first = register(client, auth).get_json()
    other = register(client, second, url="http://127.0.0.1:11/other").get_json()
    assert other["id"] != first["id"]
    assert client.get("/webhooks", headers=auth).get_json()["id"] == first["id"]
    assert client.get("/webhooks", headers=second).get_json()["id"] == other["id"]


def test_get_webhooks_answers_the_keys_webhook_as_one_eyeson_object(client, auth):
    hook = register(client, auth, types="room_update,recording_update").get_json()
    body = client.get("/webhooks", headers=auth).get_json()
    assert body["id"] == hook["id"] and body["url"] == URL
    assert body["types"] == "room_update,recording_update"  # Eyeson: comma-separated, as registered
    assert body["last_request_sent_at"] is None and body["last_response_code"] is None
    assert "secret" not in body


def test_get_webhooks_without_a_webhook_is_404_in_the_error_shape(client, auth):
    resp = client.get("/webhooks", headers=auth)
    assert resp.status_code == 404
    assert resp.get_json()["code"] == 404 and "POST /webhooks" in resp.get_json()["message"]


def test_the_list_extension_shows_every_field(client, auth):
    register(client, auth)
    (hook,) = client.get("/webhooks/list", headers=auth).get_json()
    assert {"id", "url", "types", "last_request_sent_at", "last_response_code", "disabled_reason"} <= set(
        hook
    )
    assert hook["secret"] is None


def test_delete_is_204_then_404(client, auth):
    hook = register(client, auth).get_json()
    assert client.delete(f"/webhooks/{hook['id']}", headers=auth).status_code == 204
    assert client.get("/webhooks/list", headers=auth).get_json() == []
    assert client.delete(f"/webhooks/{hook['id']}", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/webhooks/{id}"),
        ("delete", "/webhooks/{id}"),
        ("post", "/webhooks/{id}/rotate-secret"),
        ("get", "/webhooks/{id}/deliveries"),
        ("post", "/webhooks/{id}/deliveries/nope/redeliver"),
    ],
)
def test_another_projects_webhook_is_404(client, auth, other_project_key, method, path):
    hook = register(client, auth).get_json()
    resp = getattr(client, method)(path.format(id=hook["id"]), headers={"Authorization": other_project_key})
    assert resp.status_code == 404
    assert resp.get_json()["code"] == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"url": URL, "types": "recording_update,podium_update"}, "types"),
        ({"url": URL, "types": ""}, "types"),
        ({"url": URL, "types": 7}, "types"),
        ({"url": "ftp://127.0.0.1/x", "types": "room_update"}, "url"),
        ({"url": "not a url", "types": "room_update"}, "url"),
        ({"types": "room_update"}, "url"),
    ],
)
def test_bad_input_is_422_in_the_error_shape(client, auth, params, field):
    resp = client.post("/webhooks", json=params, headers=auth)
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["code"] == 422
    assert field in body["errors"]["eyeson"]


def test_malformed_json_is_400(client, auth):
    resp = client.post("/webhooks", data="{", headers={**auth, "Content-Type": "application/json"})
    assert resp.status_code == 400


def test_a_key_is_required_and_needs_the_webhook_scope(client, rt):
    assert client.get("/webhooks").status_code == 401
    project = keys.create_project(rt, "scopes")
    reader = keys.create_key(rt, project.id, ("recording:read",))[1]
    assert client.get("/webhooks", headers={"Authorization": reader}).status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        URL,
        "http://localhost:9/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
    ],
)
def test_the_default_refuses_loopback_private_and_metadata_urls(config, auth, url):
    strict = client_for(config, url_allowlist=())
    resp = register(strict, auth, url=url)
    assert resp.status_code == 422
    assert "url" in resp.get_json()["errors"]


def test_without_a_secret_key_registration_is_503(config, auth):
    resp = register(client_for(config, secret_key=""), auth)
    assert resp.status_code == 503
    assert "MEETREC_SECRET_KEY" in resp.get_json()["message"]


def test_the_api_key_is_stored_sealed_not_in_the_clear(client, auth, rt):
    hook = register(client, auth).get_json()
    with rt.db.read() as s:
        row = s.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == hook["id"]))
    assert auth["Authorization"] not in row.eyeson_key_sealed
    assert hook["secret"] not in row.secret_sealed
    assert endpoints.eyeson_key(rt, row) == auth["Authorization"]


def test_rotation_returns_a_new_secret_and_honours_the_old_one_for_a_day(client, auth, rt):
    hook = register(client, auth).get_json()
    resp = client.post(f"/webhooks/{hook['id']}/rotate-secret", headers=auth)
    assert resp.status_code == 200
    new = resp.get_json()["secret"]
    assert new.startswith("whsec_") and new != hook["secret"]
    endpoint = endpoints.get(rt, keys.authenticate(rt, auth["Authorization"]), hook["id"])
    now = rt.now()
    assert endpoints.signing_secrets(rt, endpoint, now) == [new, hook["secret"]]
    assert endpoints.signing_secrets(rt, endpoint, now + timedelta(hours=25)) == [new]
    assert client.get(f"/webhooks/{hook['id']}", headers=auth).get_json()["previous_secret_expires_at"]


def test_deliveries_of_a_new_webhook_are_an_empty_list(client, auth):
    hook = register(client, auth).get_json()
    resp = client.get(f"/webhooks/{hook['id']}/deliveries", headers=auth)
    assert resp.status_code == 200
    assert resp.get_json() == []


def test_redelivering_an_unknown_delivery_is_404(client, auth):
    hook = register(client, auth).get_json()
    assert client.post(f"/webhooks/{hook['id']}/deliveries/nope/redeliver", headers=auth).status_code == 404


def sibling_key(rt, auth, scopes=keys.DEFAULT_SCOPES) -> str:  # type: ignore[no-untyped-def]
    """A raw key of the same project as `auth`'s, with `scopes`."""
    return keys.create_key(rt, keys.authenticate(rt, auth["Authorization"]).project_id, scopes)[1]


# --- ownership: a webhook belongs to the key that registered it -------------------------------------

OWN_ROUTES = [
    ("get", "/webhooks/{id}"),
    ("delete", "/webhooks/{id}"),
    ("post", "/webhooks/{id}/rotate-secret"),
    ("get", "/webhooks/{id}/deliveries"),
    ("post", "/webhooks/{id}/deliveries/nope/redeliver"),
]


@pytest.mark.parametrize(("method", "path"), OWN_ROUTES)
def test_another_keys_webhook_of_the_project_is_404(client, rt, auth, method, path):
    hook = register(client, auth).get_json()
    hooks_only = {"Authorization": sibling_key(rt, auth, ("webhook:write",))}
    resp = getattr(client, method)(path.format(id=hook["id"]), headers=hooks_only)
    assert resp.status_code == 404
    assert resp.get_json()["code"] == 404


def test_another_key_cannot_delete_the_webhook(client, rt, auth):
    hook = register(client, auth).get_json()
    hooks_only = {"Authorization": sibling_key(rt, auth, ("webhook:write",))}
    client.delete(f"/webhooks/{hook['id']}", headers=hooks_only)
    assert client.get(f"/webhooks/{hook['id']}", headers=auth).status_code == 200


def test_the_list_of_a_key_without_admin_holds_only_its_own_webhook(client, rt, auth):
    register(client, auth)
    hooks_only = {"Authorization": sibling_key(rt, auth, ("webhook:write",))}
    own = register(client, hooks_only, url="http://127.0.0.1:12/own").get_json()
    assert [w["id"] for w in client.get("/webhooks/list", headers=hooks_only).get_json()] == [own["id"]]


def test_an_admin_key_lists_every_webhook_of_its_project(client, rt, auth):
    first = register(client, auth).get_json()
    admin = {"Authorization": sibling_key(rt, auth, ("admin",))}
    assert [w["id"] for w in client.get("/webhooks/list", headers=admin).get_json()] == [first["id"]]


@pytest.mark.parametrize(("method", "path"), OWN_ROUTES[:4])
def test_an_admin_key_manages_another_keys_webhook(client, rt, auth, method, path):
    hook = register(client, auth).get_json()
    admin = {"Authorization": sibling_key(rt, auth, ("admin",))}
    assert getattr(client, method)(path.format(id=hook["id"]), headers=admin).status_code < 300


@pytest.mark.parametrize(("method", "path"), OWN_ROUTES)
def test_an_admin_key_of_another_project_gets_404(client, rt, auth, method, path):
    hook = register(client, auth).get_json()
    admin = {"Authorization": keys.create_key(rt, keys.create_project(rt, "else").id, ("admin",))[1]}
    assert getattr(client, method)(path.format(id=hook["id"]), headers=admin).status_code == 404


def test_revoking_a_key_disables_its_webhook(client, rt, auth):
    hook = register(client, auth).get_json()
    admin = {"Authorization": sibling_key(rt, auth, ("admin",))}
    revocation.revoke_key(rt, keys.authenticate(rt, auth["Authorization"]).id)
    shown = client.get(f"/webhooks/{hook['id']}", headers=admin).get_json()
    assert shown["disabled_at"] and shown["disabled_reason"] == "its API key was revoked"


def test_meetrec_up_keeps_one_secret_key_in_the_data_dir(tmp_path):
    config = Config(data_dir=tmp_path).resolved()
    first, second = resolve_secret_key(config), resolve_secret_key(config)
    assert first.secret_key and first.secret_key == second.secret_key
    assert (tmp_path / SECRET_KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert resolve_secret_key(dataclasses.replace(config, secret_key="mine")).secret_key == "mine"


def test_the_list_extension_is_not_taken_for_a_webhook_id(client, auth):
    """`/webhooks/list` is no `/webhooks/{id}`: it advertises only what it serves."""
    resp = client.open("/webhooks/list", method="OPTIONS", headers=auth)
    assert set(resp.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_a_webhook_id_that_is_no_meetrec_id_is_404_in_the_error_shape(client, auth):
    resp = client.delete("/webhooks/not-an-id", headers=auth)
    assert resp.status_code == 404 and resp.get_json()["code"] == 404
