"""Webhook delivery against real HTTP receivers on loopback, through real workers, Redis and SQL.

The test config sets a retry schedule of 1, 1, 2 seconds and a 3 s timeout (tests/conftest.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import timedelta

import pytest
import requests
import standardwebhooks
from sqlalchemy import select, update

from app.models import WebhookDelivery, WebhookEndpoint, utcnow
from app.runtime import Runtime
from app.services.access import keys
from app.services.core import rooms
from app.services.operations import revocation
from app.services.outbox import deliveries, outbox
from tests.conftest import _free_port
from tests.helpers import join_room, wait_for
from tests.webhook_receiver import Receiver
from webhooks import delivery

pytestmark = pytest.mark.usefixtures("workers")


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    r = Receiver().start()
    yield r
    r.stop()


def register(client, auth, url: str, types: str = "room_update") -> dict:  # type: ignore[no-untyped-def]
    resp = client.post("/webhooks", json={"url": url, "types": types}, headers=auth)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def verify(got, secret: str, api_key: str) -> dict:  # type: ignore[no-untyped-def]
    """Check both signatures independently of meetrec's code; returns the payload."""
    payload = standardwebhooks.Webhook(secret).verify(got.body, got.headers)
    expected = hmac.new(api_key.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Eyeson-Signature"] == expected
    return payload


def delivery_log(client, auth, hook_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    resp = client.get(f"/webhooks/{hook_id}/deliveries", headers=auth)
    assert resp.status_code == 200
    return resp.get_json()


def offline_runtime(config, **changes) -> Runtime:  # type: ignore[no-untyped-def]
    """A runtime whose Redis is unreachable: nothing it emits wakes a worker."""
    return Runtime(dataclasses.replace(config, redis_url=f"redis://127.0.0.1:{_free_port()}/0", **changes))


def held_runtime(config) -> Runtime:  # type: ignore[no-untyped-def]
    """An offline runtime an hour ahead: what it emits is due in an hour, so no delivery job started
    for another test's events sends it either."""
    ahead = offline_runtime(config)
    ahead.clock = lambda: utcnow() + timedelta(hours=1)
    return ahead


def make_due(rt, delivery_id: str) -> None:  # type: ignore[no-untyped-def]
    with rt.db.transaction() as s:
        s.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(due_at=rt.now()))


def record_pushed_meeting(client, auth, room_id: str, media: bytes) -> str:  # type: ignore[no-untyped-def]
    """Start a push recording, upload `media` in three chunks, stop it; returns the recording id."""
    room = join_room(client, auth, room_id, **{"options[media_source]": "push"})
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    recording_id = client.get(f"/rooms/{room_id}/recordings", headers=auth).get_json()[0]["id"]
    third = len(media) // 3 + 1
    for seq in range(3):
        resp = client.put(
            f"/recordings/{recording_id}/media/{seq}",
            data=media[seq * third : (seq + 1) * third],
            headers={**auth, "Content-Type": "video/webm"},
        )
        assert resp.status_code == 201
    assert client.delete(f"/rooms/{room['access_key']}/recording").status_code == 200
    return recording_id


def recording_state(client, auth, recording_id: str) -> str:  # type: ignore[no-untyped-def]
    return client.get(f"/recordings/{recording_id}", headers=auth).get_json()["state"]


def test_a_recordings_three_updates_arrive_in_order_and_verifiably_signed(
    client, auth, receiver, mediarecorder_stream
):
    hook = register(client, auth, receiver.url, "recording_update")
    recording_id = record_pushed_meeting(client, auth, "webhook-e2e", mediarecorder_stream)
    got = receiver.wait_for(3, timeout=60)
    payloads = [verify(g, hook["secret"], auth["Authorization"]) for g in got]
    assert [p["type"] for p in payloads] == ["recording_update"] * 3
    assert [p["seq"] for p in payloads] == [1, 2, 3]
    recs = [p["recording"] for p in payloads]
    assert {r["id"] for r in recs} == {recording_id}
    assert (recs[0]["duration"], recs[0]["links"]["download"]) == (None, None)  # started
    assert recs[1]["duration"] is not None and recs[1]["links"]["download"] is None  # stopped
    assert recs[2]["duration"] is not None and recs[2]["links"]["download"]  # finished
    assert requests.get(recs[2]["links"]["download"], timeout=30).status_code == 200
    assert len({g.headers["webhook-id"] for g in got}) == 3


def test_a_receiver_answering_500_then_200_gets_the_event_on_retry(client, auth, receiver):
    receiver.answers = [500]
    hook = register(client, auth, receiver.url)
    join_room(client, auth, "retried")
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert verify(second, hook["secret"], auth["Authorization"])["room"]["id"] == "retried"
    log = wait_for(
        lambda: (d := delivery_log(client, auth, hook["id"])) and d[0]["state"] == "succeeded" and d
    )
    assert [(d["attempt"], d["state"], d["status_code"]) for d in log] == [
        (2, "succeeded", 200),
        (1, "failed", 500),
    ]
    assert log[1]["next_attempt_at"] and log[1]["error"] == "HTTP 500"
    shown = client.get("/webhooks", headers=auth).get_json()  # Eyeson's object: the code is a string
    assert shown["last_response_code"] == "200" and shown["last_request_sent_at"]
    (listed,) = client.get("/webhooks/list", headers=auth).get_json()
    assert listed["last_response_code"] == 200


def test_a_receiver_down_for_a_while_loses_nothing_and_keeps_the_order(client, auth):
    port = _free_port()
    hook = register(client, auth, f"http://127.0.0.1:{port}/hook")
    for room_id in ("down-1", "down-2"):
        join_room(client, auth, room_id)
        assert client.delete(f"/rooms/{room_id}", headers=auth).status_code == 204
    time.sleep(1.5)  # the first attempts find nothing listening
    receiver = Receiver(port=port).start()
    try:
        got = receiver.wait_for(4, timeout=30)
    finally:
        receiver.stop()
    payloads = [verify(g, hook["secret"], auth["Authorization"]) for g in got]
    for room_id in ("down-1", "down-2"):
        seen = [(p["seq"], p["room"]["shutdown"]) for p in payloads if p["room"]["id"] == room_id]
        assert seen == [(1, False), (2, True)]
    failed = [d for d in delivery_log(client, auth, hook["id"]) if d["state"] == "failed"]
    assert failed and all("refused" in d["error"] for d in failed)


def test_a_410_disables_the_endpoint_and_says_why(client, auth, receiver, rt):
    receiver.default = 410
    hook = register(client, auth, receiver.url)
    join_room(client, auth, "gone-1")
    shown = wait_for(
        lambda: (h := client.get(f"/webhooks/{hook['id']}", headers=auth).get_json())["disabled_at"] and h
    )
    assert "410" in shown["disabled_reason"]
    before = len(delivery_log(client, auth, hook["id"]))
    join_room(client, auth, "gone-2")
    assert len(delivery_log(client, auth, hook["id"])) == before  # nothing is queued for it any more
    delivery_id = delivery_log(client, auth, hook["id"])[0]["id"]
    resp = client.post(f"/webhooks/{hook['id']}/deliveries/{delivery_id}/redeliver", headers=auth)
    assert resp.status_code == 409
    assert register(client, auth, receiver.url)["disabled_at"] is None  # registering again enables it


def test_an_operator_can_redeliver_an_event_with_the_same_webhook_id(client, auth, receiver):
    hook = register(client, auth, receiver.url)
    join_room(client, auth, "replayed")
    (first,) = receiver.wait_for(1)
    delivered = wait_for(
        lambda: (d := delivery_log(client, auth, hook["id"])) and d[0]["state"] == "succeeded" and d
    )
    resp = client.post(f"/webhooks/{hook['id']}/deliveries/{delivered[0]['id']}/redeliver", headers=auth)
    assert resp.status_code == 202
    assert resp.get_json()["manual"] is True
    _, again = receiver.wait_for(2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"]
    verify(again, hook["secret"], auth["Authorization"])
    log = wait_for(
        lambda: (d := delivery_log(client, auth, hook["id"])) and d[0]["state"] == "succeeded" and d
    )
    assert [(d["attempt"], d["manual"]) for d in log] == [(2, True), (1, False)]


def test_a_hanging_receiver_never_blocks_or_fails_a_media_job(client, auth, mediarecorder_stream):
    hanging = Receiver(delay=10).start()  # answers long after the 3 s timeout
    try:
        hook = register(client, auth, hanging.url, "recording_update")
        recording_id = record_pushed_meeting(client, auth, "webhook-hang", mediarecorder_stream)
        assert wait_for(lambda: recording_state(client, auth, recording_id) == "finished", timeout=45)
        timed_out = wait_for(
            lambda: [d for d in delivery_log(client, auth, hook["id"]) if d["state"] == "failed"]
        )
        assert "timed out" in timed_out[-1]["error"]
        assert timed_out[-1]["duration_ms"] < 4500
    finally:
        client.delete(f"/webhooks/{hook['id']}", headers=auth)  # its pending retries go with it
        hanging.stop()


def test_with_redis_down_the_change_commits_and_the_event_waits_in_the_outbox(
    client, auth, receiver, config, rt
):
    hook = register(client, auth, receiver.url)
    project_id = keys.authenticate(rt, auth["Authorization"]).project_id
    rooms.join(held_runtime(config), project_id, rooms.JoinRequest(user_name="Jane", room_key="outbox"))
    assert client.get("/rooms/outbox/recordings", headers=auth).status_code == 200  # the meeting runs
    [waiting] = delivery_log(client, auth, hook["id"])
    assert waiting["state"] == "pending"
    make_due(rt, waiting["id"])
    assert outbox.dispatch_pending(rt) >= 1
    (got,) = receiver.wait_for(1)
    assert verify(got, hook["secret"], auth["Authorization"])["room"]["id"] == "outbox"


def pending_delivery(client, auth, rt, config, hook: dict, room_id: str) -> str:  # type: ignore[no-untyped-def]
    """An event for `hook` that no worker sends (emitted with Redis unreachable, due in an hour); its
    delivery's id."""
    project_id = keys.authenticate(rt, auth["Authorization"]).project_id
    rooms.join(held_runtime(config), project_id, rooms.JoinRequest(user_name="Jane", room_key=room_id))
    return delivery_log(client, auth, hook["id"])[0]["id"]


def deliveries_to(rt, endpoint_id: str) -> list[WebhookDelivery]:  # type: ignore[no-untyped-def]
    with rt.db.read() as s:
        return list(s.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)))


