"""Summaries of a replay by fixed rules, and the similarity of two replays' profiles (`replay_insights`)."""

from __future__ import annotations

from typing import Any

import pytest

from app.services.interactions import replay_insights as ri
from tests import rrweb_session

T0 = 1_764_700_000_000
FACTS = rrweb_session.FACTS


def click(ts: int, x: float = 100, y: float = 100, node: int = 7) -> dict[str, Any]:
    return {"type": 3, "timestamp": T0 + ts, "data": {"source": 2, "type": 2, "id": node, "x": x, "y": y}}


def typed(ts: int, node: int, text: str) -> dict[str, Any]:
    return {
        "type": 3,
        "timestamp": T0 + ts,
        "data": {"source": 5, "id": node, "text": text, "isChecked": False},
    }


def move(ts: int) -> dict[str, Any]:
    return {"type": 3, "timestamp": T0 + ts, "data": {"source": 1, "positions": [{"x": 1, "y": 1}]}}


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return ri.summarize(rrweb_session.load())


def test_the_recorded_session_counts_match_its_known_facts(recorded):
    names = {f"{name}_count": value for name, value in recorded["counts"].items()}
    assert names == {name: FACTS[name] for name in names}


def test_the_recorded_session_times(recorded):
    duration = (FACTS["last_timestamp"] - FACTS["first_timestamp"]) / 1000
    assert recorded["duration_seconds"] == duration
    assert recorded["active_seconds"] == FACTS["active_ms"] / 1000
    assert recorded["inactive_seconds"] == round(duration - FACTS["active_ms"] / 1000, 3)


def test_the_recorded_session_pages_are_visits_until_the_next_page(recorded):
    second_at = 1796292640928  # the checkout page's Meta event
    assert recorded["pages"] == [
        {
            "url": FACTS["start_url"],
            "entered_at": ri.iso(FACTS["start_url_at"]),
            "seconds": (second_at - FACTS["start_url_at"]) / 1000,
        },
        {
            "url": rrweb_session.CHECKOUT_URL,
            "entered_at": ri.iso(second_at),
            "seconds": (FACTS["last_timestamp"] - second_at) / 1000,
        },
    ]


def test_the_recorded_session_errors_are_its_console_errors(recorded):
    messages = [e["message"] for e in recorded["errors"]]
    assert messages == ["TypeError: x is undefined", "Failed to fetch /api/cart 500", "cart is empty"]


def test_the_recorded_session_has_its_rage_click(recorded):
    (rage,) = recorded["rage_clicks"]
    assert {k: rage[k] for k in rrweb_session.RAGE_CLICK} == rrweb_session.RAGE_CLICK


def test_the_recorded_session_key_actions_collapse_typing(recorded):
    kinds = [a["kind"] for a in recorded["key_actions"]]
    assert kinds.count("click") == FACTS["click_count"]
    assert kinds.count("navigation") == 2 and kinds.count("error") == 3
    assert kinds.count("input") == 3  # "Ada", the checkbox, "hello"
    assert recorded["key_actions"] == sorted(recorded["key_actions"], key=lambda a: a["timestamp"])


def test_the_summary_sentences_name_the_numbers(recorded):
    text = recorded["summary"]
    assert "2 pages" in text and FACTS["start_url"] in text and "12 times" in text and "1 rage click" in text


def test_the_summary_is_deterministic(recorded):
    assert ri.summarize(rrweb_session.load()) == recorded


def test_key_actions_are_the_earliest_fifty_in_order():
    events = [click(ts * 10, node=ts) for ts in range(200)][::-1]  # out of order on purpose
    actions = ri.summarize(events)["key_actions"]
    assert len(actions) == ri.CAP
    assert [a["timestamp"] for a in actions] == [ri.iso(T0 + ts * 10) for ts in range(ri.CAP)]


def test_consecutive_inputs_on_one_node_are_one_action_even_with_moves_between():
    events = [typed(0, 5, "a"), move(10), typed(20, 5, "ab"), typed(30, 5, "abc"), typed(40, 6, "x")]
    actions = ri.summarize(events)["key_actions"]
    assert [a["description"] for a in actions] == [
        "Typed into field #5 (3 characters)",
        "Typed into field #6 (1 characters)",
    ]
    assert actions[0]["timestamp"] == ri.iso(T0)


