"""Web replays: rrweb events streamed from a browser, stored as compressed blocks, read back in order.

A batch becomes one block: its events as JSON lines, zstd-compressed, put as one object under the
recording's prefix, then indexed in SQL (`ReplayBlock`) in the transaction that advances the replay's
counters (`ReplaySummary`). An acknowledged batch is therefore durable in both places; a crash between
the put and the commit leaves an unindexed object that nothing reads and the recording's deletion removes.
The same transaction keeps the replay's computed facts (`replay_facts`: clicks, console counts, active
time, pages, start URL) current, so the summary always describes exactly the indexed blocks.

The client names the recording (rrweb's recordingId): the first batch or metadata creates it with that
external id, a replay idle for MEETREC_REPLAY_IDLE_SECONDS is finished (`finish_idle`), and a later batch
with the same id reopens it. sequenceIds are assigned here, 1, 2, ... in the order batches are stored.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import zstandard
from sqlalchemy import bindparam, case, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import payloads
from app.db import affected
from app.errors import Conflict, NotFound, StorageError, StreamConflict, Unprocessable
from app.models import Ingest, Recording, RecordingState, ReplayBlock, ReplayStream, ReplaySummary
from app.runtime import Runtime
from app.services.core import lifecycle, recordings
from app.services.ids import new_id
from app.services.interactions import replay_facts
from app.services.interactions.replay_facts import BatchFacts

log = logging.getLogger(__name__)
S = RecordingState
BLOCK_CONTENT_TYPE = "application/zstd"
# Level 3 compresses realistic rrweb JSON ~8x at several hundred MB/s on one core.
_COMPRESSION_LEVEL = 3
# A batch racing the idle finish (or a deletion) is retried this often before it gives up.
_ATTEMPTS = 3
READ_PAGE = 200  # block index rows read per query while streaming
# The ids clients make (UUIDs, posthog-js session ids) fit; nothing that needs escaping in a URL or key.
EXTERNAL_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass(frozen=True)
class Stored:
    """Where a batch landed: its recording and the sequenceIds its events got (for a retried batch, the
    ones its first copy got)."""

    recording_id: str
    first_sequence: int
    last_sequence: int
    events: int


@dataclass(frozen=True)
class StreamPosition:
    """A WebSocket stream's frames stored once this batch is (`frames`), and before it (`previous`).

    The client resends only frames after what the server last said it holds; the batch is stored only
    if the stream still holds exactly `previous` frames, so a stale connection (one still flushing after
    its client reconnected elsewhere) can never store a frame twice: it gets StreamConflict instead.
    """

    stream_id: str
    frames: int
    previous: int


def block_key(recording_id: str) -> str:
    return f"{recordings.object_prefix(recording_id)}replay/{new_id()}.jsonl.zst"


def check_external_id(external_id: str) -> None:
    """Unprocessable unless `external_id` can name a recording: 1..64 of A-Z a-z 0-9 . _ : -"""
    if not EXTERNAL_ID.fullmatch(external_id):
        raise Unprocessable("a recording id is 1..64 characters of A-Z a-z 0-9 . _ : -")


def open_replay(rt: Runtime, project_id: str, external_id: str) -> str:
    """The id of the live recording `external_id` names in the project, ready for events: created with
    its summary when new, reopened when a replay had gone idle. Conflict when it cannot take events."""
    check_external_id(external_id)
    for _ in range(_ATTEMPTS):
        with rt.db.read() as s:
            row = s.execute(
                select(Recording.id, Recording.state, Recording.ingest, Recording.condemned_at).where(
                    Recording.project_id == project_id,
                    Recording.external_id == external_id,
                    Recording.state != S.DELETED,
                )
            ).one_or_none()
            has_summary = row is not None and bool(
                s.scalar(select(exists().where(ReplaySummary.recording_id == row.id)))
            )
        try:
            if row is None:
                return _create(rt, project_id, external_id)
            if row.condemned_at is not None:
                raise Conflict("the recording is being deleted")
            if row.state == S.STARTED:
                if not has_summary:  # a running recording of another kind gains a web replay
                    _add_summary(rt, project_id, row.id)
                return str(row.id)
            # Only a web replay reopens: a finished video or session stays finished.
            reopens = row.state == S.FINISHED and has_summary and row.ingest == Ingest.NONE
            if reopens and _reopen(rt, row.id):
                return str(row.id)
        except IntegrityError:  # another request created it (or its summary) first: look again
            continue
        if not reopens:
            raise Conflict(f"the recording has {row.state}; it takes no more events")
    raise Conflict("the recording changed state repeatedly; try again")


def _create(rt: Runtime, project_id: str, external_id: str) -> str:
    with rt.db.transaction() as s:
        recording = recordings.create(rt, s, project_id, None, external_id=external_id)
        s.flush()  # the recording row before its summary (foreign key)
        s.add(_summary(rt, project_id, recording.id))
    return recording.id


def _add_summary(rt: Runtime, project_id: str, recording_id: str) -> None:
    with rt.db.transaction() as s:
        s.add(_summary(rt, project_id, recording_id))


def _summary(rt: Runtime, project_id: str, recording_id: str) -> ReplaySummary:
    now = rt.now()
    return ReplaySummary(
        recording_id=recording_id,
        project_id=project_id,
        next_sequence=1,
        events=0,
        blocks=0,
        bytes=0,
        created_at=now,
        last_ingest_at=now,
        facts_complete=True,  # kept at ingest from the first batch on
    )


def _reopen(rt: Runtime, recording_id: str) -> bool:
    return lifecycle.move(
        rt,
        lifecycle.REOPEN,
        recording_id,
        stop_requested_at=None,
        stopped_at=None,
        finished_at=None,
        duration=None,
        stop_reason=None,
    )


def ingest(
    rt: Runtime,
    project_id: str,
    external_id: str,
    events: list[dict[str, Any]],
    *,
    batch_key: str | None = None,
    stream: StreamPosition | None = None,
) -> Stored:
    """Store `events` (validated by `payloads.parse_events`) durably as one block of the replay.

    `batch_key` (an Idempotency-Key) makes a retried batch a no-op. StorageError when object storage is
    down (nothing is acknowledged), Conflict when the recording is being deleted or has ended otherwise.
    """
    if not events:
        raise ValueError("an empty batch is refused by payloads.parse_events")
    slot = (rt.config.database_url, project_id, external_id)
    recording_id = _open_ids.get(slot) or open_replay(rt, project_id, external_id)
    if batch_key is not None:
        found = _stored_batch(rt, recording_id, batch_key)
        if found is not None:
            return found
    raw = payloads.encode_lines(events)
    block = _Block(raw, _compressor().compress(raw), events, replay_facts.facts_of(events))
    key = _put(rt, recording_id, block)
    for _ in range(_ATTEMPTS):
        stored = _index_or_discard(rt, recording_id, key, block, batch_key, stream)
        if stored is not None:
            _remember(slot, recording_id)
            return stored
        _open_ids.pop(slot, None)  # finished by the idle check, deleted, or a stale entry: look again
        again = _open_or_discard(rt, project_id, external_id, key)
        if again != recording_id:  # made anew after a deletion: the block belongs under its prefix
            _discard(rt, key)
            recording_id, key = again, _put(rt, again, block)
    _discard(rt, key)
    raise Conflict("the recording changed state repeatedly; try again")


# Recording ids by (database, project, external id) of the replays this process stored into last: a
# batch then needs no lookup first. A stale entry costs nothing but the lookup: the index transaction
# is guarded (`_takes_events`) and `ingest` looks again when it moves nothing.
_open_ids: dict[tuple[str, str, str], str] = {}
_OPEN_IDS_SIZE = 10_000
_local = threading.local()


def _remember(slot: tuple[str, str, str], recording_id: str) -> None:
    if len(_open_ids) >= _OPEN_IDS_SIZE:
        _open_ids.clear()
    _open_ids[slot] = recording_id


def _compressor() -> zstandard.ZstdCompressor:
    """This thread's compressor (one is not safe to share between threads; making one costs ~30 µs)."""
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=_COMPRESSION_LEVEL)
    return compressor


