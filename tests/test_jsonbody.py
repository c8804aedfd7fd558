"""Request JSON read under bounds (pure unit): depth, value count, 64-bit integers, valid Unicode."""

from __future__ import annotations

import pytest

from app.api import jsonbody
from app.api.jsonbody import MAX_DEPTH, MAX_VALUES
from app.errors import BadPayload, PayloadTooLarge


def test_ordinary_json_is_read():
    assert jsonbody.loads(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}


def test_text_is_read_like_bytes():
    assert jsonbody.loads('{"a": "\\u00e9"}') == {"a": "é"}


def test_nesting_to_the_limit_is_read():
    assert jsonbody.loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_nesting_past_the_limit_is_refused(depth):
    with pytest.raises(BadPayload, match="nests deeper"):
        jsonbody.loads("[" * depth + "]" * depth)


def test_too_many_values_are_refused_before_parsing():
    with pytest.raises(PayloadTooLarge, match="values"):
        jsonbody.loads(b"[" + b"0," * MAX_VALUES + b"0]")


@pytest.mark.parametrize("number", [str(2**63), str(-(2**63)), "9" * 400, "9" * 5000])
def test_an_integer_past_64_bits_is_refused(number):
    with pytest.raises(BadPayload, match="64 bits|digits"):
        jsonbody.loads(f"[{number}]")


@pytest.mark.parametrize(
    "text", ['"\\ud800"', '["\\udfff"]', '{"\\ud800": 1}', '{"a": {"b": ["x\\udbff"]}}', '"\\ude00\\ud83d"']
)
def test_a_lone_surrogate_is_refused(text):
    with pytest.raises(BadPayload, match="surrogate"):
        jsonbody.loads(text)


def test_a_surrogate_pair_is_one_character():
    assert jsonbody.loads('"\\ud83d\\ude00"') == "\U0001f600"


def test_an_escaped_backslash_before_u_is_not_a_surrogate():
    assert jsonbody.loads('"\\\\ud800"') == "\\ud800"


@pytest.mark.parametrize("raw", [b'"\xed\xa0\x80"', b'"\xff"'])
def test_bytes_that_are_not_utf8_are_refused(raw):
    with pytest.raises(BadPayload, match="UTF-8"):
        jsonbody.loads(raw)


def test_text_holding_a_surrogate_is_refused():
    with pytest.raises(BadPayload):
        jsonbody.loads('"\ud800"')


@pytest.mark.parametrize("raw", [b"[{", b"", b"{'a': 1}"])
def test_malformed_json_is_refused_with_a_json_error(raw):
    with pytest.raises(BadPayload) as e:
        jsonbody.loads(raw)
    assert "json" in e.value.errors
