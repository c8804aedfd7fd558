"""The O(1) finish: make a captured recording's final WebM where its packs already lie.

The packs a capture uploaded (app.services.pipeline.packs) are parts 2..n of a multipart upload of the
final object. The finish rewrites the segments of pack 1 and the unpacked tail (each at most about
MEETREC_COMPOSE_PART_BYTES, fetched back from storage), builds the head (EBML header, Info with the
Duration, Tracks and Cues for the whole recording), uploads head + pack 1 as part 1 and the tail as the
last part, and completes the upload: the object store joins the parts without copying them. So the work
at stop is the same for a minute as for ten hours.

Everything is checked against the segment rows first: each pack must hold exactly the segments it names
(their SHA-256s), start where their durations say, and still be in the upload with the ETag recorded.
Anything else (a push recording, a codec WebM cannot hold, a changed stream, a crash that left packs out
of step, an upload the store expired) answers None, and finalize remuxes the segments as before. A finish
that completed the upload and then died finds the object in place at the size it expects and goes on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from app.errors import MediaError
from app.media import webm_compose
from app.models import Ingest, MediaPack, Recording, Segment
from app.runtime import Runtime
from app.services.pipeline import packs
from app.storage.objects import StoredObject

log = logging.getLogger(__name__)

MIN_PART = 5 * 1024 * 1024  # S3: every part but the last
FETCH_THREADS = 4  # segments fetched back at once (pack 1's and the tail's: a few dozen at most)


@dataclass(frozen=True)
class Composed:
    stored: StoredObject
    duration: float  # seconds: the segments' spans added up
    sha256: str | None  # None when the object was joined by the store (nothing here read all its bytes)
    parts: int  # parts joined by the store without moving (0: one upload of the whole file)


@dataclass(frozen=True)
class _Plan:
    first: list[Segment]  # pack 1's segments (uploaded behind the head)
    joined: list[MediaPack]  # packs 2..n, parts already uploaded
    tail: list[Segment]  # the segments after the last pack


def compose(rt: Runtime, recording: Recording, parts: list[Segment], workdir: Path) -> Composed | None:
    """Make the final object from the packs and segments; None when they cannot be joined by bytes."""
    if recording.ingest != Ingest.PULL or any(p.duration is None for p in parts):
        return None
    key = packs.final_key(recording.id)
    plan = _plan(parts, packs.for_recording(rt, recording.id))
    upload_id = plan.joined[0].upload_id if plan and plan.joined else None
    try:
        if plan is None:
            raise webm_compose.NotComposable("the packs do not tile the segments")
        loose_segments = [*plan.first, *plan.tail]
        loose = sum(s.size for s in loose_segments)
        if loose > 4 * rt.config.compose_part_bytes:  # packed while capturing, or nothing is gained
            raise webm_compose.NotComposable(f"{loose} bytes of segments were not packed while capturing")
        durations = [p.duration or 0.0 for p in parts]
        index = {p.seq: i for i, p in enumerate(parts)}
        with ThreadPoolExecutor(FETCH_THREADS) as pool:  # each fetch waits on the store, not the CPU
            rewritten = list(pool.map(lambda s: _rewrite(rt, s, durations[: index[s.seq]]), loose_segments))
        first, tail = rewritten[: len(plan.first)], rewritten[len(plan.first) :]
        webm_compose.check_joinable([*first, *tail])
        signature = (first or tail)[0].signature
        if any(p.signature != signature for p in plan.joined):
            raise webm_compose.NotComposable("a pack has other tracks than the segments around it")
        body_first = b"".join(c.data for c in first)
        body_tail = b"".join(c.data for c in tail)
        cues, offset = [], 0
        for clusters in first:
            cues += [(t, offset + at) for t, at in clusters.cues]
            offset += len(clusters.data)
        for pack in plan.joined:
            cues += [(t, offset + at) for t, at in pack.cues]
            offset += pack.size
        cues += [(t, offset + at) for clusters in tail for t, at in clusters.cues]
        clusters_size = offset + len(body_tail)
        duration_ms = packs.start_ms(durations)
        tracks = (first or tail)[0].tracks
        head = webm_compose.build_head(tracks, float(duration_ms), cues, clusters_size)
    except MediaError as e:
        log.info("recording %s: joined by remuxing: %s", recording.id, e)
        if upload_id:
            rt.storage.abort_upload(key, upload_id)
        return None
    size = len(head) + clusters_size
    duration = duration_ms / 1000
    if upload_id is None:  # no part uploaded while capturing: one upload of a short file
        output = workdir / "recording.webm"
        with output.open("wb") as f:
            f.write(head)
            f.write(body_first)
            f.write(body_tail)
        stored, digest = rt.storage.put_file(key, output, packs.CONTENT_TYPE)
        return Composed(stored, duration, digest, 0)
    listed = rt.storage.parts(key, upload_id)
    if listed is None:  # completed by a finish that died before marking it finished, or expired
        existing = rt.storage.stat(key)
        if existing is not None and existing.size == size:
            return Composed(existing, duration, None, len(plan.joined))
        log.warning("recording %s: the upload of its packs is gone; joined by remuxing", recording.id)
        return None
    if any(listed.get(p.part_number) != (p.etag, p.size) for p in plan.joined):
        log.warning("recording %s: a packed part is not what was recorded; joined by remuxing", recording.id)
        rt.storage.abort_upload(key, upload_id)
        return None
    last = plan.joined[-1].part_number + 1
    with ThreadPoolExecutor(2) as pool:
        uploads = {1: pool.submit(rt.storage.upload_part, key, upload_id, 1, head + body_first)}
        if body_tail:
            uploads[last] = pool.submit(rt.storage.upload_part, key, upload_id, last, body_tail)
        etags = {number: future.result() for number, future in uploads.items()}
    numbered = [(1, etags[1]), *((p.part_number, p.etag or "") for p in plan.joined)]
    if body_tail:
        numbered.append((last, etags[last]))
    rt.storage.complete_upload(key, upload_id, numbered)
    joined = rt.storage.stat(key)
    if joined is None or joined.size != size:
        raise MediaError(f"the joined object is {joined.size if joined else 'missing'}, not {size} bytes")
    return Composed(joined, duration, None, len(plan.joined))


def _plan(parts: Sequence[Segment], rows: Sequence[MediaPack]) -> _Plan | None:
    """Which segments go behind the head, which packs are joined as they lie, which form the tail; None
    when the packs do not cover the segments from the first one on, in order, as they were recorded."""
    if not rows:
        return _Plan(list(parts), [], [])
    if [r.part_number for r in rows] != list(range(1, len(rows) + 1)):
        return None
    position = {p.seq: i for i, p in enumerate(parts)}
    durations = [p.duration or 0.0 for p in parts]
    covered: list[list[Segment]] = []
    at = 0
    for row in rows:
        start, end = position.get(row.first_seq), position.get(row.last_seq)
        if start != at or end is None or end < start:
            return None
        held = list(parts[start : end + 1])
        if packs.sources_digest([(s.seq, s.sha256) for s in held]) != row.sources:
            return None
        if packs.start_ms(durations[:start]) != row.base_ms:
            return None
        if row.part_number > 1 and (
            row.etag is None or row.upload_id != rows[1].upload_id or row.size < MIN_PART
        ):
            return None
        covered.append(held)
        at = end + 1
    return _Plan(covered[0], list(rows[1:]), list(parts[at:]))


def _rewrite(rt: Runtime, segment: Segment, before: list[float]) -> webm_compose.Clusters:
    data = rt.storage.get_bytes(segment.object_key)
    if hashlib.sha256(data).hexdigest() != segment.sha256:
        raise MediaError(f"segment {segment.seq} does not match its recorded SHA-256")
    return webm_compose.rewrite_segment(data, packs.start_ms(before))