@dataclass(frozen=True)
class _Block:
    """A batch ready to store: its JSON lines, compressed, its facts and the range of its timestamps."""

    raw: bytes
    data: bytes
    events: list[dict[str, Any]]
    facts: BatchFacts

    @property
    def timestamps(self) -> tuple[int, int]:
        stamps = [int(e["timestamp"]) for e in self.events]
        return min(stamps), max(stamps)


def _put(rt: Runtime, recording_id: str, block: _Block) -> str:
    key = block_key(recording_id)
    rt.storage.put_bytes(key, block.data, BLOCK_CONTENT_TYPE)
    return key


def _index_or_discard(
    rt: Runtime,
    recording_id: str,
    key: str,
    block: _Block,
    batch_key: str | None,
    stream: StreamPosition | None,
) -> Stored | None:
    """`_index`, removing the uploaded object when the batch is refused or was stored by a twin."""
    try:
        return _index(rt, recording_id, key, block, batch_key, stream)
    except IntegrityError:  # the same batch_key or stream won a race: that copy is the stored one
        _discard(rt, key)
        found = _stored_batch(rt, recording_id, batch_key) if batch_key else None
        if found is None:
            raise StreamConflict("another connection stored this stream's frames first") from None
        return found
    except StreamConflict:
        _discard(rt, key)
        raise


