"""Rails-style parameter nesting (pure unit)."""

from __future__ import annotations

import pytest

from app.api.params import MAX_KEY_DEPTH, unflatten
from app.errors import BadPayload


def test_flat_keys_stay_flat():
    assert unflatten([("id", "r1")]) == {"id": "r1"}


def test_bracket_keys_nest():
    assert unflatten([("user[name]", "Jane"), ("user[id]", "7")]) == {"user": {"name": "Jane", "id": "7"}}


def test_deep_bracket_keys_nest():
    assert unflatten([("options[custom_fields][locale]", "de")]) == {
        "options": {"custom_fields": {"locale": "de"}}
    }


def test_empty_brackets_collect_a_list():
    assert unflatten([("types[]", "a"), ("types[]", "b")]) == {"types": ["a", "b"]}


def test_malformed_key_is_kept_verbatim():
    assert unflatten([("user[name", "x")]) == {"user[name": "x"}


def test_json_nested_values_pass_through():
    assert unflatten([("user", {"name": "A"})]) == {"user": {"name": "A"}}


def test_a_key_nested_to_the_limit_nests():
    parts = [f"k{i}" for i in range(MAX_KEY_DEPTH)]
    expected: object = "v"
    for part in reversed(parts):
        expected = {part: expected}
    assert unflatten([(parts[0] + "".join(f"[{p}]" for p in parts[1:]), "v")]) == expected


def test_a_key_nested_past_the_limit_is_refused():
    with pytest.raises(BadPayload, match="nests deeper"):
        unflatten([("a" + "[b]" * MAX_KEY_DEPTH, "v")])
