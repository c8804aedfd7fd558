"""The job queue port (`app.queueing.JobQueue`) against the session's real Redis, and against none."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest
from redis import Redis
from redis.exceptions import RedisError, ResponseError
from rq import Queue, Worker
from rq.job import Job

from app.errors import QueueError
from app.queueing import (
    FINALIZE,
    QUEUE_NAMES,
    RECONCILE,
    JobQueue,
    _options,
    _round_trip,
    capture_spec,
    stop_signal_key,
)
from app.runtime import Runtime
from app.services.operations import readiness
from tests.helpers import free_port as _free_port
from tests.helpers import runtime_on_redis_db


@pytest.fixture
def own(rt: Runtime):  # type: ignore[no-untyped-def]
    """A runtime on a Redis database of its own (no worker consumes its queues)."""
    with runtime_on_redis_db(rt, 9) as other:
        yield other


@pytest.fixture
def down(rt: Runtime) -> JobQueue:
    """A port on a loopback port nothing listens on."""
    return Runtime(replace(rt.config, redis_url=f"redis://127.0.0.1:{_free_port()}/0")).jobs


def test_an_enqueued_job_is_live_until_forgotten(own):
    own.jobs.enqueue(RECONCILE, job_id="port-live")
    assert own.jobs.job_status("port-live") == "queued"
    assert own.jobs.job_is_live("port-live")
    own.jobs.forget_job("port-live")
    assert own.jobs.job_status("port-live") is None
    assert not own.jobs.job_is_live("port-live")


def test_an_unknown_job_has_no_state_and_forgetting_it_is_a_no_op(own):
    assert own.jobs.job(None) is None
    assert own.jobs.job("port-never-enqueued") is None
    own.jobs.forget_job("port-never-enqueued")


def test_a_job_whose_execution_record_is_gone_can_still_be_forgotten(own):
    # A worker killed mid-job leaves its execution id listed after the execution's own record expired.
    job = Job.fetch(own.jobs.enqueue(RECONCILE, job_id="port-orphan"), connection=own.redis)
    own.redis.zadd(job.execution_registry.key, {"killed-horse": 4102444800})
    own.jobs.forget_job("port-orphan")
    assert own.jobs.job("port-orphan") is None
    assert not own.redis.exists(job.execution_registry.key)
    own.jobs.enqueue(RECONCILE, job_id="port-orphan")
    assert own.jobs.job_status("port-orphan") == "queued"


@pytest.mark.parametrize("spec", [capture_spec(3600), RECONCILE, FINALIZE], ids=lambda spec: spec.func)
def test_an_enqueue_writes_the_hash_rqs_own_enqueue_writes(own, spec):
    """The port writes a job's hash from a template RQ made; RQ's enqueue of the same job, field for
    field, but for when it was created and enqueued."""
    own.jobs.enqueue(spec, "rec-1", job_id="port-ours")
    Queue(spec.queue, connection=own.redis).enqueue(spec.func, "rec-1", job_id="port-rqs", **_options(spec))
    ours, rqs = own.redis.hgetall("rq:job:port-ours"), own.redis.hgetall("rq:job:port-rqs")
    stamps = (b"created_at", b"enqueued_at")
    assert {k: v for k, v in ours.items() if k not in stamps} == {
        k: v for k, v in rqs.items() if k not in stamps
    }
    job = Job.fetch("port-ours", connection=own.redis)
    assert (job.func_name, job.args, job.get_status()) == (spec.func, ("rec-1",), "queued")
    assert job.enqueued_at is not None and job.created_at is not None
    assert own.redis.lrange(f"rq:queue:{spec.queue}", 0, -1) == [b"port-ours", b"port-rqs"]


def test_an_enqueue_redis_refuses_inside_its_transaction_raises_and_the_next_call_works(own):
    own.redis.set("rq:queue:default", "not a list")  # RPUSH fails inside the MULTI
    with pytest.raises(QueueError, match="WRONGTYPE"):
        own.jobs.enqueue(RECONCILE, job_id="port-refused")
    own.redis.delete("rq:queue:default")
    own.jobs.enqueue(RECONCILE, job_id="port-after")  # no reply was left unread on a pooled connection
    assert own.redis.lrange("rq:queue:default", 0, -1) == [b"port-after"]


def test_an_error_reply_leaves_no_reply_unread_for_the_next_call(own):
    with pytest.raises(ResponseError):
        _round_trip(own.redis, ("NOSUCHCOMMAND",), ("ECHO", "left over"))
    assert _round_trip(own.redis, ("ECHO", "mine")) == [b"mine"]


def test_a_pooled_connection_redis_closed_is_replaced_for_the_hot_calls(own):
    """A connection the server dropped since it was pooled (Redis restarted, a client timeout) is not
    used: the call goes out on a new one."""
    own.jobs.signal_stop("rec-warm")  # one connection is pooled now
    pooled = own.redis.client_id()
    killer = Redis.from_url(own.config.redis_url)
    assert killer.client_kill_filter(_id=pooled) == 1
    own.jobs.signal_stop("rec-after")
    own.jobs.enqueue(RECONCILE, job_id="port-after-kill")
    assert own.jobs.stop_signalled("rec-after") and own.jobs.job_status("port-after-kill") == "queued"
    killer.close()


def test_a_queued_job_has_no_sign_of_life_yet(own):
    own.jobs.enqueue(RECONCILE, job_id="port-beat")
    state = own.jobs.job("port-beat")
    assert state is not None and state.status == "queued" and state.last_beat is None


def test_a_stop_signal_is_seen_and_expires_on_its_own(own):
    assert not own.jobs.stop_signalled("rec-1")
    own.jobs.signal_stop("rec-1")
    assert own.jobs.stop_signalled("rec-1")
    assert not own.jobs.stop_signalled("rec-2")
    assert 0 < own.redis.ttl(stop_signal_key("rec-1")) <= 24 * 3600


def test_one_scheduler_claims_each_tick(own):
    assert own.jobs.claim_tick("port-entry", 7, ttl_seconds=60)
    assert not own.jobs.claim_tick("port-entry", 7, ttl_seconds=60)
    assert own.jobs.claim_tick("port-entry", 8, ttl_seconds=60)


def test_a_recorded_tick_names_this_process(own):
    own.jobs.record_tick("port-entry")
    tick = own.jobs.ticks()["port-entry"]
    assert tick.by.startswith(socket.gethostname() + ":")
    assert tick.at > 0


def test_queue_jobs_count_every_queue_and_status(own):
    own.jobs.enqueue(RECONCILE, job_id="port-depth-1")
    own.jobs.enqueue(RECONCILE, job_id="port-depth-2")
    jobs = own.jobs.queue_jobs()
    assert set(jobs) == set(QUEUE_NAMES)
    assert jobs["default"] == {"queued": 2, "started": 0, "scheduled": 0, "failed": 0}
    assert jobs["capture"]["queued"] == 0


def test_a_registered_worker_is_listed_with_its_host_and_queues(own):
    worker = Worker([own.jobs.queue("media")], connection=own.redis, name="port-worker")
    worker.register_birth()
    try:
        (found,) = own.jobs.workers()
        assert (found.name, found.queues, found.hostname) == ("port-worker", ["media"], socket.gethostname())
    finally:
        worker.register_death()


def test_ping_returns_when_redis_answers(own):
    own.jobs.ping()


@pytest.mark.parametrize(
    "call",
    [
        lambda q: q.ping(),
        lambda q: q.enqueue(RECONCILE, job_id="port-down"),
        lambda q: q.job_status("port-down"),
        lambda q: q.forget_job("port-down"),
        lambda q: q.signal_stop("rec-1"),
        lambda q: q.stop_signalled("rec-1"),
        lambda q: q.workers(),
        lambda q: q.claim_tick("port-entry", 1, ttl_seconds=60),
        lambda q: q.record_tick("port-entry"),
        lambda q: q.ticks(),
        lambda q: q.queue_jobs(),
    ],
    ids=[
        "ping",
        "enqueue",
        "job_status",
        "forget_job",
        "signal_stop",
        "stop_signalled",
        "workers",
        "claim_tick",
        "record_tick",
        "ticks",
        "queue_jobs",
    ],
)
def test_a_redis_that_is_down_raises_queue_error(down, call):
    with pytest.raises(QueueError) as raised:
        call(down)
    assert isinstance(raised.value.__cause__, RedisError)


def test_readiness_names_a_redis_that_is_down(rt):
    down = Runtime(replace(rt.config, redis_url=f"redis://127.0.0.1:{_free_port()}/0"))
    found = readiness.problems(down)
    assert found["database"] is None and found["storage"] is None
    assert (found["redis"] or "").startswith("QueueError")
    assert not readiness.ready(readiness.checks(down))
