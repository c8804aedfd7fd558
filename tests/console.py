"""Helpers for the console tests: keys of chosen scopes, signing a test client in, posting forms."""

from __future__ import annotations

import re
import secrets
from typing import Any

from app.services import keys

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
    from app.services import rooms

    return rooms.join(
        rt, project_id, rooms.JoinRequest(user_name=user, room_key=room_key, room_name=name or None)
    )


def add_recording(rt, project_id: str, membership=None, *, age_days: float = 0, **values: Any) -> str:  # type: ignore[no-untyped-def]
    """A recording row written directly (finished, 10 s, 1000 bytes unless `values` say otherwise),
    in `membership`'s room when given; returns its id."""
    from datetime import timedelta

    from app.models import Recording, utcnow
    from app.services.ids import new_id

    fields: dict[str, Any] = {
        "state": "finished",
        "duration": 10.0,
        "size": 1000,
        "sha256": "ab" * 32,
        "media_source": "synthetic://meeting",
        # Pushed: a `started` row made here never looks like a lost capture the reconciler must resume
        # (it would start a real capture and hold a capture worker for minutes).
        "ingest": "push",
        "created_at": utcnow() - timedelta(days=age_days),
        **values,
    }
    if membership is not None:
        fields.update(room_id=membership.room.id, participant_id=membership.participant.id)
    rec_id = new_id()
    with rt.db.transaction() as s:
        s.add(Recording(id=rec_id, project_id=project_id, **fields))
    return rec_id
