"""The job queue port: everything meetrec asks of Redis goes through `JobQueue` (`rt.jobs`).

Enqueueing, a job's status, forgetting a job, stop signals, the registered workers, the scheduler's
ticks and per-tick lock, queue depths, append-only streams drained by a consumer group (`append`,
`take`, `settle`) and a ping. Every Redis failure leaves as `QueueError`
(`raise QueueError(...) from e`), so callers import no redis exception and decide what an outage means
to them (often nothing: SQL is the truth, Redis only carries work and fast paths).

Every job is declared once as data and enqueued by dotted path: `app` never imports `workers`. Every
enqueue sets a stable job id, a timeout sized for the work (RQ's 180 s default would kill a recording),
TTLs and a retry policy.
"""

from __future__ import annotations

import json
import os
import socket
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import hiredis
from redis import Redis
from redis.exceptions import RedisError, ResponseError
from rq import Queue, Retry, Worker
from rq.exceptions import NoSuchJobError
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.serializers import PickleSerializer
from rq.utils import get_call_string, now, utcformat
from rq.worker import BaseWorker

from app.errors import QueueError

QUEUE_NAMES = ("capture", "media", "webhooks", "default")
JOB_COUNT_STATUSES = ("queued", "started", "scheduled", "failed")
LIVE_STATUSES = frozenset({"queued", "started", "scheduled", "deferred"})
TICKS_KEY = "meetrec:scheduler:ticks"
STOP_SIGNAL_TTL = 24 * 3600  # seconds: a signal no capture read (it polls SQL too) expires on its own


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
# The SHA-256 of a recording its finish joined in the object store (read once, after `finished`).
DIGEST = JobSpec("workers.jobs.digest_recording", "media", 1800, retry_intervals=(5, 30, 120, 600))
PURGE = JobSpec("workers.jobs.purge_expired", "default", 1800)
# Short-lived results: it runs every few seconds.
RECONCILE = JobSpec("workers.jobs.reconcile", "default", 120, result_ttl=60, failure_ttl=24 * 3600)
# A pump: sends the due deliveries concurrently until none is left, claiming for at most 10 s and then
# leaving a successor (about 70 s at worst with the HTTP timeout); retries are new attempts on meetrec's
# own schedule, never RQ retries.
DELIVER_WEBHOOK = JobSpec("workers.webhook_jobs.deliver_webhook", "webhooks", 120, result_ttl=600)
DISPATCH_WEBHOOKS = JobSpec("workers.webhook_jobs.dispatch_webhooks", "webhooks", 300)
# The link audit's stream into SQL, every few seconds: short-lived results.
DRAIN_LINK_ISSUANCES = JobSpec(
    "workers.jobs.drain_link_issuances", "default", 120, result_ttl=60, failure_ttl=24 * 3600
)


@dataclass(frozen=True)
class JobState:
    """What Redis knows of one job: its RQ status and the last sign of life of the worker running it."""

    status: str
    last_beat: datetime | None  # the horse's heartbeat, else its start; None until a worker took it


@dataclass(frozen=True)
class WorkerState:
    """One RQ worker registered in Redis, as its last heartbeat left it."""

    name: str
    queues: list[str]
    state: str
    last_heartbeat: datetime | None
    current_job: str | None
    pid: int | None
    hostname: str | None


@dataclass(frozen=True)
class StreamEntry:
    """One entry of a stream as `take` hands it out; `reclaimed` when another consumer had taken it
    and never settled it (it crashed, maybe after doing the work)."""

    id: str
    fields: dict[str, str]
    reclaimed: bool = False


@dataclass(frozen=True)
class Tick:
    """The scheduler's last enqueue of one timetable entry: when (epoch seconds) and which process."""

    at: float
    by: str


