"""A web replay's stored blocks as PostHog snapshot sources: each block is a source (`blob_v2`, its
`blob_key` the block's index); reading a range of blocks yields their events as JSON lines of
`[windowId, event]`, one block at a time, straight from its stored JSON lines (no re-encoding).
`events_in_time_order` merges every block's events into one stream by timestamp."""

from __future__ import annotations

import heapq
import json
from collections import deque
from collections.abc import Iterator
from typing import Any

import zstandard
from sqlalchemy import select

from app.errors import NotFound
from app.models import ReplayBlock
from app.runtime import Runtime

MAX_BLOCKS_PER_READ = 100

_Timed = tuple[int, int, dict[str, Any]]  # (timestamp, sequenceId, event)
_Heads = list[tuple[int, int, dict[str, Any], Iterator[_Timed]]]  # each open block's next event, a heap


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
    """(sequenceId, event) of every stored event by (timestamp, sequenceId), merged across blocks (a
    client may deliver its batches out of order or interleaved). A block is read only when the merge
    reaches its first timestamp, so only the blocks that overlap in time are in memory at once."""
    waiting = deque(sorted(blocks_of(rt, recording_id), key=lambda b: (b.first_timestamp, b.seq)))
    heads: _Heads = []
    decompressor = zstandard.ZstdDecompressor()
    while heads or waiting:
        while waiting and (not heads or waiting[0].first_timestamp <= heads[0][0]):
            _push(heads, _timed_events(rt, decompressor, waiting.popleft()))
        _, sequence, event, rest = heapq.heappop(heads)
        yield sequence, event
        _push(heads, rest)


def _timed_events(
    rt: Runtime, decompressor: zstandard.ZstdDecompressor, block: ReplayBlock
) -> Iterator[_Timed]:
    """One block's events by (timestamp, sequenceId): a block holds one batch, so sorting it is bounded."""
    raw = decompressor.decompress(rt.storage.get_bytes(block.object_key))
    lines = (json.loads(line) for line in raw.splitlines() if line)
    timed = [(event["timestamp"], block.first_sequence + offset, event) for offset, event in enumerate(lines)]
    timed.sort(key=lambda t: (t[0], t[1]))
    return iter(timed)


def _push(heads: _Heads, events: Iterator[_Timed]) -> None:
    """Put the next of `events` on the merge's heap, if there is one."""
    head = next(events, None)
    if head is not None:
        heapq.heappush(heads, (*head, events))
