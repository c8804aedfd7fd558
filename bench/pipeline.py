"""The whole recording pipeline on this machine: stop -> stopped and stop -> finished, and what a capture
costs, with real workers, Redis, an S3 server and ffmpeg.

A synthetic 720p30 meeting is recorded for --seconds (default 30), then stopped; the script polls the
database every 20 ms and prints how long after the stop request the recording was `stopped` (target:
within 2 s) and `finished` (target: within 5 s), the capture worker's CPU share while recording (% of one
core, the worker and its ffmpeg), and the size per recorded minute. Its yardstick is raw ffmpeg encoding
the same synthetic meeting into one file for the same time (its CPU share).

    .venv/bin/python bench/pipeline.py [--seconds 30] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Config  # noqa: E402
from app.factory import create_app  # noqa: E402
from app.media.commands import OPUS, VP8_LIVE, synthetic_inputs, video_bitrate  # noqa: E402
from app.services.access import keys  # noqa: E402
from app.services.core import recordings  # noqa: E402
from bench.backing import bench_stack  # noqa: E402
from tests.helpers import descendants  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time of `pid` and every process below it."""
    total = 0.0
    for p in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def raw_ffmpeg_cpu(config: Config, seconds: float, out: Path) -> float:
    argv = [
        config.ffmpeg_path, "-hide_banner", "-loglevel", "error", "-nostdin", "-t", str(seconds),
        *synthetic_inputs(config.synthetic_size, config.synthetic_rate), "-map", "0:v:0", "-map", "0:a:0",
        *VP8_LIVE, "-b:v", video_bitrate(config.synthetic_size, config.synthetic_rate), *OPUS,
        "-f", "webm", "-y", str(out),
    ]  # fmt: skip
    began = time.monotonic()
    proc = subprocess.Popen(argv)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return (usage.ru_utime + usage.ru_stime) / (time.monotonic() - began)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args()
    # SQLite in the temporary directory even where DATABASE_URL is set, as this bench has always run.
    with bench_stack({"MEETREC_SYNTHETIC_SIZE": args.size, "DATABASE_URL": ""}) as stack:
        config, rt = stack.config, stack.rt
        env = {**os.environ, **config.child_env()}
        workers: list[subprocess.Popen] = []
        try:
            for queues in (["capture"], ["media", "webhooks", "default"]):
                argv = [sys.executable, "-m", "app.cli", "worker", *queues]
                workers.append(
                    subprocess.Popen(
                        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                    )
                )
            time.sleep(3)
            project = keys.create_project(rt, "bench")
            raw_key = keys.create_key(rt, project.id)[1]
            client = create_app(runtime=rt).test_client()
            room = client.post(
                "/rooms", data={"id": "bench", "user[name]": "Ann", "options[media_source]": "synthetic://meeting"},
                headers={"Authorization": raw_key},
            ).get_json()  # fmt: skip
            client.post(f"/rooms/{room['access_key']}/recording")
            recording_id = client.get(
                "/rooms/bench/recordings", headers={"Authorization": raw_key}
            ).get_json()[0]["id"]
            while not any((config.spool_dir / recording_id).glob("*/seg-*.mkv")):
                time.sleep(0.05)
            cpu0, t0 = cpu_seconds(workers[0].pid), time.monotonic()
            time.sleep(args.seconds)
            share = (cpu_seconds(workers[0].pid) - cpu0) / (time.monotonic() - t0)
            asked = time.monotonic()
            client.delete(f"/rooms/{room['access_key']}/recording")
            stopped_after = finished_after = None
            while finished_after is None and time.monotonic() - asked < 120:
                state = recordings.load(rt, recording_id).state
                if state != "started" and stopped_after is None:
                    stopped_after = time.monotonic() - asked
                if state in ("finished", "failed"):
                    finished_after = time.monotonic() - asked
                time.sleep(0.02)
            final = recordings.load(rt, recording_id)
            raw_share = raw_ffmpeg_cpu(config, args.seconds, stack.base / "raw.webm")
        finally:
            for w in workers:
                w.terminate()
                w.wait()
    minutes = (final.duration or 0) / 60
    print(
        f"recording {args.seconds:.0f} s of the synthetic meeting at {args.size}: "
        f"{final.state}, {final.duration:.2f} s"
    )
    print(f"stop -> stopped   {stopped_after:6.2f} s   (target 2 s)")
    print(f"stop -> finished  {finished_after:6.2f} s   (target 5 s)")
    print(
        f"capture CPU       {share * 100:5.1f} % of a core (worker + ffmpeg); "
        f"raw ffmpeg alone {raw_share * 100:5.1f} % -> ratio {share / raw_share:.2f}"
    )
    print(f"size              {(final.size or 0) / 1e6 / max(minutes, 1e-9):6.1f} MB per minute")


if __name__ == "__main__":
    main()
