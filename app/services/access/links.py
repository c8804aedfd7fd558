"""Download links: every link handed out is signed afresh, valid `link_ttl_seconds` (one hour), and
logged in the `link_issuances` audit.

Nothing stores a link: `GET /recordings/{id}`, the list endpoints, the download redirect and every
webhook attempt sign a new one, so no job has to re-issue links before they expire.

A read writes nothing to SQL: `record` appends the answer's issuances to a Redis stream, and `drain`
(a job the scheduler enqueues every few seconds, and the audit listing before it reads) moves them into
SQL, one multi-row INSERT per batch, settling the entries only after the commit. Answers signed at the
same time in one process share an XADD (`app.batching.GroupCommit`: each still returns only once its
own rows are in the stream), so under load the audit costs a fraction of a round trip per answer. A
drainer that dies mid-batch leaves its entries pending in the consumer group; the next drain reclaims
them and skips the rows that did commit. When Redis refuses the append, the rows are written to SQL
at once instead: an outage slows reads down, it loses nothing. An acknowledged entry is as durable as
a queued job: it survives a crash of any meetrec process and a restart of Redis (its append-only
file), and a crash of Redis's host can take the last second of them (`appendfsync everysec`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import weakref
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.batching import GroupCommit
from app.errors import Conflict, NotFound, QueueError
from app.models import ApiKey, LinkIssuance, Recording, RecordingState
from app.queueing import JobQueue, StreamEntry
from app.runtime import Runtime
from app.wire import RecordingLinks

log = logging.getLogger(__name__)

API, WEBHOOK, DOWNLOAD = "api", "webhook", "download"
PAGE_SIZE = 50
STREAM, GROUP = "meetrec:link-issuances", "link-audit"
DRAIN_BATCH = 1000  # entries per INSERT (an entry holds one answer's rows)
ROWS_PER_INSERT = 500  # 3,000 bound values: within SQLite's and PostgreSQL's limits per statement
DRAIN_MAX_BATCHES = 50  # per call, so a drain job stays short whatever the backlog
# An entry taken this long ago and still unsettled belongs to a drainer that died.
RECLAIM_IDLE_MS = 30_000

Row = dict[str, Any]


def record(
    rt: Runtime, issued: Iterable[Recording], purpose: str, api_key_id: str | None, s: Session | None = None
) -> None:
    """Log one issuance per recording in `issued`: in `s`'s transaction when given, else appended to
    the audit stream (SQL at once when Redis refuses it)."""
    now = rt.now()
    found = [(r.id, r.project_id) for r in issued]
    if not found:
        return
    expires = now + timedelta(seconds=rt.config.link_ttl_seconds)
    if s is not None:
        s.execute(insert(LinkIssuance), _rows(found, api_key_id, purpose, now, expires))
        return
    entry = {"k": api_key_id or "", "p": purpose, "i": now.isoformat(), "e": expires.isoformat(), "r": found}
    try:
        _appender(rt.jobs).submit(entry)
    except QueueError as e:
        log.warning("link audit: %s; writing %d issuances to SQL directly", e, len(found))
        with rt.db.transaction() as tx:
            tx.execute(insert(LinkIssuance), _rows(found, api_key_id, purpose, now, expires))


_appenders: weakref.WeakKeyDictionary[JobQueue, GroupCommit[Row]] = weakref.WeakKeyDictionary()
_appenders_lock = threading.Lock()


def _appender(jobs: JobQueue) -> GroupCommit[Row]:
    """This process's group commit of audit entries to `jobs`' Redis: one stream entry per batch."""
    found = _appenders.get(jobs)
    if found is None:
        with _appenders_lock:
            found = _appenders.get(jobs)
            if found is None:
                found = _appenders[jobs] = GroupCommit(_stream_writer(weakref.ref(jobs)))
    return found


def _stream_writer(jobs: weakref.ref[JobQueue]) -> Callable[[list[Row]], None]:
    """Appends a batch as one entry; holds `jobs` weakly, as the table of appenders does."""

    def write(entries: list[Row]) -> None:
        queue = jobs()
        if queue is None:
            raise QueueError("the job queue is gone")
        queue.append(STREAM, {"v": json.dumps(entries)})

    return write


def drain(
    rt: Runtime,
    consumer: str | None = None,
    batch: int = DRAIN_BATCH,
    reclaim_idle_ms: int = RECLAIM_IDLE_MS,
) -> int:
    """Move the audit stream into SQL, one multi-row INSERT per `batch` entries, each entry settled
    (acknowledged and deleted) only after its rows committed; return the rows written. QueueError when
    Redis is down (nothing is lost: the entries wait, or `record` wrote to SQL itself)."""
    consumer = consumer or f"{socket.gethostname()}:{os.getpid()}"
    written = 0
    for _ in range(DRAIN_MAX_BATCHES):
        entries = rt.jobs.take(STREAM, GROUP, consumer, batch, reclaim_idle_ms)
        if not entries:
            break
        written += _write(rt, entries)
        rt.jobs.settle(STREAM, GROUP, [e.id for e in entries])
        if len(entries) < batch:
            break
    return written


def _rows(
    found: Iterable[tuple[str, str]],
    api_key_id: str | None,
    purpose: str,
    issued: datetime,
    expires: datetime,
) -> list[Row]:
    return [
        {
            "recording_id": recording_id,
            "project_id": project_id,
            "api_key_id": api_key_id,
            "purpose": purpose,
            "issued_at": issued,
            "expires_at": expires,
        }
        for recording_id, project_id in found
    ]


def _decoded(entry: StreamEntry) -> list[Row]:
    """The rows of a stream entry: a batch of answers (a JSON list), or one answer as entries held
    before batching."""
    v = json.loads(entry.fields["v"])
    return [row for answer in (v if isinstance(v, list) else [v]) for row in _answer_rows(answer)]


def _answer_rows(v: Row) -> list[Row]:
    issued, expires = datetime.fromisoformat(v["i"]), datetime.fromisoformat(v["e"])
    return _rows(v["r"], v["k"] or None, v["p"], issued, expires)


def _write(rt: Runtime, entries: list[StreamEntry]) -> int:
    """Insert the entries' rows in one transaction, a multi-row INSERT per `ROWS_PER_INSERT`; rows of
    reclaimed entries that already committed (their drainer died between its commit and settling) are
    left out."""
    fresh = [row for e in entries if not e.reclaimed for row in _decoded(e)]
    reclaimed = [row for e in entries if e.reclaimed for row in _decoded(e)]
    try:
        with rt.db.transaction() as s:
            return _insert(s, fresh + _not_written(s, reclaimed))
    except IntegrityError:  # a recording or key gone since the read: keep what still can be kept
        with rt.db.transaction() as s:
            return _insert(s, _still_valid(s, fresh + _not_written(s, reclaimed)))


def _insert(s: Session, rows: list[Row]) -> int:
    for at in range(0, len(rows), ROWS_PER_INSERT):
        s.execute(insert(LinkIssuance).values(rows[at : at + ROWS_PER_INSERT]))
    return len(rows)


def _key(row: Row) -> tuple[Any, ...]:
    return (row["recording_id"], row["api_key_id"], row["purpose"], row["issued_at"])


def _not_written(s: Session, rows: list[Row]) -> list[Row]:
    if not rows:
        return []
    done = {
        tuple(r)
        for r in s.execute(
            select(
                LinkIssuance.recording_id,
                LinkIssuance.api_key_id,
                LinkIssuance.purpose,
                LinkIssuance.issued_at,
            ).where(
                tuple_(LinkIssuance.recording_id, LinkIssuance.issued_at).in_(
                    list({(r["recording_id"], r["issued_at"]) for r in rows})
                )
            )
        )
    }
    return [r for r in rows if _key(r) not in done]


def _still_valid(s: Session, rows: list[Row]) -> list[Row]:
    """The rows whose recording still exists, with the key unset where the key is gone (as its
    foreign key's ON DELETE SET NULL would have done)."""
    recordings = set(
        s.scalars(select(Recording.id).where(Recording.id.in_({r["recording_id"] for r in rows})))
    )
    keys = set(s.scalars(select(ApiKey.id).where(ApiKey.id.in_({r["api_key_id"] for r in rows}))))
    return [
        {**r, "api_key_id": r["api_key_id"] if r["api_key_id"] in keys else None}
        for r in rows
        if r["recording_id"] in recordings
    ]


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
    """A recording's link issuances, newest first, `PAGE_SIZE` a page, the audit stream drained first
    (with Redis down, what SQL holds). Deleted recordings keep theirs (an audit outlives the media);
    404 for unknown or foreign ids."""
    try:
        drain(rt)
    except QueueError as e:
        log.warning("link audit: not drained before listing (%s)", e)
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
