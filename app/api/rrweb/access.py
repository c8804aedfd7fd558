"""Who may call an rrweb route, and from which page.

rrweb cloud authenticates with `Authorization: Bearer <key>` — a public key (scope `ingest`: it can only
write events and metadata, so it is safe in a web page) for ingest and meta, a private key
(`recording:read`) for reads — or with presigned query parameters (`signature`, `expires`, `keyId`;
see app.services.access.signing) on any route. A key that names allowed origins works from those
pages only. Ingest and meta answer CORS preflights, so a page on another origin can send events.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, current_app, g, request

from app.api.auth import presented_key
from app.api.blueprint import Blueprint
from app.errors import Forbidden, Unauthorized
from app.runtime import Runtime
from app.services.access import keys, signing

# Either credential documents the route in OpenAPI (components registered in app.factory).
SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Signature": [], "Expires": [], "KeyId": []}]
PRESIGNED_SCHEMES = {
    "Signature": ("signature", "Signature for authentication: use the presigned URL's query parameters."),
    "Expires": ("expires", "Expiration timestamp (Unix seconds)."),
    "KeyId": ("keyId", "Signing key identifier."),
}
CORS_METHODS = "POST, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, Content-Encoding, Idempotency-Key"
CORS_MAX_AGE = "600"


def rt() -> Runtime:
    return current_app.extensions["meetrec"]


def project_id() -> str:
    """The project the request acts for (set by `require`)."""
    return g.rrweb_project_id


def require(scope: str) -> Callable:
    """Decorate an rrweb view: a presigned URL for exactly this request, or a key with `scope` usable
    from the request's page. 401 without either, 403 for a key lacking the scope or the origin."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            g.rrweb_project_id = _authorize(scope)
            return view(*args, **kwargs)

        doc = getattr(wrapper, "_apidoc", {})
        doc.setdefault("manual_doc", {}).setdefault("security", SECURITY)
        wrapper._apidoc = doc  # type: ignore[attr-defined]
        return Blueprint.errors(
            e401="no valid key, or a presigned URL that is invalid, expired or signed by a retired key",
            e403=f"the key lacks the {scope} scope, or may not be used from this page's origin",
        )(wrapper)

    return decorator


def _authorize(scope: str) -> str:
    if signing.is_presigned(request.args.keys()):
        return signing.verify(rt(), request.method, request.path, request.args.items(multi=True)).project_id
    key = keys.authenticate(rt(), presented_key())
    if key is None:
        raise Unauthorized("a valid API key is required: Authorization: Bearer <key>, or a presigned URL")
    if not keys.has_scope(key, scope):
        raise Forbidden(f"this API key lacks the {scope} scope")
    if not keys.origin_allowed(key, request.headers.get("Origin")):
        raise Forbidden("this API key may not be used from this origin")
    return key.project_id


def preflight() -> Response:
    """The answer to a CORS preflight of a browser route: any origin may ask (the key decides)."""
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
    response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return allow_origin(response)


def allow_origin(response: Response) -> Response:
    """Let the calling page read `response` (its errors included)."""
    origin = request.headers.get("Origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.add("Vary", "Origin")
    return response
