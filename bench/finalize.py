"""Finalize: our assemble of capture segments against raw `ffmpeg -f concat` doing the same work.

Segment sets of 720p30 VP8/Opus (the capture's own encoder settings, 4 s segments as the default config
cuts them) are generated once and cached: a 12 s clip is encoded, then its segments are hard-linked over
and over into sets of the asked lengths. Segments are independent and their timestamps restart at 0, so
a repeated segment is a valid set, and a 60-minute set costs seconds to make instead of an hour.

Prints, per set: ours (probe + concat + index check) and raw concat in seconds and the ratio ours/raw;
the verify and poster step; the multipart upload of the result to an S3 server. Then the peak RSS of a
child process uploading a 1 GiB file with `put_file_multipart`, and the transcode path (H.264/AAC to
VP8/Opus) against raw ffmpeg with the same encoder settings.

    .venv/bin/python bench/finalize.py [--minutes 1 10 60] [--repeat 3] [--no-upload]

The cache lives in $MEETREC_BENCH_CACHE or var/bench-cache. S3: S3_ENDPOINT/S3_ACCESS_KEY/S3_SECRET_KEY
when set, else a SeaweedFS server started for the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Config  # noqa: E402
from app.embedded.servers import S3Server  # noqa: E402
from app.media import assemble  # noqa: E402
from app.media.commands import video_bitrate  # noqa: E402
from app.media.runner import run  # noqa: E402
from app.storage.objects import ObjectStore  # noqa: E402
from tests.helpers import free_weed_ports  # noqa: E402

FFMPEG = Config.from_env({}).ffmpeg_path
PROFILE = assemble.PROFILES["vp8-realtime"]  # the default MEETREC_TRANSCODE_PROFILE
SEGMENT_SECONDS = 4
CLIP_SECONDS = 12
SIZE, RATE = "1280x720", 30
SOURCE = [
    "-t", str(CLIP_SECONDS), "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={RATE}",
    "-t", str(CLIP_SECONDS), "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:beep_factor=4",
]  # fmt: skip
# What a copy-mode capture stores (app.media.commands.VP8_LIVE and OPUS), and an H.264 camera's stream.
VP8_OPUS = [
    "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "16", "-b:v", video_bitrate(SIZE, RATE),
    "-g", str(RATE * 2), "-c:a", "libopus", "-b:a", "64k", "-ac", "2",
]  # fmt: skip
H264_AAC = ["-c:v", "libx264", "-preset", "veryfast", "-g", str(RATE * 2), "-c:a", "aac", "-b:a", "128k"]
QUIET = ["-hide_banner", "-loglevel", "error", "-nostdin"]
GIB = 1 << 30


def cache_dir() -> Path:
    path = Path(os.environ.get("MEETREC_BENCH_CACHE") or ROOT / "var" / "bench-cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def base_clip(cache: Path, name: str, codecs: list[str]) -> list[Path]:
    """CLIP_SECONDS of 720p30 cut into SEGMENT_SECONDS Matroska segments, encoded once."""
    directory = cache / f"{name}-base"
    done = directory / ".done"
    if not done.exists():
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        print(f"encoding the {name} base clip ({CLIP_SECONDS} s of {SIZE}@{RATE}) ...", flush=True)
        run(
            [
                FFMPEG,
                *QUIET,
                *SOURCE,
                "-map",
                "0:v",
                "-map",
                "1:a",
                *codecs,
                "-f",
                "segment",
                "-segment_time",
                str(SEGMENT_SECONDS),
                "-segment_format",
                "matroska",
                "-reset_timestamps",
                "1",
                str(directory / "seg-%03d.mkv"),
            ],  # fmt: skip
            timeout=600,
        )
        done.touch()
    return sorted(directory.glob("seg-*.mkv"))


def segment_set(cache: Path, name: str, base: list[Path], minutes: float) -> list[Path]:
    """`minutes` of segments: the base clip's segments hard-linked (copied where links fail) in a cycle."""
    count = round(minutes * 60 / SEGMENT_SECONDS)
    directory = cache / f"{name}-{minutes:g}min"
    paths = [directory / f"seg-{i:06d}.mkv" for i in range(count)]
    if not (directory / ".done").exists():
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        for i, path in enumerate(paths):
            source = base[i % len(base)]
            try:
                os.link(source, path)
            except OSError:
                shutil.copyfile(source, path)
        (directory / ".done").touch()
    return paths


