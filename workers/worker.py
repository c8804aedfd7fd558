"""`meetrec worker`: an RQ worker whose log lines carry the job id, with the runtime built once.

On SIGTERM (warm shutdown) it drains: a running capture closes and uploads its open segment and hands the
recording over (see `workers.shutdown`); other jobs finish; then the worker exits 0. A second SIGTERM is
RQ's cold shutdown: the horse is killed, and the reconciler gives its recording to another worker.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker
from rq.job import Job
from rq.worker import WorkerStatus

from app.config import Config
from app.observability import logs
from workers import context, shutdown

log = logging.getLogger("meetrec.worker")


# Queues whose jobs run in the worker process itself. A webhook delivery is a short HTTP call in pure
# Python, bounded by its own timeout: forking (and importing, and connecting) for each one would cap
# a worker at a few deliveries a second.
IN_PROCESS_QUEUES = frozenset({"webhooks"})
REDIS_AWAY = (RedisConnectionError, RedisTimeoutError)
# Where each queue's job functions live (app.queueing names them by dotted path). A worker imports those
# of its queues before its first job, so every work horse it forks runs the code the worker started
# with. Left to RQ, each horse imported them from disk, beside the modules its worker had loaded at start
# (the runtime and its ports): code changed under a running worker (a deploy, a `git pull` under `make
# run`) ran half old, half new, and its jobs failed on every retry until the worker restarted (a digest
# job found no `ObjectStore.sha256_of`; every job failed as "Invalid attribute name" when a new module
# imported a name an old one lacked).
JOB_MODULES = {
    "capture": ("workers.jobs",),
    "media": ("workers.jobs",),
    "default": ("workers.jobs",),
    "webhooks": ("workers.webhook_jobs",),  # a delivery imports nothing of the media pipeline
}


class MeetrecWorker(Worker):
    """Forks a work horse per job (a crashing ffmpeg binding cannot take the worker down), except for
    the light jobs of IN_PROCESS_QUEUES."""

    def heartbeat(self, timeout: int | None = None, pipeline=None):
        """Beat, and register again when Redis lost our registration (it restarted empty): otherwise the
        worker keeps working but `GET /system` and RQ's own monitoring no longer see it.

        While a work horse runs, Redis being away is not fatal (see `maintain_heartbeats`)."""
        try:
            if pipeline is None and not self.connection.sismember(self.redis_workers_keys, self.key):
                try:
                    self.connection.delete(self.key)
                    self.register_birth()
                    log.warning("Redis lost this worker's registration; registered again")
                except Exception:  # noqa: BLE001 - Redis is still away: the next beat tries again
                    pass
            return super().heartbeat(timeout, pipeline)
        except REDIS_AWAY:
            if not self.horse_pid:
                raise  # idle: RQ's own loop retries, or the worker exits and its supervisor restarts it
            log.warning("Redis is unreachable; the running job goes on")
            return None

    def maintain_heartbeats(self, job: Job, execution) -> None:
        """Beat while the horse works. A Redis outage must not end the worker here: RQ's worker would
        exit and leave its horse (a process group of its own) running unwatched, or its supervisor would
        kill the capture with it. The capture's truth is its SQL lease; the beats resume with Redis."""
        try:
            super().maintain_heartbeats(job, execution)
        except REDIS_AWAY as e:
            log.warning("Redis is unreachable (%s); job %s goes on", e, job.id)
        if self._stop_requested:
            self._drain_horse()  # again: a horse forked just before the first request missed it

    def execute_job(self, job: Job, queue: Queue) -> None:
        # Bound before the fork: the horse inherits the context, so its lines carry the job id too.
        with logs.context(job_id=job.id):
            log.info("job %s (%s) starting on %s", job.id, job.func_name, queue.name)
            if queue.name in IN_PROCESS_QUEUES:
                execution = self.prepare_execution(job)
                self.perform_job(job, queue, execution)
                self.set_state(WorkerStatus.IDLE)
                return
            super().execute_job(job, queue)

    def setup_work_horse_signals(self) -> None:
        super().setup_work_horse_signals()
        shutdown.handle_drain_signal()

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        self._drain_horse()

    def _drain_horse(self) -> None:
        if self.horse_pid:
            try:
                os.kill(self.horse_pid, shutdown.DRAIN_SIGNAL)
            except ProcessLookupError:
                pass


def load_jobs(queues: Iterable[str]) -> None:
    """Import the job modules of `queues` into this process, so the horses it forks inherit them."""
    for module in sorted({m for q in queues for m in JOB_MODULES.get(q, ())}):
        importlib.import_module(module)


def run_worker(config: Config, queues: list[str], burst: bool = False) -> int:
    load_jobs(queues)  # before anything else: a job module that cannot be imported stops the start
    rt = context.init(config)
    config.spool_dir.mkdir(parents=True, exist_ok=True)
    shutdown.ignore_drain_signal()
    # A 60 s TTL (RQ: 420 s) makes an idle worker beat every 45 s: /system shows fresh heartbeats, and a
    # worker re-registers within a minute after Redis restarted empty.
    # RQ's scheduler (it moves `enqueue_at` jobs, such as webhook retries, to their queues) runs in a
    # child process that dies when Redis goes away; the worker starts it again at its next maintenance,
    # which RQ runs every 10 minutes. Every 30 s (checked between jobs, at most 45 s apart when idle),
    # scheduled jobs resume about a minute after Redis came back.
    worker = MeetrecWorker(
        [rt.jobs.queue(q) for q in queues],
        connection=rt.jobs.redis,  # RQ's worker talks to Redis itself: it registers, beats and runs jobs
        worker_ttl=60,
        maintenance_interval=30,
    )
    worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    return 0
