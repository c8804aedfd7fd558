"""The flask-smorest Blueprint every meetrec resource uses.

It parses with `MeetrecParser` (adds the `eyeson` location: a JSON or form request body, documented as
both, or Rails-style query keys) and documents error answers in one call.
"""

from __future__ import annotations

from http import HTTPStatus
from types import FunctionType
from typing import Any

import flask_smorest
import marshmallow as ma

from app.api.params import parser


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = parser
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "eyeson": "application/json",
    }

    def _prepare_arguments_doc(self, doc, doc_info, *, api, spec, **kwargs):
        """An `eyeson` body is documented as JSON and as form fields (nested ones as `user[name]`)."""
        params = (doc_info.get("arguments") or {}).get("parameters", [])
        eyeson = next((p["schema"] for p in params if isinstance(p, dict) and p["in"] == "eyeson"), None)
        doc = super()._prepare_arguments_doc(doc, doc_info, api=api, spec=spec, **kwargs)
        if eyeson is not None:
            content = doc["requestBody"]["content"]
            form = {**content["application/json"]}
            schema = eyeson() if isinstance(eyeson, type) else eyeson
            nested = [
                f.data_key or name
                for name, f in schema.fields.items()
                if isinstance(f, ma.fields.Nested | ma.fields.Dict)
            ]
            if nested:
                form["encoding"] = {name: {"style": "deepObject", "explode": True} for name in nested}
            content["application/x-www-form-urlencoded"] = form
        return doc

    @staticmethod
    def errors(**codes: str):
        """Document error answers: `@blp.errors(e404="unknown access key", e410="shut down")`.

        Usable without a blueprint (`Blueprint.errors`, as `require` does); where two decorators document
        one code, the one closer to the view wins. Adds no call per request (see `documented_only`)."""

        def decorator(func):
            wrapped = func
            for name, description in codes.items():
                status = int(name.lstrip("e"))
                wrapped = _DOCUMENTER.alt_response(
                    status,
                    schema="Error",
                    description=f"{HTTPStatus(status).phrase}: {description}",
                )(wrapped)
            return documented_only(func, wrapped)

        return decorator

    @staticmethod
    def doc(**kwargs):
        """flask-smorest's `doc` (values copied verbatim into the operation's document), adding no call
        per request (see `documented_only`)."""
        document = flask_smorest.Blueprint.doc(**kwargs)

        def decorator(func):
            return documented_only(func, document(func))

        return decorator


def documented_only(func: Any, wrapped: Any) -> Any:
    """`func` carrying the document of `wrapped`, what flask-smorest's `doc` and `alt_response` made of it.

    Those decorators wrap a view in a function that only calls it (through `current_app.ensure_sync`),
    once per request and per decorator, to carry the document: a function gets that document instead,
    and is itself the view. Whatever is no plain function keeps its wrapper."""
    if wrapped is func or not isinstance(func, FunctionType):
        return wrapped
    func._apidoc = wrapped._apidoc  # type: ignore[attr-defined]
    return func


# alt_response uses its blueprint only for doc helpers: this one is never registered, so decorators that
# know no blueprint (`require`) can document answers too.
_DOCUMENTER = flask_smorest.Blueprint("documenter", __name__)
