"""Capture density: how many copy-mode captures and live transcodes this machine sustains in real time.

A capture here is what the capture job runs for a pull source (app/services/pipeline/capture.py, through
app/media/relay.py): a reader ffmpeg (`commands.relay_reader_argv`) holding the source's one connection
and piping NUT into a writer ffmpeg (`commands.relay_writer_argv`) that cuts Matroska segments of the
configured length (MEETREC_SEGMENT_SECONDS, 4 s) and lists each in segments.csv as it closes. The mode is
the product's choice (`commands.choose_mode` on the source's codecs): a VP8/Opus source is copied, an
H.264/AAC one transcoded live (VP8 `-threads 1`, cpu-used 16, Opus). Closed segments are read with
`app.media.segments.SegmentList` and deleted, as the capture does after uploading them. Not measured: the
worker's Python beside each capture (lease renewals, stop polls, the uploads themselves).

Sources: one SRT listener on 127.0.0.1 per capture, an ffmpeg `-re -stream_loop -1 -c copy` of a 30 s
720p30 clip (testsrc2 and a tone) encoded once and cached in $MEETREC_BENCH_CACHE or var/bench-cache:
VP8/Opus in WebM (as tests/mediaservers.py sends it over SRT) for copy mode, H.264/AAC in MPEG-TS for
the live transcode. The feeders run on the same cores: their CPU is printed apart.

Each step starts N feeders, then N captures (staggered), waits until every capture has closed a segment,
then measures for --seconds and prints:
- cores: the captures' ffmpeg (readers and writers) over the window, from /proc/PID/stat; per capture;
  the feeders; the whole machine from /proc/stat (other work on it included);
- RSS per capture (reader + writer VmRSS, the larger of two samples): mean and max, and the private part
  (RssAnon: VmRSS counts the shared ffmpeg binary in every process);
- late: the worst lateness of a segment in the window. A segment whose media ends at E is due at
  start + delay + E, where start is when its reader was spawned and delay the smallest such offset the
  capture showed (its pipeline's own delay: about -0.2 s here, the feeder's -re sends its first 0.5 s at
  once; an MPEG-TS capture's first segment closes ~2.5 s behind, probing, then it catches up); late is
  how long after that it closed (the file's mtime). The open segment counts too: if none closed for a
  segment length past the last one's due time, it is that late already;
- rate: media seconds written per wall second over the window (the writer's `-progress` out_time; the
  lowest capture), and ffmpeg's own `speed` (the lowest: out_time over the writer's whole run);
- bytes: recorded bytes per media second against the clip's (copy mode, lowest capture): SRT drops
  what comes too late, which would not show as lateness;
- sustained: every capture alive and no segment late by more than --tolerance (1 s), rate >= 0.98 and,
  in copy mode, bytes >= 0.97. Each mode's ramp stops at its first step that fails (--keep-going: runs
  them all, and the largest sustained N is the largest that passed).

    .venv/bin/python bench/density.py [--copy 1 2 4 8 16 32 64 100] [--transcode 1 2 4 6 8 10 12]
        [--seconds 30] [--tolerance 1.0] [--keep-going] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Config  # noqa: E402
from app.media.commands import (  # noqa: E402
    KEYFRAME_SECONDS,
    OPUS,
    VP8_LIVE,
    choose_mode,
    relay_reader_argv,
    relay_writer_argv,
    video_bitrate,
)
from app.media.segments import SegmentList  # noqa: E402
from app.media.sources import parse_source  # noqa: E402

CONFIG = Config.from_env({})
FFMPEG = CONFIG.ffmpeg_path
SIZE, RATE = "1280x720", 30
CLIP_SECONDS = 30
TICKS = os.sysconf("SC_CLK_TCK")
QUIET = ["-hide_banner", "-loglevel", "error", "-nostdin"]
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}  # as app.media.runner gives ffmpeg
# What a camera or a meeting app's egress sends: H.264 (no B-frames, as for live) and AAC.
H264_AAC = [
    "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-b:v", "2500k",
    "-g", str(RATE * KEYFRAME_SECONDS), "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
]  # fmt: skip
SOURCES = {
    # mode: (codecs as ffmpeg names them, clip file, encoder options, feeder muxer)
    "copy": (
        ("vp8", "opus"),
        "density-vp8-opus.webm",
        [*VP8_LIVE, "-b:v", video_bitrate(SIZE, RATE), "-g", str(RATE * KEYFRAME_SECONDS), *OPUS],
        ["-f", "webm", "-cluster_time_limit", "500", "-flush_packets", "1"],
    ),
    "transcode": (
        ("h264", "aac"),
        "density-h264-aac.ts",
        H264_AAC,
        ["-f", "mpegts"],
    ),
}
STAGGER_SECONDS = 0.05  # between capture starts: 100 captures start over 5 s, not all in one instant
WARMUP_LIMIT = 30.0  # a capture that closed no segment by then fails the step
POLL_SECONDS = 0.5


@dataclass
class Capture:
    spool: Path
    port: int  # the feeder's SRT listener on 127.0.0.1
    feeder: subprocess.Popen[bytes]
    reader: subprocess.Popen[bytes] | None = None
    writer: subprocess.Popen[bytes] | None = None
    started: float = 0.0  # wall time the reader was spawned
    listing: SegmentList | None = None
    seen: int = 0
    segments: list[tuple[float, float, int]] = field(default_factory=list)  # (media end, closed at, bytes)
    rss: tuple[int, int] = (0, 0)  # reader + writer VmRSS and RssAnon, kB: the largest sample

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in (self.reader, self.writer) if p is not None]

    def collect(self) -> None:
        """Note each newly closed segment (its mtime is its last cluster's flush), then delete it."""
        assert self.listing is not None
        closed = self.listing.closed()
        for segment in closed[self.seen :]:
            try:
                stat = segment.path.stat()
            except FileNotFoundError:
                continue
            self.segments.append((segment.end, stat.st_mtime, stat.st_size))
            segment.path.unlink(missing_ok=True)
        self.seen = len(closed)

    def delay(self) -> float:
        """The smallest offset of a segment's close behind real time: the pipeline's own delay."""
        return min(closed - self.started - end for end, closed, _ in self.segments)


def cache_dir() -> Path:
    path = Path(os.environ.get("MEETREC_BENCH_CACHE") or ROOT / "var" / "bench-cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def clip(mode: str) -> Path:
    """The mode's source clip, encoded once (CLIP_SECONDS of 720p30 test pattern and tone)."""
    _, name, codecs, _ = SOURCES[mode]
    path = cache_dir() / name
    if not path.exists():
        print(f"encoding {path.name} ({CLIP_SECONDS} s of {SIZE}@{RATE}) ...", flush=True)
        part = path.with_suffix(".part" + path.suffix)
        graph = (
            f"testsrc2=size={SIZE}:rate={RATE}[out0];sine=frequency=440:sample_rate=48000:beep_factor=4[out1]"
        )
        argv = [FFMPEG, *QUIET, "-t", str(CLIP_SECONDS), "-f", "lavfi", "-i", graph, *codecs, "-y", str(part)]
        subprocess.run(argv, check=True, timeout=600)
        part.rename(path)
    return path


def clip_bytes_per_second(path: Path) -> float:
    return path.stat().st_size / CLIP_SECONDS


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_us() -> None:
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no ffmpeg outlives a killed bench


def spawn(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=ENV, preexec_fn=_die_with_us, **kwargs)  # type: ignore[call-overload]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def start_feeders(mode: str, count: int, work: Path) -> list[Capture]:
    _, _, _, muxer = SOURCES[mode]
    source = clip(mode)
    captures = []
    for i in range(count):
        port = free_udp_port()
        spool = work / f"{mode}-{i:03d}"
        spool.mkdir(parents=True)
        argv = [
            FFMPEG, *QUIET, "-re", "-stream_loop", "-1", "-i", str(source), "-map", "0", "-c", "copy",
            *muxer, f"srt://127.0.0.1:{port}?mode=listener",
        ]  # fmt: skip
        with (spool / "feeder.log").open("wb") as log:
            feeder = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        captures.append(Capture(spool, port, feeder))
    deadline = time.monotonic() + 20
    while not all(udp_bound(c.port) for c in captures):
        if time.monotonic() > deadline or any(c.feeder.poll() is not None for c in captures):
            raise SystemExit(f"the SRT feeders did not start: see {work}/*/feeder.log")
        time.sleep(0.1)
    return captures


def start_capture(capture: Capture, mode: str, max_seconds: int) -> None:
    """Reader and writer as `Relay.start` and `Relay.advance` run them, the pipe grown as there."""
    source = parse_source(f"srt://127.0.0.1:{capture.port}")
    reader_argv = relay_reader_argv(FFMPEG, source)
    writer_argv = relay_writer_argv(
        FFMPEG,
        capture.spool,
        mode=mode,
        segment_seconds=CONFIG.segment_seconds,
        start_number=0,
        size=CONFIG.synthetic_size,
        rate=CONFIG.synthetic_rate,
        max_seconds=max_seconds,
    )
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (AttributeError, OSError):
        pass
    capture.started = time.time()
    with (capture.spool / "reader.log").open("wb") as log:
        capture.reader = spawn(reader_argv, stdin=subprocess.PIPE, stdout=write_end, stderr=log)
    with (capture.spool / "writer.log").open("wb") as log, (capture.spool / "progress").open("wb") as out:
        capture.writer = spawn(writer_argv, stdin=read_end, stdout=out, stderr=log)
    os.close(read_end)
    os.close(write_end)
    capture.listing = SegmentList(capture.spool)


def lower_log_level(capture: Capture) -> None:
    """Key `-`: the reader described the source, errors only from now on (as `Relay.advance` does)."""
    assert capture.reader is not None and capture.reader.stdin is not None
    try:
        capture.reader.stdin.write(b"-")
        capture.reader.stdin.flush()
    except OSError:
        pass  # it exited: the step counts it as not alive


def progress(capture: Capture) -> dict[str, str]:
    """The writer's latest complete `-progress` block."""
    with (capture.spool / "progress").open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - 4096))
        lines = f.read().decode("utf-8", "replace").splitlines()
    ends = [i for i, line in enumerate(lines) if line.startswith("progress=")]
    if not ends:
        return {}
    start = ends[-2] + 1 if len(ends) > 1 else 0
    return dict(line.partition("=")[::2] for line in lines[start : ends[-1] + 1])


