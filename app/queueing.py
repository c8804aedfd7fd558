"""Enqueueing jobs: every job is declared once as data and enqueued by dotted path.

`app` never imports `workers`; it names job functions as strings. Every enqueue sets a stable job id,
a timeout sized for the work (RQ's 180 s default would kill a recording), TTLs and a retry policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from redis import Redis
from rq import Queue, Retry
from rq.job import Job

QUEUE_NAMES = ("capture", "media", "webhooks", "default")


@dataclass(frozen=True)
class JobSpec:
    func: str
    queue: str
    timeout: int
    retry_intervals: tuple[int, ...] = ()
    result_ttl: int = 3600
    failure_ttl: int = 7 * 24 * 3600
    meta: dict = field(default_factory=dict)

    def retry(self) -> Retry | None:
        if not self.retry_intervals:
            return None
        return Retry(max=len(self.retry_intervals), interval=list(self.retry_intervals))


def capture_spec(max_recording_seconds: int) -> JobSpec:
    # The capture runs for the whole recording, so its timeout is the maximum duration plus slack
    # for the final upload. A capture that raised (storage or database down at stop) is run again:
    # the rerun takes the lease, adopts the spooled segments and finishes the stop.
    return JobSpec(
        "workers.jobs.capture_recording",
        "capture",
        max_recording_seconds + 900,
        retry_intervals=(5, 30, 120, 600),
    )


FINALIZE = JobSpec("workers.jobs.finalize_recording", "media", 1800, retry_intervals=(5, 30, 120, 600))
PURGE = JobSpec("workers.jobs.purge_expired", "default", 1800)
# Short-lived results: it runs every few seconds.
RECONCILE = JobSpec("workers.jobs.reconcile", "default", 120, result_ttl=60, failure_ttl=24 * 3600)
# One job per delivery attempt: the HTTP timeout (at most 60 s) bounds it; retries are new attempts on
# meetrec's own schedule, never RQ retries.
DELIVER_WEBHOOK = JobSpec("workers.webhook_jobs.deliver_webhook", "webhooks", 120, result_ttl=600)
DISPATCH_WEBHOOKS = JobSpec("workers.webhook_jobs.dispatch_webhooks", "webhooks", 300)


class JobQueue:
    """Enqueue `JobSpec`s on Redis."""

    def __init__(self, redis: Redis):
        self.redis = redis

    def queue(self, name: str) -> Queue:
        return Queue(name, connection=self.redis)

    def enqueue(self, spec: JobSpec, *args: object, job_id: str) -> Job:
        """Enqueue `spec` with `args`; the job id makes a repeated enqueue of the same work visible."""
        return self.queue(spec.queue).enqueue(
            spec.func,
            *args,
            job_id=job_id,
            job_timeout=spec.timeout,
            result_ttl=spec.result_ttl,
            failure_ttl=spec.failure_ttl,
            retry=spec.retry(),
            meta=dict(spec.meta),
        )

    def enqueue_at(self, spec: JobSpec, when: datetime, *args: object, job_id: str) -> Job:
        """Enqueue `spec` to run at `when` (a worker started with its scheduler moves it to the queue)."""
        return self.queue(spec.queue).enqueue_at(
            when,
            spec.func,
            *args,
            job_id=job_id,
            job_timeout=spec.timeout,
            result_ttl=spec.result_ttl,
            failure_ttl=spec.failure_ttl,
            retry=spec.retry(),
            meta=dict(spec.meta),
        )
