"""Console sign-in: an API key becomes a signed session; each view names the scope it needs.

The session holds the key's id and a CSRF token, never the key. Every request loads the key again, so a
revoked key (or one that lost `recording:read`) is signed out at its next click. Every form carries the
CSRF token, checked for each non-GET request before any view runs.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, jsonify, redirect, request, session, url_for

from app.api.errors import error_body
from app.console import queries
from app.errors import Forbidden
from app.models import ApiKey
from app.runtime import Runtime
from app.services.access import keys

KEY_ID = "key_id"
CSRF = "csrf"
SIGN_IN_SCOPE = "recording:read"  # an admin key holds it too (see keys.has_scope)


def rt() -> Runtime:
    return current_app.extensions["meetrec"]


def csrf_token() -> str:
    """This session's CSRF token, made on first use (the sign-in form needs one before signing in)."""
    token = session.get(CSRF)
    if not token:
        token = session[CSRF] = secrets.token_urlsafe(32)
    return token


def csrf_valid() -> bool:
    expected = session.get(CSRF, "")
    sent = request.form.get("csrf_token", "")
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def sign_in(raw_key: str) -> ApiKey | None:
    """Start a fresh session for a live key holding `recording:read` or `admin`; None otherwise."""
    key = keys.authenticate(rt(), raw_key.strip())
    if key is None or not keys.has_scope(key, SIGN_IN_SCOPE):
        return None
    session.clear()  # nothing from before signing in carries over, the CSRF token included
    session.permanent = True
    session[KEY_ID] = key.id
    session[CSRF] = secrets.token_urlsafe(32)
    return key


def sign_out() -> None:
    session.clear()


def current_key() -> ApiKey:
    return g.console_key


def may(scope: str) -> bool:
    """True when the signed-in key holds `scope` (templates use it to offer only allowed actions)."""
    key = g.get("console_key")
    return key is not None and keys.has_scope(key, scope)


def safe_next(target: str | None) -> str:
    """`target` when it is a console path on this site, else the recordings list (no open redirects)."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.recordings")


def signed_in(scope: str = SIGN_IN_SCOPE, *, json: bool = False) -> Callable:
    """Decorate a console view: unsigned requests go to the sign-in page (401 for JSON), a key
    lacking `scope` gets 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key_id = session.get(KEY_ID)
            key = queries.live_key(rt(), key_id) if key_id else None
            if key is None or not keys.has_scope(key, SIGN_IN_SCOPE):
                session.pop(KEY_ID, None)
                if json:
                    return jsonify(error_body(401, "sign in to the console")), 401
                here = request.full_path.rstrip("?") if request.method == "GET" else None
                return redirect(url_for("console.sign_in", next=here))
            if not keys.has_scope(key, scope):
                raise Forbidden(f"your API key lacks the {scope} scope")
            g.console_key = key
            return view(*args, **kwargs)

        return wrapper

    return decorator
