"""One JSON error shape for every answer that is not a success.

`{"code": 404, "status": "Not Found", "message": "...", "errors": {...}}`. Bad input is always a 4xx;
only our own faults are 500, and they are logged with a traceback.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

import marshmallow as ma
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from app.errors import ApiError, StorageError

log = logging.getLogger(__name__)


class ErrorSchema(ma.Schema):
    code = ma.fields.Integer(metadata={"description": "HTTP status code"})
    status = ma.fields.String(metadata={"description": "HTTP status phrase"})
    message = ma.fields.String(metadata={"description": "What went wrong, for a human"})
    errors = ma.fields.Dict(metadata={"description": "Field errors by location and field"})


def error_body(status: int, message: str = "", errors: dict | None = None) -> dict:
    phrase = HTTPStatus(status).phrase
    return {"code": status, "status": phrase, "message": message or phrase, "errors": errors or {}}


def _respond(status: int, message: str = "", errors: dict | None = None, headers=None):  # type: ignore[no-untyped-def]
    response = jsonify(error_body(status, message, errors))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(e: ApiError):  # type: ignore[no-untyped-def]
        return _respond(e.status, e.message, e.errors)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):  # type: ignore[no-untyped-def]
        data = getattr(e, "data", None) or {}
        errors = data.get("messages") or data.get("errors") or {}
        message = data.get("message") or (e.description if e.code != 422 else "Invalid request parameters.")
        headers = dict(e.get_headers()) if e.code == 405 else None
        if headers:
            headers.pop("Content-Type", None)
        return _respond(e.code or 500, message, errors, headers)

    @app.errorhandler(StorageError)
    def _storage_error(e: StorageError):  # type: ignore[no-untyped-def]
        log.warning("storage unavailable: %s", e)
        return _respond(503, "object storage is unavailable, try again")

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):  # type: ignore[no-untyped-def]
        if isinstance(e, HTTPException):
            return _http_error(e)
        log.exception("unhandled error")
        return _respond(500, "internal error")
