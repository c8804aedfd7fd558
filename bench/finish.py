"""Stop -> finished: the O(1) finish of a captured recording vs the raw S3 calls making the same object.

For each length (1, 10, 60 minutes of 720p30 VP8/Opus in 4 s segments, `finalize.py`'s cached sets), on
a stack of its own (`backing.py`: redis-server, SeaweedFS, SQLite or DATABASE_URL):

1. *capture* (not the figure): every segment is uploaded and recorded as a capture does, and packed
   (`packs.Packer`, MEETREC_COMPOSE_PART_BYTES parts uploaded as they fill); the packing time per segment
   is printed, as it is what a capture pays for the finish to be O(1);
2. *finish*: `finalize.finalize` on the stopped recording, timed whole (the plan, fetching pack 1 and the
   tail back, the head, two part uploads, the completion, the poster, the state change, and the sweep of
   the segment objects), and separately the time until the row says `finished`;
3. *raw*: minio-py alone making the same object: a multipart upload whose middle parts are already
   there (uploaded before the clock starts, as the capture did), then the same first and last part
   bytes and CompleteMultipartUpload, timed;
4. *remux* (unless --no-remux): the same segments finished the old way (download, ffmpeg concat, upload),
   as a recording whose segments were never packed is.

    .venv/bin/python bench/finish.py [--minutes 1 10 60] [--no-remux]

Every finished object is checked: its size, its EBML layout (Duration and Cues) read from a range of its
head, and for the shortest set a full decode of the downloaded file.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from minio.datatypes import Part  # noqa: E402
from sqlalchemy import update  # noqa: E402

from app.media import assemble  # noqa: E402
from app.media.ebml import _element_header, webm_layout  # noqa: E402
from app.models import Recording, RecordingState  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from app.services.access import keys  # noqa: E402
from app.services.core import recordings  # noqa: E402
from app.services.pipeline import compose, finalize, leases, packs, segments  # noqa: E402
from bench.backing import bench_stack  # noqa: E402
from bench.finalize import VP8_OPUS, base_clip, cache_dir, segment_set  # noqa: E402
from tests.helpers import add_recording  # noqa: E402

OWNER = "bench-capture"


def seed(
    rt: Runtime, project_id: str, files: list[Path], durations: dict[Path, float], pack: bool
) -> tuple[str, float]:
    """A started pull recording with `files` uploaded and recorded (and packed when `pack`), then stopped;
    returns its id and the seconds spent packing."""
    recording_id = add_recording(
        rt, project_id, state="started", ingest="pull", object_key=None, size=None, sha256=None, duration=None
    )
    assert leases.acquire(rt, recording_id, OWNER)
    packer = packs.Packer(rt, recording_id, OWNER, rt.config.spool_dir / recording_id)
    packer.spool.mkdir(parents=True, exist_ok=True)
    packing = 0.0
    for seq, path in enumerate(files):
        key = segments.object_key(recording_id, seq, OWNER)
        stored, digest = rt.storage.put_file(key, path, "video/x-matroska")
        segment = segments.NewSegment(seq, key, stored.size, digest, durations[path])
        assert segments.record_captured(rt, recording_id, OWNER, segment)
        if pack:
            began = time.perf_counter()
            packer.add(seq, path, durations[path], digest)
            packing += time.perf_counter() - began
    assert packer.disabled is None, packer.disabled
    leases.release(rt, recording_id, OWNER)
    with rt.db.transaction() as s:
        s.execute(
            update(Recording)
            .where(Recording.id == recording_id)
            .values(state=RecordingState.STOPPED.value, stopped_at=rt.now())
        )
    return recording_id, packing


def timed_finish(rt: Runtime, recording_id: str) -> tuple[float, float, str]:
    """(seconds of the whole finalize, seconds until the row said finished, its result)."""
    finished_at: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if recordings.state_of(rt, recording_id) == RecordingState.FINISHED:
                finished_at.append(time.perf_counter())
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    began = time.perf_counter()
    watcher.start()
    result = finalize.finalize(rt, recording_id)
    ended = time.perf_counter()
    watcher.join(timeout=5)
    done.set()
    return ended - began, (finished_at[0] if finished_at else ended) - began, result


def raw_compose(rt: Runtime, recording_id: str, work: Path) -> float:
    """minio-py alone making an object of the same parts: the middle ones uploaded untimed (the capture
    did that), then a first and a last part of the finish's sizes and the completion, timed."""
    store = rt.storage
    client, bucket = store._client, store.bucket
    final = recordings.load(rt, recording_id)
    assert final is not None and final.object_key and final.size
    rows = packs.for_recording(rt, recording_id)
    key = f"bench-raw/{recording_id}.webm"
    if not rows:  # finished in one upload (the pack rows go once the digest is known)
        data = os.urandom(final.size)
        began = time.perf_counter()
        client.put_object(bucket, key, io.BytesIO(data), len(data))
        elapsed = time.perf_counter() - began
        store.delete_keys([key])
        return elapsed
    first_size = _head_size(rt, final.object_key, work) + (rows[0].size if rows else 0)
    middle = [r.size for r in rows[1:]]
    last_size = final.size - first_size - sum(middle)
    upload_id = client._create_multipart_upload(bucket, key, {"Content-Type": "video/webm"})
    numbered = [
        (n, client._upload_part(bucket, key, os.urandom(size), None, upload_id, n))
        for n, size in enumerate(middle, 2)
    ]
    first, last = os.urandom(first_size), os.urandom(last_size)
    began = time.perf_counter()
    numbered.insert(0, (1, client._upload_part(bucket, key, first, None, upload_id, 1)))
    if last_size:
        numbered.append(
            (len(numbered) + 1, client._upload_part(bucket, key, last, None, upload_id, len(numbered) + 1))
        )
    client._complete_multipart_upload(bucket, key, upload_id, [Part(n, e) for n, e in numbered])
    elapsed = time.perf_counter() - began
    assert (store.stat(key) or Part(0, "")).size == final.size  # type: ignore[union-attr]
    store.delete_keys([key])
    return elapsed


