"""The operator console at /console: server-rendered pages over the same services the API uses.

Operators sign in with an API key holding `recording:read` (or `admin`); the key's id goes into a signed
session cookie (HttpOnly, SameSite=Lax, Secure behind https) and every request checks it is still live,
so revoking the key ends its sessions. Each page and action asks for the scope its API endpoint asks
for. Nothing here works without MEETREC_SECRET_KEY: the session key is derived from it.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from flask import Flask

from app.config import Config

SESSION_LIFETIME = timedelta(hours=12)


def session_secret(config: Config) -> str | None:
    """The Flask session key, derived from MEETREC_SECRET_KEY with its own label (None when unset)."""
    if not config.secret_key:
        return None
    return hmac.new(config.secret_key.encode(), b"meetrec console session v1", hashlib.sha256).hexdigest()


def init_app(app: Flask, config: Config) -> None:
    """Configure the session cookie and register the console blueprint on `app`."""
    from app.console.views import bp

    app.secret_key = session_secret(config)
    app.config.update(
        SESSION_COOKIE_NAME="meetrec_console",
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.register_blueprint(bp)
