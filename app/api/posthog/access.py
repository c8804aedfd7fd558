"""Who may call a PostHog route, for which project.

PostHog clients send `Authorization: Bearer <personal API key>`; here that is a meetrec API key. Each
route names the PostHog scope it needs; a key holds it when it holds that scope itself (keys may be
minted with PostHog's scope names) or the meetrec scope it maps to (`SCOPE_MAP`). The path's project is
the key's own project, by id or as `@current`; any other id answers 404, as a foreign recording does.

A shared recording (`sharing_access_token=` query parameter) is read without a key: the token opens its
one recording's retrieve and snapshots routes and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import current_app, g, request
from werkzeug.routing import BaseConverter

from app.api.auth import documented, presented_key
from app.api.blueprint import Blueprint
from app.errors import Forbidden, NotFound, Unauthorized
from app.models import ApiKey
from app.runtime import Runtime
from app.services.access import keys
from app.services.interactions import sharing

SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}]
SHARED_SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"SharingToken": []}]
SHARING_SCHEME = {
    "type": "apiKey",
    "in": "query",
    "name": "sharing_access_token",
    "description": "A shared recording's access token (see `sharing/`): reads that one recording only.",
}
CURRENT = "@current"

# PostHog's scope -> the meetrec scope that grants it too.
SCOPE_MAP = {
    "session_recording:read": "recording:read",
    "session_recording:write": "recording:write",
    "session_recording_playlist:read": "recording:read",
    "session_recording_playlist:write": "recording:write",
    "sharing_configuration:read": "recording:read",
    "sharing_configuration:write": "recording:write",
    "project:read": "recording:read",
    "project:write": "admin",
}


class SessionId(BaseConverter):
    """A session (recording) id in a path: any segment but the names of the list's own sub-routes, so
    `session_recordings/properties` is never also `session_recordings/<id>` (nor in its `Allow`)."""

    regex = r"(?!(?:matching_events|properties)$)[A-Za-z0-9._:-]{1,64}"  # replays.EXTERNAL_ID
    part_isolating = True  # matched within its segment: `$` ends the segment, a trailing slash still matches


class ShortId(BaseConverter):
    """A playlist's short id: letters and digits (anything else is no playlist: 404)."""

    regex = "[A-Za-z0-9]{1,16}"
    part_isolating = True


@dataclass(frozen=True)
class Caller:
    """Who a request acts for: a key of `project_id`, or a sharing token of one recording (`key` None)."""

    project_id: str
    key: ApiKey | None = None
    shared_recording: str | None = None  # the external id a sharing token opens

    def may_read(self, external_id: str) -> bool:
        return self.shared_recording is None or self.shared_recording == external_id


def rt() -> Runtime:
    return current_app.extensions["meetrec"]


def caller() -> Caller:
    return g.posthog_caller


def project_id() -> str:
    return caller().project_id


def key() -> ApiKey:
    """The calling key (routes that take no sharing token always have one)."""
    found = caller().key
    assert found is not None, "a route open to sharing tokens read the key"
    return found


def require(scope: str, shared: bool = False) -> Callable:
    """Decorate a view taking `project_id`: a key holding PostHog's `scope` for that project (or, with
    `shared`, a sharing token of the recording). 401 without credentials, 403 without the scope, 404
    for another project's id."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            g.posthog_caller = authorize(scope, kwargs.get("project_id"), shared)
            if "project_id" in kwargs:
                kwargs["project_id"] = g.posthog_caller.project_id
            return view(*args, **kwargs)

        wrapper = Blueprint.errors(e404="another project's id (or an unknown resource)")(wrapper)
        return documented(
            wrapper,
            SHARED_SECURITY if shared else SECURITY,
            "no valid API key (Authorization: Bearer <key>)"
            + (", nor a sharing_access_token that is enabled" if shared else ""),
            f"the key lacks the {scope} scope (or {' or '.join(granting(scope)[1:])})",
        )

    return decorator


def authorize(scope: str, path_project: str | None, shared: bool) -> Caller:
    token = request.args.get("sharing_access_token")
    raw = presented_key()
    if shared and token is not None and not raw:
        found = sharing.opened_by(rt(), token)
        if found is None:
            raise Unauthorized("this sharing link is not valid, or sharing was turned off")
        if path_project is not None and path_project not in (CURRENT, found.project_id):
            raise NotFound("Not found.")
        return Caller(found.project_id, shared_recording=found.external_id)
    api_key = keys.authenticate(rt(), raw)
    if api_key is None:
        raise Unauthorized("Authentication credentials were not provided or are not valid.")
    if not any(keys.has_scope(api_key, s) for s in granting(scope)):
        raise Forbidden(f"API key missing required scope '{scope}'")
    if path_project is not None and path_project not in (CURRENT, api_key.project_id):
        raise NotFound("Not found.")
    return Caller(api_key.project_id, key=api_key)


def granting(scope: str) -> tuple[str, ...]:
    """The scopes that grant PostHog's `scope`: itself, its write form (PostHog's write implies read),
    and the meetrec scopes each maps to."""
    posthog = (scope, scope.replace(":read", ":write")) if scope.endswith(":read") else (scope,)
    return tuple(dict.fromkeys([*posthog, *(SCOPE_MAP[s] for s in posthog if s in SCOPE_MAP)]))


def readable(external_id: str) -> None:
    """NotFound unless the caller may read the recording `external_id` (a sharing token opens one)."""
    if not caller().may_read(external_id):
        raise NotFound("Not found.")
