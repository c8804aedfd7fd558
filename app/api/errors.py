"""One JSON error shape for every answer that is not a success.

`{"code": 404, "status": "Not Found", "message": "...", "errors": {...}}`. Services raise domain errors
that carry no status; `STATUS` is the one table that says which status each class answers. Bad input is
always a 4xx; only our own faults are 500, and they are logged with a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus

import marshmallow as ma
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from app import errors as domain
from app.errors import DomainError, QueueError, StorageError

log = logging.getLogger(__name__)


class ErrorSchema(ma.Schema):
    code = ma.fields.Integer(metadata={"description": "HTTP status code"})
    status = ma.fields.String(metadata={"description": "HTTP status phrase"})
    message = ma.fields.String(metadata={"description": "What went wrong, for a human"})
    errors = ma.fields.Dict(metadata={"description": "Field errors by location and field"})


# A class not listed answers as its nearest listed base does.
STATUS: dict[type[DomainError], int] = {
    domain.DomainError: 400,
    domain.Unauthorized: 401,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.RecordingNotAvailable: 405,
    domain.NotAcceptable: 406,
    domain.Conflict: 409,
    domain.Gone: 410,
    domain.PayloadTooLarge: 413,
    domain.UnsupportedEncoding: 415,
    domain.Unprocessable: 422,
    domain.Unavailable: 503,
}


# An outage of ours (storage, the job queue) answers 503 with this hint; the request can be sent again
# as it was (a pushed chunk, an events batch: nothing was stored).
RETRY_AFTER = {"Retry-After": "5"}


def status_of(error: DomainError) -> int:
    """The HTTP status `error` answers with: its class's entry in STATUS, else its nearest base's."""
    return next(STATUS[cls] for cls in type(error).__mro__ if cls in STATUS)


def error_body(status: int, message: str = "", errors: dict | None = None) -> dict:
    phrase = HTTPStatus(status).phrase
    return {"code": status, "status": phrase, "message": message or phrase, "errors": errors or {}}


# A dialect with an error shape of its own (PostHog's `{type, code, detail, attr}`) renders the errors of
# the paths under its prefix: `(status, message, errors) -> (status, body)`.
Shape = Callable[[int, str, dict], tuple[int, dict]]
_SHAPES: list[tuple[str, Shape]] = []


def shape_for(prefix: str, shape: Shape) -> None:
    """Render every error answered under `prefix` (`/api/`, and at `/api`) with `shape`, not meetrec's."""
    if (prefix, shape) not in _SHAPES:
        _SHAPES.append((prefix, shape))


def _respond(status: int, message: str = "", errors: dict | None = None, headers=None) -> Response:
    path = request.path
    shape = next((s for prefix, s in _SHAPES if path.startswith(prefix) or path == prefix.rstrip("/")), None)
    if shape is None:
        response = jsonify(error_body(status, message, errors))
    else:
        status, body = shape(status, message or HTTPStatus(status).phrase, errors or {})
        response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain_error(e: DomainError):
        return _respond(status_of(e), e.message, e.errors)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        data = getattr(e, "data", None) or {}
        errors = data.get("messages") or data.get("errors") or {}
        message = str(
            data.get("message") or (e.description if e.code != 422 else "Invalid request parameters.")
        )
        headers = dict(e.get_headers()) if e.code == 405 else None
        if headers:
            headers.pop("Content-Type", None)
        return _respond(e.code or 500, message, errors, headers)

    @app.errorhandler(StorageError)
    def _storage_error(e: StorageError):
        log.warning("storage unavailable: %s", e)
        return _respond(503, "object storage is unavailable, try again", headers=RETRY_AFTER)

    @app.errorhandler(QueueError)
    def _queue_error(e: QueueError):
        log.warning("job queue unavailable: %s", e)
        return _respond(503, "the job queue is unavailable, try again", headers=RETRY_AFTER)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        if isinstance(e, HTTPException):
            return _http_error(e)
        log.exception("unhandled error")
        return _respond(500, "internal error")
