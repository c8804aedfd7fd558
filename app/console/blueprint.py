"""The console blueprint and what applies to every console request: the secret-key check, CSRF,
security headers, HTML error pages and the names every template can use."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from app.api.errors import error_body, status_of
from app.console import auth, filters
from app.errors import DomainError, StorageError

bp = Blueprint("console", __name__, url_prefix="/console")
filters.register(bp)

JSON_ENDPOINTS = {"console.states", "console.replay_events"}
# What a replayed page needs beyond the console's own policy: rrweb rebuilds the recorded DOM in a
# sandboxed iframe (no scripts) that inherits this page's policy, with the page's CSS inlined in
# <style> elements and style attributes, and its images and fonts loaded from wherever the page had them.
REPLAY_CONTENT = "style-src 'self' 'unsafe-inline'; font-src 'self' data: http: https:"
REPLAY_IMAGES = "data: blob: http: https:"
NAV = (
    ("console.recordings", "Recordings", "recording:read"),
    ("console.rooms", "Rooms", "recording:read"),
    ("console.capture", "Record web pages", "recording:read"),
    ("console.webhooks", "Webhooks", "webhook:write"),
    ("console.system", "System", "admin"),
    ("console.keys", "API keys", "admin"),
)


@bp.before_request
def _guard() -> Any:
    if not current_app.secret_key:
        return _error(503, "The console needs MEETREC_SECRET_KEY: its session key is derived from it.")
    if request.method not in ("GET", "HEAD", "OPTIONS") and not auth.csrf_valid():
        return _error(400, "The form has expired or did not come from this console. Reload it and try again.")
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    storage = urlsplit(auth.rt().config.s3_public_endpoint)
    origin = f"{storage.scheme}://{storage.netloc}"
    replayed = g.get("replay_content", False)
    images = f"{origin} {REPLAY_IMAGES}" if replayed else origin
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; img-src 'self' {images}; media-src 'self' {origin}; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
        + (f"; {REPLAY_CONTENT}" if replayed else "")
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def allow_replay_content() -> None:
    """Widen this response's policy for a page that replays a recorded web page (REPLAY_CONTENT)."""
    g.replay_content = True


@bp.errorhandler(DomainError)
def _domain_error(e: DomainError) -> Any:
    return _error(status_of(e), e.message)


@bp.errorhandler(StorageError)
def _storage_error(e: StorageError) -> Any:
    return _error(503, "Object storage is unavailable; try again.")


@bp.errorhandler(HTTPException)
def _http_error(e: HTTPException) -> Any:
    return _error(e.code or 500, e.description or "")


def _error(status: int, message: str) -> Any:
    if request.endpoint in JSON_ENDPOINTS:
        return jsonify(error_body(status, message)), status
    title = HTTPStatus(status).phrase
    return render_template("console/error.html", status=status, title=title, message=message), status


@bp.context_processor
def _names() -> dict[str, Any]:
    return {"csrf_token": auth.csrf_token, "may": auth.may, "nav": NAV}
