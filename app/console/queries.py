"""Read-only queries the console needs and the API does not: filtered listings, live states, the
deliveries that concern one recording, storage used. Every query is scoped to one project.

The recordings list shows video recordings and web replays side by side: a recording is a web replay
when it has a `ReplaySummary` row (its facts, computed at ingest) and a video when its ingest is not
"none" (a recording may be both). A page is one query: the summary is outer-joined and the replay's
person (its distinct id, `replay.person_column`) is a correlated subquery on `recording_meta`'s
primary key."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import defer
from sqlalchemy.sql import Select

from app.console import replay
from app.models import (
    ApiKey,
    Ingest,
    Participant,
    Recording,
    RecordingState,
    ReplaySummary,
    Room,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from app.runtime import Runtime
from app.services.operations import counts
from app.services.outbox import endpoints
from app.services.outbox.outbox import RECORDING_UPDATE

S = RecordingState
PAGE_SIZE = 25
MAX_STATE_IDS = 100
STATES = (S.STARTED, S.STOPPED, S.FINISHED, S.FAILED)
KINDS = ("video", "replay")  # "" is every kind
MAX_CLICKS = 1_000_000
SORTS = {
    "created": Recording.created_at,
    "room": Room.key,
    "state": Recording.state,
    "duration": Recording.duration,
    "size": Recording.size,
    "clicks": ReplaySummary.click_count,
}


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    number: int
    size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))


@dataclass(frozen=True)
class RecordingFilter:
    """The recordings list's query string, validated; `problems` names what was ignored and why."""

    room: str = ""
    state: str = ""
    since: date | None = None
    until: date | None = None
    text: str = ""
    kind: str = ""
    min_clicks: int | None = None
    start_url: str = ""
    person: str = ""
    sort: str = "created"
    direction: str = "desc"
    page: int = 1
    problems: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> RecordingFilter:
        problems: list[str] = []
        state = args.get("state", "")
        if state and state not in STATES:
            problems.append(f"unknown state {state!r}")
            state = ""
        kind = args.get("kind", "")
        if kind and kind not in KINDS:
            problems.append(f"unknown kind {kind!r}")
            kind = ""
        sort = args.get("sort", "created")
        if sort not in SORTS:
            problems.append(f"cannot sort by {sort!r}")
            sort = "created"
        return cls(
            room=args.get("room", "").strip()[:200],
            state=state,
            since=_date(args.get("from", ""), "from", problems),
            until=_date(args.get("to", ""), "to", problems),
            text=args.get("q", "").strip()[:200],
            kind=kind,
            min_clicks=_count(args.get("clicks", ""), "clicks", problems),
            start_url=args.get("url", "").strip()[:200],
            person=args.get("person", "").strip()[:200],
            sort=sort,
            direction="asc" if args.get("dir") == "asc" else "desc",
            page=page_number(args.get("page", "1")),
            problems=tuple(problems),
        )

    def args(self, **changes: Any) -> dict[str, str]:
        """This filter (with `changes`) as query-string arguments, defaults left out."""
        f = replace(self, **changes)
        found = {
            "room": f.room,
            "state": f.state,
            "from": f.since.isoformat() if f.since else "",
            "to": f.until.isoformat() if f.until else "",
            "q": f.text,
            "kind": f.kind,
            "clicks": "" if f.min_clicks is None else str(f.min_clicks),
            "url": f.start_url,
            "person": f.person,
            "sort": "" if f.sort == "created" else f.sort,
            "dir": "" if f.direction == "desc" else f.direction,
            "page": "" if f.page == 1 else str(f.page),
        }
        return {k: v for k, v in found.items() if v}

    def sort_args(self, column: str) -> dict[str, str]:
        """Arguments that sort by `column`: descending first, the other way on a second click."""
        direction = "asc" if self.sort == column and self.direction == "desc" else "desc"
        return self.args(sort=column, direction=direction, page=1)


def _date(raw: str, name: str, problems: list[str]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        problems.append(f"{name} is not a date (YYYY-MM-DD)")
        return None


def _count(raw: str, name: str, problems: list[str]) -> int | None:
    if not raw.strip():
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_CLICKS:
        problems.append(f"{name} is not a whole number from 0 to {MAX_CLICKS}")
        return None
    return value


def page_number(raw: str) -> int:
    """A page number from the query string: 1 when missing or invalid."""
    try:
        return min(max(1, int(raw)), 100_000)
    except ValueError:
        return 1


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(project_id: str, f: RecordingFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [
        Recording.project_id == project_id,
        Recording.state != S.DELETED,
    ]
    if f.room:
        where.append(Room.key == f.room)
    if f.state:
        where.append(Recording.state == f.state)
    if f.since:
        where.append(Recording.created_at >= datetime.combine(f.since, time(), UTC))
    if f.until:  # the whole `to` day is included
        where.append(Recording.created_at < datetime.combine(f.until + timedelta(days=1), time(), UTC))
    if f.text:
        pattern = _like(f.text)
        where.append(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (
                        Recording.id,
                        Recording.external_id,
                        Room.key,
                        Room.name,
                        Participant.name,
                        Recording.description,
                        Recording.error,
                        ReplaySummary.start_url,
                    )
                )
            )
        )
    return where + _kind_conditions(f)


