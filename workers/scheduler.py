"""`meetrec scheduler`: APScheduler that only enqueues RQ jobs on a timetable declared as data.

Safe to run twice: each tick first takes a short Redis lock named after the job and the tick, so only
one scheduler process enqueues a given tick.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from app.config import Config
from app.queueing import DISPATCH_WEBHOOKS, DRAIN_LINK_ISSUANCES, PURGE, RECONCILE, JobSpec
from app.runtime import Runtime

log = logging.getLogger("meetrec.scheduler")


@dataclass(frozen=True)
class Entry:
    id: str
    spec: JobSpec
    every_seconds: int


TIMETABLE = (
    Entry("retention-purge", PURGE, 600),
    # Lost captures and finalizes re-enqueued from SQL, overdue recordings stopped.
    Entry("reconcile", RECONCILE, 5),
    # Webhook deliveries whose enqueue failed (Redis was down) or whose job was lost.
    Entry("webhook-dispatch", DISPATCH_WEBHOOKS, 30),
    # The link audit: issuances logged by reads (a Redis stream) written to SQL in batches.
    Entry("link-audit-drain", DRAIN_LINK_ISSUANCES, 5),
)


def tick(rt: Runtime, entry: Entry, now: float | None = None) -> bool:
    """Enqueue `entry` once for the current interval, whatever the number of schedulers; True if we did."""
    slot = int((now if now is not None else time.time()) // entry.every_seconds)
    if not rt.jobs.claim_tick(entry.id, slot, ttl_seconds=entry.every_seconds * 2):
        return False
    rt.jobs.enqueue(entry.spec, job_id=f"{entry.id}-{slot}")
    rt.jobs.record_tick(entry.id)
    log.debug("enqueued %s (slot %s)", entry.id, slot)
    return True


def build(rt: Runtime, timetable: tuple[Entry, ...] = TIMETABLE) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone="UTC")
    for entry in timetable:
        scheduler.add_job(
            tick,
            IntervalTrigger(seconds=entry.every_seconds),
            args=(rt, entry),
            id=entry.id,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=entry.every_seconds,
        )
    return scheduler


def run_scheduler(config: Config) -> int:
    rt = Runtime(config)
    scheduler = build(rt)
    log.info("scheduler started: %s", ", ".join(e.id for e in TIMETABLE))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    return 0
