"""API key authentication: `Authorization: <key>` (Eyeson) or `Authorization: Bearer <key>`."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, request

from app.api.blueprint import Blueprint
from app.errors import Forbidden, Unauthorized
from app.models import ApiKey
from app.services.access import keys

SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}]
SECURITY_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    "description": "An API key, raw (Eyeson style) or as `Bearer <key>`.",
}


def presented_key() -> str:
    value = request.headers.get("Authorization", "").strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value


def current_key() -> ApiKey:
    return g.api_key


def require(scope: str) -> Callable:
    """Decorate a view: 401 without a valid key, 403 when the key lacks `scope`; both are documented."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = keys.authenticate(current_app.extensions["meetrec"], presented_key())
            if key is None:
                raise Unauthorized("a valid API key is required in the Authorization header")
            if not keys.has_scope(key, scope):
                raise Forbidden(f"this API key lacks the {scope} scope")
            g.api_key = key
            return view(*args, **kwargs)

        doc = getattr(wrapper, "_apidoc", {})
        doc.setdefault("manual_doc", {}).setdefault("security", SECURITY)
        wrapper._apidoc = doc  # type: ignore[attr-defined]
        # A view may still describe its 403 more closely (a decorator below this one wins).
        return Blueprint.errors(e401="no valid API key", e403=f"the key lacks the {scope} scope")(wrapper)

    return decorator
