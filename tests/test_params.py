"""Rails-style parameter nesting (pure unit)."""

from __future__ import annotations

from app.api.params import unflatten


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
