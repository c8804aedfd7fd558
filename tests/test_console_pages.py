"""The recordings list and a recording's page as an operator reads them: posters, descriptions, how
media got in, stopping a recording, why it failed, what its capture went through, the gaps its video
skips, its events, and when retention deletes it."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import update

from app.models import Recording
from app.services.access import keys
from app.services.core import recordings
from app.services.pipeline import leases
from tests.console import READ, WRITE, post, project_with_key, sign_in, text
from tests.helpers import add_recording, make_recording


@pytest.fixture
def signed(rt, client):  # type: ignore[no-untyped-def]
    project_id, key = project_with_key(rt, *WRITE)
    sign_in(client, key)
    return SimpleNamespace(client=client, project_id=project_id)


def page_of(signed, rec: str) -> str:  # type: ignore[no-untyped-def]
    resp = signed.client.get(f"/console/recordings/{rec}")
    assert resp.status_code == 200
    return text(resp)


def role(html: str, name: str) -> str:
    """The plain text of the element of `html` marked data-role=`name`."""
    found = re.search(rf'<(\w+)[^>]*\sdata-role="{name}"[^>]*>(.*?)</\1>', html, re.S).group(2)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found)).strip()


def running(rt, project_id: str) -> str:  # type: ignore[no-untyped-def]
    """A started pull recording whose capture nobody runs (the test stops or fails it)."""
    return add_recording(
        rt, project_id, state="started", ingest="pull", duration=None, size=None, sha256=None
    )


def test_a_running_recording_offers_a_stop_button(rt, signed):
    rec = running(rt, signed.project_id)
    page = page_of(signed, rec)
    recordings.fail(rt, rec, "test over")
    assert f'action="/console/recordings/{rec}/stop"' in page and "Stop recording" in page


def test_stop_asks_the_capture_to_stop_as_the_api_does(rt, signed):
    rec = running(rt, signed.project_id)
    resp = post(signed.client, f"/console/recordings/{rec}/stop")
    stopped = recordings.load(rt, rec)
    recordings.fail(rt, rec, "test over")
    assert resp.status_code == 303 and resp.headers["Location"] == f"/console/recordings/{rec}"
    assert stopped.stop_requested_at is not None and recordings.stop_requested(rt, rec)


def test_a_recording_whose_stop_was_asked_says_it_is_stopping(rt, signed):
    rec = running(rt, signed.project_id)
    post(signed.client, f"/console/recordings/{rec}/stop")
    page = page_of(signed, rec)
    recordings.fail(rt, rec, "test over")
    assert "Stop requested: the capture closes its last segment" in page  # the flash
    assert "Stopping: stop requested" in page and "Stop recording" not in page


def test_stop_finishes_a_session_without_media_at_once(rt, signed):
    rec = add_recording(
        rt, signed.project_id, state="started", ingest="none", media_source=None, duration=None
    )
    post(signed.client, f"/console/recordings/{rec}/stop")
    assert recordings.load(rt, rec).state == "finished"
    assert "Recording stopped and finished." in page_of(signed, rec)


def test_stopping_a_finished_recording_says_so(rt, signed):
    rec = add_recording(rt, signed.project_id)
    post(signed.client, f"/console/recordings/{rec}/stop")
    assert "Not stopped: the recording is finished already." in page_of(signed, rec)


def test_a_read_key_may_not_stop(rt, client):
    project_id, key = project_with_key(rt, *READ)
    rec = running(rt, project_id)
    sign_in(client, key)
    page = text(client.get(f"/console/recordings/{rec}"))
    refused = post(client, f"/console/recordings/{rec}/stop").status_code
    asked = recordings.load(rt, rec).stop_requested_at
    recordings.fail(rt, rec, "test over")
    assert "Stop recording" not in page and refused == 403 and asked is None


def test_another_projects_recording_cannot_be_stopped(rt, signed):
    foreign = running(rt, project_with_key(rt)[0])
    status = post(signed.client, f"/console/recordings/{foreign}/stop").status_code
    asked = recordings.load(rt, foreign).stop_requested_at
    recordings.fail(rt, foreign, "test over")
    assert status == 404 and asked is None


def test_a_failed_recording_says_why(rt, signed):
    rec = make_recording(rt, signed.project_id, state="started")
    recordings.fail(rt, rec, "the source went away")
    page = page_of(signed, rec)
    assert "Failed: the source went away" in page and "it is <strong>" not in page


def test_capture_jobs_count_every_job_that_took_the_lease(rt, signed):
    rec = running(rt, signed.project_id)
    assert leases.acquire(rt, rec, "first-job")
    leases.release(rt, rec, "first-job")  # a handover: the next job takes the lease
    assert leases.acquire(rt, rec, "second-job")
    recordings.fail(rt, rec, "test over")
    page = page_of(signed, rec)
    assert role(page, "capture-jobs") == "2 (handed over or resumed 1 time)"
    assert role(page, "media").startswith("pulled")


def test_interruptions_say_where_and_why(rt, signed):
    gap = {"after_seq": 4, "seconds": 2.5, "reason": "source dropped"}
    rec = add_recording(rt, signed.project_id, ingest="pull", capture_attempts=1, gaps=[gap], reconnects=1)
    assert role(page_of(signed, rec), "interruptions") == "1 after segment 4: 2.5 s lost (source dropped)"


def test_a_pushed_recording_shows_its_chunks_not_capture_jobs(rt, signed):
    from app.services.pipeline import segments

    rec = add_recording(rt, signed.project_id, state="started", ingest="push", duration=None)
    assert segments.record_pushed(rt, rec, segments.NewSegment(0, "k0", 2048, "ab" * 32, None))
    page = page_of(signed, rec)
    assert role(page, "media").startswith("pushed") and 'data-role="capture-jobs"' not in page
    assert role(page, "received") == "1 (2.0 KiB), the last just now"


def test_the_video_page_marks_the_gaps_it_skips(rt, signed):
    rec = make_recording(rt, signed.project_id)
    gap = {"after_seq": 2, "seconds": 3.5, "reason": "source dropped"}
    timeline = [[1000.0, 0.0, 10.0], [1013.5, 10.0, 20.0]]
    with rt.db.transaction() as s:
        s.execute(
            update(Recording).where(Recording.id == rec).values(timeline=timeline, gaps=[gap], duration=30.0)
        )
    page = page_of(signed, rec)
    assert '<span class="mark mark-gap" data-at="10.000"' in page
    item = re.search(r'<li data-role="video-gap">(.*?)</li>', page, re.S).group(1)
    assert 'data-seek="10.000"' in item and "3.5 s not recorded: source dropped" in item


def test_retention_shows_the_deletion_date(rt, signed):
    rec = add_recording(rt, signed.project_id)
    deletes = recordings.load(rt, rec).created_at + timedelta(days=rt.config.retention_days)
    page = page_of(signed, rec)
    assert role(page, "retention") == f"deleted in {rt.config.retention_days - 1} days"
    assert f'datetime="{deletes.isoformat(timespec="seconds")}"' in page


@pytest.mark.parametrize(
    ("flags", "shown"), [({"persist": True}, "kept: persisted"), ({"legal_hold": True}, "kept: legal hold")]
)
def test_retention_says_what_keeps_a_recording(rt, signed, flags, shown):
    assert role(page_of(signed, add_recording(rt, signed.project_id, **flags)), "retention") == shown


def test_times_are_relative_with_the_utc_time_on_hover(rt, signed):
    page = page_of(signed, make_recording(rt, signed.project_id))
    created = re.search(r"<dt>Created</dt><dd>(.*?)</dd>", page).group(1)
    assert re.fullmatch(r'<time datetime="[^"]+\+00:00" title="[^"]+ UTC">just now</time>', created)
    assert not re.search(r"\d:\d\d\.\d{6}", page)  # no raw microsecond timestamps


def test_event_details_read_as_fields(app, rt, signed):
    auth = {"Authorization": keys.create_key(rt, signed.project_id)[1]}
    api = app.test_client()
    sid = api.post("/recordings", json={"description": "checkout"}, headers=auth).get_json()["session_id"]
    click = {
        "id": "c1",
        "type": "click",
        "timestamp": 1_700_000_001.0,
        "coordinates": {"x": 5, "y": 6},
        "click_data": {"button": "left", "pressed": True},
    }
    assert api.post(f"/recordings/{sid}/events", json=[click], headers=auth).status_code == 201
    page = page_of(signed, sid)
    assert '<span class="field-name">button:</span> left' in page
    assert '<span class="field-name">pressed:</span> yes' in page
    assert "{&#39;" not in page and "True" not in page


# The recordings list


def row(signed, rec: str) -> str:  # type: ignore[no-untyped-def]
    page = text(signed.client.get("/console/recordings"))
    return re.search(rf'<tr data-recording-id="{rec}".*?</tr>', page, re.S).group(0)


def test_a_recording_with_a_poster_shows_it(rt, signed):
    rec = make_recording(rt, signed.project_id)
    poster = f"{recordings.object_prefix(rec)}poster.jpg"
    rt.storage.put_bytes(poster, b"jpeg", "image/jpeg")
    with rt.db.transaction() as s:
        s.execute(update(Recording).where(Recording.id == rec).values(poster_key=poster))
    img = re.search(r'<img class="poster" data-role="poster" src="([^"]+)"', row(signed, rec)).group(1)
    assert img.startswith(rt.config.s3_public_endpoint) and "poster.jpg" in img and "X-Amz-Signature" in img


def test_a_recording_without_a_poster_shows_a_placeholder(rt, signed):
    rec = add_recording(rt, signed.project_id, state="started", duration=None)
    assert '<span class="poster poster-none poster-video" data-role="poster" aria-hidden="true">' in row(
        signed, rec
    )


def test_the_list_shows_the_description(rt, signed):
    rec = add_recording(rt, signed.project_id, description="Quarterly review with the board")
    assert role(row(signed, rec), "description") == "Quarterly review with the board"


@pytest.mark.parametrize(
    ("ingest", "shown"), [("pull", "media pulled"), ("push", "media pushed"), ("none", "media absent")]
)
def test_the_list_says_how_media_got_in(rt, signed, ingest, shown):
    rec = add_recording(rt, signed.project_id, ingest=ingest)
    assert role(row(signed, rec), "media") == shown


def test_a_failed_recording_says_why_in_the_list(rt, signed):
    rec = add_recording(rt, signed.project_id, state="failed", error="no media was uploaded before the stop")
    assert role(row(signed, rec), "error") == "no media was uploaded before the stop"


def test_the_list_shows_when_retention_deletes(rt, signed):
    rec = add_recording(rt, signed.project_id, age_days=4)
    assert role(row(signed, rec), "retention") == f"deleted in {rt.config.retention_days - 5} days"


def test_the_list_shows_what_keeps_a_recording(rt, signed):
    rec = add_recording(rt, signed.project_id, legal_hold=True, persist=True)
    assert role(row(signed, rec), "retention") == "kept: legal hold"


def test_the_list_shows_creation_relative_with_utc_on_hover(rt, signed):
    rec = add_recording(rt, signed.project_id, age_days=2)
    created = re.search(r'<td data-label="Created">(.*?)</td>', row(signed, rec)).group(1)
    assert re.fullmatch(
        r'<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">2 days ago</time>', created
    )


def test_the_list_sorts_from_its_filter_form_too(rt, signed):
    long = add_recording(rt, signed.project_id, duration=90.0)
    short = add_recording(rt, signed.project_id, duration=5.0)
    page = text(signed.client.get("/console/recordings", query_string={"sort": "duration", "dir": "asc"}))
    assert page.index(short) < page.index(long)
    assert '<option value="duration" selected>' in page and '<option value="asc" selected>' in page


def test_live_states_tell_a_page_that_its_capture_changed_hands(rt, signed):
    rec = running(rt, signed.project_id)
    before = signed.client.get("/console/recordings/states", query_string={"ids": rec}).json[rec]
    assert leases.acquire(rt, rec, "first-job")
    after = signed.client.get("/console/recordings/states", query_string={"ids": rec}).json[rec]
    recordings.fail(rt, rec, "test over")
    assert (before["capture_attempts"], after["capture_attempts"]) == (0, 1)
    assert 'data-capture-attempts="1"' in page_of(signed, rec)
