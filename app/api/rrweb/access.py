"""Who may call an rrweb route, and from which page.

rrweb cloud authenticates with `Authorization: Bearer <key>` — a public key (scope `ingest`: it can only
write events and metadata, so it is safe in a web page) for ingest and meta, a private key
(`recording:read`) for reads — or with presigned query parameters (`signature`, `expires`, `keyId`;
see app.services.access.signing) on any route. A key that names allowed origins works from those
pages only. Ingest and meta answer CORS preflights, so a page on another origin can send events; the
batch ingest also takes the key as `?key=` (as the WebSocket does), for a page's unload beacon
(`navigator.sendBeacon` cannot set headers).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, current_app, g, request

from app.api.auth import documented, presented_key
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


def require(scope: str, query_key: bool = False) -> Callable:
    """Decorate an rrweb view: a presigned URL for exactly this request, or a key with `scope` usable
    from the request's page (from `Authorization`, else with `query_key` from `?key=`). 401 without
    either, 403 for a key lacking the scope or the origin."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            g.rrweb_project_id = _authorize(scope, query_key)
            return view(*args, **kwargs)

        return documented(
            wrapper,
            SECURITY,
            "no valid key, or a presigned URL that is invalid, expired or signed by a retired key",
            f"the key lacks the {scope} scope, or may not be used from this page's origin",
        )

    return decorator


def _authorize(scope: str, query_key: bool) -> str:
    raw_key = presented_key() or (request.args.get("key", "") if query_key else "")
    return authorize(
        rt(),
        scope,
        request.method,
        request.path,
        list(request.args.items(multi=True)),
        raw_key,
        request.headers.get("Origin"),
    )


def authorize(
    rt: Runtime,
    scope: str,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    raw_key: str,
    origin: str | None,
) -> str:
    """The project a request acts for: a presigned URL's for exactly `method path query`, else a key's
    that has `scope` and may be used from `origin` (the page's, None from no page). HTTP routes and the
    WebSocket handshake both ask here; Unauthorized or Forbidden otherwise."""
    if signing.is_presigned(name for name, _ in query):
        return signing.verify(rt, method, path, query).project_id
    key = keys.authenticate(rt, raw_key)
    if key is None:
        raise Unauthorized(
            "an API key is required: Authorization: Bearer <key> (?key= on a WebSocket or a batch "
            "ingest), or a presigned URL"
        )
    if not keys.has_scope(key, scope):
        raise Forbidden(f"this API key lacks the {scope} scope")
    if not keys.origin_allowed(key, origin):
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
