"""The recording state machine: transitions as data, guards that hold under races, deletion claims,
and project-scoped external ids."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.errors import Conflict, StorageError
from app.models import RecordingState, WebhookEvent, utcnow
from app.runtime import Runtime
from app.services.access import keys
from app.services.core import lifecycle, recordings, retention
from app.storage import ObjectStore
from tests.helpers import add_recording, make_recording

S = RecordingState


@pytest.fixture
def project(rt):  # type: ignore[no-untyped-def]
    return keys.create_project(rt, "lifecycle")


@pytest.fixture
def admin(rt, project):  # type: ignore[no-untyped-def]
    return keys.create_key(rt, project.id, scopes=("admin",))[0]


def objects_of(rt: Runtime, rec_id: str) -> list[str]:
    return list(rt.storage.iter_keys(recordings.object_prefix(rec_id)))


def later(rt: Runtime, **delta: float) -> Runtime:
    ahead = Runtime(rt.config, clock=lambda: utcnow() + timedelta(**delta))
    ahead.__dict__.update(db=rt.db, storage=rt.storage, redis=rt.redis)
    return ahead


@pytest.mark.parametrize("transition", lifecycle.TRANSITIONS, ids=lambda t: t.name)
def test_no_transition_leaves_a_state_for_itself(transition):
    assert transition.target not in transition.sources


@pytest.mark.parametrize(
    ("state", "moves"),
    [(S.STARTED, True), (S.STOPPED, True), (S.FINISHED, False), (S.FAILED, False)],
)
def test_fail_moves_only_recordings_still_in_progress(rt, project, state, moves):
    rec = add_recording(rt, project.id, state=state)
    assert recordings.fail(rt, rec, "broken") is moves
    assert recordings.load(rt, rec).state == (S.FAILED if moves else state)


def test_a_second_stop_does_not_move_a_stopped_recording(rt, project):
    rec = add_recording(rt, project.id, state="started")
    assert lifecycle.move(rt, lifecycle.STOP, rec, duration=1.0)
    assert not lifecycle.move(rt, lifecycle.STOP, rec, duration=2.0)
    assert recordings.load(rt, rec).duration == 1.0


def test_the_state_reads_back_as_its_enum(rt, project):
    rec = add_recording(rt, project.id, state="stopped")
    assert recordings.load(rt, rec).state is S.STOPPED


def test_a_hold_set_after_the_purge_chose_a_recording_keeps_it_whole(rt, project, admin):
    rec = make_recording(rt, project.id, 15)
    chosen = retention.expired_ids(rt)
    assert rec in chosen
    retention.set_flags(rt, admin, rec, legal_hold=True)
    assert rec not in retention.purge(rt, chosen)
    assert recordings.load(rt, rec).state == S.FINISHED
    assert objects_of(rt, rec) != []


def test_persist_set_after_the_purge_chose_a_recording_keeps_it_whole(rt, project, admin):
    rec = make_recording(rt, project.id, 15)
    chosen = retention.expired_ids(rt)
    retention.set_flags(rt, admin, rec, persist=True)
    assert rec not in retention.purge(rt, chosen)
    assert objects_of(rt, rec) != []


def test_no_hold_can_be_set_while_a_deletion_removes_objects(rt, project, admin):
    rec = make_recording(rt, project.id)
    assert lifecycle.claim(rt, [rec], lifecycle.CLAIM_DELETE).ids == [rec]
    with pytest.raises(Conflict):
        retention.set_flags(rt, admin, rec, legal_hold=True)
    assert recordings.load(rt, rec).legal_hold is False


def test_a_held_recording_cannot_be_claimed_for_deletion(rt, project, admin):
    rec = make_recording(rt, project.id)
    retention.set_flags(rt, admin, rec, legal_hold=True)
    assert lifecycle.claim(rt, [rec], lifecycle.CLAIM_DELETE).ids == []
    with pytest.raises(Conflict):
        recordings.delete(rt, project.id, rec)
    assert objects_of(rt, rec) != []


def test_a_deletion_that_storage_refused_gives_its_claim_back(rt, config, project, admin):
    rec = make_recording(rt, project.id)
    down = Runtime(rt.config)
    down.__dict__.update(
        db=rt.db,
        redis=rt.redis,
        storage=ObjectStore(dataclasses.replace(config, s3_endpoint="http://127.0.0.1:9")),
    )
    with pytest.raises(StorageError):
        recordings.delete(down, project.id, rec)
    assert recordings.load(rt, rec).condemned_at is None
    assert retention.set_flags(rt, admin, rec, legal_hold=True).legal_hold


def test_a_deletion_that_died_after_its_claim_is_finished_by_the_purge(rt, project):
    rec = make_recording(rt, project.id)  # young: retention alone would keep it
    lifecycle.claim(rt, [rec], lifecycle.CLAIM_DELETE)
    retention.purge_expired(later(rt, minutes=20))
    assert recordings.load(rt, rec).state == S.DELETED
    assert objects_of(rt, rec) == []


def test_a_fresh_claim_is_left_to_its_deletion(rt, project):
    rec = make_recording(rt, project.id)
    lifecycle.claim(rt, [rec], lifecycle.CLAIM_DELETE)
    retention.purge_expired(rt)
    assert recordings.load(rt, rec).state == S.FINISHED


def test_an_events_only_session_is_stopped_then_finished_with_an_event_each(rt, project):
    with rt.db.transaction() as s:
        rec = recordings.create(rt, s, project.id, None).id
    recordings.stop_recording(rt, rec)
    with rt.db.read() as s:
        states = [
            e.payload["recording"]["state"]
            for e in s.scalars(
                select(WebhookEvent).where(WebhookEvent.resource_id == rec).order_by(WebhookEvent.seq)
            )
        ]
    assert states == ["started", "stopped", "finished"]


def test_the_external_id_defaults_to_the_recording_id(rt, project):
    with rt.db.transaction() as s:
        rec = recordings.create(rt, s, project.id, None).id
    assert recordings.load(rt, rec).external_id == rec


def test_two_projects_may_use_the_same_external_id(rt, project):
    other = keys.create_project(rt, "other")
    client_id = "0192f0a4-6b1e-7c2d-9e3f-a1b2c3d4e5f6"
    with rt.db.transaction() as s:
        mine = recordings.create(rt, s, project.id, None, external_id=client_id).id
        theirs = recordings.create(rt, s, other.id, None, external_id=client_id).id
    assert recordings.by_external_id(rt, project.id, client_id).id == mine
    assert recordings.by_external_id(rt, other.id, client_id).id == theirs


def test_an_external_id_is_unique_in_its_project(rt, project):
    with rt.db.transaction() as s:
        recordings.create(rt, s, project.id, None, external_id="client-made")
    with pytest.raises(IntegrityError), rt.db.transaction() as s:
        recordings.create(rt, s, project.id, None, external_id="client-made")


def test_the_api_answers_409_to_a_flag_change_during_a_deletion(rt, client, auth):
    project_id = keys.authenticate(rt, auth["Authorization"]).project_id
    rec = make_recording(rt, project_id)
    lifecycle.claim(rt, [rec], lifecycle.CLAIM_DELETE)
    resp = client.post(f"/recordings/{rec}/persist", headers=auth)
    assert resp.status_code == 409
    assert resp.get_json()["message"] == "the recording is being deleted"


def test_a_failed_deletion_gives_back_only_its_own_claim(rt, project):
    rec = make_recording(rt, project.id)
    first = lifecycle.claim(rt, [rec], lifecycle.CLAIM_DELETE)
    second = lifecycle.claim(later(rt, seconds=1), [rec], lifecycle.CLAIM_DELETE)
    lifecycle.release(rt, first)  # the first deletion failed after the second took over
    assert recordings.load(rt, rec).condemned_at == second.at


def test_the_purge_never_takes_a_claim_another_deletion_holds(rt, project):
    rec = make_recording(rt, project.id, 15)
    lifecycle.claim(rt, [rec], lifecycle.CLAIM_DELETE)
    assert lifecycle.claim(rt, [rec], lifecycle.CLAIM_PURGE).ids == []


def test_storage_down_leaves_an_abandoned_deletion_claimed_for_the_next_purge(rt, config, project):
    rec = make_recording(rt, project.id)
    lifecycle.claim(rt, [rec], lifecycle.CLAIM_DELETE)
    down = later(rt, minutes=20)
    down.__dict__["storage"] = ObjectStore(dataclasses.replace(config, s3_endpoint="http://127.0.0.1:9"))
    assert retention.purge_expired(down) == 0
    assert recordings.load(rt, rec).condemned_at is not None
    retention.purge_expired(later(rt, minutes=20))
    assert recordings.load(rt, rec).state == S.DELETED
