"""Frame grabs: JPEGs of 500 click times in one pass over a recording, against one raw ffmpeg decode pass.

Videos of 720p30 VP8/Opus (a capture's encoder settings, a keyframe every 2 s) are made once and cached:
a 12 s clip is encoded, then looped by stream copy to each asked length. Per length it prints:

- ours: `app.media.frames.grab_jpegs` producing every JPEG (decode, pick, encode), best of --repeat;
- raw: `ffmpeg -i video -f null -` (one decode pass over the whole file, audio included), best of --repeat;
- the ratio ours / raw (target: at most 1.5 for 500 clicks);
- ffmpeg doing the same work: one pass writing as many JPEGs (`-q:v 3`, its defaults otherwise) of frames
  spread evenly over the video, and the ratio ours / that;
- a few clicks (5) on the same video, which seek instead of decoding it all;
- the old way, one `ffmpeg -ss t -i video -frames:v 1` per click: a sample of runs spread over the
  video, timed and extrapolated to all the clicks (said so in the output).

With S3 (not --no-upload), the 500 JPEGs of the first video are also put to a SeaweedFS server started for
the run (or S3_ENDPOINT), one after another and on `frames.UPLOAD_THREADS` threads, as grab_pending puts them.

    .venv/bin/python bench/frames.py [--minutes 1 10] [--clicks 500] [--repeat 3] [--no-upload]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Config  # noqa: E402
from app.media import frames  # noqa: E402
from app.media.commands import SYNTHETIC_TONE, poster_argv, video_bitrate  # noqa: E402
from app.media.probe import probe  # noqa: E402
from app.services.pipeline.frames import UPLOAD_THREADS  # noqa: E402

FFMPEG = Config.from_env({}).ffmpeg_path
QUIET = ["-hide_banner", "-loglevel", "error", "-nostdin"]
SIZE, RATE, CLIP_SECONDS = "1280x720", 30, 12
VP8_OPUS = [
    "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "16", "-b:v", video_bitrate(SIZE, RATE),
    "-g", str(RATE * 2), "-c:a", "libopus", "-b:a", "64k", "-ac", "2",
]  # fmt: skip
PER_EVENT_SAMPLE = 12  # per-click ffmpeg runs timed, then extrapolated
FEW_CLICKS = 5


def cache_dir() -> Path:
    path = Path(os.environ.get("MEETREC_BENCH_CACHE") or ROOT / "var" / "bench-cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def ffmpeg(*argv: str) -> None:
    subprocess.run([FFMPEG, *QUIET, *argv], check=True, timeout=3600)


def video(cache: Path, minutes: float) -> Path:
    """`minutes` of 720p30 VP8/Opus WebM: a 12 s clip encoded once, looped by stream copy."""
    clip = cache / "frames-clip.webm"
    if not clip.exists():
        print(f"encoding a {CLIP_SECONDS} s {SIZE}@{RATE} clip ...", file=sys.stderr, flush=True)
        ffmpeg(
            "-t", str(CLIP_SECONDS), "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={RATE}",
            "-t", str(CLIP_SECONDS), "-f", "lavfi", "-i", SYNTHETIC_TONE,
            *VP8_OPUS, "-f", "webm", "-y", f"{clip}.part",
        )  # fmt: skip
        os.replace(f"{clip}.part", clip)
    path = cache / f"frames-{minutes:g}min.webm"
    if not path.exists():
        loops = int(minutes * 60 // CLIP_SECONDS) + 1
        ffmpeg(
            "-stream_loop", str(loops), "-i", str(clip), "-t", str(minutes * 60), "-c", "copy",
            "-f", "webm", "-y", f"{path}.part",
        )  # fmt: skip
        os.replace(f"{path}.part", path)
    return path


def click_times(duration: float, count: int) -> list[float]:
    """`count` moments spread over the video, each jittered inside its share, in no particular order."""
    rng = random.Random(500)
    share = duration / count
    times = [i * share + rng.uniform(0, share) for i in range(count)]
    rng.shuffle(times)
    return times


def timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def ours(path: Path, times: list[float], duration: float) -> list[frames.Grab]:
    grabs = list(frames.grab_jpegs(path, times, duration))
    answered = sum(len(g.indices) for g in grabs)
    if answered != len(times):
        raise SystemExit(f"only {answered} of {len(times)} clicks got a frame")
    return grabs


def raw_pass(path: Path) -> None:
    ffmpeg("-i", str(path), "-f", "null", "-")


def raw_grabs(path: Path, count: int, duration: float) -> None:
    """One ffmpeg pass encoding `count` JPEGs of frames spread evenly over the video: the raw tool doing
    the same work as ours (a `select` of the exact click frames is too long an expression for ffmpeg)."""
    total = round(duration * RATE)
    ffmpeg(
        "-i", str(path), "-an", "-vf", f"select=lt(mod(n*{count}\\,{total})\\,{count})",
        "-fps_mode", "passthrough", "-c:v", "mjpeg", "-q:v", str(frames.JPEG_QSCALE), "-f", "null", "-",
    )  # fmt: skip


def per_event(path: Path, times: list[float], duration: float, work: Path) -> float:
    """Seconds a click cost the old way: one ffmpeg run per click, over a sample spread over the video."""
    sample = sorted(times)[:: max(1, len(times) // PER_EVENT_SAMPLE)][:PER_EVENT_SAMPLE]
    out = work / "frame.jpg"
    seconds = [
        timed(
            lambda at=at: subprocess.run(
                poster_argv(FFMPEG, path, out, frames.clamp(at, duration)), check=True
            )
        )
        for at in sample
    ]
    return sum(seconds) / len(seconds)


def row(path: Path, clicks: int, repeat: int, work: Path) -> tuple[list[str], list[frames.Grab]]:
    duration = probe(path).duration
    times = click_times(duration, clicks)
    grabs: list[frames.Grab] = []
    ours_s, raw_s, same_s = [], [], []
    for _ in range(repeat):  # alternating, so drift hits all
        ours_s.append(timed(lambda: grabs.__setitem__(slice(None), ours(path, times, duration))))
        raw_s.append(timed(lambda: raw_pass(path)))
        same_s.append(timed(lambda: raw_grabs(path, len(grabs), duration)))
    few_s = min(timed(lambda: ours(path, times[:FEW_CLICKS], duration)) for _ in range(repeat))
    old = per_event(path, times, duration, work)
    best, raw, same = min(ours_s), min(raw_s), min(same_s)
    cells = [
        f"{duration / 60:.0f} min", str(clicks), f"{best:.2f}", f"{raw:.2f}", f"{best / raw:.2f}",
        f"{same:.2f}", f"{best / same:.2f}",
        f"{few_s:.2f}", f"{old * 1000:.0f}", f"{old * clicks:.1f}", f"{old * clicks / best:.1f}",
    ]  # fmt: skip
    return cells, grabs


HEAD = [
    "video", "clicks", "ours s", "raw pass s", "ours/raw", "ffmpeg grabs s", "ours/ffmpeg",
    f"{FEW_CLICKS} clicks s",
    "old ms/click", "old s (extrapolated)", "old/ours",
]  # fmt: skip


def uploads(grabs: list[frames.Grab]) -> None:
    """The grabs' JPEGs put to S3 one after another, then on UPLOAD_THREADS threads."""
    from bench.finalize import s3_store

    jpegs = [g.jpeg for g in grabs]
    with s3_store() as (store, _env):

        def put(i: int) -> None:
            store.put_bytes(f"bench/frames/{i}.jpg", jpegs[i], "image/jpeg")

        one = timed(lambda: [put(i) for i in range(len(jpegs))])
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            many = timed(lambda: list(pool.map(put, range(len(jpegs)))))
    kb = sum(map(len, jpegs)) / len(jpegs) / 1000
    print(
        f"\nputs of {len(jpegs)} JPEGs ({kb:.0f} KB each): {one:.2f} s one by one, "
        f"{many:.2f} s on {UPLOAD_THREADS} threads ({len(jpegs) / many:.0f}/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    parser.add_argument("--clicks", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best counts")
    parser.add_argument("--no-upload", action="store_true", help="skip the S3 puts")
    args = parser.parse_args()
    cache = cache_dir()
    rows, first = [], None
    for minutes in args.minutes:
        cells, grabs = row(video(cache, minutes), args.clicks, args.repeat, cache)
        rows.append(cells)
        first = first or grabs
        print(f"  {minutes:g} min done", file=sys.stderr, flush=True)
    print(
        f"\nframe grabs, 720p30 VP8/Opus, {os.cpu_count()} cores ('old' = one ffmpeg per click, a sample of"
    )
    print(f"{PER_EVENT_SAMPLE} runs timed and extrapolated to every click)")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEAD)]
    for line in [HEAD, *rows]:
        print("  ".join(f"{c:>{w}}" for c, w in zip(line, widths, strict=True)))
    if not args.no_upload and first:
        uploads(first)


if __name__ == "__main__":
    main()
