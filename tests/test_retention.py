"""Recordings are destroyed 14 days after creation (project override), with an injectable clock."""

from __future__ import annotations

import dataclasses
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from minio.versioningconfig import ENABLED, VersioningConfig
from sqlalchemy import func, insert, select, update

from app.errors import Unprocessable
from app.models import Recording, WebhookEvent, utcnow
from app.runtime import Runtime
from app.services.access import keys
from app.services.core import recordings, retention
from app.services.ids import new_id
from app.storage import ObjectStore
from tests.helpers import make_recording


@pytest.fixture
def project(rt):  # type: ignore[no-untyped-def]
    return keys.create_project(rt, "retention")


def state_of(rt: Runtime, rec_id: str) -> str:
    return recordings.load(rt, rec_id).state


def test_recording_older_than_14_days_is_destroyed(rt, project):
    old = make_recording(rt, project.id, 14.01)
    assert retention.purge_expired(rt) >= 1
    assert state_of(rt, old) == "deleted"
    assert list(rt.storage.iter_keys(recordings.object_prefix(old))) == []


def test_recording_younger_than_14_days_is_kept(rt, project):
    young = make_recording(rt, project.id, 13.9)
    retention.purge_expired(rt)
    assert state_of(rt, young) == "finished"
    assert list(rt.storage.iter_keys(recordings.object_prefix(young))) != []


def test_a_later_clock_expires_it(rt, project):
    young = make_recording(rt, project.id, 13.9)
    later = Runtime(rt.config, clock=lambda: utcnow() + timedelta(days=1))
    later.__dict__.update(db=rt.db, storage=rt.storage, redis=rt.redis)  # share the clients
    retention.purge_expired(later)
    assert state_of(rt, young) == "deleted"


def test_project_override_shortens_retention(rt):
    project = keys.create_project(rt, "short", retention_days=2)
    rec = make_recording(rt, project.id, 3)
    retention.purge_expired(rt)
    assert state_of(rt, rec) == "deleted"


def test_running_recording_is_not_purged(rt, project):
    running = make_recording(rt, project.id, 30, state="started")
    retention.purge_expired(rt)
    assert state_of(rt, running) == "started"


def later_runtime(rt: Runtime, days: float, **clients: object) -> Runtime:
    """A runtime whose clock runs `days` ahead, sharing `rt`'s clients (or the ones given)."""
    later = Runtime(rt.config, clock=lambda: utcnow() + timedelta(days=days))
    later.__dict__.update({"db": rt.db, "storage": rt.storage, "redis": rt.redis, **clients})
    return later


def test_project_retention_must_be_1_to_3650_days(rt):
    for days in (0, 3651):
        with pytest.raises(Unprocessable):
            keys.create_project(rt, "bad", retention_days=days)


def test_project_override_lengthens_retention(rt):
    project = keys.create_project(rt, "long", retention_days=30)
    rec = make_recording(rt, project.id, 20)
    retention.purge_expired(rt)
    assert state_of(rt, rec) == "finished"
    retention.purge_expired(later_runtime(rt, 10.1))
    assert state_of(rt, rec) == "deleted"


@pytest.mark.parametrize("flag", ["persist", "legal_hold"])
def test_persisted_and_held_recordings_outlive_retention(rt, project, flag):
    rec = make_recording(rt, project.id, 400)
    with rt.db.transaction() as s:
        s.execute(update(Recording).where(Recording.id == rec).values({flag: True}))
    retention.purge_expired(rt)
    assert state_of(rt, rec) == "finished"
    with rt.db.transaction() as s:
        s.execute(update(Recording).where(Recording.id == rec).values({flag: False}))
    retention.purge_expired(rt)
    assert state_of(rt, rec) == "deleted"


def test_failed_recordings_expire_too(rt, project):
    rec = make_recording(rt, project.id, 15, state="failed")
    retention.purge_expired(rt)
    assert state_of(rt, rec) == "deleted"


def test_purge_emits_the_deletion_and_get_answers_404(rt, client, project):
    auth = {"Authorization": keys.create_key(rt, project.id)[1]}
    rec = make_recording(rt, project.id, 14.5)
    assert client.get(f"/recordings/{rec}", headers=auth).status_code == 200
    retention.purge_expired(rt)
    assert client.get(f"/recordings/{rec}", headers=auth).status_code == 404
    with rt.db.read() as s:
        last = s.scalars(
            select(WebhookEvent).where(WebhookEvent.resource_id == rec).order_by(WebhookEvent.seq.desc())
        ).first()
    assert last.type == "recording_update"
    assert last.payload["recording"]["state"] == "deleted"
    assert last.payload["recording"]["links"]["download"] is None


def test_purge_deletes_every_object_version(rt, config, project):
    versioned = dataclasses.replace(config, s3_bucket="meetrec-versions-" + secrets.token_hex(4))
    storage = ObjectStore(versioned)
    storage.ensure_bucket()
    storage._client.set_bucket_versioning(versioned.s3_bucket, VersioningConfig(ENABLED))
    vrt = later_runtime(rt, 0, storage=storage)
    rec = make_recording(vrt, project.id, 15, objects=3)  # final file and two segments
    prefix = recordings.object_prefix(rec)
    storage.put_bytes(f"{prefix}poster.jpg", b"jpg", "image/jpeg")
    storage.put_bytes(f"{prefix}recording.webm", b"webm, again", "video/webm")  # a second version
    listed = storage._client.list_objects(
        versioned.s3_bucket, prefix=prefix, recursive=True, include_version=True
    )
    assert len(list(listed)) == 5

    retention.purge_expired(vrt)

    listed = storage._client.list_objects(
        versioned.s3_bucket, prefix=prefix, recursive=True, include_version=True
    )
    assert list(listed) == []
    assert state_of(rt, rec) == "deleted"


def test_storage_down_postpones_the_purge(rt, config, project):
    rec = make_recording(rt, project.id, 15)
    dead = ObjectStore(dataclasses.replace(config, s3_endpoint="http://127.0.0.1:9"))
    assert retention.purge_expired(later_runtime(rt, 0, storage=dead)) == 0
    assert state_of(rt, rec) == "finished"
    retention.purge_expired(rt)
    assert state_of(rt, rec) == "deleted"


def test_thousands_expire_in_one_run_in_batches(rt):
    """2,000 expired recordings made straight in SQL, two objects each: one run, two batches."""
    project = keys.create_project(rt, "bulk")
    ids = [new_id() for _ in range(2000)]
    created = utcnow() - timedelta(days=20)
    rows = [
        {
            "id": i,
            "project_id": project.id,
            "state": "finished",
            "media_source": "synthetic://meeting",
            "created_at": created,
            "object_key": f"{recordings.object_prefix(i)}recording.webm",
            "size": 4,
        }
        for i in ids
    ]
    with rt.db.transaction() as s:
        s.execute(insert(Recording), rows)
    with ThreadPoolExecutor(16) as pool:
        keys_ = [
            f"{recordings.object_prefix(i)}{name}" for i in ids for name in ("recording.webm", "poster.jpg")
        ]
        list(pool.map(lambda k: rt.storage.put_bytes(k, b"x", "video/webm"), keys_))

    assert retention.purge_expired(rt) >= 2000

    with rt.db.read() as s:
        states = set(s.scalars(select(Recording.state).where(Recording.project_id == project.id)))
        events = s.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.project_id == project.id)
        )
    assert states == {"deleted"}
    assert events == 2000
    assert all(list(rt.storage.iter_keys(recordings.object_prefix(i))) == [] for i in ids[::100])
