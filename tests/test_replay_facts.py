"""The facts computed from rrweb events at ingest (`replay_facts`): counts, activity, pages."""

from __future__ import annotations

import random
from typing import Any

import pytest

from app.services.interactions import replay_facts as rf
from tests import rrweb_session

T0 = 1_764_700_000_000


def inc(ts: int, source: int, **data: Any) -> dict[str, Any]:
    return {"type": 3, "timestamp": T0 + ts, "data": {"source": source, **data}}


def console(ts: int, level: Any) -> dict[str, Any]:
    payload = {"level": level, "trace": [], "payload": ['"x"']}
    return {"type": 6, "timestamp": T0 + ts, "data": {"plugin": "rrweb/console@1", "payload": payload}}


def meta(ts: int, href: Any) -> dict[str, Any]:
    return {"type": 4, "timestamp": T0 + ts, "data": {"href": href, "width": 800, "height": 600}}


@pytest.mark.parametrize("kind, counted", [(2, 1), (4, 1), (9, 1), (3, 1), (0, 0), (1, 0), (5, 0), (7, 0)])
def test_clicks_are_click_dblclick_touchend_and_contextmenu(kind, counted):
    assert rf.facts_of([inc(0, 2, type=kind, id=1)]).click_count == counted


def test_a_keypress_is_an_input_event():
    facts = rf.facts_of([inc(0, 5, id=1, text="a"), inc(1, 5, id=1, text="ab"), inc(2, 2, type=2)])
    assert facts.keypress_count == 2


@pytest.mark.parametrize("source, counted", [(1, 1), (2, 1), (6, 1), (3, 0), (5, 0), (0, 0), (12, 0)])
def test_mouse_activity_is_moves_interactions_and_touch_moves(source, counted):
    assert rf.facts_of([inc(0, source, type=1)]).mouse_activity_count == counted


@pytest.mark.parametrize(
    "level, bucket",
    [
        ("log", "log"),
        ("info", "log"),
        ("debug", "log"),
        ("warn", "warn"),
        ("countReset", "warn"),
        ("error", "error"),
        ("assert", "error"),
        ("unknown", "log"),
        (None, "log"),
        (7, "log"),
    ],
)
def test_console_levels_map_to_log_warn_and_error(level, bucket):
    counts = rf.facts_of([console(0, level)]).counters()
    assert {k: v for k, v in counts.items() if k.startswith("console_") and v} == {
        f"console_{bucket}_count": 1
    }


def test_a_console_event_without_a_payload_counts_as_a_log():
    event = {"type": 6, "timestamp": T0, "data": {"plugin": "rrweb/console@1"}}
    assert rf.facts_of([event]).console_log_count == 1


def test_other_plugins_are_not_console_events():
    event = {"type": 6, "timestamp": T0, "data": {"plugin": "rrweb/network@1", "payload": {"level": "error"}}}
    assert rf.facts_of([event]).counters() == dict.fromkeys(rf.COUNTERS, 0)


def test_active_events_closer_than_the_gap_make_one_segment():
    facts = rf.facts_of([inc(0, 1), inc(3000, 3), inc(6000, 5)])
    assert facts.activity == ((T0, T0 + 6000),)


def test_a_gap_of_exactly_5000_ms_joins():
    assert rf.facts_of([inc(0, 1), inc(5000, 1)]).activity == ((T0, T0 + 5000),)


def test_a_gap_of_5001_ms_splits():
    assert rf.facts_of([inc(0, 1), inc(5001, 1)]).activity == ((T0, T0), (T0 + 5001, T0 + 5001))


def test_an_isolated_active_event_counts_one_ms():
    assert rf.active_ms_of(rf.facts_of([inc(0, 2, type=1)]).activity) == 1


def test_active_ms_sums_the_segments():
    assert rf.active_ms_of([[0, 4000], [10_000, 10_000], [20_000, 21_500]]) == 4000 + 1 + 1500


@pytest.mark.parametrize("source", [0, 8, 9, 10, 11, 13, 14, 15])
def test_other_incremental_sources_are_not_active(source):
    assert rf.facts_of([inc(0, source)]).activity == ()


def test_events_in_any_order_give_the_same_segments():
    events = [inc(ts, 1) for ts in (0, 4000, 9000, 20_000, 24_999)]
    assert rf.facts_of(events[::-1]).activity == rf.facts_of(events).activity


def test_merging_out_of_order_overlapping_batches_equals_the_whole_session():
    rng = random.Random(7)
    stamps = sorted(rng.sample(range(0, 200_000), 300)) + [300_000]
    whole = rf.segments(stamps)
    batches = [stamps[i : i + 17] for i in range(0, len(stamps), 17)] + [stamps[40:90:3]]
    rng.shuffle(batches)
    merged: list[list[int]] = []
    for batch in batches:
        merged = rf.merge_activity(merged, rf.segments(batch))
    assert merged == whole


def test_batches_separated_by_at_most_the_gap_join():
    assert rf.merge_activity([[10_000, 12_000]], [[0, 5000]]) == [[0, 12_000]]
    assert rf.merge_activity([[10_001, 12_000]], [[0, 5000]]) == [[0, 5000], [10_001, 12_000]]


