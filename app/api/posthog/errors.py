"""PostHog's error shape: `{"type": ..., "code": ..., "detail": ..., "attr": ...}` (Django REST framework's,
as PostHog renders it). Validation errors are 400 there, so meetrec's 422 answers 400 on these routes;
`attr` names the first offending field when there is one."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from apispec import APISpec
from marshmallow.exceptions import SCHEMA

PREFIX = "/api/"

_KINDS: dict[int, tuple[str, str]] = {
    400: ("validation_error", "invalid_input"),
    401: ("authentication_error", "not_authenticated"),
    403: ("authentication_error", "permission_denied"),
    404: ("invalid_request", "not_found"),
    405: ("invalid_request", "method_not_allowed"),
    406: ("invalid_request", "not_acceptable"),
    409: ("invalid_request", "conflict"),
    410: ("invalid_request", "gone"),
    413: ("invalid_request", "payload_too_large"),
    415: ("invalid_request", "unsupported_media_type"),
    503: ("server_error", "unavailable"),
}


def shape(status: int, message: str, errors: dict) -> tuple[int, dict]:
    """meetrec's (status, message, field errors) as PostHog answers them."""
    if status == 422:
        status = 400
    kind, code = _KINDS.get(
        status, ("server_error", "error") if status >= 500 else ("invalid_request", "error")
    )
    attr, detail = _first_field(errors)
    return status, {"type": kind, "code": code, "detail": detail or message, "attr": attr}


def _first_field(errors: dict) -> tuple[str | None, str | None]:
    """(field, its first message) of webargs-style `{location: {field: [messages]}}` errors; the body as a
    whole (marshmallow's `_schema`, e.g. not an object) is no field, as DRF's attr null."""
    for fields in errors.values():
        if isinstance(fields, dict):
            for field, messages in fields.items():
                return (None if field == SCHEMA else str(field)), _text(messages)
        elif isinstance(fields, list) and fields:
            return None, _text(fields)
    return None, None


def _text(messages: Any) -> str:
    if isinstance(messages, list) and messages:
        return _text(messages[0])
    if isinstance(messages, dict) and messages:
        return _text(next(iter(messages.values())))
    return str(messages)


class PostHogErrorSchema(ma.Schema):
    type = ma.fields.String(metadata={"example": "validation_error"})
    code = ma.fields.String(metadata={"example": "invalid_input"})
    detail = ma.fields.String(metadata={"example": "Ensure this value is less than or equal to 1000."})
    attr = ma.fields.String(allow_none=True, metadata={"example": "limit"})


_ERROR_REF = "#/components/schemas/Error"
_POSTHOG_REF = "#/components/schemas/PostHogError"


def document(spec: APISpec, prefix: str = PREFIX) -> None:
    """Make the OpenAPI document tell the truth about the routes under `prefix`: their errors take
    PostHog's shape, and a refused parameter answers 400 (never 422). A prefix ending in "/" also
    covers the path without it (`/e/` covers `/e`)."""
    if "PostHogError" not in spec.components.schemas:
        spec.components.schema("PostHogError", schema=PostHogErrorSchema)
    content = {"application/json": {"schema": {"$ref": _POSTHOG_REF}}}
    for path, item in spec._paths.items():
        if not (path.startswith(prefix) or path == prefix.rstrip("/")):
            continue
        for operation in item.values():
            if not isinstance(operation, dict):
                continue  # the path's parameters
            responses = operation.get("responses", {})
            responses.pop("422", None)
            if "default" in responses:
                responses["default"] = {"description": "Default error response", "content": content}
            for response in responses.values():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if schema.get("$ref") == _ERROR_REF:
                    schema["$ref"] = _POSTHOG_REF