class JobQueue:
    """The one port to Redis: every call raises `QueueError` when Redis fails, never a redis exception."""

    def __init__(self, redis: Redis):
        self.redis = redis

    def queue(self, name: str) -> Queue:
        """The RQ queue `name` (no Redis call: a worker is built from these)."""
        return Queue(name, connection=self.redis)

    def enqueue(self, spec: JobSpec, *args: object, job_id: str) -> str:
        """Enqueue `spec` with `args`; the job id (returned) makes a repeated enqueue of the same work
        visible.

        One round trip of what RQ's own enqueue writes (the queue registered, the job's hash, its id
        pushed) in one MULTI/EXEC: the hash is the spec's `_JobTemplate`, made once by RQ, plus the
        fields of this job. A start call enqueues its capture, and RQ building a Job for each costs
        more than the round trip."""
        fields = _template(spec, self.redis).hash_for(args)
        queue_key = _QUEUE_KEY + spec.queue
        with _failing(f"enqueue of {job_id}"):
            _transaction(
                self.redis,
                ("SADD", Queue.redis_queues_keys, queue_key),
                ("HSET", Job.redis_job_namespace_prefix + job_id, *fields),
                ("RPUSH", queue_key, job_id),
            )
        return job_id

    def enqueue_at(self, spec: JobSpec, when: datetime, *args: object, job_id: str) -> Job:
        """Enqueue `spec` to run at `when` (a worker started with its scheduler moves it to the queue)."""
        with _failing(f"enqueue of {job_id}"):
            return self.queue(spec.queue).enqueue_at(when, spec.func, *args, job_id=job_id, **_options(spec))

    def job(self, job_id: str | None) -> JobState | None:
        """The job's state; None when Redis holds no such job (never enqueued, expired or forgotten)."""
        if not job_id:
            return None
        with _failing(f"fetch of job {job_id}"):
            try:
                job = Job.fetch(job_id, connection=self.redis)
            except NoSuchJobError:
                return None
        status = job.get_status(refresh=False)  # read by the fetch above: no second round trip
        return JobState(getattr(status, "value", status), job.last_heartbeat or job.started_at)

    def job_status(self, job_id: str | None) -> str | None:
        """The job's RQ status ("queued", "started", "finished"...); None when Redis holds no such job."""
        state = self.job(job_id)
        return state.status if state else None

    def job_is_live(self, job_id: str | None) -> bool:
        """True while the job is waiting for a worker or running (queued, scheduled, deferred, started)."""
        return self.job_status(job_id) in LIVE_STATUSES

    def forget_job(self, job_id: str) -> None:
        """Delete the job's record (a no-op when there is none), so the same id can be enqueued again."""
        with _failing(f"delete of job {job_id}"):
            try:
                job = Job.fetch(job_id, connection=self.redis)
            except NoSuchJobError:
                return
            _prune_dead_executions(job)
            job.delete()

    def signal_stop(self, recording_id: str) -> None:
        """Tell the recording's capture to stop (a fast path: the capture also polls SQL)."""
        with _failing(f"stop signal of {recording_id}"):
            _round_trip(self.redis, ("SET", stop_signal_key(recording_id), "1", "EX", STOP_SIGNAL_TTL))

    def stop_signalled(self, recording_id: str) -> bool:
        """True when a stop was signalled for the recording in the last day."""
        with _failing(f"stop signal of {recording_id}"):
            return bool(self.redis.exists(stop_signal_key(recording_id)))

    def workers(self) -> list[WorkerState]:
        """The workers registered in Redis whose registration has not expired, sorted by name."""
        with _failing("listing workers"):
            found = [_worker_state(w) for w in Worker.all(connection=self.redis)]
        return sorted(found, key=lambda w: w.name)

    def claim_tick(self, entry_id: str, slot: int, ttl_seconds: int) -> bool:
        """Take the lock of `entry_id`'s tick number `slot`; True for the one scheduler that got it."""
        with _failing(f"tick lock of {entry_id}"):
            return bool(self.redis.set(f"meetrec:scheduler:{entry_id}:{slot}", "1", nx=True, ex=ttl_seconds))

    def record_tick(self, entry_id: str) -> None:
        """Note that this process just enqueued `entry_id` (read back by `ticks`)."""
        record = json.dumps({"at": time.time(), "by": f"{socket.gethostname()}:{os.getpid()}"})
        with _failing(f"tick record of {entry_id}"):
            self.redis.hset(TICKS_KEY, entry_id, record)

    def ticks(self) -> dict[str, Tick]:
        """Each timetable entry's last tick, by entry id."""
        with _failing("reading scheduler ticks"):
            raw = self.redis.hgetall(TICKS_KEY)
        found = {}
        for entry, record in raw.items():
            parsed = json.loads(record)
            found[entry.decode() if isinstance(entry, bytes) else entry] = Tick(parsed["at"], parsed["by"])
        return found

    def queue_jobs(self) -> dict[str, dict[str, int]]:
        """Jobs per queue and status: "queued" (the queue depth), "started", "scheduled", "failed"."""
        queues = [self.queue(name) for name in QUEUE_NAMES]
        with _failing("counting jobs"):
            pipe = self.redis.pipeline(transaction=False)
            for q in queues:
                pipe.llen(q.key)
                pipe.zcard(q.started_job_registry.key)
                pipe.zcard(q.scheduled_job_registry.key)
                pipe.zcard(q.failed_job_registry.key)
            counts = iter(pipe.execute())
        return {q.name: {status: next(counts) for status in JOB_COUNT_STATUSES} for q in queues}

    def append(self, stream: str, fields: dict[str, str]) -> str:
        """Add an entry to `stream` (XADD) and return its id. Acknowledged means held by Redis, and
        written to its append-only file when it keeps one (fsync'ed within a second: `everysec`)."""
        with _failing(f"append to {stream}"):
            return _text(self.redis.xadd(stream, fields))  # type: ignore[arg-type]

    def take(
        self, stream: str, group: str, consumer: str, count: int, reclaim_idle_ms: int
    ) -> list[StreamEntry]:
        """Up to `count` entries of `stream` for `consumer` of `group` (made on first use, from the
        stream's start): first those another consumer took at least `reclaim_idle_ms` ago and never
        settled (a crashed consumer's), then new ones. Each stays pending until `settle`d."""
        with _failing(f"reading {stream}"):
            try:
                return self._take(stream, group, consumer, count, reclaim_idle_ms)
            except ResponseError as e:
                if "NOGROUP" not in str(e):
                    raise
                self._make_group(stream, group)  # first use, or a Redis that restarted empty
                return self._take(stream, group, consumer, count, reclaim_idle_ms)

    def settle(self, stream: str, group: str, entry_ids: list[str]) -> None:
        """Acknowledge and delete entries whose work is done (committed): they are never handed out
        again."""
        if not entry_ids:
            return
        with _failing(f"settling {len(entry_ids)} entries of {stream}"):
            pipe = self.redis.pipeline(transaction=True)
            pipe.xack(stream, group, *entry_ids)
            pipe.xdel(stream, *entry_ids)
            pipe.execute()

    def _take(
        self, stream: str, group: str, consumer: str, count: int, reclaim_idle_ms: int
    ) -> list[StreamEntry]:
        claimed: Any = self.redis.xautoclaim(stream, group, consumer, reclaim_idle_ms, "0-0", count=count)
        # (XACK and XDEL go together in `settle`, so no pending entry lacks its fields.)
        found = [_entry(raw, reclaimed=True) for raw in claimed[1] if raw[0] is not None]
        if len(found) < count:
            read: Any = self.redis.xreadgroup(group, consumer, {stream: ">"}, count=count - len(found))
            for entries in read.values() if isinstance(read, dict) else [e for _, e in read or ()]:
                found += [_entry(raw, reclaimed=False) for raw in entries]  # (RESP3 answers a dict)
        return found

    def _make_group(self, stream: str, group: str) -> None:
        try:
            self.redis.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):  # another consumer made it meanwhile
                raise

    def ping(self) -> None:
        """Return when Redis answers; raise QueueError otherwise."""
        with _failing("ping"):
            self.redis.ping()