def out_seconds(capture: Capture) -> tuple[float, float]:
    """(wall time, media seconds written) of the writer's latest progress block: the file's mtime dates
    it (a starved writer reports late, and its last block is older than the moment it is read)."""
    block = progress(capture)
    value = block.get("out_time_us", "")
    return (capture.spool / "progress").stat().st_mtime, int(value) / 1e6 if value.isdigit() else 0.0


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values[:8]) - idle, sum(values[:8])


def memory_kb(pid: int) -> tuple[int, int]:
    """VmRSS and RssAnon of `pid` in kB (0, 0 once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return int(fields.get("VmRSS", "0 kB").split()[0]), int(fields.get("RssAnon", "0 kB").split()[0])


def log_lines(capture: Capture) -> list[str]:
    """Lines the capture's ffmpeg logged beyond the reader's description (both log errors only then)."""
    reader = (capture.spool / "reader.log").read_text(errors="replace").partition("Press [q] to stop")[2]
    writer = (capture.spool / "writer.log").read_text(errors="replace")
    return [line for line in (reader.splitlines()[1:] + writer.splitlines()) if line.strip()]


def sample_memory(captures: list[Capture]) -> None:
    for c in captures:
        rss, anon = (sum(v) for v in zip(*(memory_kb(pid) for pid in c.pids), strict=True))
        c.rss = (max(c.rss[0], rss), max(c.rss[1], anon))


class Collector(threading.Thread):
    """Reads every capture's segment list every POLL_SECONDS, as the capture job's loop does."""

    def __init__(self, captures: list[Capture]) -> None:
        super().__init__(daemon=True)
        self.captures = captures
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(POLL_SECONDS):
            for c in self.captures:
                if c.listing is not None:
                    c.collect()


def run_step(mode: str, count: int, seconds: float, work: Path) -> Step:
    captures = start_feeders(mode, count, work)
    collector = Collector(captures)
    try:
        for c in captures:
            start_capture(c, mode, int(seconds + WARMUP_LIMIT + 120))
            time.sleep(STAGGER_SECONDS)
        collector.start()
        deadline = time.monotonic() + WARMUP_LIMIT
        while not all(c.segments for c in captures) and time.monotonic() < deadline:
            time.sleep(0.2)
        for c in captures:
            lower_log_level(c)
        return measure(mode, captures, seconds)
    finally:
        collector.done.set()
        for c in captures:
            for p in (c.reader, c.writer, c.feeder):
                if p is not None and p.poll() is None:
                    p.kill()
        for c in captures:
            for p in (c.reader, c.writer, c.feeder):
                if p is not None:
                    p.wait()
            if c.reader is not None and c.reader.stdin is not None:
                with contextlib.suppress(OSError):  # a `-` it never read
                    c.reader.stdin.close()
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()


@dataclass
class Step:
    """What one step of N captures measured (see the module docstring for each figure)."""

    n: int
    cores: float
    feed: float
    machine: float
    bench: float
    rss: tuple[float, float, float]  # MB per capture: VmRSS mean, VmRSS max, RssAnon mean
    late: float
    rate: float
    speed: float
    byte_ratio: float | None
    errors: list[str]  # what the captures' ffmpeg logged (errors only)
    alive: int
    warm: bool

    @property
    def others(self) -> float:
        """Cores the machine spent on anything but this bench (other work, the kernel's own)."""
        return self.machine - self.cores - self.feed - self.bench

    def sustained(self, tolerance: float) -> bool:
        return (
            self.warm
            and self.alive == self.n
            and self.late <= tolerance
            and self.rate >= 0.98
            and not self.errors
            and (self.byte_ratio is None or self.byte_ratio >= 0.97)
        )

    def row(self, tolerance: float) -> str:
        ratio = "-" if self.byte_ratio is None else f"{self.byte_ratio:.2f}"
        verdict = "yes" if self.sustained(tolerance) else "NO"
        if self.alive < self.n:
            verdict += f" ({self.alive}/{self.n} alive)"
        elif not self.warm:
            verdict += " (a capture closed no segment in time)"
        return (
            f"{self.n:>4} {self.cores:>6.2f} {100 * self.cores / self.n:>6.1f} {self.feed:>5.2f} "
            f"{self.bench:>5.2f} {self.machine:>7.2f} {self.others:>6.2f}  "
            f"{self.rss[0]:>9.1f}/{self.rss[1]:.1f} ({self.rss[2]:>4.1f})  "
            f"{self.late:>7.2f} {self.rate:>5.2f} {self.speed:>5.2f}x {ratio:>5} "
            f"{len(self.errors):>4}  {verdict}"
            + (f"\n      first error: {self.errors[0]}" if self.errors else "")
        )


HEADER = (
    f"{'N':>4} {'cores':>6} {'%/cap':>6} {'feed':>5} {'bench':>5} {'machine':>7} {'others':>6}  "
    f"{'RSS MB mean/max (anon)':>22}  {'late s':>7} {'rate':>5} {'speed':>6} {'bytes':>5} {'errs':>4}  "
    "sustained"
)


class Usage:
    """CPU seconds of the captures, the feeders, the whole machine and this script, at one instant."""

    def __init__(self, captures: list[Capture]) -> None:
        self.at = time.time()
        self.captures = sum(cpu_ticks(pid) for c in captures for pid in c.pids) / TICKS
        self.feeders = sum(cpu_ticks(c.feeder.pid) for c in captures) / TICKS
        self.machine = machine_ticks()
        self.bench = time.process_time()
        self.out = [out_seconds(c) for c in captures]


def measure(mode: str, captures: list[Capture], seconds: float) -> Step:
    warm = all(c.segments for c in captures)
    before = Usage(captures)
    for _ in range(2):
        time.sleep(seconds / 2)
        sample_memory(captures)
    after = Usage(captures)
    for c in captures:
        c.collect()
    wall = after.at - before.at
    busy, total = (a - b for a, b in zip(after.machine, before.machine, strict=True))
    ratios = [byte_ratio(c, before.at, after.at) for c in captures] if mode == "copy" else []
    rss = [c.rss[0] / 1024 for c in captures]
    return Step(
        n=len(captures),
        cores=(after.captures - before.captures) / wall,
        feed=(after.feeders - before.feeders) / wall,
        machine=busy / total * (os.cpu_count() or 1),
        bench=(after.bench - before.bench) / wall,
        rss=(statistics.mean(rss), max(rss), statistics.mean(c.rss[1] / 1024 for c in captures)),
        late=max(lateness(c, before.at, after.at) for c in captures),
        rate=min((b[1] - a[1]) / max(b[0] - a[0], 1e-3) for a, b in zip(before.out, after.out, strict=True)),
        speed=min(float(progress(c).get("speed", "0x").rstrip("x") or 0) for c in captures),
        byte_ratio=min(ratios) if ratios else None,
        errors=[line for c in captures for line in log_lines(c)],
        alive=sum(1 for c in captures if all(p.poll() is None for p in (c.reader, c.writer, c.feeder) if p)),
        warm=warm,
    )


def lateness(capture: Capture, start: float, end: float) -> float:
    """The worst lateness of a segment closed in [start, end], the open one at `end` included."""
    if not capture.segments:
        return float("inf")
    due = capture.started + capture.delay()  # + a segment's media end: when it is due
    closed = [at - due - media_end for media_end, at, _ in capture.segments if start <= at <= end]
    open_since = end - (due + capture.segments[-1][0] + CONFIG.segment_seconds)
    return max([*closed, open_since])


def byte_ratio(capture: Capture, start: float, end: float) -> float:
    """Bytes per media second of the segments closed in [start, end] against the source clip's (0: none)."""
    inside = [i for i, (_, at, _) in enumerate(capture.segments) if start <= at <= end and i > 0]
    if not inside:
        return 0.0
    media = capture.segments[inside[-1]][0] - capture.segments[inside[0] - 1][0]
    size = sum(capture.segments[i][2] for i in inside)
    return size / media / clip_bytes_per_second(clip("copy"))


def ramp(
    mode: str, counts: list[int], seconds: float, tolerance: float, work: Path, keep_going: bool
) -> tuple[int, Step | None]:
    codecs, *_ = SOURCES[mode]
    assert choose_mode(codecs) == mode, f"the product would not {mode} a {codecs} source"
    clip(mode)
    print(f"\n{mode}: {'+'.join(codecs)} source over SRT, {CONFIG.segment_seconds} s segments")
    print(HEADER)
    best: tuple[int, Step | None] = (0, None)
    for count in counts:
        step = run_step(mode, count, seconds, work)
        print(step.row(tolerance), flush=True)
        if not step.sustained(tolerance):
            if not keep_going:
                break
        elif best[1] is None or best[0] < count:
            best = (count, step)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copy", type=int, nargs="*", default=[1, 2, 4, 8, 16, 32, 64, 100])
    parser.add_argument("--transcode", type=int, nargs="*", default=[1, 2, 4, 6, 8, 10, 12])
    parser.add_argument("--seconds", type=float, default=30, help="measured window of each step")
    parser.add_argument("--tolerance", type=float, default=1.0, help="seconds a segment may be late")
    parser.add_argument(
        "--keep-going", action="store_true", help="run every step, not stopping at the first that fails"
    )
    parser.add_argument("--quick", action="store_true", help="10 s steps: copy 1 16 64, transcode 1 4 8")
    args = parser.parse_args()
    if args.quick:
        args.copy, args.transcode, args.seconds = [1, 16, 64], [1, 4, 8], 10.0
    print(
        f"{os.cpu_count()} cores, {Path(FFMPEG).name}, {SIZE}@{RATE} sources looping a {CLIP_SECONDS} s clip"
    )
    work = Path(tempfile.mkdtemp(prefix="meetrec-density-"))
    try:
        modes = [("copy", args.copy), ("transcode", args.transcode)]
        best = {
            mode: ramp(mode, counts, args.seconds, args.tolerance, work, args.keep_going)
            for mode, counts in modes
            if counts
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    for mode, (n, step) in best.items():
        if step is None:
            print(f"{mode}: not even one capture sustained")
            continue
        per = step.cores / step.n
        print(
            f"{mode}: largest sustained N = {n}, {100 * per:.1f}% of a core and {step.rss[0]:.0f} MB RSS "
            f"({step.rss[2]:.0f} MB private) per capture there; {os.cpu_count()} cores / that = "
            f"{(os.cpu_count() or 1) / per:.0f} captures if nothing else (feeders, other work) ran"
        )


if __name__ == "__main__":
    main()
