"""Download links: valid one hour from issuance (refused by the S3 server after), audited, redirected."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import delete, select, update

from app.models import LinkIssuance, Recording, Room, WebhookEvent, utcnow
from app.runtime import Runtime
from app.services.access import key_use, keys, links
from app.services.core import recordings
from app.services.outbox import deliveries, outbox
from tests.conftest import _free_port
from tests.helpers import make_recording
from tests.sqlcount import counting
from tests.webhook_receiver import Receiver


@pytest.fixture
def project(rt):  # type: ignore[no-untyped-def]
    return keys.create_project(rt, "links")


@pytest.fixture
def auth(rt, project) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": keys.create_key(rt, project.id)[1]}


@pytest.fixture
def admin(rt, project) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": keys.create_key(rt, project.id, scopes=("admin",))[1]}


def fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def issued(client, admin, rec_id: str, page: int = 1) -> list[dict]:  # type: ignore[no-untyped-def]
    resp = client.get(f"/recordings/{rec_id}/links?page={page}", headers=admin)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_a_fresh_link_is_served_by_the_s3_server(rt, project):
    key = recordings.load(rt, make_recording(rt, project.id)).object_key
    assert fetch(rt.storage.presign_get(key, 3600)) == 200


def test_a_link_issued_over_an_hour_ago_is_refused_by_the_s3_server(rt, project):
    key = recordings.load(rt, make_recording(rt, project.id)).object_key
    url = rt.storage.presign_get(key, 3600, issued_at=utcnow() - timedelta(hours=1, minutes=1))
    assert fetch(url) == 403


def test_a_link_just_inside_its_hour_still_works(rt, project):
    key = recordings.load(rt, make_recording(rt, project.id)).object_key
    assert fetch(rt.storage.presign_get(key, 3600, issued_at=utcnow() - timedelta(minutes=58))) == 200


def valid_until(url: str) -> datetime:
    query = parse_qs(urlsplit(url).query)
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return signed_at + timedelta(seconds=int(query["X-Amz-Expires"][0]))


def at(rt: Runtime, when: datetime) -> Runtime:
    """`rt` with its clock stopped at `when`, sharing its database and Redis."""
    later = Runtime(rt.config, clock=lambda: when)
    later.__dict__.update(db=rt.db, redis=rt.redis, jobs=rt.jobs, storage=rt.storage)
    return later


def test_get_hands_out_a_one_hour_link_and_logs_it(client, rt, project, auth, admin):
    rec_id = make_recording(rt, project.id)
    before = utcnow()
    body = client.get(f"/recordings/{rec_id}", headers=auth).get_json()
    reuse = timedelta(seconds=rt.config.link_reuse_seconds)
    assert before + timedelta(hours=1) - timedelta(seconds=1) <= valid_until(body["links"]["download"])
    assert valid_until(body["links"]["download"]) <= utcnow() + timedelta(hours=1) + reuse
    [row] = issued(client, admin, rec_id)
    assert row["purpose"] == "api"
    assert row["api_key_id"] == keys.authenticate(rt, auth["Authorization"]).id
    assert row["recording_id"] == rec_id


def test_the_logged_expiry_is_one_hour_after_issuance(rt, project):
    rec_id = make_recording(rt, project.id)
    links.record(rt, [recordings.load(rt, rec_id)], links.API, None)
    [row] = links.issuances(rt, project.id, rec_id)
    assert row.expires_at - row.issued_at == timedelta(seconds=rt.config.link_ttl_seconds)


def test_a_read_repeated_within_the_reuse_window_gets_the_same_link_logged_once(
    client, rt, project, auth, admin
):
    rec_id = make_recording(rt, project.id)
    first, second = (client.get(f"/recordings/{rec_id}", headers=auth).get_json() for _ in range(2))
    if first["links"]["download"] != second["links"]["download"]:  # the window turned between them
        first = client.get(f"/recordings/{rec_id}", headers=auth).get_json()
    assert first["links"]["download"] == second["links"]["download"]
    assert first["links"]["poster"] == second["links"]["poster"]
    assert fetch(second["links"]["download"]) == 200
    assert len(issued(client, admin, rec_id)) <= 2  # one per window the reads fell in


def test_a_link_handed_out_at_the_end_of_its_window_is_valid_an_hour_from_then(rt, project):
    rec = recordings.load(rt, make_recording(rt, project.id))
    start = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    reuse = rt.config.link_reuse_seconds
    early = links.handed_out(at(rt, start), [rec], links.API, None)[0].download
    late_moment = start + timedelta(seconds=reuse - 1)
    late = links.handed_out(at(rt, late_moment), [rec], links.API, None)[0].download
    assert early == late
    assert valid_until(late) >= late_moment + timedelta(seconds=rt.config.link_ttl_seconds)


def test_the_next_window_hands_out_a_new_link_and_logs_it(rt, project):
    rec = recordings.load(rt, make_recording(rt, project.id))
    start = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    first = links.handed_out(at(rt, start), [rec], links.API, None)[0].download
    again = links.handed_out(at(rt, start + timedelta(seconds=1)), [rec], links.API, None)[0].download
    later = start + timedelta(seconds=rt.config.link_reuse_seconds)
    after = links.handed_out(at(rt, later), [rec], links.API, None)[0].download
    assert first == again != after
    rows = links.issuances(rt, project.id, rec.id)
    assert sorted(r.issued_at for r in rows) == [start, later]
    assert all(
        r.expires_at == valid_until(u)
        for r, u in zip(sorted(rows, key=lambda r: r.issued_at), [first, after], strict=True)
    )


def test_each_key_and_purpose_has_its_link_logged(rt, project):
    rec = recordings.load(rt, make_recording(rt, project.id))
    key_a, key_b = (keys.create_key(rt, project.id)[0].id for _ in range(2))
    now = at(rt, datetime(2026, 12, 3, 10, 0, tzinfo=UTC))
    for key, purpose in ((key_a, links.API), (key_b, links.API), (key_a, links.DOWNLOAD), (key_a, links.API)):
        links.handed_out(now, [rec], purpose, key)
    logged = sorted((r.api_key_id, r.purpose) for r in links.issuances(rt, project.id, rec.id))
    assert logged == sorted([(key_a, links.API), (key_b, links.API), (key_a, links.DOWNLOAD)])


def test_without_a_reuse_window_every_read_signs_and_logs_a_new_link(rt, project):
    rec = recordings.load(rt, make_recording(rt, project.id))
    no_reuse = Runtime(dataclasses.replace(rt.config, link_reuse_seconds=0))
    no_reuse.__dict__.update(db=rt.db, redis=rt.redis, jobs=rt.jobs, storage=rt.storage)
    start = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    handed = [
        links.handed_out(at(no_reuse, start + timedelta(seconds=s)), [rec], links.API, None)[0].download
        for s in (0, 1)
    ]
    assert handed[0] != handed[1]
    assert [valid_until(u) - start for u in handed] == [timedelta(seconds=3600), timedelta(seconds=3601)]
    assert len(links.issuances(rt, project.id, rec.id)) == 2


def test_no_link_no_log_until_finished(client, rt, project, auth, admin):
    rec_id = make_recording(rt, project.id, state="started")
    assert client.get(f"/recordings/{rec_id}", headers=auth).get_json()["links"]["download"] is None
    assert issued(client, admin, rec_id) == []


def test_the_room_list_logs_every_link_it_hands_out(client, rt, project, auth, admin):
    client.post("/rooms", data={"id": "r-links", "user[name]": "Jo"}, headers=auth)
    with rt.db.transaction() as s:
        room_pk = s.scalar(select(Room.id).where(Room.project_id == project.id, Room.key == "r-links"))
    ids = [make_recording(rt, project.id) for _ in range(3)]
    with rt.db.transaction() as s:
        s.execute(update(Recording).where(Recording.id.in_(ids)).values(room_id=room_pk))
    listed = client.get("/rooms/r-links/recordings", headers=auth).get_json()
    assert len(listed) == 3 and all(r["links"]["download"] for r in listed)
    assert [len(issued(client, admin, i)) for i in ids] == [1, 1, 1]


def test_download_redirects_to_a_fresh_link_that_works(client, rt, project, auth, admin):
    rec_id = make_recording(rt, project.id)
    resp = client.get(f"/recordings/{rec_id}/download", headers=auth)
    assert resp.status_code == 302
    assert fetch(resp.headers["Location"]) == 200
    assert [r["purpose"] for r in issued(client, admin, rec_id)] == ["download"]


def test_download_of_an_unfinished_recording_is_409(client, rt, project, auth):
    rec_id = make_recording(rt, project.id, state="stopped")
    resp = client.get(f"/recordings/{rec_id}/download", headers=auth)
    assert resp.status_code == 409
    assert "stopped" in resp.get_json()["message"]


def test_download_of_unknown_foreign_or_deleted_is_404(client, rt, project, auth, other_project_key):
    rec_id = make_recording(rt, project.id)
    foreign = {"Authorization": other_project_key}
    assert client.get("/recordings/nope/download", headers=auth).status_code == 404
    assert client.get(f"/recordings/{rec_id}/download", headers=foreign).status_code == 404
    assert client.delete(f"/recordings/{rec_id}", headers=auth).status_code == 200
    assert client.get(f"/recordings/{rec_id}/download", headers=auth).status_code == 404


def test_the_issuance_log_is_newest_first_and_paged(client, rt, project, auth, admin):
    rec_id = make_recording(rt, project.id)
    rec = recordings.load(rt, rec_id)
    for minutes in range(links.PAGE_SIZE + 2):
        later = type(rt)(rt.config, clock=lambda m=minutes: utcnow() + timedelta(minutes=m))
        later.__dict__.update(db=rt.db)
        links.record(later, [rec], links.API, None)
    first, second = issued(client, admin, rec_id), issued(client, admin, rec_id, page=2)
    assert len(first) == links.PAGE_SIZE and len(second) == 2
    stamps = [r["issued_at"] for r in first + second]
    assert stamps == sorted(stamps, reverse=True)


def test_the_issuance_log_needs_an_admin_key(client, rt, project, auth, admin, other_project_key):
    rec_id = make_recording(rt, project.id)
    assert client.get(f"/recordings/{rec_id}/links", headers=auth).status_code == 403
    assert (
        client.get(f"/recordings/{rec_id}/links", headers={"Authorization": other_project_key}).status_code
        == 403
    )
    assert client.get("/recordings/nope/links", headers=admin).status_code == 404
    assert client.get(f"/recordings/{rec_id}/links?page=0", headers=admin).status_code == 422


def test_the_issuance_log_of_another_projects_recording_is_404(client, rt, project):
    rec_id = make_recording(rt, project.id)
    other = keys.create_project(rt, "links-other")
    foreign_admin = {"Authorization": keys.create_key(rt, other.id, scopes=("admin",))[1]}
    assert client.get(f"/recordings/{rec_id}/links", headers=foreign_admin).status_code == 404


def test_each_webhook_attempt_signs_and_logs_a_fresh_link(client, rt, config, project, auth, admin):
    receiver = Receiver().start()
    try:
        hook = client.post(
            "/webhooks", json={"url": receiver.url, "types": "recording_update"}, headers=auth
        ).get_json()
        rec_id = make_recording(rt, project.id)
        offline = Runtime(dataclasses.replace(config, redis_url=f"redis://127.0.0.1:{_free_port()}/0"))
        with offline.db.transaction() as s:  # an event no worker sees: this test delivers it itself
            outbox.recording_changed(offline, s, rec_id)
        [pending] = client.get(f"/webhooks/{hook['id']}/deliveries", headers=auth).get_json()
        deliveries.deliver(offline, pending["id"])
        (got,) = receiver.wait_for(1)
    finally:
        receiver.stop()
    assert json.loads(got.body)["recording"]["links"]["download"]
    [row] = issued(client, admin, rec_id)
    assert (row["purpose"], row["api_key_id"]) == ("webhook", None)


def test_a_stored_webhook_event_has_no_link_and_its_delivery_signs_fresh_ones(
    client, rt, config, project, auth, admin
):
    receiver = Receiver().start()
    try:
        hook = client.post(
            "/webhooks", json={"url": receiver.url, "types": "recording_update"}, headers=auth
        ).get_json()
        rec_id = with_poster(rt, make_recording(rt, project.id))
        offline = Runtime(dataclasses.replace(config, redis_url=f"redis://127.0.0.1:{_free_port()}/0"))
        with offline.db.transaction() as s:  # an event no worker sees: this test delivers it itself
            outbox.recording_changed(offline, s, rec_id)
        with rt.db.read() as s:
            stored = s.scalar(select(WebhookEvent.payload).where(WebhookEvent.resource_id == rec_id))
        [pending] = client.get(f"/webhooks/{hook['id']}/deliveries", headers=auth).get_json()
        deliveries.deliver(offline, pending["id"])
        (got,) = receiver.wait_for(1)
    finally:
        receiver.stop()
    self_url = f"{config.public_url}/recordings/{rec_id}"
    assert stored["recording"]["links"] == {"self": self_url, "download": None, "poster": None}
    assert "X-Amz-" not in json.dumps(stored)
    sent = json.loads(got.body)
    sent_links = sent["recording"].pop("links")
    assert sent_links["self"] == self_url
    for url in (sent_links["download"], sent_links["poster"]):
        assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["3600"]
        assert fetch(url) == 200
    del stored["recording"]["links"]
    assert sent == stored  # apart from the links, the receiver gets the event as stored
    assert [row["purpose"] for row in issued(client, admin, rec_id)] == ["webhook"]


def with_poster(rt: Runtime, rec_id: str) -> str:
    """Give a finished recording a stored poster; returns its id."""
    key = f"{recordings.object_prefix(rec_id)}poster.jpg"
    rt.storage.put_bytes(key, b"jpeg", "image/jpeg")
    with rt.db.transaction() as s:
        s.execute(update(Recording).where(Recording.id == rec_id).values(poster_key=key))
    return rec_id


def sql_issuances(rt: Runtime, rec_id: str) -> list[str]:
    """The purposes of a recording's audit rows in SQL now, with no drain first."""
    with rt.db.read() as s:
        return list(s.scalars(select(LinkIssuance.purpose).where(LinkIssuance.recording_id == rec_id)))