def _open_or_discard(rt: Runtime, project_id: str, external_id: str, key: str) -> str:
    try:
        return open_replay(rt, project_id, external_id)
    except Conflict:
        _discard(rt, key)
        raise


def _index(
    rt: Runtime,
    recording_id: str,
    key: str,
    block: _Block,
    batch_key: str | None,
    stream: StreamPosition | None,
) -> Stored | None:
    """Index the uploaded block and advance the counters in one transaction; None when the recording
    is no longer started (finished by the idle check, or being deleted) and nothing was indexed."""
    n, (first_ts, last_ts), now = len(block.events), block.timestamps, rt.now()
    with rt.db.transaction() as s:
        row = s.execute(
            _ADVANCE,
            {
                "rid": recording_id,
                "n": n,
                "size": len(block.data),
                "first_ts": first_ts,
                "last_ts": last_ts,
                "at": now,
                **block.facts.counters(),
            },
        ).one_or_none()
        if row is None:
            return None
        _merge_facts(s, recording_id, block.facts)
        first = row.next_sequence - n
        s.execute(
            insert(ReplayBlock),
            {
                "recording_id": recording_id,
                "seq": row.blocks - 1,
                "first_sequence": first,
                "last_sequence": first + n - 1,
                "first_timestamp": first_ts,
                "last_timestamp": last_ts,
                "events": n,
                "bytes": len(block.data),
                "raw_bytes": len(block.raw),
                "object_key": key,
                "batch_key": batch_key,
                "created_at": now,
            },
        )
        if stream is not None:
            _advance_stream(rt, s, recording_id, stream)
    return Stored(recording_id, first, first + n - 1, n)


def _least(column: Any, value: Any) -> Any:
    """min(column, value) where a NULL column counts as absent (portable: no LEAST on SQLite)."""
    return case((column.is_(None), value), (column < value, column), else_=value)


def _greatest(column: Any, value: Any) -> Any:
    return case((column.is_(None), value), (column > value, column), else_=value)


def _takes_events(recording_id: Any) -> Any:
    return exists().where(
        Recording.id == recording_id, Recording.state == S.STARTED, Recording.condemned_at.is_(None)
    )


