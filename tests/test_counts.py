"""The counts read model, and the console, `GET /system` and `/metrics` showing the same figures."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from app.console import queries
from app.factory import create_app
from app.models import Recording, Segment
from app.observability.metrics import StateCollector
from app.runtime import Runtime
from app.services.operations import counts
from tests.console import ADMIN, project_with_key, sign_in, text
from tests.helpers import add_recording, wait_for
from tests.test_metrics import samples, value

STATES = ("started", "stopped", "finished", "failed", "deleted")


@pytest.fixture
def one_of_each(rt: Runtime):  # type: ignore[no-untyped-def]
    """A fresh project holding one recording in each state (pushed: no capture job chases them), and
    its admin key; the in-flight ones end failed, so nothing is left for the reconciler."""
    project_id, key = project_with_key(rt, *ADMIN)
    ids = {state: add_recording(rt, project_id, state=state) for state in STATES}
    yield project_id, key, ids
    with rt.db.transaction() as s:
        s.execute(
            update(Recording).where(Recording.id.in_([ids["started"], ids["stopped"]])).values(state="failed")
        )


def add_segment(rt: Runtime, recording_id: str, size: int) -> None:
    with rt.db.transaction() as s:
        s.add(
            Segment(
                recording_id=recording_id, seq=0, object_key=f"k-{recording_id}", size=size, sha256="0" * 64
            )
        )


def test_a_recording_in_each_state_counts_once_in_its_state(rt, one_of_each):
    project_id, _, _ = one_of_each
    assert counts.recordings_by_state(rt, project_id) == dict.fromkeys(STATES, 1)
    assert counts.in_flight(rt, project_id) == {"started": 1, "stopped": 1}


def test_storage_counts_final_files_and_segments_not_yet_joined(rt, one_of_each):
    project_id, _, ids = one_of_each
    for state, size in (("started", 10), ("stopped", 20), ("failed", 40), ("finished", 80), ("deleted", 160)):
        add_segment(rt, ids[state], size)
    # add_recording gives each row a 1000-byte final file; only the finished one's is stored.
    assert counts.storage_bytes(rt, project_id) == {"recordings": 1000, "segments": 70}
    assert queries.storage_used(rt, project_id) == {
        "finished_recordings": 1,
        "finished_bytes": 1000,
        "in_flight_bytes": 70,
    }


def test_an_empty_project_counts_zero(rt):
    project_id, _ = project_with_key(rt)
    assert counts.recordings_by_state(rt, project_id) == dict.fromkeys(STATES, 0)
    assert counts.storage_bytes(rt, project_id) == {"recordings": 0, "segments": 0}


def test_console_system_and_metrics_show_the_same_in_flight_numbers(rt, one_of_each):
    _, key, _ = one_of_each
    app = create_app(runtime=rt)
    app.extensions["meetrec_metrics"] = StateCollector(rt, cache_seconds=0)  # every scrape reads afresh
    console, api = app.test_client(), app.test_client()
    sign_in(console, key)

    def shown() -> dict[str, tuple[int, int]]:
        page = text(console.get("/console/system"))
        capturing, finalizing = re.search(
            r"In flight: (\d+) recordings? started, .*?; (\d+) waiting to be finalized", page
        ).groups()
        system = api.get("/system", headers={"Authorization": key}).get_json()["recordings"]
        metrics = samples(api.get("/metrics").get_data(as_text=True))
        return {
            "console": (int(capturing), int(finalizing)),
            "system": (system["started"], system["stopped"]),
            "metrics": tuple(
                int(value(metrics, "meetrec_recordings", state=st)) for st in ("started", "stopped")
            ),
            "counts": tuple(counts.in_flight(rt).values()),
        }

    # Workers of other tests may move their recordings between two reads: wait for a quiet moment.
    figures = wait_for(lambda: (f := shown()) and len(set(f.values())) == 1 and f, timeout=15)
    started, stopped = figures["counts"]
    assert started >= 1 and stopped >= 1


def test_console_and_metrics_show_the_same_storage_bytes(rt, one_of_each):
    _, _, ids = one_of_each
    add_segment(rt, ids["failed"], 123)
    app = create_app(runtime=rt)
    app.extensions["meetrec_metrics"] = StateCollector(rt, cache_seconds=0)

    def shown() -> tuple[tuple[int, int], tuple[int, int]]:
        metrics = samples(app.test_client().get("/metrics").get_data(as_text=True))
        everyone = queries.storage_used(rt)
        return (
            (everyone["finished_bytes"], everyone["in_flight_bytes"]),
            tuple(int(value(metrics, "meetrec_storage_bytes", kind=k)) for k in ("recordings", "segments")),
        )

    # As above: a finalize of another test's recording may land between the two reads.
    console, metrics = wait_for(lambda: (f := shown()) and f[0] == f[1] and f, timeout=15)
    assert console[1] >= 123
