"""Download links: every link handed out is signed afresh, valid `link_ttl_seconds` (one hour), and
written to the `link_issuances` audit log in one INSERT per answer (however many recordings it lists).

Nothing stores a link: `GET /recordings/{id}`, the list endpoints, the download redirect and every
webhook attempt sign a new one, so no job has to re-issue links before they expire.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
from app.models import LinkIssuance, Recording, RecordingState
from app.runtime import Runtime
from app.wire import RecordingLinks

API, WEBHOOK, DOWNLOAD = "api", "webhook", "download"
PAGE_SIZE = 50


def record(
    rt: Runtime, issued: Iterable[Recording], purpose: str, api_key_id: str | None, s: Session | None = None
) -> None:
    """Log one issuance per recording in `issued` (in `s`'s transaction when given), in one INSERT."""
    now = rt.now()
    expires = now + timedelta(seconds=rt.config.link_ttl_seconds)
    rows = [
        {
            "recording_id": r.id,
            "project_id": r.project_id,
            "api_key_id": api_key_id,
            "purpose": purpose,
            "issued_at": now,
            "expires_at": expires,
        }
        for r in issued
    ]
    if not rows:
        return
    if s is not None:
        s.execute(insert(LinkIssuance), rows)
        return
    with rt.db.transaction() as tx:
        tx.execute(insert(LinkIssuance), rows)


def download(rt: Runtime, recording: Recording, api_key_id: str) -> str:
    """A fresh download link for a finished recording, logged; Conflict when it is not finished yet."""
    url = download_link(rt, recording)
    if url is None:
        raise Conflict(f"the recording is {recording.state}; its download exists once it is finished")
    record(rt, [recording], DOWNLOAD, api_key_id)
    return url


def download_link(rt: Runtime, recording: Recording) -> str | None:
    """A fresh presigned link valid for the configured TTL (one hour), or None until finished; unlogged."""
    if recording.state != RecordingState.FINISHED or not recording.object_key:
        return None
    return rt.storage.presign_get(
        recording.object_key, rt.config.link_ttl_seconds, filename=f"{recording.id}.webm"
    )


def poster_link(rt: Runtime, recording: Recording) -> str | None:
    """A fresh presigned link to the poster JPEG, or None until finished; unlogged."""
    if recording.state != RecordingState.FINISHED or not recording.poster_key:
        return None
    return rt.storage.presign_get(recording.poster_key, rt.config.link_ttl_seconds)


def fresh(rt: Runtime, recording: Recording) -> RecordingLinks:
    """The recording's download and poster links signed now (None until finished); the caller logs them
    with `record` when it hands them out."""
    return RecordingLinks(download_link(rt, recording), poster_link(rt, recording))


def screenshot_link(rt: Runtime, key: str | None) -> str | None:
    """A fresh one-hour link to an event's screenshot, or None without one (screenshots are not audited)."""
    return rt.storage.presign_get(key, rt.config.link_ttl_seconds) if key else None


def issuances(rt: Runtime, project_id: str, recording_id: str, page: int = 1) -> list[LinkIssuance]:
    """A recording's link issuances, newest first, `PAGE_SIZE` a page. Deleted recordings keep theirs
    (an audit outlives the media); 404 for unknown or foreign ids."""
    with rt.db.read() as s:
        owner = s.scalar(select(Recording.project_id).where(Recording.id == recording_id))
        if owner != project_id:
            raise NotFound("recording not found")
        return list(
            s.scalars(
                select(LinkIssuance)
                .where(LinkIssuance.recording_id == recording_id)
                .order_by(LinkIssuance.issued_at.desc(), LinkIssuance.id.desc())
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            )
        )
