"""The event store's reads and writes, and the timeline that lines events up with video."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.errors import Conflict
from app.models import Recording, Segment
from app.services.access import keys
from app.services.core import sessions
from app.services.interactions import event_store
from app.services.interactions.event_store import NewEvent
from app.services.pipeline import timeline

T0 = 1_700_000_000.0


@pytest.fixture
def project_id(rt) -> str:  # type: ignore[no-untyped-def]
    return keys.create_project(rt, "store").id


@pytest.fixture
def session_id(rt, project_id) -> str:  # type: ignore[no-untyped-def]
    return sessions.start(rt, project_id, "store test").id


def ev(event_id: str, ts: float, kind: str = "custom") -> NewEvent:
    return NewEvent(event_id, kind, ts, {"custom_data": event_id})


def test_reads_page_through_ties_in_arrival_order(rt, project_id, session_id):
    batch = [ev(f"e{i}", T0 + i // 3) for i in range(10)]  # three events a second
    event_store.append(rt, project_id, session_id, list(reversed(batch)))
    read = [e.event_id for e in event_store.iter_events(rt, session_id, page=4)]
    assert sorted(read) == sorted(e.event_id for e in batch)
    assert [e.ts for e in event_store.iter_events(rt, session_id, page=4)] == sorted(e.ts for e in batch)
    assert len(read) == len(set(read))


def test_reads_can_keep_to_some_types(rt, project_id, session_id):
    event_store.append(rt, project_id, session_id, [ev("c", T0, "click"), ev("x", T0)])
    assert [e.event_id for e in event_store.iter_events(rt, session_id, types=["click"])] == ["c"]


def test_a_stop_between_check_and_insert_refuses_the_batch(rt, project_id, session_id):
    """The guard inside the insert's transaction, not only the check before it, decides."""
    from sqlalchemy import update

    with rt.db.transaction() as s:
        s.execute(
            update(Recording).where(Recording.id == session_id).values(stop_requested_at=datetime.now(UTC))
        )
    with pytest.raises(Conflict):
        event_store.append(rt, project_id, session_id, [ev("late", T0)])


def _segment(seq: int, ends: float, seconds: float) -> Segment:
    return Segment(
        seq=seq,
        object_key=f"s{seq}",
        size=1,
        sha256="",
        duration=seconds,
        created_at=datetime.fromtimestamp(ends, UTC),
    )


def _pull(created: float) -> Recording:
    return Recording(id="r", ingest="pull", created_at=datetime.fromtimestamp(created, UTC))


def test_contiguous_segments_make_one_span():
    parts = [_segment(0, T0 + 2, 2.0), _segment(1, T0 + 4.05, 2.0), _segment(2, T0 + 6.1, 2.0)]
    assert timeline.from_segments(_pull(T0), parts, 6.0) == [[T0, 0.0, 6.0]]


def test_a_reconnect_gap_starts_a_new_span():
    parts = [_segment(0, T0 + 2, 2.0), _segment(1, T0 + 12, 2.0)]  # 8 s without media in between
    assert timeline.from_segments(_pull(T0), parts, 4.0) == [[T0, 0.0, 2.0], [T0 + 10, 2.0, 2.0]]


def test_a_pushed_recording_is_one_span_from_its_start():
    pushed = Recording(id="r", ingest="push", created_at=datetime.fromtimestamp(T0, UTC))
    parts = [Segment(seq=0, object_key="c", size=1, sha256="", duration=None, created_at=pushed.created_at)]
    assert timeline.from_segments(pushed, parts, 9.5) == [[T0, 0.0, 9.5]]


@pytest.mark.parametrize(
    "ts, offset",
    [
        (T0 - 5, 0.0),  # before the video: its start
        (T0 + 1.5, 1.5),
        (T0 + 5, 2.0),  # inside the gap: where the video resumes
        (T0 + 11, 3.0),
        (T0 + 99, 4.0),  # after the end: the end
    ],
)
def test_video_offset_maps_wall_time_into_the_video(ts, offset):
    spans = [[T0, 0.0, 2.0], [T0 + 10, 2.0, 2.0]]
    assert timeline.video_offset(spans, ts) == offset


def test_video_offset_is_none_without_a_video():
    assert timeline.video_offset(None, T0) is None