def _head_size(rt: Runtime, key: str, work: Path) -> int:
    """Where the first Cluster starts: the end of the head's Cues."""
    head = work / "head.webm"
    head.write_bytes(rt.storage.get_range(key, 0, 8 << 20))
    layout = webm_layout(head)
    assert layout.cues_offset is not None
    with head.open("rb") as f:
        f.seek(layout.cues_offset)
        _, size = _element_header(f)
        return f.tell() + (size or 0)


def check(rt: Runtime, recording_id: str, expected_seconds: float, decode: bool, work: Path) -> str:
    final = recordings.load(rt, recording_id)
    assert final is not None and final.object_key
    stat = rt.storage.stat(final.object_key)
    assert stat is not None and stat.size == final.size, "size"
    head = work / "head.webm"
    head.write_bytes(rt.storage.get_range(final.object_key, 0, min(final.size, 4 << 20)))
    layout = webm_layout(head)
    assert layout.duration is not None and abs(layout.duration - expected_seconds) < 0.5, layout
    assert layout.cues_offset is not None, "no Cues"
    if decode:
        whole = work / "whole.webm"
        rt.storage.download(final.object_key, whole)
        assemble.verify(whole, expected_seconds, expect_audio=True)
    return "ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--no-remux", action="store_true", help="skip the old download+remux+upload finish")
    args = parser.parse_args()
    cache = cache_dir()
    base = base_clip(cache, "vp8opus", VP8_OPUS)
    durations_of = {p: assemble.inspect_piece(p).duration for p in base}
    rows_out = []
    with bench_stack() as stack:
        rt = stack.rt
        project = keys.create_project(rt, "bench-finish-" + secrets.token_hex(3))
        for minutes in args.minutes:
            files = segment_set(cache, "vp8opus", base, minutes)
            durations = {p: durations_of[base[i % len(base)]] for i, p in enumerate(files)}
            total = sum(durations.values())
            size_mb = sum(p.stat().st_size for p in files) / 1e6
            recording_id, packing = seed(rt, project.id, files, durations, pack=True)
            whole, to_finished, result = timed_finish(rt, recording_id)
            assert "joined" in result, result
            ok = check(rt, recording_id, total, minutes <= 1, stack.base)
            raw = raw_compose(rt, recording_id, stack.base)
            remux = "-"
            if not args.no_remux:
                plain_id, _ = seed(rt, project.id, files, durations, pack=False)
                composing, compose.compose = compose.compose, lambda *_: None  # the finish before packs
                try:
                    remux_whole, _, remux_result = timed_finish(rt, plain_id)
                finally:
                    compose.compose = composing
                assert "copy" in remux_result, remux_result
                remux = f"{remux_whole:.2f}"
            rows_out.append(
                [
                    f"{minutes:g}", f"{size_mb:.0f}", str(len(packs.for_recording(rt, recording_id))),
                    f"{to_finished:.2f}", f"{whole:.2f}", f"{raw:.2f}", f"{to_finished / raw:.2f}",
                    remux, f"{packing / len(files) * 1000:.1f}", ok,
                ]
            )  # fmt: skip
            print(f"{minutes:g} min: {result}", flush=True)
    head = (
        "minutes", "MB", "parts", "stop->finished s", "finalize job s", "raw S3 s", "ours/raw",
        "remux finish s", "packing ms/segment", "check",
    )  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in rows_out)) for i, h in enumerate(head)]
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for r in rows_out:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
