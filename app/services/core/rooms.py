"""Rooms (meeting instances) and their participants."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import InTransaction, affected
from app.errors import Gone, NotFound
from app.models import Participant, Room
from app.runtime import Runtime
from app.services.core import rows
from app.services.core.sources import checked_source
from app.services.ids import hash_secret, new_id, new_secret
from app.services.outbox import outbox


@dataclass
class JoinRequest:
    """What `POST /rooms` carries, already validated."""

    user_name: str
    room_key: str | None = None
    room_name: str | None = None
    user_id: str | None = None
    avatar: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    media_source: str | None = None


@dataclass
class Membership:
    room: Room
    participant: Participant
    access_key: str


def join(rt: Runtime, project_id: str, req: JoinRequest) -> Membership:
    """Join the running meeting with `req.room_key`, starting it first when none runs.

    Joining a running meeting gives a new access key for the same meeting; options of a running
    meeting are not changed by later joins (as in Eyeson, the first join configures the room).
    A media source is checked (scheme and SSRF) before anything is written: 422 when refused.
    """
    source = req.options.get("media_source") or req.media_source
    if source:
        checked_source(rt.config, source)
    for _ in range(3):  # two first joins racing: the loser retries and joins the winner's meeting
        try:
            with rt.db.transaction() as s:
                room = _running_room(s, project_id, req.room_key) if req.room_key else None
                if room is None:
                    room = _start_room(rt, s, project_id, req)
                participant, access_key = _add_participant(rt, s, room, req)
            return Membership(room, participant, access_key)
        except IntegrityError:
            continue
    raise NotFound("could not join the room, try again")


def _running_room(s: Session, project_id: str, key: str) -> Room | None:
    return s.scalar(
        select(Room).where(Room.project_id == project_id, Room.key == key, Room.shutdown_at.is_(None))
    )


def _start_room(rt: Runtime, s: Session, project_id: str, req: JoinRequest) -> Room:
    room_id = new_id()
    options = dict(req.options)
    media_source = options.pop("media_source", None) or req.media_source
    room = Room(
        id=room_id,
        project_id=project_id,
        key=req.room_key or room_id,
        name=req.room_name or req.room_key or room_id,
        options=options,
        media_source=media_source,
        guest_token=secrets.token_urlsafe(18),
        created_at=rt.now(),
        started_at=rt.now(),
    )
    s.add(room)
    s.flush()
    outbox.room_changed(rt, s, room.id)
    return room


def _add_participant(rt: Runtime, s: Session, room: Room, req: JoinRequest) -> tuple[Participant, str]:
    access_key = new_secret("ak")
    participant = Participant(
        id=new_id(),
        room_id=room.id,
        room=room,
        access_key_hash=hash_secret(access_key),
        user_id=req.user_id,
        name=req.user_name,
        avatar=req.avatar,
        joined_at=rt.now(),
    )
    s.add(participant)
    s.flush()
    return participant, access_key


def by_access_key(rt: Runtime, access_key: str) -> Participant:
    """The participant holding `access_key` (404 unknown, 410 when its meeting shut down)."""
    with rt.db.read() as s:
        return holding(s, access_key)


def holding(s: InTransaction, access_key: str) -> Participant:
    """`by_access_key` in `s`'s transaction, its room loaded with it (one SELECT). Detached: read, do
    not change."""
    return held(rows.participant(s, hash_secret(access_key)))


def held(participant: Participant | None) -> Participant:
    """The participant an access key found: NotFound none, Gone when its meeting shut down."""
    if participant is None:
        raise NotFound("unknown access key")
    if participant.room.shutdown:
        raise Gone("the meeting has been shut down")
    return participant


def running_room(rt: Runtime, project_id: str, room_key: str) -> Room:
    """The running meeting with this room id in the project (404 when none runs)."""
    with rt.db.read() as s:
        room = _running_room(s, project_id, room_key)
    if room is None:
        raise NotFound("no running meeting with this room id")
    return room


def shutdown(rt: Runtime, project_id: str, room_key: str) -> Room:
    """Shut the running meeting down; the caller stops its recording. 404 when none runs."""
    room = running_room(rt, project_id, room_key)
    with rt.db.transaction() as s:
        changed = affected(
            s, update(Room).where(Room.id == room.id, Room.shutdown_at.is_(None)).values(shutdown_at=rt.now())
        )
        if changed:
            outbox.room_changed(rt, s, room.id)
    if not changed:
        raise NotFound("no running meeting with this room id")
    return room


def instances(rt: Runtime, project_id: str, room_key: str) -> list[Room]:
    """Every meeting instance that used this room id, newest first (404 when there is none)."""
    with rt.db.read() as s:
        rooms = list(
            s.scalars(
                select(Room)
                .where(Room.project_id == project_id, Room.key == room_key)
                .order_by(Room.started_at.desc())
            )
        )
    if not rooms:
        raise NotFound("unknown room id")
    return rooms
