"""API key authentication: `Authorization: <key>` (Eyeson) or `Authorization: Bearer <key>`."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, request

from app.api.blueprint import Blueprint
from app.contexts import behind
from app.errors import Forbidden, Unauthorized
from app.models import ApiKey
from app.runtime import Runtime
from app.services.access import keys

SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}]
SECURITY_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    "description": "An API key, raw (Eyeson style) or as `Bearer <key>`.",
}


def key_from_header(value: str) -> str:
    """The key an Authorization header carries: `Bearer <key>` or the raw key."""
    value = value.strip()
    return value[7:].strip() if value[:7].lower() == "bearer " else value


def presented_key() -> str:
    return key_from_header(behind(request).headers.get("Authorization", ""))


def documented(view: Callable, security: list[dict[str, list[str]]], e401: str, e403: str) -> Callable:
    """`view` with its credentials and its 401/403 answers in the OpenAPI document (a decorator below
    the one calling this may still describe a code more closely)."""
    doc = getattr(view, "_apidoc", {})
    doc.setdefault("manual_doc", {}).setdefault("security", security)
    view._apidoc = doc  # type: ignore[attr-defined]
    return Blueprint.errors(e401=e401, e403=e403)(view)


def current_key() -> ApiKey:
    return behind(g).api_key


def authorized(rt: Runtime, authorization: str, scope: str) -> ApiKey:
    """The key an Authorization header value carries; Unauthorized without a valid one, Forbidden when
    it lacks `scope`."""
    key = keys.authenticate(rt, key_from_header(authorization))
    if key is None:
        raise Unauthorized("a valid API key is required in the Authorization header")
    if not keys.has_scope(key, scope):
        raise Forbidden(f"this API key lacks the {scope} scope")
    return key


def authorized_if_known(rt: Runtime, authorization: str, scope: str) -> ApiKey | None:
    """`authorized` when this process holds the key already (`keys.known`: no SQL), else None (call
    `authorized`); Forbidden when it lacks `scope`."""
    key = keys.known(rt, key_from_header(authorization))
    if key is not None and not keys.has_scope(key, scope):
        raise Forbidden(f"this API key lacks the {scope} scope")
    return key


def require(scope: str) -> Callable:
    """Decorate a view: 401 without a valid key, 403 when the key lacks `scope`; both are documented."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            rt = behind(current_app).extensions["meetrec"]
            behind(g).api_key = authorized(rt, behind(request).headers.get("Authorization", ""), scope)
            return view(*args, **kwargs)

        return documented(wrapper, SECURITY, "no valid API key", f"the key lacks the {scope} scope")

    return decorator
