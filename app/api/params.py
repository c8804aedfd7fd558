"""Eyeson-style parameters: JSON, form fields and Rails-style query keys (`user[name]`), merged.

Eyeson clients send the same parameters as a JSON body, as form fields or in the query string, with
nested keys written `user[name]` or `options[custom_fields][locale]`. `unflatten` turns such flat keys
into nested dicts; `types[]` style keys become lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import flask
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def unflatten(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Nest `a[b][c]=v` pairs into `{"a": {"b": {"c": v}}}`; `a[]=v` appends to a list.

    A key that does not follow the bracket grammar is kept as it is.
    """
    out: dict[str, Any] = {}
    for key, value in pairs:
        m = _KEY.match(key)
        if not m:
            out[key] = value
            continue
        path = [m.group(1)] + re.findall(r"\[([^\[\]]*)\]", m.group(2))
        _put(out, path, value)
    return out


def _put(node: dict[str, Any], path: list[str], value: Any) -> None:
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        child = node.get(part)
        if nxt == "":
            if not isinstance(child, list):
                child = node[part] = []
            child.append(value)
            return
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    if path[-1] != "":
        node[path[-1]] = value


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


class MeetrecParser(FlaskParser):
    """FlaskParser with the `eyeson` location: query string, then form, then JSON body, merged."""

    DEFAULT_VALIDATION_STATUS = 422

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        abort(400, exc=error, messages={"json": ["Malformed JSON body."]})


parser = MeetrecParser()


@parser.location_loader("eyeson")
def load_eyeson(req: flask.Request, schema: Any) -> dict[str, Any]:
    merged = unflatten(req.args.items(multi=True))
    if req.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        _deep_merge(merged, unflatten(req.form.items(multi=True)))
    elif is_json_request(req) and req.get_data(cache=True):
        try:
            body = core.parse_json(req.get_data(cache=True))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            abort(400, exc=e, messages={"json": ["Malformed JSON body."]})
        if not isinstance(body, dict):
            abort(400, messages={"json": ["The JSON body must be an object."]})
        _deep_merge(merged, unflatten(body.items()))
    return merged
