"""The scheduler only enqueues, once per tick however many schedulers run."""

from __future__ import annotations

import secrets

from rq import Queue

from app.queueing import JobSpec
from workers.scheduler import Entry, build, tick


def entry() -> Entry:
    return Entry("test-" + secrets.token_hex(4), JobSpec("workers.jobs.purge_expired", "default", 60), 600)


def test_a_tick_enqueues_the_job(rt):
    e = entry()
    assert tick(rt, e, now=1_000_000.0) is True
    assert Queue("default", connection=rt.redis).fetch_job(f"{e.id}-{int(1_000_000 // 600)}") is not None


def test_a_second_scheduler_in_the_same_tick_enqueues_nothing(rt):
    e = entry()
    assert tick(rt, e, now=2_000_000.0) is True
    assert tick(rt, e, now=2_000_000.0 + 5) is False


def test_the_next_tick_enqueues_again(rt):
    e = entry()
    assert tick(rt, e, now=3_000_000.0)
    assert tick(rt, e, now=3_000_000.0 + 600)


def test_timetable_entries_coalesce_and_never_overlap(rt):
    scheduler = build(rt)
    jobs = scheduler.get_jobs()
    assert [j.id for j in jobs] == ["retention-purge", "reconcile", "webhook-dispatch", "link-audit-drain"]
    assert all(j.coalesce and j.max_instances == 1 for j in jobs)