def _kind_conditions(f: RecordingFilter) -> list[ColumnElement[bool]]:
    """The web replay filters: a replay's facts are its summary's columns (NULL for a video, which
    therefore never matches a replay-only filter); a person is a video's participant or a replay's."""
    where: list[ColumnElement[bool]] = []
    if f.kind == "video":
        where.append(Recording.ingest != Ingest.NONE)
    elif f.kind == "replay":
        where.append(ReplaySummary.recording_id.is_not(None))
    if f.min_clicks is not None:
        where.append(ReplaySummary.click_count >= f.min_clicks)
    if f.start_url:
        where.append(ReplaySummary.start_url.ilike(_like(f.start_url), escape="\\"))
    if f.person:
        pattern = _like(f.person)
        where.append(or_(Participant.name.ilike(pattern, escape="\\"), replay.person_matches(pattern)))
    return where


def _joined(stmt: Select) -> Select:
    return (
        stmt.outerjoin(Room, Recording.room_id == Room.id)
        .outerjoin(Participant, Recording.participant_id == Participant.id)
        .outerjoin(ReplaySummary, ReplaySummary.recording_id == Recording.id)
    )


@dataclass(frozen=True)
class Listed:
    """A row of the recordings list: the recording, its web replay's summary (None for a video) and
    the replay's person (its distinct id, None without one)."""

    rec: Recording
    replay: ReplaySummary | None
    person: str | None

    @property
    def duration(self) -> float | None:
        """Seconds: the recording's once stopped, else a running replay's span of events so far."""
        if self.rec.duration is not None or self.replay is None:
            return self.rec.duration
        return replay.span_seconds(self.replay)


def recordings(rt: Runtime, project_id: str, f: RecordingFilter) -> Page:
    """The project's live recordings matching `f` (`Listed` rows), sorted and paginated."""
    where = _conditions(project_id, f)
    column = SORTS[f.sort]
    order = column.asc().nulls_last() if f.direction == "asc" else column.desc().nulls_last()
    with rt.db.read() as s:
        total = s.scalar(_joined(select(func.count(Recording.id))).where(*where)) or 0
        rows = (
            s.execute(
                _joined(select(Recording, ReplaySummary, replay.person_column()))
                .options(defer(ReplaySummary.activity), defer(ReplaySummary.pages))
                .where(*where)
                .order_by(order, Recording.id)
                .offset((f.page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            )
            .unique()
            .all()
        )
    return Page([Listed(rec, summary, person) for rec, summary, person in rows], total, f.page)


def room_keys(rt: Runtime, project_id: str, limit: int = 500) -> list[str]:
    """The project's room ids, for the room filter's suggestions."""
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(Room.key)
                .where(Room.project_id == project_id)
                .distinct()
                .order_by(Room.key)
                .limit(limit)
            )
        )


LIVE_COLUMNS = (
    Recording.state,
    Recording.duration,
    Recording.size,
    Recording.capture_attempts,
    Recording.reconnects,
)


def states(rt: Runtime, project_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """State, duration, size, capture jobs and interruptions of the project's recordings among `ids`
    (at most 100), so a page shows a capture handed over or reconnected while it is open; deleted ones
    answer "deleted" so a page can show them gone; unknown and foreign ids are left out."""
    ids = list(dict.fromkeys(ids))[:MAX_STATE_IDS]
    if not ids:
        return {}
    with rt.db.read() as s:
        rows = s.execute(
            select(Recording.id, *LIVE_COLUMNS).where(
                Recording.id.in_(ids), Recording.project_id == project_id
            )
        ).all()
    return {r.id: {c.key: getattr(r, c.key) for c in LIVE_COLUMNS} for r in rows}


def deliveries_for_recording(
    rt: Runtime, key: ApiKey, recording_id: str, limit: int = 100
) -> list[tuple[WebhookDelivery, str, str]]:
    """Delivery attempts of this recording's `recording_update` events to the endpoints `key` manages
    (`endpoints.managed_by`), newest first, each with its endpoint's id and URL."""
    with rt.db.read() as s:
        rows = s.execute(
            select(WebhookDelivery, WebhookEndpoint.id, WebhookEndpoint.url)
            .join(WebhookEvent, WebhookDelivery.event_id == WebhookEvent.id)
            .join(WebhookEndpoint, WebhookDelivery.endpoint_id == WebhookEndpoint.id)
            .where(
                WebhookEvent.type == RECORDING_UPDATE,
                WebhookEvent.resource_id == recording_id,
                *endpoints.managed_by(key),
            )
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.attempt.desc())
            .limit(limit)
        ).all()
    return [(d, endpoint_id, url) for d, endpoint_id, url in rows]


def rooms(rt: Runtime, project_id: str, page: int = 1) -> Page:
    """The project's meetings (room instances), newest first, each with its live recordings' count."""
    count = (
        select(func.count(Recording.id))
        .where(Recording.room_id == Room.id, Recording.state != S.DELETED)
        .correlate(Room)
        .scalar_subquery()
    )
    with rt.db.read() as s:
        total = s.scalar(select(func.count(Room.id)).where(Room.project_id == project_id)) or 0
        rows = s.execute(
            select(Room, count)
            .where(Room.project_id == project_id)
            .order_by(Room.started_at.desc(), Room.id)
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
    return Page([(room, n) for room, n in rows], total, page)


def storage_used(rt: Runtime, project_id: str | None = None) -> dict[str, int]:
    """Finished recordings, their bytes and the bytes of segments not yet joined, as `/metrics` counts
    them (the `counts` read model); one project's, or everyone's."""
    stored = counts.storage_bytes(rt, project_id)
    return {
        "finished_recordings": counts.recordings_by_state(rt, project_id)[S.FINISHED],
        "finished_bytes": stored["recordings"],
        "in_flight_bytes": stored["segments"],
    }


def live_key(rt: Runtime, key_id: str) -> ApiKey | None:
    """The API key with this id unless it was revoked."""
    with rt.db.read() as s:
        return s.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)))
