"""Pure pieces of the console: formatting, the filter's query string, timelines and the event list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import render_template

from app.console import filters, queries, steps
from app.models import Recording

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("seconds", "shown"), [(None, "—"), (0, "0:00"), (75.9, "1:15"), (3725, "1:02:05")])
def test_durations_read_as_clock_time(seconds, shown):
    assert filters.duration(seconds) == shown


@pytest.mark.parametrize(
    ("count", "shown"), [(None, "—"), (512, "512 B"), (1536, "1.5 KiB"), (3 << 30, "3.0 GiB")]
)
def test_sizes_read_in_binary_units(count, shown):
    assert filters.size(count) == shown


def test_a_filter_leaves_defaults_out_of_its_query_string():
    f = queries.RecordingFilter.from_args({"room": "standup", "sort": "created", "page": "1"})
    assert f.args() == {"room": "standup"}


def test_sorting_by_the_sorted_column_again_flips_the_direction():
    f = queries.RecordingFilter.from_args({"sort": "size", "page": "3"})
    assert f.sort_args("size") == {"sort": "size", "dir": "asc"}
    assert f.sort_args("duration") == {"sort": "duration"}


def test_an_unknown_sort_falls_back_to_created():
    f = queries.RecordingFilter.from_args({"sort": "id; DROP TABLE"})
    assert f.sort == "created" and f.problems


@pytest.mark.parametrize(("raw", "page"), [("", 1), ("0", 1), ("x", 1), ("7", 7)])
def test_page_numbers_are_never_below_one(raw, page):
    assert queries.page_number(raw) == page


def recording(**values) -> Recording:  # type: ignore[no-untyped-def]
    return Recording(
        **{"id": "r1", "state": "finished", "ingest": "pull", "created_at": T0, "gaps": [], **values}
    )


def test_the_state_timeline_follows_the_lifecycle():
    rec = recording(
        stop_requested_at=T0 + timedelta(seconds=30),
        stopped_at=T0 + timedelta(seconds=31),
        finished_at=T0 + timedelta(seconds=33),
    )
    assert [s.label for s in steps.states(rec)] == ["Created", "Stop requested", "Stopped", "Finished"]


def test_the_state_timeline_shows_source_gaps():
    rec = recording(gaps=[{"after_seq": 4, "seconds": 2.5, "reason": "source dropped"}])
    gap = steps.states(rec)[1]
    assert gap.label == "Source gap" and gap.detail == "after segment 4: 2.5 s lost (source dropped)"


def test_event_rows_use_the_events_video_offset():
    rows = steps.event_rows([{"id": "e1", "type": "click", "timestamp": 1000.0, "offset": 4.25}], 990.0)
    assert rows[0].offset == 4.25


def test_event_rows_without_an_offset_count_from_the_video_start():
    rows = steps.event_rows([{"id": "e1", "type": "key", "timestamp": 1012.5, "key": "Enter"}], 1000.0)
    assert rows[0].offset == 12.5 and rows[0].fields == (("key", "Enter"),)


def test_an_event_before_the_video_starts_is_shown_at_zero():
    assert steps.event_rows([{"id": "e", "type": "click", "timestamp": 5.0}], 10.0)[0].offset == 0.0


def test_the_event_list_renders_one_seek_button_per_event(app):
    rows = steps.event_rows(
        [
            {"id": "e1", "type": "click", "timestamp": 101.0, "x": 10, "y": 20},
            {"id": "e2", "type": "key", "timestamp": 163.5, "key": "a"},
        ],
        100.0,
    )
    with app.test_request_context("/console/recordings/r1"):
        html = render_template("console/_events.html", events=rows, media={"video": "http://v"})
    assert html.count("data-seek=") == 2
    assert 'data-seek="1.000"' in html and 'data-seek="63.500"' in html


def test_without_events_the_list_says_so(app):
    with app.test_request_context("/console/recordings/r1"):
        html = render_template("console/_events.html", events=[], media={"video": None})
    assert "no session events" in html


@pytest.mark.parametrize(
    ("offset", "shown"),
    [
        (timedelta(seconds=-2), "just now"),
        (timedelta(seconds=-42), "42 s ago"),
        (timedelta(minutes=-3, seconds=-50), "3 min ago"),
        (timedelta(hours=-5), "5 h ago"),
        (timedelta(days=-1, hours=-2), "1 day ago"),
        (timedelta(days=13, hours=23), "in 13 days"),
        (timedelta(seconds=30), "in 30 s"),
        (timedelta(days=-60), "on 2024-12-31"),
    ],
)
def test_moments_read_relative_to_now(offset, shown):
    assert filters.relative(T0 + offset, T0) == shown


def test_a_moment_is_a_time_element_with_the_utc_time_on_hover():
    html = filters.when(T0 - timedelta(minutes=4) + timedelta(microseconds=123456), T0)
    assert (
        html == '<time datetime="2025-03-01T11:56:00+00:00" title="2025-03-01 11:56:00 UTC">3 min ago</time>'
    )


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        (T0, "s"),
        (T0.replace(tzinfo=None), "s"),
        ("2025-03-01T12:00:00Z", "s"),
        (T0.timestamp(), "s"),
        (int(T0.timestamp() * 1000), "ms"),
    ],
)
def test_every_kind_of_moment_reads_the_same(value, unit):
    assert filters.moment(value, unit) == T0


@pytest.mark.parametrize("value", [None, "", "yesterday", 10**20])
def test_no_moment_is_a_dash(value):
    assert filters.when(value, T0) == "—"


def test_event_fields_flatten_nested_data_to_their_names():
    data = {"coordinates": {"x": 100, "y": 200}, "click_data": {"button": "left", "pressed": True}}
    assert steps.fields(data) == (("x", "100"), ("y", "200"), ("button", "left"), ("pressed", "yes"))


def test_event_fields_spell_out_the_path_where_names_repeat():
    data = {"from": {"x": 1}, "to": {"x": 2}, "name": "drag"}
    assert steps.fields(data) == (("from.x", "1"), ("to.x", "2"), ("name", "drag"))


def test_event_fields_list_scalars_and_number_nested_items():
    data = {"keys": ["Shift", "A"], "touches": [{"x": 1}, {"x": 2}], "none": None, "zero": 0}
    assert steps.fields(data) == (
        ("keys", "Shift, A"),
        ("touches.1.x", "1"),
        ("touches.2.x", "2"),
        ("zero", "0"),
    )


def test_event_fields_are_bounded():
    many = steps.fields({f"k{n}": "v" * 500 for n in range(30)})
    assert len(many) == steps.MAX_FIELDS and many[-1] == ("…", "19 more")
    assert len(many[0][1]) == steps.MAX_VALUE and many[0][1].endswith("…")


def test_the_event_list_shows_fields_not_python_reprs(app):
    rows = steps.event_rows(
        [
            {
                "id": "c1",
                "type": "click",
                "timestamp": 101.0,
                "click_data": {"button": "left", "pressed": True},
            }
        ],
        100.0,
    )
    with app.test_request_context("/console/recordings/r1"):
        html = render_template("console/_events.html", events=rows, media={"video": "http://v"})
    assert "{" not in html and "True" not in html
    assert '<span class="field-name">button:</span> left' in html


def test_a_screenshot_sits_in_its_events_row(app):
    rows = steps.event_rows(
        [{"id": "c1", "type": "click", "timestamp": 1.0, "screenshot_path": "http://s/1.png"}], 0
    )
    with app.test_request_context("/console/recordings/r1"):
        html = render_template("console/_events.html", events=rows, media={"video": "http://v"})
    row = html[html.index("<li") : html.index("</li>")]
    assert 'href="http://s/1.png"' in row and 'data-seek="1.000"' in row
