"""One JSON error shape for every answer that is not a success.

`{"code": 404, "status": "Not Found", "message": "...", "errors": {...}}`. Services raise domain errors
that carry no status; `STATUS` is the one table that says which status each class answers. Bad input is
always a 4xx; only our own faults are 500, and they are logged with a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http import HTTPStatus

import marshmallow as ma
from flask import Flask, Response, request
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


# Every 503 (storage or the job queue down, a service's `Unavailable`) carries this hint: the request can
# be sent again as it was (a pushed chunk or an events batch was not stored; a start's recording failed).
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


def response(path: str, status: int, message: str = "", errors: dict | None = None, headers=None) -> Response:
    """The error answer at `path`: meetrec's shape, or the shape of the dialect that owns the path."""
    shape = next((s for prefix, s in _SHAPES if path.startswith(prefix) or path == prefix.rstrip("/")), None)
    if shape is None:
        body = error_body(status, message, errors)
    else:
        status, body = shape(status, message or HTTPStatus(status).phrase, errors or {})
    answer = Response(json.dumps(body, separators=(",", ":")) + "\n", status, mimetype="application/json")
    for name, value in (headers or {}).items():
        answer.headers[name] = value
    return answer


def response_for(path: str, e: Exception) -> Response:
    """What a request at `path` answers when its view raised `e` (our own faults are logged)."""
    if isinstance(e, DomainError):
        status = status_of(e)
        return response(path, status, e.message, e.errors, RETRY_AFTER if status == 503 else None)
    if isinstance(e, HTTPException):
        data = getattr(e, "data", None) or {}
        errors = data.get("messages") or data.get("errors") or {}
        message = str(
            data.get("message") or (e.description if e.code != 422 else "Invalid request parameters.")
        )
        headers = dict(e.get_headers()) if e.code == 405 else None
        if headers:
            headers.pop("Content-Type", None)
        return response(path, e.code or 500, message, errors, headers)
    if isinstance(e, StorageError):
        log.warning("storage unavailable: %s", e)
        return response(path, 503, "object storage is unavailable, try again", headers=RETRY_AFTER)
    if isinstance(e, QueueError):
        log.warning("job queue unavailable: %s", e)
        return response(path, 503, "the job queue is unavailable, try again", headers=RETRY_AFTER)
    log.exception("unhandled error", exc_info=e)
    return response(path, 500, "internal error")


def register(app: Flask) -> None:
    # Flask picks a handler by the error's class (HTTPException by code first); all answer alike.
    for error in (DomainError, HTTPException, StorageError, QueueError, Exception):
        app.register_error_handler(error, _handler)


def _handler(e: Exception) -> Response:
    return response_for(request.path, e)