def revoke(rt, auth) -> None:  # type: ignore[no-untyped-def]
    revocation.revoke_key(rt, keys.authenticate(rt, auth["Authorization"]).id)


def test_a_revoked_keys_webhook_gets_no_new_deliveries(client, auth, rt, config, receiver):
    hook = register(client, auth, receiver.url)
    project_id = keys.authenticate(rt, auth["Authorization"]).project_id
    revoke(rt, auth)
    rooms.join(rt, project_id, rooms.JoinRequest(user_name="Jane", room_key="after-revoke"))
    assert deliveries_to(rt, hook["id"]) == []


def test_a_delivery_that_raced_the_revocation_is_not_sent(client, auth, rt, config, receiver):
    """An event committed just after the revocation cancelled what was pending leaves a pending
    delivery behind: the attempt finds its endpoint disabled and sends nothing."""
    hook = register(client, auth, receiver.url)
    delivery_id = pending_delivery(client, auth, rt, config, hook, "revoked-pending")
    revoke(rt, auth)
    with rt.db.transaction() as s:
        s.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(state="pending"))
    assert deliveries.deliver(offline_runtime(config), delivery_id) == "cancelled: endpoint disabled"
    (cancelled,) = deliveries_to(rt, hook["id"])
    assert cancelled.state == "cancelled" and cancelled.status_code is None
    assert receiver.requests == []


