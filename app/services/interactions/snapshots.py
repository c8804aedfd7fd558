"""A web replay's stored blocks as PostHog snapshot sources: each block is a source (`blob_v2`, its
`blob_key` the block's index); reading a range of blocks yields their events as JSON lines of
`[windowId, event]`, one block at a time, straight from its stored JSON lines (no re-encoding)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import zstandard
from sqlalchemy import select

from app.errors import NotFound
from app.models import ReplayBlock
from app.runtime import Runtime

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
