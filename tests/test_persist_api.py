"""Persist and legal hold: retention exemptions set over the API; only admin keys touch a legal hold."""

from __future__ import annotations

import json

import pytest

from app.services.access import keys
from tests.helpers import make_recording


@pytest.fixture
def project(rt):  # type: ignore[no-untyped-def]
    return keys.create_project(rt, "persist")


@pytest.fixture
def auth(rt, project) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": keys.create_key(rt, project.id)[1]}


@pytest.fixture
def admin(rt, project) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": keys.create_key(rt, project.id, scopes=("admin",))[1]}


@pytest.fixture
def rec_id(rt, project) -> str:  # type: ignore[no-untyped-def]
    return make_recording(rt, project.id)


def test_a_new_recording_is_neither_persisted_nor_held(client, auth, rec_id):
    body = client.get(f"/recordings/{rec_id}", headers=auth).get_json()
    assert (body["persist"], body["legal_hold"]) == (False, False)


def test_post_persist_then_delete_undoes_it(client, auth, rec_id):
    resp = client.post(f"/recordings/{rec_id}/persist", headers=auth)
    assert resp.status_code == 200 and resp.get_json()["persist"] is True
    resp = client.delete(f"/recordings/{rec_id}/persist", headers=auth)
    assert resp.status_code == 200 and resp.get_json()["persist"] is False


@pytest.mark.parametrize("send", ["json", "form"])
def test_patch_sets_persist_from_json_or_form(client, auth, rec_id, send):
    kwargs = {"json": {"persist": True}} if send == "json" else {"data": {"persist": "true"}}
    resp = client.patch(f"/recordings/{rec_id}", headers=auth, **kwargs)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["persist"] is True


def test_legal_hold_needs_an_admin_key(client, auth, rec_id):
    assert client.post(f"/recordings/{rec_id}/legal-hold", headers=auth).status_code == 403
    resp = client.patch(f"/recordings/{rec_id}", json={"legal_hold": True}, headers=auth)
    assert resp.status_code == 403
    assert "admin" in resp.get_json()["message"]
    assert client.get(f"/recordings/{rec_id}", headers=auth).get_json()["legal_hold"] is False


def test_an_admin_sets_and_lifts_a_legal_hold(client, admin, rec_id):
    assert client.post(f"/recordings/{rec_id}/legal-hold", headers=admin).get_json()["legal_hold"] is True
    assert client.delete(f"/recordings/{rec_id}/legal-hold", headers=admin).get_json()["legal_hold"] is False
    resp = client.patch(f"/recordings/{rec_id}", json={"legal_hold": True, "persist": True}, headers=admin)
    assert resp.status_code == 200
    assert (resp.get_json()["legal_hold"], resp.get_json()["persist"]) == (True, True)


def test_only_an_admin_may_lift_a_hold(client, auth, admin, rec_id):
    client.post(f"/recordings/{rec_id}/legal-hold", headers=admin)
    assert client.delete(f"/recordings/{rec_id}/legal-hold", headers=auth).status_code == 403
    assert client.patch(f"/recordings/{rec_id}", json={"legal_hold": False}, headers=auth).status_code == 403


def test_a_held_recording_cannot_be_deleted(client, rt, auth, admin, rec_id):
    client.post(f"/recordings/{rec_id}/legal-hold", headers=admin)
    resp = client.delete(f"/recordings/{rec_id}", headers=auth)
    assert resp.status_code == 409
    assert "legal hold" in resp.get_json()["message"]
    assert list(rt.storage.iter_keys(f"recordings/{rec_id}/")) != []
    client.delete(f"/recordings/{rec_id}/legal-hold", headers=admin)
    assert client.delete(f"/recordings/{rec_id}", headers=auth).status_code == 200


def test_a_persisted_recording_can_still_be_deleted(client, auth, rec_id):
    client.post(f"/recordings/{rec_id}/persist", headers=auth)
    assert client.delete(f"/recordings/{rec_id}", headers=auth).status_code == 200
    assert client.get(f"/recordings/{rec_id}", headers=auth).status_code == 404


@pytest.mark.parametrize(
    "body",
    [{}, {"persist": "maybe"}, {"persist": None}, {"persist": True, "keep": True}],
    ids=["empty", "not-a-boolean", "null", "unknown-field"],
)
def test_bad_patch_bodies_are_422(client, auth, rec_id, body):
    resp = client.patch(f"/recordings/{rec_id}", json=body, headers=auth)
    assert resp.status_code == 422, resp.get_json()
    assert set(resp.get_json()) >= {"code", "status", "message", "errors"}


def test_malformed_json_is_400(client, auth, rec_id):
    headers = {**auth, "Content-Type": "application/json"}
    resp = client.patch(f"/recordings/{rec_id}", data="{persist:", headers=headers)
    assert resp.status_code == 400
    assert resp.get_json()["code"] == 400


@pytest.mark.parametrize(
    "method,path",
    [
        ("post", "/persist"),
        ("delete", "/persist"),
        ("post", "/legal-hold"),
        ("delete", "/legal-hold"),
        ("patch", ""),
    ],
)
def test_foreign_unknown_and_deleted_ids_are_404(client, rt, admin, other_project_key, rec_id, method, path):
    foreign_admin = {
        "Authorization": keys.create_key(
            rt, keys.authenticate(rt, other_project_key).project_id, scopes=("admin",)
        )[1]
    }
    call = getattr(client, method)
    body = {"json": {"persist": True}} if method == "patch" else {}
    assert call(f"/recordings/{rec_id}{path}", headers=foreign_admin, **body).status_code == 404
    assert call(f"/recordings/nope{path}", headers=admin, **body).status_code == 404
    client.delete(f"/recordings/{rec_id}", headers=admin)
    assert call(f"/recordings/{rec_id}{path}", headers=admin, **body).status_code == 404


def test_without_a_key_it_is_401(client, rec_id):
    assert client.post(f"/recordings/{rec_id}/persist").status_code == 401
    assert client.patch(f"/recordings/{rec_id}", data=json.dumps({"persist": True})).status_code == 401
