"""The flask-smorest Blueprint every meetrec resource uses.

It parses with `MeetrecParser` (adds the `eyeson` location, documented as a JSON request body that may
also come as form fields or Rails-style query keys) and documents error answers in one call.
"""

from __future__ import annotations

from http import HTTPStatus

import flask_smorest

from app.api.params import parser


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = parser
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "eyeson": "application/json",
    }

    def errors(self, **codes: str):  # type: ignore[no-untyped-def]
        """Document error answers: `@blp.errors(e404="unknown access key", e410="shut down")`."""

        def decorator(func):  # type: ignore[no-untyped-def]
            for name, description in codes.items():
                status = int(name.lstrip("e"))
                func = self.alt_response(
                    status,
                    schema="Error",
                    description=f"{HTTPStatus(status).phrase}: {description}",
                )(func)
            return func

        return decorator
