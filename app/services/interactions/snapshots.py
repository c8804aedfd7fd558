"""A web replay's stored blocks as PostHog snapshot sources: each block is a source (`blob_v2`, its
`blob_key` the block's index); reading a range of blocks yields their events as JSON lines of
`[windowId, event]`, one block at a time, straight from its stored JSON lines (no re-encoding)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import zstandard
from sqlalchemy import select, update

from app.db import affected
from app.errors import NotFound
from app.models import ReplayBlock, ReplaySummary
from app.runtime import Runtime
from app.services.interactions import replay_facts

MAX_BLOCKS_PER_READ = 100


def blocks_of(rt: Runtime, recording_id: str) -> list[ReplayBlock]:
    """The replay's blocks by index."""
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(ReplayBlock).where(ReplayBlock.recording_id == recording_id).order_by(ReplayBlock.seq)
            )
        )


def read(rt: Runtime, recording_id: str, window_id: str, first: int, last: int) -> Iterator[bytes]:
    """Blocks `first..last` (inclusive) as JSON lines `[windowId, event]\\n`, one block's worth per item.
    NotFound when a block index is past the replay's last block."""
    with rt.db.read() as s:
        blocks = list(
            s.scalars(
                select(ReplayBlock)
                .where(
                    ReplayBlock.recording_id == recording_id,
                    ReplayBlock.seq >= first,
                    ReplayBlock.seq <= last,
                )
                .order_by(ReplayBlock.seq)
            )
        )
    if len(blocks) != last - first + 1:
        raise NotFound("Block index out of range")
    prefix = b'["' + window_id.encode() + b'",'
    return _lines(rt, blocks, prefix)


def _lines(rt: Runtime, blocks: list[ReplayBlock], prefix: bytes) -> Iterator[bytes]:
    decompressor = zstandard.ZstdDecompressor()
    for block in blocks:
        raw = decompressor.decompress(rt.storage.get_bytes(block.object_key))
        yield b"".join(prefix + line + b"]\n" for line in raw.splitlines() if line)


def events_in_time_order(rt: Runtime, recording_id: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(sequenceId, event) of every stored event, blocks taken in order of their first timestamp (a
    client may deliver its batches out of order), one block in memory at a time."""
    decompressor = zstandard.ZstdDecompressor()
    for block in sorted(blocks_of(rt, recording_id), key=lambda b: (b.first_timestamp, b.seq)):
        raw = decompressor.decompress(rt.storage.get_bytes(block.object_key))
        lines = [line for line in raw.splitlines() if line]
        for offset, line in enumerate(lines):
            yield block.first_sequence + offset, json.loads(line)


def recompute_facts(rt: Runtime, recording_id: str, attempts: int = 3) -> bool:
    """Compute a replay's facts (`replay_facts`) afresh from every stored block and store them, for
    replays stored before the facts were kept at ingest. Optimistic: the result is written only if no
    block was indexed meanwhile (else it reads again). False when the replay is gone or kept moving."""
    for _ in range(attempts):
        blocks = blocks_of(rt, recording_id)
        facts = replay_facts.facts_of(event for _, event in events_in_time_order(rt, recording_id))
        values = replay_facts.changes(facts, 0, [], [], None) | facts.counters() | {"facts_complete": True}
        values.setdefault("active_ms", 0)
        with rt.db.transaction() as s:
            moved = affected(
                s,
                update(ReplaySummary)
                .where(ReplaySummary.recording_id == recording_id, ReplaySummary.blocks == len(blocks))
                .values(values),
            )
        if moved:
            return True
    return False


def without_facts(rt: Runtime, limit: int = 100) -> list[str]:
    """Replays stored before migration 0010 whose facts are not computed yet."""
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(ReplaySummary.recording_id).where(ReplaySummary.facts_complete.is_(False)).limit(limit)
            )
        )
