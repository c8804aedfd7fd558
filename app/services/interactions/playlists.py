"""Playlists: named collections of a project's web replays (PostHog's session recording playlists).

A playlist is addressed by its `short_id` (8 URL-safe characters). `type` is "collection" (recordings
added one by one) or "filters" (a saved search, kept as given; it holds no recordings). Deleting is
soft, as PostHog's: `deleted` playlists answer NotFound but keep their rows until the project goes.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from app.db import affected
from app.errors import NotFound, Unprocessable
from app.models import Playlist, PlaylistItem, Recording, RecordingState, RecordingView
from app.runtime import Runtime

TYPES = ("collection", "filters")
EDITABLE = ("name", "derived_name", "description", "pinned", "deleted", "filters")
_ALPHABET = string.ascii_letters + string.digits
_NOT_FOUND = "Not found."


@dataclass(frozen=True)
class Counts:
    """How many live recordings a playlist holds, and how many of those the asking key has read."""

    count: int
    watched: int


def new_short_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(8))


def create(rt: Runtime, project_id: str, key_id: str | None, fields: dict[str, Any]) -> Playlist:
    """A new playlist; `fields` hold `type` ("collection" or "filters") and any of EDITABLE."""
    if fields.get("type") not in TYPES:
        raise Unprocessable(
            "Must provide a valid playlist type: either filters or collection",
            errors={"json": {"type": ["must be filters or collection"]}},
        )
    for _ in range(3):
        short_id = new_short_id()
        try:
            return _insert(rt, project_id, key_id, fields, short_id)
        except IntegrityError:  # a short_id taken already (one in 62^8) draws again; anything else is raised
            if not _short_id_taken(rt, short_id):
                raise
    raise RuntimeError("no free short_id after 3 draws")


def _insert(
    rt: Runtime, project_id: str, key_id: str | None, fields: dict[str, Any], short_id: str
) -> Playlist:
    """Store a new playlist under `short_id`; IntegrityError when that is taken."""
    now = rt.now()
    with rt.db.transaction() as s:
        playlist = Playlist(
            project_id=project_id,
            short_id=short_id,
            type=fields["type"],
            name=fields.get("name"),
            derived_name=fields.get("derived_name"),
            description=fields.get("description") or "",
            pinned=bool(fields.get("pinned", False)),
            deleted=bool(fields.get("deleted", False)),
            filters=fields.get("filters") or {},
            created_by=key_id,
            created_at=now,
            last_modified_at=now,
        )
        s.add(playlist)
        s.flush()
        s.expunge(playlist)
    return playlist


def _short_id_taken(rt: Runtime, short_id: str) -> bool:
    """Whether some playlist (of any project) has `short_id`."""
    with rt.db.read() as s:
        return s.scalar(select(Playlist.id).where(Playlist.short_id == short_id)) is not None


def get(rt: Runtime, project_id: str, short_id: str, *, include_deleted: bool = False) -> Playlist:
    """The project's playlist; NotFound for unknown, foreign or (unless asked) deleted ones."""
    with rt.db.read() as s:
        playlist = s.scalar(
            select(Playlist).where(Playlist.project_id == project_id, Playlist.short_id == short_id)
        )
    if playlist is None or (playlist.deleted and not include_deleted):
        raise NotFound(_NOT_FOUND)
    return playlist


def page(
    rt: Runtime,
    project_id: str,
    limit: int,
    offset: int,
    *,
    search: str | None = None,
    pinned: bool | None = None,
    kind: str | None = None,
    recording_id: str | None = None,
) -> tuple[int, list[Playlist]]:
    """(how many match, one page of them): the project's playlists, pinned first, newest first."""
    query = select(Playlist).where(Playlist.project_id == project_id, Playlist.deleted.is_(False))
    if search:  # a substring, case-insensitive: % and _ in it are themselves, not wildcards
        needle = search.lower()
        query = query.where(
            func.lower(func.coalesce(Playlist.name, "")).contains(needle, autoescape=True)
            | func.lower(func.coalesce(Playlist.derived_name, "")).contains(needle, autoescape=True)
        )
    if pinned is not None:
        query = query.where(Playlist.pinned.is_(pinned))
    if kind is not None:
        query = query.where(Playlist.type == kind)
    if recording_id is not None:
        query = query.where(
            Playlist.id.in_(select(PlaylistItem.playlist_id).where(PlaylistItem.recording_id == recording_id))
        )
    with rt.db.read() as s:
        count = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = list(
            s.scalars(
                query.order_by(Playlist.pinned.desc(), Playlist.last_modified_at.desc(), Playlist.id.desc())
                .limit(limit)
                .offset(offset)
            )
        )
    return int(count), rows


