"""The console's rooms, webhooks and system sections, and a recording's webhook deliveries."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.models import WebhookDelivery
from app.services.access import keys
from app.services.core import recordings
from app.services.outbox import endpoints
from tests.console import (
    ADMIN,
    READ,
    WEBHOOKS,
    meeting,
    post,
    project_with_key,
    sign_in,
    text,
)
from tests.helpers import add_recording, make_recording

MOMENT = r'<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">[^<]+</time>'
HOOK_URL = "http://127.0.0.1:9/hook"  # loopback: allow-listed by the test config; nothing listens


@pytest.fixture
def hooked(rt, client):  # type: ignore[no-untyped-def]
    """A signed-in client whose key may see webhooks, a registered endpoint, and a recording whose
    failure produced a delivery to it."""
    project_id, raw = project_with_key(rt, *WEBHOOKS)
    key = keys.authenticate(rt, raw)
    endpoint = endpoints.register(rt, project_id, key.id, raw, HOOK_URL, ["recording_update"]).endpoint
    rec = make_recording(rt, project_id, state="started")
    recordings.fail(rt, rec, "test failure")
    sign_in(client, raw)
    return SimpleNamespace(client=client, project_id=project_id, endpoint=endpoint, recording=rec)


def deliveries_of(rt, endpoint_id: str) -> list[WebhookDelivery]:  # type: ignore[no-untyped-def]
    with rt.db.read() as s:
        return list(s.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)))


def test_rooms_lists_meetings_with_their_recording_counts(rt, client):
    project_id, key = project_with_key(rt, *READ)
    standup = meeting(rt, project_id, "standup", name="Daily standup")
    add_recording(rt, project_id, standup)
    add_recording(rt, project_id, standup)
    sign_in(client, key)
    page = text(client.get("/console/rooms"))
    assert "Daily standup" in page
    assert 'href="/console/recordings?room=standup">2</a>' in page


def test_a_room_page_lists_its_recordings(rt, client):
    project_id, key = project_with_key(rt, *READ)
    rec = add_recording(rt, project_id, meeting(rt, project_id, "retro"))
    sign_in(client, key)
    page = text(client.get("/console/rooms/retro"))
    assert f'data-recording-id="{rec}"' in page


def test_a_room_page_hides_the_sources_credentials(rt, client):
    from app.services.core import rooms

    project_id, key = project_with_key(rt, *READ)
    req = rooms.JoinRequest(user_name="J", room_key="cam", media_source="rtmp://user:secret@127.0.0.1/live")
    rooms.join(rt, project_id, req)
    sign_in(client, key)
    page = text(client.get("/console/rooms/cam"))
    assert "rtmp://…" in page and "secret" not in page


def test_an_unknown_room_is_404(rt, client):
    _, key = project_with_key(rt, *READ)
    sign_in(client, key)
    assert client.get("/console/rooms/nope").status_code == 404


def test_the_webhooks_page_lists_the_endpoints(hooked):
    page = text(hooked.client.get("/console/webhooks"))
    assert HOOK_URL in page and f"/console/webhooks/{hooked.endpoint.id}" in page


def test_an_endpoint_page_lists_its_attempts(hooked):
    page = text(hooked.client.get(f"/console/webhooks/{hooked.endpoint.id}"))
    assert "recording_update #1" in page and "Redeliver" in page


def test_another_projects_endpoint_is_404(rt, hooked, app):
    _, key = project_with_key(rt, *WEBHOOKS)
    client = app.test_client()
    sign_in(client, key)
    assert client.get(f"/console/webhooks/{hooked.endpoint.id}").status_code == 404


def test_another_keys_endpoint_of_the_project_is_404(rt, hooked, app):
    key = keys.create_key(rt, hooked.project_id, WEBHOOKS)[1]
    client = app.test_client()
    sign_in(client, key)
    assert client.get(f"/console/webhooks/{hooked.endpoint.id}").status_code == 404
    assert HOOK_URL not in text(client.get("/console/webhooks"))


def test_an_admin_key_sees_every_endpoint_of_its_project(rt, hooked, app):
    key = keys.create_key(rt, hooked.project_id, ("admin",))[1]
    client = app.test_client()
    sign_in(client, key)
    assert HOOK_URL in text(client.get("/console/webhooks"))


def test_a_recording_page_shows_its_deliveries(hooked):
    page = text(hooked.client.get(f"/console/recordings/{hooked.recording}"))
    assert "recording_update #1 (failed)" in page and HOOK_URL in page


def test_a_recording_page_hides_deliveries_from_a_key_without_webhook_scope(rt, hooked, app):
    client = app.test_client()
    sign_in(client, keys.create_key(rt, hooked.project_id, READ)[1])
    page = text(client.get(f"/console/recordings/{hooked.recording}"))
    assert HOOK_URL not in page and "needs the <code>webhook:write</code> scope" in page


def test_a_recording_page_hides_deliveries_to_another_keys_endpoint(rt, hooked, app):
    client = app.test_client()
    sign_in(client, keys.create_key(rt, hooked.project_id, WEBHOOKS)[1])
    page = text(client.get(f"/console/recordings/{hooked.recording}"))
    assert HOOK_URL not in page and "recording_update #1" not in page


def test_redeliver_queues_a_manual_attempt_and_goes_back(rt, hooked):
    first = deliveries_of(rt, hooked.endpoint.id)[0]
    back = f"/console/recordings/{hooked.recording}"
    path = f"/console/webhooks/{hooked.endpoint.id}/deliveries/{first.id}/redeliver"
    resp = post(hooked.client, path, next=back)
    assert resp.status_code == 303 and resp.headers["Location"] == back
    assert any(d.manual for d in deliveries_of(rt, hooked.endpoint.id))


def test_redeliver_needs_webhook_write(rt, hooked, app):
    first = deliveries_of(rt, hooked.endpoint.id)[0]
    client = app.test_client()
    sign_in(client, keys.create_key(rt, hooked.project_id, READ)[1])
    path = f"/console/webhooks/{hooked.endpoint.id}/deliveries/{first.id}/redeliver"
    assert post(client, path).status_code == 403


def test_the_system_page_shows_queues_and_storage_used(rt, client):
    project_id, key = project_with_key(rt, *ADMIN)
    add_recording(rt, project_id, size=3 * 1024 * 1024)
    sign_in(client, key)
    page = text(client.get("/console/system"))
    for heading in ("Queues", "Workers", "Scheduler", "Storage used"):
        assert f">{heading}</h2>" in page
    assert "capture" in page and "3.0 MiB" in page


@pytest.mark.parametrize(
    "path",
    [
        "/console/rooms",
        "/console/rooms/timed",
        "/console/webhooks",
        "/console/webhooks/{hook}",
        "/console/system",
        "/console/recordings",
        "/console/recordings/{rec}",
    ],
)
def test_every_page_shows_moments_one_way(rt, hooked, path):
    keys_ = keys.create_key(rt, hooked.project_id, ("admin",))[1]
    add_recording(rt, hooked.project_id, meeting(rt, hooked.project_id, "timed"))
    sign_in(hooked.client, keys_)
    page = text(hooked.client.get(path.format(hook=hooked.endpoint.id, rec=hooked.recording)))
    moments = re.findall(r"<time [^>]*>.*?</time>", page)
    assert all(re.fullmatch(MOMENT, m) for m in moments), moments
    bare = re.sub(r"<time [^>]*>.*?</time>|<[^>]+>", "", page)
    assert not re.search(r"\d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT", bare)  # no time outside a <time>


def test_the_system_page_says_how_many_captures_run(rt, client):
    project_id, key = project_with_key(rt, *ADMIN)
    sign_in(client, key)
    page = text(client.get("/console/system"))
    assert re.search(r"\d+ recordings? started, \d+ of them captured by a running ffmpeg now", page)
