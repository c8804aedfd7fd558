"""What the recording pages say about media and retention: capture jobs, stored segments and chunks,
the gaps the video skips, and when retention deletes a recording."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.console import facts
from app.models import Recording
from app.services.pipeline import segments
from tests.console import project_with_key

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
POLICY = facts.Retention(14, T0 + timedelta(days=1))


def recording(**values) -> Recording:  # type: ignore[no-untyped-def]
    return Recording(
        **{"id": "r1", "state": "finished", "ingest": "pull", "created_at": T0, "gaps": [], **values}
    )


def test_retention_names_the_deletion_date():
    kept = POLICY.of(recording())
    assert (kept.kept, kept.deletes_at, kept.due) == (None, T0 + timedelta(days=14), False)


@pytest.mark.parametrize(
    ("flags", "why"), [({"persist": True}, "persisted"), ({"legal_hold": True}, "legal hold")]
)
def test_retention_says_what_keeps_a_recording(flags, why):
    assert POLICY.of(recording(**flags)).kept == why


def test_retention_past_the_date_is_due():
    assert facts.Retention(14, T0 + timedelta(days=15)).of(recording()).due


def test_retention_follows_the_projects_override(rt):
    from app.services.access import keys

    project = keys.create_project(rt, "short-retention", retention_days=3)
    assert facts.retention(rt, project.id).days == 3


@pytest.mark.parametrize(
    ("state", "jobs", "said"),
    [
        ("started", 0, "none yet: waiting for a capture worker"),
        ("failed", 0, "none ran"),
        ("finished", 1, "1"),
        ("finished", 2, "2 (handed over or resumed 1 time)"),
    ],
)
def test_capture_jobs_say_what_happened(state, jobs, said):
    assert facts.capture_jobs(recording(state=state, capture_attempts=jobs)) == said


def test_a_video_without_breaks_has_no_gaps():
    assert facts.video_gaps(recording(timeline=[[1000.0, 0.0, 30.0]])) == []


def test_a_gap_starts_where_the_next_span_does_with_its_reason():
    rec = recording(
        timeline=[[1000.0, 0.0, 10.0], [1014.0, 10.0, 20.0]],
        gaps=[{"after_seq": 2, "seconds": 3.5, "reason": "source dropped"}],
    )
    assert facts.video_gaps(rec) == [facts.VideoGap(10.0, 3.5, "source dropped")]


def test_gaps_that_do_not_pair_with_the_spans_are_measured_from_them():
    rec = recording(timeline=[[1000.0, 0.0, 10.0], [1014.0, 10.0, 5.0], [1020.0, 15.0, 5.0]])
    assert facts.video_gaps(rec) == [
        facts.VideoGap(10.0, 4.0, facts.LOST_SOURCE),
        facts.VideoGap(15.0, 1.0, facts.LOST_SOURCE),
    ]


def test_received_counts_the_stored_segments(rt):
    from tests.helpers import add_recording

    project_id, _ = project_with_key(rt)
    rec = add_recording(rt, project_id, state="started", ingest="push", duration=None)
    for seq in range(2):
        chunk = segments.NewSegment(seq, f"k{seq}", 1000, "ab" * 32, None, T0 + timedelta(seconds=seq))
        assert segments.record_pushed(rt, rec, chunk)
    got = facts.received(rt, rec)
    assert (got.count, got.bytes, got.last_at) == (2, 2000, T0 + timedelta(seconds=1))
