"""The recording state machine: every transition declared once, as data, and applied one way.

    started --stop--> stopped --finish--> finished
       |                 |
       +------fail-------+--> failed
    finished --reopen--> started     (a web replay that went idle takes events again; unclaimed only)
    started | stopped | finished | failed --delete--> deleted   (claimed first, objects gone)
    finished | failed --purge--> deleted                         (retention: also not persisted)

A transition is one conditional `UPDATE ... WHERE id IN (...) AND state IN (sources) AND <guard>`
returning the ids it moved, so when two workers race exactly one moves a recording, and nothing a
guard forbids (a legal hold, `persist`) can be set between a check and the act: the check is the act.
Its side effects (freeing the room, dropping interaction events, the `recording_update` webhook
event) run in the same transaction, for the moved ids only.

Deleting removes objects before the row is tombstoned, so a deletion first *claims* the recording
(`condemned_at`, under the same guard); a claimed recording's flags cannot change (see
`retention.set_flags`), and `delete`/`purge` only tombstone claimed rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import Session

from app.models import (
    PlaylistItem,
    Recording,
    RecordingMeta,
    RecordingState,
    RecordingView,
    ReplayBlock,
    ReplayStream,
    ReplaySummary,
    Room,
    SessionEvent,
    SharingConfiguration,
)
from app.runtime import Runtime
from app.services.outbox import outbox

S = RecordingState


@dataclass(frozen=True)
class Transition:
    """`sources -> target` when `guard` holds; what else changes with it in the same transaction."""

    name: str
    sources: tuple[RecordingState, ...]
    target: RecordingState
    guard: tuple[ColumnElement[bool], ...] = ()
    releases_room: bool = False  # the room may start its next recording
    forgets_events: bool = False  # events, replay blocks, metadata, views, links go with a deleted one

    def where(self, recording_ids: Iterable[str]) -> list[ColumnElement[bool]]:
        return [Recording.id.in_(list(recording_ids)), Recording.state.in_(self.sources), *self.guard]


_CLAIMED = Recording.condemned_at.is_not(None)
_NOT_HELD = Recording.legal_hold.is_(False)
_EXPIRABLE = (_NOT_HELD, Recording.persist.is_(False))

STOP = Transition("stop", (S.STARTED,), S.STOPPED, releases_room=True)
FINISH = Transition("finish", (S.STOPPED,), S.FINISHED)
FAIL = Transition("fail", (S.STARTED, S.STOPPED), S.FAILED, releases_room=True)
DELETE = Transition(
    "delete",
    (S.STARTED, S.STOPPED, S.FINISHED, S.FAILED),
    S.DELETED,
    guard=(_CLAIMED, _NOT_HELD),
    releases_room=True,
    forgets_events=True,
)
PURGE = Transition(
    "purge", (S.FINISHED, S.FAILED), S.DELETED, guard=(_CLAIMED, *_EXPIRABLE), forgets_events=True
)
# Only the web replay code reopens, and only recordings of events (no media to assemble again).
REOPEN = Transition("reopen", (S.FINISHED,), S.STARTED, guard=(Recording.condemned_at.is_(None),))
TRANSITIONS = (STOP, FINISH, FAIL, DELETE, PURGE, REOPEN)
# What a deleted recording's rows of events, views, playlist entries and sharing links leave behind: nothing.
_EVENT_TABLES = (
    SessionEvent,
    ReplayBlock,
    ReplayStream,
    RecordingMeta,
    ReplaySummary,
    RecordingView,
    PlaylistItem,
    SharingConfiguration,
)

# Claims taken before objects are removed: the guard of the deletion that follows, minus the claim.
CLAIM_DELETE = (DELETE.sources, (_NOT_HELD,))
CLAIM_PURGE = (PURGE.sources, (*_EXPIRABLE, Recording.condemned_at.is_(None)))


def move(rt: Runtime, transition: Transition, recording_id: str, **values: Any) -> bool:
    """Apply `transition` to one recording in its own transaction; True when this call moved it."""
    with rt.db.transaction() as s:
        return bool(apply(rt, s, transition, [recording_id], **values))


def apply(
    rt: Runtime, s: Session, transition: Transition, recording_ids: list[str], **values: Any
) -> list[str]:
    """Apply `transition` in `s`'s transaction with `values` set too; return the ids it moved."""
    if not recording_ids:
        return []
    moved = list(
        s.scalars(
            update(Recording)
            .where(*transition.where(recording_ids))
            .values(state=transition.target, **values)
            .returning(Recording.id)
            .execution_options(synchronize_session=False)
        )
    )
    if moved and transition.releases_room:
        free_rooms(s, moved)
    if moved and transition.forgets_events:
        for table in _EVENT_TABLES:
            s.execute(delete(table).where(table.recording_id.in_(moved)))
    for recording_id in moved:
        outbox.recording_changed(rt, s, recording_id)
    return moved


def free_rooms(s: Session, recording_ids: list[str]) -> None:
    """The rooms recording these may start their next recording. Each room is found by its key, through
    its recording's `room_id`: no index holds `active_recording_id` (one would make every claim and
    release of a room rewrite all its index entries), and a room table only grows."""
    s.execute(
        update(Room)
        .where(
            Room.id.in_(select(Recording.room_id).where(Recording.id.in_(recording_ids))),
            Room.active_recording_id.in_(recording_ids),
        )
        .values(active_recording_id=None)
    )


@dataclass(frozen=True)
class Claim:
    """The recordings one deletion claimed, stamped `at` so that only this deletion gives them back."""

    ids: list[str]
    at: datetime


def claim(
    rt: Runtime, recording_ids: list[str], rule: tuple[tuple[RecordingState, ...], tuple[Any, ...]]
) -> Claim:
    """Claim recordings for deletion under `rule` (CLAIM_DELETE or CLAIM_PURGE).

    The API's delete takes over a claim a deletion that died left behind; the purge never takes one."""
    sources, guard = rule
    stamp = rt.now()
    if not recording_ids:
        return Claim([], stamp)
    with rt.db.transaction() as s:
        claimed = s.scalars(
            update(Recording)
            .where(Recording.id.in_(recording_ids), Recording.state.in_(sources), *guard)
            .values(condemned_at=stamp)
            .returning(Recording.id)
            .execution_options(synchronize_session=False)
        )
        return Claim(list(claimed), stamp)


def release(rt: Runtime, claim: Claim) -> None:
    """Give a claim back (its objects could not be deleted: storage is down), unless another deletion
    has claimed those recordings since."""
    if claim.ids:
        with rt.db.transaction() as s:
            s.execute(
                update(Recording)
                .where(
                    Recording.id.in_(claim.ids),
                    Recording.condemned_at == claim.at,
                    Recording.state != S.DELETED,
                )
                .values(condemned_at=None)
            )