# Built once (the hottest statement of ingest): advance a started replay's counters by one block and
# return where its sequenceIds and block numbers now stand.
_ADVANCE = (
    update(ReplaySummary)
    .where(
        ReplaySummary.recording_id == bindparam("rid"),
        _takes_events(bindparam("rid")),
    )
    .values(
        next_sequence=ReplaySummary.next_sequence + bindparam("n"),
        events=ReplaySummary.events + bindparam("n"),
        blocks=ReplaySummary.blocks + 1,
        bytes=ReplaySummary.bytes + bindparam("size"),
        first_timestamp=_least(ReplaySummary.first_timestamp, bindparam("first_ts")),
        last_timestamp=_greatest(ReplaySummary.last_timestamp, bindparam("last_ts")),
        last_ingest_at=bindparam("at"),
        **{name: getattr(ReplaySummary, name) + bindparam(name) for name in replay_facts.COUNTERS},
    )
    .returning(ReplaySummary.next_sequence, ReplaySummary.blocks)
    .execution_options(synchronize_session=False)
)


def _merge_facts(s: Session, recording_id: str, facts: BatchFacts) -> None:
    """Merge the batch's activity, pages and first Meta into the summary row `_ADVANCE` just locked."""
    if not (facts.activity or facts.pages or facts.first_meta):
        return
    row = s.execute(
        select(
            ReplaySummary.active_ms, ReplaySummary.activity, ReplaySummary.pages, ReplaySummary.start_url_at
        ).where(ReplaySummary.recording_id == recording_id)
    ).one()
    changes = replay_facts.changes(facts, row.active_ms, row.activity, row.pages, row.start_url_at)
    if not changes:
        return
    s.execute(
        update(ReplaySummary)
        .where(ReplaySummary.recording_id == recording_id)
        .values(changes)
        .execution_options(synchronize_session=False)
    )


def _advance_stream(rt: Runtime, s: Session, recording_id: str, stream: StreamPosition) -> None:
    moved = affected(
        s,
        update(ReplayStream)
        .where(
            ReplayStream.recording_id == recording_id,
            ReplayStream.stream_id == stream.stream_id,
            ReplayStream.frames == stream.previous,
        )
        .values(frames=stream.frames, updated_at=rt.now()),
    )
    if moved:
        return
    if stream.previous != 0 or s.scalar(
        select(ReplayStream.frames).where(
            ReplayStream.recording_id == recording_id, ReplayStream.stream_id == stream.stream_id
        )
    ):
        raise StreamConflict("the stream moved on since this connection began; reconnect to resume")
    s.add(
        ReplayStream(
            recording_id=recording_id, stream_id=stream.stream_id, frames=stream.frames, updated_at=rt.now()
        )
    )


def _stored_batch(rt: Runtime, recording_id: str, batch_key: str) -> Stored | None:
    with rt.db.read() as s:
        block = s.scalar(
            select(ReplayBlock).where(
                ReplayBlock.recording_id == recording_id, ReplayBlock.batch_key == batch_key
            )
        )
    if block is None:
        return None
    return Stored(recording_id, block.first_sequence, block.last_sequence, block.events)


def _discard(rt: Runtime, key: str) -> None:
    """Remove a block object that was not indexed (best effort: deletion of the recording removes it)."""
    try:
        rt.storage.delete_keys([key])
    except StorageError as e:
        log.warning("unindexed replay block %s left behind: %s", key, e)


def ingest_frames(
    rt: Runtime, project_id: str, external_id: str, events: list[dict[str, Any]], stream: StreamPosition
) -> Stored | None:
    """Store `events` as frames `previous`+1..`frames` of the client's stream (a page's unload beacon
    carrying what its socket could not deliver): stored only if the stream holds exactly `previous`
    frames; None when it holds all of them already (a repeat: nothing is stored twice); StreamConflict
    when it holds some of them but not all, or fewer than `previous`."""
    held = stream_frames(rt, project_id, external_id, stream.stream_id)
    if held >= stream.frames:
        return None
    if held != stream.previous:
        raise _behind(held, stream)
    try:
        return ingest(rt, project_id, external_id, events, stream=stream)
    except StreamConflict:  # a socket (or a twin beacon) stored frames of the stream meanwhile
        held = stream_frames(rt, project_id, external_id, stream.stream_id)
        if held >= stream.frames:
            return None
        raise _behind(held, stream) from None


