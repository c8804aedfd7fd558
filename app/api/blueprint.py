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

    @staticmethod
    def errors(**codes: str):
        """Document error answers: `@blp.errors(e404="unknown access key", e410="shut down")`.

        Usable without a blueprint (`Blueprint.errors`, as `require` does); where two decorators document
        one code, the one closer to the view wins."""

        def decorator(func):
            for name, description in codes.items():
                status = int(name.lstrip("e"))
                func = _DOCUMENTER.alt_response(
                    status,
                    schema="Error",
                    description=f"{HTTPStatus(status).phrase}: {description}",
                )(func)
            return func

        return decorator


# alt_response uses its blueprint only for doc helpers: this one is never registered, so decorators that
# know no blueprint (`require`) can document answers too.
_DOCUMENTER = flask_smorest.Blueprint("documenter", __name__)
