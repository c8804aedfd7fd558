"""What runs: workers and their heartbeats, the scheduler's last ticks, queue depths, work in flight.

Read by `GET /system` (admin) and the details of `/readyz`. Everything here is read-only and cheap.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from rq import Worker
from sqlalchemy import func, select

from app.models import Recording, RecordingState
from app.queueing import QUEUE_NAMES
from app.runtime import Runtime

TICKS_KEY = "meetrec:scheduler:ticks"


def tick_record() -> str:
    """What a scheduler stores when it enqueues a tick: when, and which process (the leader then)."""
    return json.dumps({"at": time.time(), "by": f"{socket.gethostname()}:{os.getpid()}"})


def status(rt: Runtime) -> dict[str, Any]:
    """Workers, scheduler, queues and recordings in flight, as one JSON-ready dict."""
    return {
        "workers": workers(rt),
        "scheduler": scheduler(rt),
        "queues": {name: rt.jobs.queue(name).count for name in QUEUE_NAMES},
        "recordings": in_flight(rt),
    }


def workers(rt: Runtime) -> list[dict[str, Any]]:
    found = []
    for w in Worker.all(connection=rt.redis):
        job = w.get_current_job_id()
        found.append(
            {
                "name": w.name,
                "queues": w.queue_names(),
                "state": str(w.get_state()),
                "last_heartbeat": w.last_heartbeat.isoformat() if w.last_heartbeat else None,
                "current_job": job,
                "pid": w.pid,
                "hostname": w.hostname,
            }
        )
    return sorted(found, key=lambda w: w["name"])


def scheduler(rt: Runtime) -> dict[str, Any]:
    """Each timetable entry's last tick (seconds ago) and the process that enqueued it."""
    now = time.time()
    ticks = {}
    for entry, raw in rt.redis.hgetall(TICKS_KEY).items():
        record = json.loads(raw)
        ticks[entry.decode() if isinstance(entry, bytes) else entry] = {
            "seconds_ago": round(now - record["at"], 1),
            "by": record["by"],
        }
    leader = max(ticks.values(), key=lambda t: -t["seconds_ago"])["by"] if ticks else None
    return {"leader": leader, "last_ticks": ticks}


def in_flight(rt: Runtime) -> dict[str, int]:
    with rt.db.read() as s:
        rows = s.execute(
            select(Recording.state, func.count())
            .where(Recording.state.in_([RecordingState.STARTED.value, RecordingState.STOPPED.value]))
            .group_by(Recording.state)
        ).all()
    counts = {RecordingState.STARTED.value: 0, RecordingState.STOPPED.value: 0}
    counts.update({state: n for state, n in rows})
    return counts