def test_a_read_writes_no_sql_and_the_drain_writes_its_audit_row(client, rt, project, auth):
    rec_id = make_recording(rt, project.id)
    client.get("/active_sessions", headers=auth)  # the key's first use is noted (off the request path)
    key_use.flush()
    with counting(rt) as read:
        assert client.get(f"/recordings/{rec_id}", headers=auth).get_json()["links"]["download"]
    assert not [s for s in read.statements if not s.startswith("SELECT")], read.statements
    assert sql_issuances(rt, rec_id) == []
    assert links.drain(rt) >= 1
    assert sql_issuances(rt, rec_id) == ["api"]


def test_a_drainer_that_died_before_its_commit_leaves_entries_the_next_one_reclaims(rt, project):
    rec_id = make_recording(rt, project.id)
    links.record(rt, [recordings.load(rt, rec_id)], links.API, None)
    taken = rt.jobs.take(links.STREAM, links.GROUP, "died-" + rec_id, 1000, 0)  # then it died
    assert any(rec_id in e.fields["v"] for e in taken)
    links.drain(rt, consumer="next", reclaim_idle_ms=60_000)
    assert sql_issuances(rt, rec_id) == []  # not idle long enough: maybe still being written
    links.drain(rt, consumer="next", reclaim_idle_ms=0)
    assert sql_issuances(rt, rec_id) == ["api"]


