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
    assert rows[0].offset == 12.5 and rows[0].summary == "key: Enter"


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
    assert 'data-seek="1.000"' in html and 'data-seek="63.500"' in html and "x: 10, y: 20" in html


def test_without_events_the_list_says_so(app):
    with app.test_request_context("/console/recordings/r1"):
        html = render_template("console/_events.html", events=[], media={"video": None})
    assert "no session events" in html
