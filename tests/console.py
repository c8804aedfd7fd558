"""Helpers for the console tests: keys of chosen scopes, signing a test client in, posting forms."""

from __future__ import annotations

import re
import secrets
from typing import Any

from app.services.access import keys

READ = ("recording:read",)
WRITE = ("recording:read", "recording:write")
WEBHOOKS = ("recording:read", "webhook:write")
ADMIN = ("admin",)


def project_with_key(rt, *scopes: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A fresh project and a raw key of `scopes` for it: (project_id, raw key)."""
    project = keys.create_project(rt, "console-" + secrets.token_hex(3))
    return project.id, keys.create_key(rt, project.id, scopes or READ)[1]


def key_for(rt, project_id: str, *scopes: str) -> str:  # type: ignore[no-untyped-def]
    return keys.create_key(rt, project_id, scopes)[1]


def csrf(client) -> str:  # type: ignore[no-untyped-def]
    """The CSRF token of the client's console session (made by the sign-in page if none yet)."""
    with client.session_transaction("/console/") as s:
        token = s.get("csrf")
    if token:
        return token
    page = client.get("/console/sign-in").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(client, raw_key: str):  # type: ignore[no-untyped-def]
    """POST the sign-in form as a browser would; returns the response."""
    return client.post("/console/sign-in", data={"api_key": raw_key, "csrf_token": csrf(client)})


def post(client, path: str, **data: Any):  # type: ignore[no-untyped-def]
    """POST a console form with the session's CSRF token."""
    return client.post(path, data={"csrf_token": csrf(client), **data})


def text(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


def meeting(rt, project_id: str, room_key: str, user: str = "Jane Doe", name: str = ""):  # type: ignore[no-untyped-def]
    """A running meeting of `room_key` with one participant: the service's Membership."""
    from app.services.core import rooms

    return rooms.join(
        rt, project_id, rooms.JoinRequest(user_name=user, room_key=room_key, room_name=name or None)
    )


def web_replay(rt, project_id: str, batches: list[list[dict[str, Any]]], **meta: Any) -> str:  # type: ignore[no-untyped-def]
    """A web replay stored through `replays.ingest`, one block per batch in the order given, with
    metadata `meta` (e.g. distinct_id); returns its recording id."""
    from app.services.interactions import metadata, replays

    external_id = "console-" + secrets.token_hex(6)
    stored = [replays.ingest(rt, project_id, external_id, batch) for batch in batches]
    if meta:
        metadata.set_meta(rt, project_id, external_id, meta)
    return stored[0].recording_id