def test_revoking_a_key_cancels_its_webhooks_pending_deliveries(client, auth, rt, config, receiver):
    hook = register(client, auth, receiver.url)
    pending_delivery(client, auth, rt, config, hook, "revoke-cancels")
    revocation.revoke_key(rt, keys.authenticate(rt, auth["Authorization"]).id)
    assert [d.state for d in deliveries_to(rt, hook["id"])] == ["cancelled"]


def test_an_endpoint_failing_for_days_is_disabled_with_the_reason(client, auth, rt, config, receiver):
    receiver.default = 500
    hook = register(client, auth, receiver.url)
    delivery_id = pending_delivery(client, auth, rt, config, hook, "failing")
    with rt.db.transaction() as s:
        s.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == hook["id"])
            .values(failing_since=rt.now() - timedelta(days=config.webhook_disable_after_days, minutes=1))
        )
    deliveries.deliver(offline_runtime(config), delivery_id)
    shown = client.get(f"/webhooks/{hook['id']}", headers=auth).get_json()
    assert shown["disabled_at"] and "failed since" in shown["disabled_reason"]
    assert "HTTP 500" in shown["disabled_reason"]


def test_the_url_is_checked_again_at_each_attempt(client, auth, rt, config, receiver):
    hook = register(client, auth, receiver.url)  # allowed: the test config allow-lists loopback
    delivery_id = pending_delivery(client, auth, rt, config, hook, "rebound")
    deliveries.deliver(offline_runtime(config, url_allowlist=()), delivery_id)
    with rt.db.read() as s:
        row = s.get(WebhookDelivery, delivery_id)
    assert row.state == "failed" and row.error.startswith("refused")
    assert receiver.requests == []