def _behind(held: int, stream: StreamPosition) -> StreamConflict:
    return StreamConflict(
        f"the stream holds {held} frames, these are frames {stream.previous + 1}..{stream.frames}; "
        "send the frames after what it holds",
        errors={"acked": held},
    )


def stream_frames(rt: Runtime, project_id: str, external_id: str, stream_id: str) -> int:
    """How many frames of the client's stream `stream_id` are stored (0 for a new stream or recording)."""
    with rt.db.read() as s:
        frames = s.scalar(
            select(ReplayStream.frames)
            .join(Recording, Recording.id == ReplayStream.recording_id)
            .where(
                Recording.project_id == project_id,
                Recording.external_id == external_id,
                Recording.state != S.DELETED,
                ReplayStream.stream_id == stream_id,
            )
        )
    return int(frames or 0)


def replay_of(rt: Runtime, project_id: str, external_id: str) -> tuple[Recording, ReplaySummary]:
    """A live recording of the project with a web replay, by the id its client knows; NotFound otherwise."""
    with rt.db.read() as s:
        row = s.execute(
            select(Recording, ReplaySummary)
            .join(ReplaySummary, ReplaySummary.recording_id == Recording.id)
            .where(
                Recording.project_id == project_id,
                Recording.external_id == external_id,
                Recording.state != S.DELETED,
            )
        ).one_or_none()
    if row is None:
        raise NotFound("recording not found")
    return row[0], row[1]


def iter_event_lines(rt: Runtime, recording_id: str, external_id: str) -> Iterator[bytes]:
    """Every stored event of the replay in sequence order, one JSON object per item (no newline), with
    its `sequenceId` and `recordingId`; reads one block at a time, never the whole replay."""
    suffix_id = payloads.encode_lines([{"recordingId": external_id}])[1:-2]  # b'"recordingId":"..."'
    after = -1
    while True:
        page = _blocks_after(rt, recording_id, after)
        for block in page:
            raw = zstandard.ZstdDecompressor().decompress(rt.storage.get_bytes(block.object_key))
            for offset, line in enumerate(raw.splitlines()):
                yield line[:-1] + b',"sequenceId":%d,%s}' % (block.first_sequence + offset, suffix_id)
            after = block.seq
        if len(page) < READ_PAGE:
            return


def _blocks_after(rt: Runtime, recording_id: str, after: int) -> list[ReplayBlock]:
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(ReplayBlock)
                .where(ReplayBlock.recording_id == recording_id, ReplayBlock.seq > after)
                .order_by(ReplayBlock.seq)
                .limit(READ_PAGE)
            )
        )


def finish_idle(rt: Runtime, idle_seconds: int, limit: int = 100) -> list[str]:
    """Finish the started web replays that had no ingest for `idle_seconds`; their duration is the span
    of their events' timestamps. Returns the ids finished."""
    cutoff = rt.now() - timedelta(seconds=idle_seconds)
    with rt.db.read() as s:
        rows = s.execute(
            select(ReplaySummary.recording_id, ReplaySummary.first_timestamp, ReplaySummary.last_timestamp)
            .join(Recording, Recording.id == ReplaySummary.recording_id)
            .where(
                Recording.state == S.STARTED,
                Recording.ingest == Ingest.NONE,
                ReplaySummary.last_ingest_at < cutoff,
            )
            .limit(limit)
        ).all()
    finished = []
    for row in rows:
        span = ((row.last_timestamp or 0) - (row.first_timestamp or 0)) / 1000.0
        with rt.db.transaction() as s:
            moved = lifecycle.apply(
                rt,
                s,
                lifecycle.STOP,
                [row.recording_id],
                duration=max(0.0, span),
                stopped_at=rt.now(),
                stop_reason="idle",
            )
            finished += lifecycle.apply(rt, s, lifecycle.FINISH, moved, finished_at=rt.now())
    return finished
