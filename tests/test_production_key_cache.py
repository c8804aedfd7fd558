"""The API-key cache on the request hot path: hits skip SQL, revocation takes effect at once here."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from app.runtime import Runtime
from app.services.access import keys
from app.services.operations import revocation


@contextmanager
def counted_statements(rt: Runtime) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(rt.db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", count)


def test_a_known_key_is_served_from_the_cache(rt, project_key):
    keys.authenticate(rt, project_key)
    with counted_statements(rt) as statements:
        key = keys.authenticate(rt, project_key)
    assert key is not None and statements == []


def test_a_revoked_key_stops_authenticating_at_once(rt, project_key):
    key = keys.authenticate(rt, project_key)
    assert revocation.revoke_key(rt, key.id)
    assert keys.authenticate(rt, project_key) is None


def test_revoking_twice_or_an_unknown_key_changes_nothing(rt, project_key):
    key = keys.authenticate(rt, project_key)
    revocation.revoke_key(rt, key.id)
    assert not revocation.revoke_key(rt, key.id)
    assert not revocation.revoke_key(rt, "no-such-key")


def test_an_unknown_key_is_not_cached(rt):
    raw = "mr_" + secrets.token_hex(24)
    assert keys.authenticate(rt, raw) is None
    keys.create_key(rt, keys.bootstrap_project_id(rt), raw=raw)
    assert keys.authenticate(rt, raw) is not None


def test_a_revoked_key_is_refused_by_the_api(client, rt, project_key):
    assert client.get("/webhooks/list", headers={"Authorization": project_key}).status_code == 200
    revocation.revoke_key(rt, keys.authenticate(rt, project_key).id)
    assert client.get("/webhooks/list", headers={"Authorization": project_key}).status_code == 401