def test_another_action_ends_a_run_of_inputs():
    events = [typed(0, 5, "a"), click(10, node=9), typed(20, 5, "ab")]
    assert [a["kind"] for a in ri.summarize(events)["key_actions"]] == ["input", "click", "input"]


def test_three_close_clicks_within_a_second_are_a_rage_click():
    events = [click(0, 100, 100), click(400, 110, 95), click(800, 90, 120)]
    assert ri.summarize(events)["rage_clicks"] == [
        {"timestamp": ri.iso(T0), "x": 100.0, "y": 100.0, "clicks": 3}
    ]


@pytest.mark.parametrize(
    "events",
    [
        [click(0), click(400)],  # two are not enough
        [click(0), click(400), click(1401)],  # too slow
        [click(0, 100, 100), click(300, 100, 131), click(600, 100, 100)],  # too far from the first
    ],
    ids=["two", "slow", "far"],
)
def test_clicks_that_are_not_a_rage_click(events):
    assert ri.summarize(events)["rage_clicks"] == []


def test_errors_unquote_the_console_arguments():
    payload = {"level": "error", "payload": ['"boom"', "42", '{"a":1}', 3]}
    event = {"type": 6, "timestamp": T0, "data": {"plugin": "rrweb/console@1", "payload": payload}}
    assert ri.summarize([event])["errors"] == [{"timestamp": ri.iso(T0), "message": 'boom 42 {"a":1}'}]


def test_errors_are_capped():
    payload = {"level": "error", "payload": ['"x"']}
    data = {"plugin": "rrweb/console@1", "payload": payload}
    events = [{"type": 6, "timestamp": T0 + i, "data": data} for i in range(120)]
    found = ri.summarize(events)
    assert len(found["errors"]) == ri.CAP and found["counts"]["console_error"] == 120


def test_an_empty_or_odd_stream_summarizes_without_error():
    found = ri.summarize([{"type": 3, "timestamp": T0, "data": "odd"}, {"type": 99, "timestamp": T0}])
    assert (found["duration_seconds"], found["pages"], found["key_actions"]) == (0.0, [], [])
    assert ri.summarize([])["duration_seconds"] == 0.0


def profile(pages: list[str], clicks: int = 10, errors: int = 0, active_ms: int = 30_000) -> ri.Profile:
    return ri.profile_of(clicks, 40, 300, errors, active_ms, 60_000, pages)


def test_the_profile_keeps_pages_without_query_or_fragment():
    assert profile(["https://a.test/cart?x=1#top", "https://a.test/cart"]).pages == {"https://a.test/cart"}


def test_the_profile_rates_are_per_minute_and_the_active_fraction():
    assert ri.profile_of(10, 20, 30, 2, 30_000, 120_000, []).actions == (5.0, 10.0, 15.0, 1.0, 0.25)


def test_identical_profiles_are_fully_similar():
    a = profile(["https://a.test/", "https://a.test/cart"])
    assert ri.similarity(a, a) == pytest.approx(1.0)


def test_similarity_is_symmetric():
    a, b = profile(["https://a.test/", "https://a.test/x"], clicks=3), profile(["https://a.test/"], errors=4)
    assert ri.similarity(a, b) == ri.similarity(b, a)


def test_disjoint_pages_score_lower_than_shared_ones():
    a = profile(["https://a.test/"])
    assert ri.similarity(a, profile(["https://b.test/"])) < ri.similarity(a, profile(["https://a.test/"]))
    assert ri.similarity(a, profile(["https://b.test/"])) == pytest.approx(0.5)


def test_two_idle_replays_without_pages_are_alike_and_one_idle_is_not():
    idle = ri.profile_of(0, 0, 0, 0, 0, 10_000, [])
    assert ri.similarity(idle, idle) == 1.0
    assert ri.similarity(idle, ri.profile_of(5, 0, 0, 0, 100, 10_000, [])) == 0.5


def test_similarity_stays_within_zero_and_one():
    a = ri.profile_of(1, 2, 3, 4, 5_000, 10_000, ["https://a.test/"])
    b = ri.profile_of(900, 0, 0, 0, 0, 1, ["https://b.test/", "https://c.test/"])
    assert 0.0 <= ri.similarity(a, b) <= 1.0