def random_file(cache: Path, size: int) -> Path:
    path = cache / f"random-{size >> 20}MiB.bin"
    if not path.exists() or path.stat().st_size != size:
        with path.open("wb") as f:
            for _ in range(size // (16 << 20)):
                f.write(os.urandom(16 << 20))
    return path


def timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def runs(repeat: int, *fns: Callable[[], object]) -> list[list[float]]:
    """Run the functions in turn `repeat` times (alternating, so drift hits all); each one's times."""
    times = [[timed(fn) for fn in fns] for _ in range(repeat)]
    return [list(column) for column in zip(*times, strict=True)]


def raw_concat(segments: list[Path], work: Path, codecs: list[str]) -> None:
    listing = work / "raw.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in segments))
    output = str(work / "raw.webm")
    run([FFMPEG, *QUIET, "-f", "concat", "-safe", "0", "-i", str(listing), *codecs, "-y", output], 3600)


def ours(segments: list[Path], work: Path, profile: assemble.TranscodeProfile) -> assemble.AssembleResult:
    return assemble.assemble_segments(FFMPEG, segments, work / "ours.webm", profile=profile, workdir=work)


@contextlib.contextmanager
def s3_store() -> Iterator[tuple[ObjectStore, dict[str, str]]]:
    """An ObjectStore on S3_ENDPOINT when set, else on a SeaweedFS server started (and stopped) here."""
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if os.environ.get("S3_ENDPOINT"):
            env = {k: os.environ[k] for k in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY")}
        else:
            access, secret = "AK" + secrets.token_hex(8), secrets.token_hex(20)
            server = S3Server(free_weed_ports(), Path(tmp) / "s3", access, secret)
            server.start()
            server.wait_ready(60)
            env = {"S3_ENDPOINT": server.endpoint, "S3_ACCESS_KEY": access, "S3_SECRET_KEY": secret}
        env |= {"S3_BUCKET": "meetrec-bench-" + secrets.token_hex(4), "MEETREC_DATA_DIR": tmp}
        try:
            store = ObjectStore(Config.from_env(env))
            store.ensure_bucket()
            yield store, env
        finally:
            if server is not None:
                server.stop()


def upload_child(path: str) -> None:
    """In a fresh process (env holds the S3 settings): upload `path`, print time and peak RSS as JSON."""
    store = ObjectStore(Config.from_env(dict(os.environ)))
    before = _vm_hwm_mb()
    seconds = timed(lambda: store.put_file_multipart("bench/rss.bin", Path(path), "application/octet-stream"))
    print(json.dumps({"seconds": seconds, "hwm_before_mb": before, "hwm_mb": _vm_hwm_mb()}))


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_upload_rss(env: dict[str, str], path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--upload-child", str(path)],
        env={**os.environ, **env}, capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


COPY_HEAD = (
    "segs",
    "MB",
    "ours s",
    "raw s",
    "ratio",
    "ours-ffmpeg s",
    "verify+poster s",
    "upload s",
    "MiB/s",
)


def copy_row(
    label: str, segments: list[Path], work: Path, repeat: int, store: ObjectStore | None
) -> list[str]:
    """One copy-path row: ours vs raw concat, then verify + poster and the upload of our output."""
    results: list[assemble.AssembleResult] = []
    ours_times, raw_times = runs(
        repeat,
        lambda: results.append(ours(segments, work, PROFILE)),
        lambda: raw_concat(segments, work, ["-c", "copy"]),
    )
    ours_s, raw_s, result = min(ours_times), min(raw_times), results[-1]
    # What ours adds to its own ffmpeg run: probing each segment, the list file, the index check.
    extra_s = min(t - r.seconds for t, r in zip(ours_times, results, strict=True))
    check_s = timed(lambda: _verify_and_poster(result, work))
    size = result.output.stat().st_size
    upload = ["-", "-"]
    if store is not None:
        up_s = timed(lambda: store.put_file_multipart("bench/final.webm", result.output, "video/webm"))
        upload = [f"{up_s:.2f}", f"{size / up_s / 2**20:.0f}"]
    (work / "raw.webm").unlink(missing_ok=True)
    result.output.unlink()
    row = [len(segments), f"{size / 1e6:.0f}", f"{ours_s:.2f}", f"{raw_s:.2f}", f"{ours_s / raw_s:.2f}"]
    return [label, *map(str, row), f"{extra_s:.2f}", f"{check_s:.2f}", *upload]


def transcode_row(label: str, segments: list[Path], work: Path, repeat: int) -> list[str]:
    """Ours (a transcode with the default profile) vs raw concat with the very same encoder options."""
    profile = PROFILE
    codecs = ["-map", "0:v:0", "-map", "0:a:0", *profile.video_argv(), *profile.audio_argv(), "-f", "webm"]
    ours_s, raw_s = map(
        min, runs(repeat, lambda: ours(segments, work, profile), lambda: raw_concat(segments, work, codecs))
    )
    media_s = len(segments) * SEGMENT_SECONDS
    return [label, f"{ours_s:.2f}", f"{raw_s:.2f}", f"{ours_s / raw_s:.2f}", f"{media_s / ours_s:.2f}"]


def table(head: tuple[str, ...], rows: list[list[str]], first: str) -> None:
    """Print `rows` under `head`, the first column (titled `first`) left-aligned, the others right."""
    widths = [max(len(first), *(len(r[0]) for r in rows))] + [max(len(h), 6) for h in head]
    for line in [[first, *head], *rows]:
        cells = [
            f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        print("  ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best counts")
    parser.add_argument("--transcode-minutes", type=float, default=1)
    parser.add_argument("--no-upload", action="store_true", help="skip S3 (upload time and RSS)")
    parser.add_argument("--upload-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upload_child:
        upload_child(args.upload_child)
        return
    cache = cache_dir()
    vp8 = base_clip(cache, "vp8", VP8_OPUS)
    h264 = segment_set(cache, "h264", base_clip(cache, "h264", H264_AAC), args.transcode_minutes)
    store_cm = contextlib.nullcontext((None, {})) if args.no_upload else s3_store()
    with store_cm as (store, env), tempfile.TemporaryDirectory(dir=cache) as tmp:
        work = Path(tmp)
        rows = []
        for minutes in args.minutes:
            segments = segment_set(cache, "vp8", vp8, minutes)
            rows.append(copy_row(f"{minutes:g} min", segments, work, args.repeat, store))
            print(f"  copy {minutes:g} min done", file=sys.stderr, flush=True)
        print()
        table(COPY_HEAD, rows, "copy path, VP8/Opus 720p30")
        name = f"{args.transcode_minutes:g} min, threads {PROFILE.threads}"
        print()
        table(
            ("ours s", "raw s", "ratio", "x realtime"),
            [transcode_row(name, h264, work, min(2, args.repeat))],  # ~20 s a run
            f"transcode path, H.264/AAC 720p30 to {PROFILE.name}",
        )
        if store is not None:
            stats = measure_upload_rss(env, random_file(cache, GIB))
            print(
                f"\nput_file_multipart of 1 GiB in a child process: {stats['seconds']:.1f} s "
                f"({GIB / stats['seconds'] / 2**20:.0f} MiB/s), peak RSS {stats['hwm_mb']:.0f} MB "
                f"(after imports {stats['hwm_before_mb']:.0f} MB)"
            )


def _verify_and_poster(result: assemble.AssembleResult, work: Path) -> None:
    info = assemble.verify(result.output, result.expected_seconds, expect_audio=result.has_audio)
    assemble.make_poster(FFMPEG, result.output, work / "poster.jpg", info.duration)


if __name__ == "__main__":
    main()