def test_a_drainer_that_died_after_its_commit_writes_no_duplicate(rt, project, monkeypatch):
    rec_id = make_recording(rt, project.id)
    links.record(rt, [recordings.load(rt, rec_id)], links.DOWNLOAD, None)

    def died(*_args: object) -> None:
        raise SystemExit("killed between the commit and settling")

    with monkeypatch.context() as m:
        m.setattr(rt.jobs, "settle", died)
        with pytest.raises(SystemExit):
            links.drain(rt, consumer="died")
    assert sql_issuances(rt, rec_id) == ["download"]
    links.drain(rt, consumer="next", reclaim_idle_ms=0)
    assert sql_issuances(rt, rec_id) == ["download"]
    assert rt.jobs.take(links.STREAM, links.GROUP, "after", 1000, 0) == []  # settled: nothing left


def test_with_redis_down_a_read_writes_its_audit_row_to_sql_at_once(rt, config, project, auth):
    rec_id = make_recording(rt, project.id)
    offline = Runtime(dataclasses.replace(config, redis_url=f"redis://127.0.0.1:{_free_port()}/0"))
    offline.__dict__.update(db=rt.db, storage=rt.storage)
    links.record(offline, [recordings.load(rt, rec_id)], links.API, None)
    assert sql_issuances(rt, rec_id) == ["api"]
    links.drain(rt)  # nothing of it waits in the stream: no second row
    assert sql_issuances(rt, rec_id) == ["api"]


def test_rows_of_a_recording_gone_before_the_drain_are_dropped_not_blocking(rt, project):
    rec_id, gone_id = make_recording(rt, project.id), make_recording(rt, project.id)
    kept, gone = recordings.load(rt, rec_id), recordings.load(rt, gone_id)
    links.record(rt, [kept, gone], links.API, None)
    with rt.db.transaction() as s:  # as if a cascade had removed the recording
        s.execute(delete(Recording).where(Recording.id == gone_id))
    links.drain(rt)
    assert sql_issuances(rt, rec_id) == ["api"]
    assert sql_issuances(rt, gone_id) == []