def update_fields(rt: Runtime, project_id: str, short_id: str, fields: dict[str, Any]) -> Playlist:
    """Change any of EDITABLE (`deleted: false` restores a deleted playlist, as in PostHog)."""
    playlist = get(rt, project_id, short_id, include_deleted=True)
    if playlist.deleted and fields.get("deleted") is not False:
        raise NotFound(_NOT_FOUND)
    values = {name: fields[name] for name in EDITABLE if name in fields}
    if "description" in values and values["description"] is None:
        values["description"] = ""
    if "filters" in values and values["filters"] is None:
        values["filters"] = {}
    with rt.db.transaction() as s:
        affected(
            s, update(Playlist).where(Playlist.id == playlist.id).values(**values, last_modified_at=rt.now())
        )
    return get(rt, project_id, short_id, include_deleted=True)


def soft_delete(rt: Runtime, project_id: str, short_id: str) -> None:
    update_fields(rt, project_id, short_id, {"deleted": True})


def add(rt: Runtime, project_id: str, short_id: str, recording_id: str) -> None:
    """Pin a recording of the project to a collection (once; adding it again changes nothing)."""
    playlist = _collection(rt, project_id, short_id)
    with rt.db.read() as s:
        if s.get(PlaylistItem, (playlist.id, recording_id)) is not None:
            return
    try:
        with rt.db.transaction() as s:
            s.add(PlaylistItem(playlist_id=playlist.id, recording_id=recording_id, created_at=rt.now()))
            s.execute(update(Playlist).where(Playlist.id == playlist.id).values(last_modified_at=rt.now()))
    except IntegrityError:
        pass  # added by a concurrent call


def remove(rt: Runtime, project_id: str, short_id: str, recording_id: str) -> None:
    """Unpin a recording; NotFound when the playlist does not hold it."""
    playlist = get(rt, project_id, short_id)
    with rt.db.transaction() as s:
        gone = affected(
            s,
            delete(PlaylistItem).where(
                PlaylistItem.playlist_id == playlist.id, PlaylistItem.recording_id == recording_id
            ),
        )
        if gone:
            s.execute(update(Playlist).where(Playlist.id == playlist.id).values(last_modified_at=rt.now()))
    if not gone:
        raise NotFound("the playlist does not hold this recording")


def recording_ids(rt: Runtime, playlist: Playlist, limit: int, offset: int) -> list[str]:
    """Internal ids of the live recordings a playlist holds, most recently added first."""
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(PlaylistItem.recording_id)
                .join(Recording, Recording.id == PlaylistItem.recording_id)
                .where(PlaylistItem.playlist_id == playlist.id, Recording.state != RecordingState.DELETED)
                .order_by(PlaylistItem.created_at.desc(), PlaylistItem.recording_id)
                .limit(limit)
                .offset(offset)
            )
        )


def counts(rt: Runtime, playlist_ids: list[int], key_id: str | None) -> dict[int, Counts]:
    """Per playlist: its live recordings, and how many of them `key_id` has read."""
    if not playlist_ids:
        return {}
    watched = func.count(RecordingView.api_key_id)
    with rt.db.read() as s:
        rows = s.execute(
            select(PlaylistItem.playlist_id, func.count(PlaylistItem.recording_id), watched)
            .join(Recording, Recording.id == PlaylistItem.recording_id)
            .outerjoin(
                RecordingView,
                (RecordingView.recording_id == PlaylistItem.recording_id)
                & (RecordingView.api_key_id == key_id),
            )
            .where(PlaylistItem.playlist_id.in_(playlist_ids), Recording.state != RecordingState.DELETED)
            .group_by(PlaylistItem.playlist_id)
        ).all()
    found = {pid: Counts(int(n), int(w)) for pid, n, w in rows}
    return {pid: found.get(pid, Counts(0, 0)) for pid in playlist_ids}


def _collection(rt: Runtime, project_id: str, short_id: str) -> Playlist:
    playlist = get(rt, project_id, short_id)
    if playlist.type != "collection":
        raise Unprocessable("Cannot add recordings to a playlist that is type 'filters'.")
    return playlist
