"""A replay's computed facts kept current at ingest: the recorded session stored in batches, in any order."""

from __future__ import annotations

import json
import random
import secrets
from typing import Any

import pytest
from sqlalchemy import update

from app.bootstrap import backfill_replay_facts
from app.models import ReplaySummary
from app.services.access import keys
from app.services.interactions import replays
from tests import rrweb_session

FACTS = rrweb_session.FACTS
COLUMNS = (
    "click_count",
    "keypress_count",
    "mouse_activity_count",
    "console_log_count",
    "console_warn_count",
    "console_error_count",
    "active_ms",
    "activity",
    "pages",
    "start_url",
    "start_url_at",
    "first_timestamp",
    "last_timestamp",
    "events",
)


@pytest.fixture
def project(rt):  # type: ignore[no-untyped-def]
    return keys.create_project(rt, "facts-" + secrets.token_hex(3))


def session() -> list[dict[str, Any]]:
    return rrweb_session.load()


def split(events: list[dict[str, Any]], sizes: list[int]) -> list[list[dict[str, Any]]]:
    batches, at = [], 0
    for size in sizes:
        batches.append(events[at : at + size])
        at += size
    return [b for b in batches + [events[at:]] if b]


def store(rt, project, batches, external_id=None) -> ReplaySummary:  # type: ignore[no-untyped-def]
    external_id = external_id or "rec-" + secrets.token_hex(6)
    for batch in batches:
        replays.ingest(rt, project.id, external_id, json.loads(json.dumps(batch)))
    return replays.replay_of(rt, project.id, external_id)[1]


def facts(summary: ReplaySummary) -> dict[str, Any]:
    return {name: getattr(summary, name) for name in COLUMNS}


def test_one_batch_gives_the_known_facts(rt, project):
    assert facts(store(rt, project, [session()])) == {name: FACTS[name] for name in COLUMNS}


def test_batches_in_order_give_the_known_facts(rt, project):
    batches = split(session(), [10, 25, 5, 30])
    assert facts(store(rt, project, batches)) == {name: FACTS[name] for name in COLUMNS}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batches_out_of_order_give_the_known_facts(rt, project, seed):
    batches = split(session(), [3, 9, 14, 20, 7, 11])
    random.Random(seed).shuffle(batches)
    assert facts(store(rt, project, batches)) == {name: FACTS[name] for name in COLUMNS}


def test_interleaved_batches_give_the_known_facts(rt, project):
    events = session()
    batches = [events[i::4] for i in (3, 1, 0, 2)]  # every batch spans the whole session
    assert facts(store(rt, project, batches)) == {name: FACTS[name] for name in COLUMNS}


def test_a_later_batch_with_an_earlier_meta_replaces_the_start_url(rt, project):
    events = session()
    checkout = [e for e in events if e["timestamp"] >= FACTS["start_url_at"] + 5000]
    first_page = [e for e in events if e["timestamp"] < FACTS["start_url_at"] + 5000]
    external_id = "rec-" + secrets.token_hex(6)
    summary = store(rt, project, [checkout], external_id)
    assert (summary.start_url, summary.pages) == (rrweb_session.CHECKOUT_URL, [rrweb_session.CHECKOUT_URL])
    summary = store(rt, project, [first_page], external_id)
    assert (summary.start_url, summary.start_url_at) == (FACTS["start_url"], FACTS["start_url_at"])
    assert summary.pages == FACTS["pages"]


def test_a_batch_without_activity_or_meta_only_adds_counts(rt, project):
    events = session()
    consoles = [e for e in events if e["type"] == 6]
    rest = [e for e in events if e["type"] != 6]
    summary = store(rt, project, [rest, consoles])
    assert facts(summary) == {name: FACTS[name] for name in COLUMNS}


def test_a_replay_stored_before_facts_were_kept_gets_them_at_the_next_start(rt, project):
    summary = store(rt, project, split(session(), [30, 30]))
    zeros = {name: 0 for name in ("click_count", "keypress_count", "mouse_activity_count", "active_ms")}
    with rt.db.transaction() as s:  # as migration 0010 leaves a replay stored before it
        s.execute(
            update(ReplaySummary)
            .where(ReplaySummary.recording_id == summary.recording_id)
            .values(**zeros, activity=[], pages=[], start_url=None, start_url_at=None, facts_complete=False)
        )
    assert backfill_replay_facts(rt) >= 1
    with rt.db.read() as s:
        after = s.get(ReplaySummary, summary.recording_id)
    assert after is not None and after.facts_complete is True
    assert facts(after) == {name: FACTS[name] for name in COLUMNS}
    assert backfill_replay_facts(rt) == 0