def stop_signal_key(recording_id: str) -> str:
    return f"meetrec:stop:{recording_id}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry(raw: tuple, reclaimed: bool) -> StreamEntry:
    """A stream entry as redis-py returns it; an entry deleted while pending has no fields."""
    entry_id, fields = raw
    return StreamEntry(_text(entry_id), {_text(k): _text(v) for k, v in (fields or {}).items()}, reclaimed)


_QUEUE_KEY = Queue.redis_queue_namespace_prefix


class _JobTemplate:
    """The hash RQ writes for every job of one spec (its queue, timeout, TTLs, retries, meta, status
    queued), taken from a Job RQ made and prepared as its enqueue does; `hash_for` adds what differs
    per job, as RQ computes it (tests/test_queueing.py compares the two hashes)."""

    PER_JOB = ("data", "description", "created_at", "enqueued_at")

    def __init__(self, spec: JobSpec, redis: Redis):
        queue = Queue(spec.queue, connection=redis)  # no Redis call: the job is only described
        job = queue.create_job(
            spec.func,
            timeout=spec.timeout,
            result_ttl=spec.result_ttl,
            failure_ttl=spec.failure_ttl,
            retry=spec.retry(),
            meta=dict(spec.meta),
            job_id="template",
        )
        job.origin, job.enqueued_at, job._status = queue.name, now(), JobStatus.QUEUED
        self.func = spec.func
        encode = redis.get_encoder().encode  # as redis-py would send each value (an enum as its value)
        self.fields = tuple(
            encode(x) for k, v in job.to_dict().items() if k not in self.PER_JOB for x in (k, v)
        )

    def hash_for(self, args: tuple[object, ...]) -> tuple[bytes | str, ...]:
        """The job's hash with these positional arguments, created and enqueued now: field, value,
        field, value... as HSET takes them."""
        at = utcformat(now())
        return (
            *self.fields,
            "data", zlib.compress(PickleSerializer.dumps((self.func, None, args, {}))),
            "description", get_call_string(self.func, args, {}, max_length=75),
            "created_at", at,
            "enqueued_at", at,
        )  # fmt: skip


