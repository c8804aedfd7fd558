"""The read model of meetrec's figures: one definition of each count, for every surface that shows it.

The console's System page, `GET /system` and `/metrics` all read their counts here, so they agree.
SQL figures come from the database (the truth); queue figures from Redis through the job queue port.
A `project_id` scopes a SQL figure to one project; without it the figure covers every project.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Float, and_, case, cast, func, select

from app.models import DeliveryState, Recording, RecordingState, Segment, WebhookDelivery
from app.queueing import QUEUE_NAMES
from app.runtime import Runtime

S = RecordingState
STATES = tuple(s.value for s in RecordingState)
# Work in flight: recordings still being captured (started) or waiting to be finalized (stopped).
IN_FLIGHT = (S.STARTED, S.STOPPED)
# Finalize deletes a recording's segments once its final file is stored, so segments are stored exactly
# while it is started, stopped or failed (a failed recording keeps them until retention purges it).
UNJOINED = (S.STARTED, S.STOPPED, S.FAILED)
DELIVERY_STATES = tuple(d.value for d in DeliveryState)


@dataclass(frozen=True)
class Durations:
    """A histogram's raw figures: how many, their sum, and how many were at most each bound."""

    count: int
    total: float
    at_most: tuple[int, ...]


def recordings_by_state(rt: Runtime, project_id: str | None = None) -> dict[str, int]:
    """Recordings per state, every state present (deleted ones are tombstones and count as `deleted`)."""
    return _by_state(rt, STATES, project_id)


def in_flight(rt: Runtime, project_id: str | None = None) -> dict[str, int]:
    """Recordings in flight per state: `started` (capturing or receiving) and `stopped` (to finalize)."""
    return _by_state(rt, IN_FLIGHT, project_id)


def captures_running(rt: Runtime) -> int:
    """Pull captures holding a live lease: an ffmpeg is running for each."""
    with rt.db.read() as s:
        return (
            s.scalar(
                select(func.count()).where(
                    Recording.state == S.STARTED,
                    Recording.ingest == "pull",
                    Recording.lease_expires_at > rt.now(),
                )
            )
            or 0
        )


def storage_bytes(rt: Runtime, project_id: str | None = None) -> dict[str, int]:
    """Bytes in object storage per SQL: `recordings` (final files of finished recordings) and
    `segments` (segments not yet joined); posters are not counted."""
    scope = _scope(project_id)
    with rt.db.read() as s:
        final = s.scalar(
            select(func.coalesce(func.sum(Recording.size), 0)).where(Recording.state == S.FINISHED, *scope)
        )
        parts = s.scalar(
            select(func.coalesce(func.sum(Segment.size), 0))
            .join(Recording, Recording.id == Segment.recording_id)
            .where(Recording.state.in_(UNJOINED), *scope)
        )
    return {"recordings": int(final or 0), "segments": int(parts or 0)}


def deliveries_by_state(rt: Runtime) -> dict[str, int]:
    """Webhook delivery attempts per state, every state present."""
    with rt.db.read() as s:
        rows = dict(
            s.execute(select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state)).all()
        )
    return {state: rows.get(state, 0) for state in DELIVERY_STATES}


def finalize_durations(rt: Runtime, bounds: Sequence[float]) -> Durations:
    """Stop to finish (`finished_at - stopped_at`) of every finished recording, counted at most each
    bound."""
    seconds = _seconds_between(rt, Recording.stopped_at, Recording.finished_at)
    done = and_(Recording.finished_at.is_not(None), Recording.stopped_at.is_not(None))
    columns = [func.count(), func.coalesce(func.sum(seconds), 0.0)]
    columns += [func.coalesce(func.sum(case((seconds <= b, 1), else_=0)), 0) for b in bounds]
    with rt.db.read() as s:
        row = s.execute(select(*columns).where(done)).one()
    return Durations(int(row[0]), float(row[1]), tuple(int(n) for n in row[2:]))


def queue_jobs(rt: Runtime) -> dict[str, dict[str, int]]:
    """RQ jobs per queue and status: `queued` (the queue depth), `started`, `scheduled`, `failed`."""
    return rt.jobs.queue_jobs()


def queue_depths(rt: Runtime) -> dict[str, int]:
    """Jobs waiting per queue."""
    jobs = queue_jobs(rt)
    return {name: jobs[name]["queued"] for name in QUEUE_NAMES}


def workers(rt: Runtime) -> int:
    """RQ workers registered in Redis (a registration expires when its worker stops beating)."""
    return len(rt.jobs.workers())


def _by_state(rt: Runtime, states: Sequence[str], project_id: str | None) -> dict[str, int]:
    """Recordings per state among `states`, each present (0 when none)."""
    with rt.db.read() as s:
        rows = {
            str(state): int(n)
            for state, n in s.execute(
                select(Recording.state, func.count())
                .where(Recording.state.in_(states), *_scope(project_id))
                .group_by(Recording.state)
            )
        }
    return {state: rows.get(state, 0) for state in states}


def _scope(project_id: str | None) -> list[ColumnElement[bool]]:
    return [Recording.project_id == project_id] if project_id else []


def _seconds_between(rt: Runtime, start, end):
    """`end - start` in seconds as SQL, on SQLite and PostgreSQL."""
    if rt.db.engine.dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return cast(func.extract("epoch", end - start), Float)
