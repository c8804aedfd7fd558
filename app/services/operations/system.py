"""What runs: workers and their heartbeats, the scheduler's last ticks, queue depths, work in flight.

Read by `GET /system` (admin), the console's System page and the details of `/readyz`. Everything here
is read-only and cheap; the counts come from the read model (`counts`), so every surface agrees.
"""

from __future__ import annotations

import time
from typing import Any

from app.runtime import Runtime
from app.services.operations import counts


def status(rt: Runtime) -> dict[str, Any]:
    """Workers, scheduler, queues and recordings in flight, as one JSON-ready dict; QueueError when
    Redis is down."""
    return {
        "workers": workers(rt),
        "scheduler": scheduler(rt),
        "queues": counts.queue_depths(rt),
        "recordings": counts.in_flight(rt),
    }


def workers(rt: Runtime) -> list[dict[str, Any]]:
    """The registered workers, sorted by name, each with its queues, state and last heartbeat."""
    return [
        {
            "name": w.name,
            "queues": w.queues,
            "state": w.state,
            "last_heartbeat": w.last_heartbeat.isoformat() if w.last_heartbeat else None,
            "current_job": w.current_job,
            "pid": w.pid,
            "hostname": w.hostname,
        }
        for w in rt.jobs.workers()
    ]


def scheduler(rt: Runtime) -> dict[str, Any]:
    """Each timetable entry's last tick (seconds ago) and the process that enqueued it."""
    now = time.time()
    found = rt.jobs.ticks()
    ticks = {entry: {"seconds_ago": round(now - tick.at, 1), "by": tick.by} for entry, tick in found.items()}
    leader = max(found.values(), key=lambda t: t.at).by if found else None  # the latest tick's process
    return {"leader": leader, "last_ticks": ticks}