_templates: dict[str, _JobTemplate] = {}  # by repr(spec): a spec holds a dict, and is made per call


def _template(spec: JobSpec, redis: Redis) -> _JobTemplate:
    found = _templates.get(slot := repr(spec))
    if found is None:
        found = _templates[slot] = _JobTemplate(spec, redis)
    return found


def _options(spec: JobSpec) -> dict[str, object]:
    """RQ's enqueue options for `spec`."""
    return {
        "job_timeout": spec.timeout,
        "result_ttl": spec.result_ttl,
        "failure_ttl": spec.failure_ttl,
        "retry": spec.retry(),
        "meta": dict(spec.meta),
    }


def _worker_state(w: BaseWorker) -> WorkerState:
    return WorkerState(
        name=w.name,
        queues=w.queue_names(),
        state=str(w.get_state()),
        last_heartbeat=w.last_heartbeat,
        current_job=w.get_current_job_id(),
        pid=w.pid,
        hostname=w.hostname,
    )


def _round_trip(redis: Redis, *commands: tuple[Any, ...]) -> list[Any]:
    """Send `commands` (each packed by hiredis: str, bytes, int or float arguments) in one write on a
    pooled connection and read their replies: the hot paths' calls (a start's enqueue, a stop's
    signal). redis-py's own command path (its retry wrapper, events and observability hooks, an encoder
    call per argument, response callbacks) costs more CPU than the round trip itself (measured here: a
    SET 120 us of CPU through it, 86 us this way; an enqueue of a job's 25 fields 356 us, 190 us).

    A connection the server closed while pooled is replaced by the pool before use (its EOF is
    readable); one that fails during the call is dropped, as is one an error reply left replies unread
    on. An error reply raises `ResponseError`."""
    pool = redis.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([b"".join(hiredis.pack_command(c) for c in commands)])
        return [conn.read_response() for _ in commands]
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)


def _transaction(redis: Redis, *commands: tuple[Any, ...]) -> list[Any]:
    """`commands` in one MULTI/EXEC, in one round trip (`_round_trip`); their replies. A command Redis
    refused inside the transaction raises `ResponseError`, as redis-py's pipeline does."""
    replies = _round_trip(redis, ("MULTI",), *commands, ("EXEC",))[-1]
    if replies is None:
        raise ResponseError("the transaction was aborted")
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return list(replies)


@contextmanager
def _failing(what: str) -> Iterator[None]:
    """Turn a Redis failure inside the block into QueueError naming `what` failed."""
    try:
        yield
    except RedisError as e:
        raise QueueError(f"Redis: {what} failed: {e}") from e


def _prune_dead_executions(job: Job) -> None:
    """Drop the job's execution ids whose records are gone (a killed work horse never removes its own).

    RQ's `Job.delete` fetches every execution its registry lists and raises ValueError on a missing one,
    so a job whose worker was killed mid-run could never be deleted and re-enqueued.
    """
    registry = job.execution_registry
    ids = registry.get_execution_ids()
    if not ids:
        return
    with job.connection.pipeline() as pipe:
        for execution_id in ids:
            pipe.exists(Execution(execution_id, job.id, job.connection).key)
        alive = pipe.execute()
    dead = [execution_id for execution_id, exists in zip(ids, alive, strict=True) if not exists]
    if dead:
        job.connection.zrem(registry.key, *dead)