def test_merge_skips_malformed_stored_intervals():
    assert rf.merge_activity([[1, "x"], [5], "no", [9, 3], None], [[0, 2]]) == [[0, 2]]


def test_advancing_moves_the_total_by_what_the_merge_changed():
    total, kept = rf.advance_activity(1 + 1, [[0, 0], [10_000, 10_000]], [[4000, 8000]])
    assert kept == [[0, 10_000]] and total == 10_000


def test_the_interval_cap_drops_the_oldest_but_keeps_them_counted():
    stored = [[i * 10_000, i * 10_000 + 100] for i in range(rf.MAX_INTERVALS)]
    total = rf.active_ms_of(stored)
    later = [[rf.MAX_INTERVALS * 10_000, rf.MAX_INTERVALS * 10_000 + 50]]
    total, kept = rf.advance_activity(total, stored, later)
    assert len(kept) == rf.MAX_INTERVALS and kept[0] == [10_000, 10_100] and kept[-1] == later[0]
    assert total == rf.MAX_INTERVALS * 100 + 50


def test_pages_are_distinct_meta_hrefs_in_timestamp_order():
    facts = rf.facts_of(
        [meta(30, "https://b.test/"), meta(10, "https://a.test/"), meta(20, "https://b.test/")]
    )
    assert facts.pages == ("https://a.test/", "https://b.test/")


def test_the_first_meta_is_the_earliest():
    facts = rf.facts_of([meta(30, "https://b.test/"), meta(10, "https://a.test/")])
    assert facts.first_meta == (T0 + 10, "https://a.test/")


def test_urls_are_truncated():
    facts = rf.facts_of([meta(0, "https://a.test/" + "x" * 3000)])
    assert len(facts.pages[0]) == rf.MAX_URL and facts.first_meta is not None
    assert facts.first_meta[1] == facts.pages[0]


def test_merged_pages_stop_at_the_cap():
    assert rf.merge_pages([f"u{i}" for i in range(49)], ["v", "u1", "w"]) == [f"u{i}" for i in range(49)] + [
        "v"
    ]


def test_pages_of_an_earlier_batch_go_first():
    assert rf.merge_pages(["b", "c"], ["a", "b"], earlier=True) == ["a", "b", "c"]


def test_changes_replace_the_start_url_only_with_an_earlier_meta():
    later = rf.facts_of([meta(50, "https://late.test/")])
    earlier = rf.facts_of([meta(5, "https://early.test/")])
    assert "start_url" not in rf.changes(later, 0, [], ["https://x.test/"], T0 + 10)
    found = rf.changes(earlier, 0, [], ["https://x.test/"], T0 + 10)
    assert (found["start_url"], found["start_url_at"]) == ("https://early.test/", T0 + 5)
    assert found["pages"] == ["https://early.test/", "https://x.test/"]


def test_changes_are_empty_when_nothing_new():
    facts = rf.facts_of([meta(50, "https://x.test/")])
    assert rf.changes(facts, 0, [], ["https://x.test/"], T0 + 10) == {}


@pytest.mark.parametrize(
    "event",
    [
        {"type": 3, "timestamp": T0},
        {"type": 3, "timestamp": T0, "data": None},
        {"type": 3, "timestamp": T0, "data": [1, 2]},
        {"type": 3, "timestamp": T0, "data": "text"},
        {"type": 3, "timestamp": T0, "data": {"source": [1]}},
        {"type": 3, "timestamp": T0, "data": {"source": {"a": 1}, "type": [2]}},
        {"type": 3, "timestamp": T0, "data": {"source": "2", "type": "2"}},
        {"type": 3, "timestamp": T0, "data": {"source": True}},
        {"type": 4, "timestamp": T0, "data": {"href": ["x"]}},
        {"type": 4, "timestamp": T0, "data": {"href": ""}},
        {"type": 6, "timestamp": T0, "data": {"plugin": ["rrweb/console@1"], "payload": 3}},
        {"type": 6, "timestamp": T0, "data": {"plugin": "rrweb/console@1", "payload": {"level": ["error"]}}},
        {"type": 3, "timestamp": "soon", "data": {"source": 1}},
        {"type": 3, "timestamp": float("nan"), "data": {"source": 1}},
        {"timestamp": T0},
        [],
        None,
    ],
)
def test_malformed_events_are_tolerated(event):
    facts = rf.facts_of([event])
    assert facts.click_count == facts.keypress_count == facts.mouse_activity_count == 0
    assert facts.activity == () and facts.pages == () and facts.first_meta is None


def test_a_float_source_equal_to_an_integer_counts_like_javascript():
    assert rf.facts_of([inc(0, 2.0, type=2.0)]).click_count == 1  # type: ignore[arg-type]


def test_the_recorded_session_has_its_known_facts():
    facts = rf.facts_of(rrweb_session.load())
    expected = rrweb_session.FACTS
    assert facts.counters() == {name: expected[name] for name in rf.COUNTERS}
    assert [list(i) for i in facts.activity] == expected["activity"]
    assert rf.active_ms_of(facts.activity) == expected["active_ms"]
    assert list(facts.pages) == expected["pages"]
    assert facts.first_meta == (expected["start_url_at"], expected["start_url"])