def test_redirects_are_not_followed(receiver):
    target = Receiver().start()
    try:
        redirecting = RawServer(f"HTTP/1.1 302 Found\r\nLocation: {target.url}\r\nContent-Length: 0\r\n\r\n")
        result = delivery.post(redirecting.url, b"{}", {}, timeout=3, allowlist=["127.0.0.1"])
    finally:
        target.stop()
    assert result.status == 302 and not result.ok
    assert "not followed" in (result.error or "")
    assert target.requests == []


def test_an_answer_dripping_slowly_is_cut_at_the_timeout():
    dripping = RawServer("HTTP/1.1 200 OK\r\n", drip=b"X-Slow: yes\r\n", interval=0.3)
    began = time.monotonic()
    result = delivery.post(dripping.url, b"{}", {}, timeout=1, allowlist=["127.0.0.1"])
    assert time.monotonic() - began < 2
    assert not result.ok and "timed out" in (result.error or "")


def test_only_the_first_kib_of_an_answer_is_kept(receiver):
    big = RawServer("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + "a" * 100000)
    result = delivery.post(big.url, b"{}", {}, timeout=3, allowlist=["127.0.0.1"])
    assert result.ok and len(result.excerpt) == delivery.EXCERPT_BYTES


def test_the_connection_goes_to_a_checked_address_of_the_name(receiver):
    url = f"http://localhost:{receiver.port}/hook"  # may resolve to ::1 first, where nothing listens
    result = delivery.post(url, b"{}", {}, timeout=3, allowlist=["127.0.0.1", "::1"])
    assert result.ok, result
    assert receiver.requests[0].headers["Host"] == f"localhost:{receiver.port}"


def test_an_attempt_interrupted_by_a_dead_worker_is_sent_again(client, auth, rt, config, receiver):
    hook = register(client, auth, receiver.url)
    delivery_id = pending_delivery(client, auth, rt, config, hook, "interrupted")
    with rt.db.transaction() as s:
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(state="sending", attempted_at=rt.now() - outbox.STALE_SENDING - timedelta(seconds=1))
        )
    assert outbox.dispatch_pending(rt) >= 1
    (got,) = receiver.wait_for(1)
    verify(got, hook["secret"], auth["Authorization"])


class RawServer:
    """A one-connection TCP server that answers with raw bytes (and optionally keeps dripping more)."""

    def __init__(self, answer: str, drip: bytes = b"", interval: float = 0.0):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        threading.Thread(target=self._serve, args=(answer.encode(), drip, interval), daemon=True).start()

    def _serve(self, answer: bytes, drip: bytes, interval: float) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(answer)
                for _ in range(50 if drip else 0):
                    time.sleep(interval)
                    conn.sendall(drip)
                time.sleep(0.2)
            except OSError:
                pass
        self.sock.close()


def test_payloads_are_compact_json_with_eyesons_fields(client, auth, receiver):
    register(client, auth, receiver.url)
    join_room(client, auth, "shape")
    (got,) = receiver.wait_for(1)
    payload = json.loads(got.body)
    assert {"timestamp", "type", "room", "id", "seq"} <= set(payload)
    assert got.headers["Content-Type"] == "application/json"
    assert got.body == json.dumps(payload, separators=(",", ":")).encode()


def test_deleting_the_webhook_stops_its_deliveries(client, auth, rt):
    port = _free_port()  # nothing listens: the event keeps being retried
    hook = register(client, auth, f"http://127.0.0.1:{port}/hook")
    join_room(client, auth, "deleted-hook")
    wait_for(lambda: delivery_log(client, auth, hook["id"]))
    assert client.delete(f"/webhooks/{hook['id']}", headers=auth).status_code == 204
    with rt.db.read() as s:
        left = s.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == hook["id"])).all()
    assert left == []
