"""Download links: every link handed out is valid at least `link_ttl_seconds` (one hour) from then,
and logged in the `link_issuances` audit before this process first hands it out.

Nothing stores a link. `GET /recordings/{id}`, the list endpoints and the download redirect hand out
links signed at the start of the current reuse window (`link_reuse_seconds`, a minute) and valid the
TTL plus the window from then: a read repeated within the window gets the same link (a browser or CDN
caches the media under it, every api process signs it alike), and a process logs it once, at its first
hand-out, not at every read. Every webhook attempt signs a new one. So no job has to re-issue links
before they expire. With a window of 0 every read signs and logs a new link, valid the TTL.

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
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


@dataclass(frozen=True)
class Signing:
    """When links are signed and for how long: `at` (UTC) is the links' X-Amz-Date, `ttl` seconds."""

    at: datetime
    ttl: int

    @property
    def expires(self) -> datetime:
        return self.at + timedelta(seconds=self.ttl)


def signing_now(rt: Runtime) -> Signing:
    """A link signed now, valid the TTL: what every webhook attempt and unlogged link gets."""
    return Signing(rt.now(), rt.config.link_ttl_seconds)


def reuse_window(rt: Runtime) -> Signing:
    """How links handed out now are signed: at the start of the current reuse window, valid the TTL
    plus the window, so each is valid at least the TTL from any moment in the window. With a window of
    0, now and the TTL."""
    reuse = rt.config.link_reuse_seconds
    if not reuse:
        return signing_now(rt)
    epoch = int(rt.now().timestamp())
    return Signing(datetime.fromtimestamp(epoch - epoch % reuse, UTC), rt.config.link_ttl_seconds + reuse)


_HELD_MAX = 100_000  # links held per window (see `handed_out`)


class _Audit:
    """This process's side of one job queue's audit stream: the group commit appending entries to it,
    and the links handed out in the current reuse window (logged there already), keyed by what they
    were handed out for (see `handed_out`). A new window starts empty, so it holds one window's links
    at most."""

    def __init__(self, jobs: JobQueue):
        self.appender: GroupCommit[Row] = GroupCommit(_stream_writer(weakref.ref(jobs)))
        self.window: datetime | None = None
        self.held: dict[Hashable, RecordingLinks] = {}

    def held_in(self, window: Signing) -> dict[Hashable, RecordingLinks]:
        """The links handed out in `window` so far."""
        if self.window != window.at:
            self.window, self.held = window.at, {}
        return self.held


_audits: weakref.WeakKeyDictionary[JobQueue, _Audit] = weakref.WeakKeyDictionary()
_audits_lock = threading.Lock()


def _audit(jobs: JobQueue) -> _Audit:
    found = _audits.get(jobs)
    if found is None:
        with _audits_lock:
            found = _audits.get(jobs)
            if found is None:
                found = _audits[jobs] = _Audit(jobs)
    return found


def handed_out(
    rt: Runtime, found: list[Recording], purpose: str, api_key_id: str | None
) -> list[RecordingLinks]:
    """The links of `found` as handed out now for `purpose` to `api_key_id` (None: no key), signed as
    `reuse_window` says. A link this process has not handed out yet in this window, for this purpose
    and key, is logged first (`record`); once the log holds it, a repeated read hands it out again
    with no signing and no write."""
    answers, new, window, held = _handing_out(rt, found, purpose, api_key_id)
    if new:
        record(rt, [rec for _, rec, _ in new], purpose, api_key_id, expires=window.expires)
        if held is not None and len(held) < _HELD_MAX:
            held.update((what, links) for what, _, links in new)
    return answers


def handed_out_again(
    rt: Runtime, found: list[Recording], purpose: str, api_key_id: str | None
) -> list[RecordingLinks] | None:
    """`handed_out` when handing the links out writes nothing (none of them is a download link new to
    the log: a recording not finished, or one handed out already in this window), else None (call
    `handed_out`). Never blocks: fit for the event loop."""
    answers, new, _, _ = _handing_out(rt, found, purpose, api_key_id)
    return None if new else answers


