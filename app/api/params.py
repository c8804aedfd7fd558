"""Eyeson-style parameters: JSON, form fields and Rails-style query keys (`user[name]`), merged.

Eyeson clients send the same parameters as a JSON body, as form fields or in the query string, with
nested keys written `user[name]` or `options[custom_fields][locale]`. `unflatten` turns such flat keys
into nested dicts; `types[]` style keys become lists. A key nests at most MAX_KEY_DEPTH levels (a
deeper one is refused with 400, before anything walks it). JSON bodies are read by `app.api.jsonbody`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import flask
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

from app.api import jsonbody
from app.errors import BadPayload

MAX_KEY_DEPTH = 10  # `options[custom_fields][locale]` is 3
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def unflatten(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Nest `a[b][c]=v` pairs into `{"a": {"b": {"c": v}}}`; `a[]=v` appends to a list.

    A key that does not follow the bracket grammar is kept as it is; one nested deeper than
    MAX_KEY_DEPTH levels is refused (BadPayload).
    """
    out: dict[str, Any] = {}
    for key, value in pairs:
        m = _KEY.match(key)
        if not m:
            out[key] = value
            continue
        path = [m.group(1)] + re.findall(r"\[([^\[\]]*)\]", m.group(2))
        if len(path) > MAX_KEY_DEPTH:
            message = f"the parameter {key[:40]}... nests deeper than {MAX_KEY_DEPTH} levels"
            raise BadPayload(message, errors={"params": [message]})
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

    def _raw_load_json(self, req: flask.Request) -> Any:
        """The `json` location's body, read under `jsonbody`'s bounds (missing without a body)."""
        if not is_json_request(req) or not req.get_data(cache=True):
            return core.missing
        return jsonbody.loads(req.get_data(cache=True))


parser = MeetrecParser()


@parser.location_loader("eyeson")
def load_eyeson(req: flask.Request, schema: Any) -> dict[str, Any]:
    merged = unflatten(req.args.items(multi=True))
    if req.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        _deep_merge(merged, unflatten(req.form.items(multi=True)))
    elif is_json_request(req) and req.get_data(cache=True):
        body = jsonbody.loads(req.get_data(cache=True))
        if not isinstance(body, dict):
            abort(400, messages={"json": ["The JSON body must be an object."]})
        _deep_merge(merged, unflatten(body.items()))
    return merged
