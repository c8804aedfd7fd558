"""Facts of web replays stored before migration 0010 kept them at ingest, computed from their blocks.

`without_facts` lists the replays still waiting; `recompute_facts` reads every block of one in time
order (`snapshots.events_in_time_order`) and stores its facts (`replay_facts`); `give_up` marks one whose
blocks cannot be read, so that it keeps what it has and is not tried again.
"""

from __future__ import annotations

from sqlalchemy import select, update

from app.db import affected
from app.models import ReplaySummary
from app.runtime import Runtime
from app.services.interactions import replay_facts, snapshots


def without_facts(rt: Runtime, limit: int = 100) -> list[str]:
    """Replays stored before migration 0010 whose facts are not computed yet."""
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(ReplaySummary.recording_id).where(ReplaySummary.facts_complete.is_(False)).limit(limit)
            )
        )


def recompute_facts(rt: Runtime, recording_id: str, attempts: int = 3) -> bool:
    """Compute a replay's facts (`replay_facts`) afresh from every stored block and store them, for
    replays stored before the facts were kept at ingest. Optimistic: the result is written only if no
    block was indexed meanwhile (else it reads again). False when the replay is gone or kept moving."""
    for _ in range(attempts):
        blocks = snapshots.blocks_of(rt, recording_id)
        events = (event for _, event in snapshots.events_in_time_order(rt, recording_id))
        facts = replay_facts.facts_of(events)
        values = replay_facts.changes(facts, 0, [], [], None) | facts.counters() | {"facts_complete": True}
        values.setdefault("active_ms", 0)
        with rt.db.transaction() as s:
            moved = affected(
                s,
                update(ReplaySummary)
                .where(ReplaySummary.recording_id == recording_id, ReplaySummary.blocks == len(blocks))
                .values(values),
            )
        if moved:
            return True
    return False


def give_up(rt: Runtime, recording_id: str) -> None:
    """Mark a replay's facts complete as they stand (its blocks cannot be read): no later start retries."""
    with rt.db.transaction() as s:
        s.execute(
            update(ReplaySummary)
            .where(ReplaySummary.recording_id == recording_id)
            .values(facts_complete=True)
        )