_New = list[tuple[Hashable, Recording, RecordingLinks]]


def _handing_out(
    rt: Runtime, found: list[Recording], purpose: str, api_key_id: str | None
) -> tuple[list[RecordingLinks], _New, Signing, dict[Hashable, RecordingLinks] | None]:
    """The links of `found` for `handed_out`, those of them new to the log, the window they are signed
    for and this process's links held for it (None without reuse)."""
    window = reuse_window(rt)
    held = _audit(rt.jobs).held_in(window) if rt.config.link_reuse_seconds else None
    answers: list[RecordingLinks] = []
    new: _New = []
    for rec in found:
        what = (rec.id, rec.state, rec.object_key, rec.poster_key, purpose, api_key_id)
        links = held.get(what) if held is not None else None
        if links is None:
            links = signed(rt, rec, window)
            if links.download:
                new.append((what, rec, links))
        answers.append(links)
    return answers, new, window, held


def record(
    rt: Runtime,
    issued: Iterable[Recording],
    purpose: str,
    api_key_id: str | None,
    s: Session | None = None,
    expires: datetime | None = None,
) -> None:
    """Log one issuance per recording in `issued`, expiring at `expires` (default: the TTL from now):
    in `s`'s transaction when given, else appended to the audit stream (SQL at once when Redis refuses
    it)."""
    now = rt.now()
    found = [(r.id, r.project_id) for r in issued]
    if not found:
        return
    expires = expires or now + timedelta(seconds=rt.config.link_ttl_seconds)
    if s is not None:
        s.execute(insert(LinkIssuance), _rows(found, api_key_id, purpose, now, expires))
        return
    entry = {"k": api_key_id or "", "p": purpose, "i": now.isoformat(), "e": expires.isoformat(), "r": found}
    try:
        _audit(rt.jobs).appender.submit(entry)
    except QueueError as e:
        log.warning("link audit: %s; writing %d issuances to SQL directly", e, len(found))
        with rt.db.transaction() as tx:
            tx.execute(insert(LinkIssuance), _rows(found, api_key_id, purpose, now, expires))


def _stream_writer(jobs: weakref.ref[JobQueue]) -> Callable[[list[Row]], None]:
    """Appends a batch as one stream entry; holds `jobs` weakly, as the table of audits does."""

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
    """The download link of a finished recording as `handed_out` gives it, logged; Conflict when it is
    not finished yet."""
    url = handed_out(rt, [recording], DOWNLOAD, api_key_id)[0].download
    if url is None:
        raise Conflict(f"the recording is {recording.state}; its download exists once it is finished")
    return url


def download_link(rt: Runtime, recording: Recording, signing: Signing | None = None) -> str | None:
    """A presigned link signed as `signing` says (default: now, valid the TTL), or None until
    finished; unlogged."""
    if recording.state != RecordingState.FINISHED or not recording.object_key:
        return None
    signing = signing or signing_now(rt)
    return rt.storage.presign_get(
        recording.object_key, signing.ttl, filename=f"{recording.id}.webm", issued_at=signing.at
    )


def poster_link(rt: Runtime, recording: Recording, signing: Signing | None = None) -> str | None:
    """A presigned link to the poster JPEG (default: signed now, valid the TTL), or None until
    finished; unlogged."""
    if recording.state != RecordingState.FINISHED or not recording.poster_key:
        return None
    signing = signing or signing_now(rt)
    return rt.storage.presign_get(recording.poster_key, signing.ttl, issued_at=signing.at)


def signed(rt: Runtime, recording: Recording, signing: Signing) -> RecordingLinks:
    """The recording's download and poster links signed as `signing` says (None until finished)."""
    return RecordingLinks(download_link(rt, recording, signing), poster_link(rt, recording, signing))


def fresh(rt: Runtime, recording: Recording) -> RecordingLinks:
    """The recording's download and poster links signed now (None until finished); the caller logs them
    with `record` when it hands them out."""
    return signed(rt, recording, signing_now(rt))


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
