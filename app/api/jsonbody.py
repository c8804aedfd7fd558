"""Request JSON, read under bounds: every JSON body and JSON form field an API route takes is decoded here.

Python's json module alone lets a hostile body cost far more than its bytes, or poison what it stores:

- `[[],[],...]` of 32 MiB builds 11 million lists (~790 MiB) before any route can count them; so the
  body's commas and opening brackets (an upper bound on its values, strings included) are counted on the
  bytes first, and past MAX_VALUES it is refused with 413 having built nothing;
- a body nested a thousand deep raises RecursionError inside the decoder, and one nested a few hundred
  deep does so later in whatever walks it; anything deeper than MAX_DEPTH is refused;
- a 400-digit integer overflows float arithmetic and SQL integers; integers must fit in 64 bits;
- `NaN`, `Infinity` and a float overflowing to infinity are no JSON: stored, they make every later read of
  them invalid JSON; they are refused (as `app.payloads` refuses them in rrweb bodies);
- an escaped lone surrogate (`"\\ud800"`) decodes to a str that cannot be written out as UTF-8, so once
  stored every later read of it fails; such strings (values or keys) are refused.

Refusals are domain errors with the one error shape: BadPayload (400) or PayloadTooLarge (413), each with
`errors.json` saying why.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask.json.provider import DefaultJSONProvider

from app.errors import BadPayload, PayloadTooLarge
from app.payloads import finite_float, no_constant

MAX_DEPTH = 64
MAX_VALUES = 500_000
MAX_INT = 2**63 - 1

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # a decoded str can only get a surrogate this way
_SURROGATE = re.compile("[\ud800-\udfff]")
_NEST = (dict, list)


def _int(text: str) -> int:
    value = int(text)
    if not -MAX_INT <= value <= MAX_INT:
        raise ValueError(f"the integer {text[:20]}... does not fit in 64 bits")
    return value


_DECODE = json.JSONDecoder(parse_int=_int, parse_constant=no_constant, parse_float=finite_float).decode


def loads(data: bytes | str) -> Any:
    """The JSON value in `data` (UTF-8 bytes or text), within the bounds above; BadPayload or
    PayloadTooLarge when it is malformed or out of them."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    _check_size(raw)
    try:
        value = _DECODE(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise _bad(f"the body is not valid UTF-8 (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise _bad(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise _bad(f"the JSON nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:  # an integer out of range or past Python's digit limit, NaN, Infinity
        raise _bad(f"malformed JSON: {e}") from None
    _check_shape(value, strings=_SURROGATE_ESCAPE.search(raw) is not None)
    return value


def _bad(message: str) -> BadPayload:
    return BadPayload(message, errors={"json": [message]})


def _check_size(raw: bytes) -> None:
    """Refuse a body that may hold more than MAX_VALUES values, before any of them is built."""
    bound = raw.count(b",") + raw.count(b"[") + raw.count(b"{")
    if bound > MAX_VALUES:
        message = f"the JSON holds more than {MAX_VALUES} values (commas and brackets): send less at a time"
        raise PayloadTooLarge(message, errors={"json": [message]})


def _check_shape(value: Any, strings: bool) -> None:
    """Refuse nesting past MAX_DEPTH and (when `strings`) strings that are not valid Unicode; level by
    level, without recursion."""
    level = [value] if isinstance(value, _NEST) else []
    if strings and isinstance(value, str):
        _check_text(value)
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise _bad(f"the JSON nests deeper than {MAX_DEPTH} levels")
        children: list[Any] = []
        for node in level:
            items = node.values() if isinstance(node, dict) else node
            if strings and isinstance(node, dict):
                for key in node:
                    _check_text(key)
            for child in items:
                if isinstance(child, _NEST):
                    children.append(child)
                elif strings and isinstance(child, str):
                    _check_text(child)
        level = children


def _check_text(text: str) -> None:
    if _SURROGATE.search(text):
        raise _bad("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff): it is not valid Unicode")


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with request bodies (`request.get_json()`) read by `loads` above."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)
