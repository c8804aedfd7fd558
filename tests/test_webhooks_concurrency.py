"""Webhook deliveries side by side within one worker: bounded per endpoint, kept-alive connections,
per-resource order, the retry schedule, and a hanging receiver that holds up no other.

Real worker, Redis, SQL and loopback receivers. Events are made "held back" (due in an hour, emitted
with Redis unreachable), then released together, so one delivery job finds them all due at once.
The test config sets a retry schedule of 1, 1, 2 seconds and a 3 s timeout (tests/conftest.py).
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.models import WebhookDelivery, WebhookEndpoint, utcnow
from app.runtime import Runtime
from app.services.access import keys
from app.services.core import rooms
from app.services.outbox import outbox, pump
from tests.conftest import _free_port
from tests.helpers import wait_for
from tests.webhook_receiver import Received, Receiver
from webhooks import delivery

pytestmark = pytest.mark.usefixtures("workers")


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    r = Receiver().start()
    yield r
    r.stop()


def register(client, api_key: str, url: str) -> str:  # type: ignore[no-untyped-def]
    resp = client.post(
        "/webhooks", json={"url": url, "types": "room_update"}, headers={"Authorization": api_key}
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def held_back(rt: Runtime, config, project_id: str, rooms_: list[str], shutdown: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Start (and shut down) these meetings with their deliveries due in an hour, no job woken."""
    later = Runtime(
        dataclasses.replace(config, redis_url=f"redis://127.0.0.1:{_free_port()}/0"),
        clock=lambda: utcnow() + timedelta(hours=1),
    )
    for room in rooms_:
        rooms.join(later, project_id, rooms.JoinRequest(user_name="Jane", room_key=room))
        if shutdown:
            rooms.shutdown(later, project_id, room)


def release(rt: Runtime, *endpoint_ids: str) -> None:
    """Make the endpoints' held-back deliveries due now, and wake a delivery job."""
    with rt.db.transaction() as s:
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id.in_(endpoint_ids), WebhookDelivery.state == "pending")
            .values(due_at=rt.now())
        )
    assert outbox.dispatch_pending(rt) >= 1


def attempts(rt: Runtime, endpoint_id: str) -> list[WebhookDelivery]:
    with rt.db.read() as s:
        found = s.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
        return sorted(found, key=lambda d: d.attempt)


def payload(got: Received) -> dict:
    return json.loads(got.body)


def test_deliveries_to_one_receiver_go_out_side_by_side_and_at_most_per_endpoint_at_once(
    client, auth, rt, config
):
    slow = Receiver(delay=0.5).start()
    try:
        hook = register(client, auth["Authorization"], slow.url)
        held_back(
            rt,
            config,
            keys.authenticate(rt, auth["Authorization"]).project_id,
            [f"side-{n}" for n in range(12)],
        )
        release(rt, hook)
        got = slow.wait_for(12, timeout=30)
    finally:
        slow.stop()
    assert slow.max_in_flight == pump.PER_ENDPOINT  # one after another would take 6 s
    assert max(g.at for g in got) - min(g.at for g in got) < 12 * 0.5
    assert slow.connections <= pump.PER_ENDPOINT  # kept alive: 12 requests, no more connections than senders


def test_connections_are_kept_alive_across_batches(client, auth, rt, config, receiver):
    hook = register(client, auth["Authorization"], receiver.url)
    project_id = keys.authenticate(rt, auth["Authorization"]).project_id
    for batch in range(3):
        held_back(rt, config, project_id, [f"kept-{batch}-{n}" for n in range(10)])
        release(rt, hook)
        receiver.wait_for(10 * (batch + 1))
    assert receiver.connections <= pump.PER_ENDPOINT < len(receiver.requests)


def test_each_resources_events_arrive_in_order_while_resources_go_side_by_side(client, auth, rt, config):
    seen: set[str] = set()

    def first_attempt_of_even_rooms_started_fails(got: Received) -> int:
        sent = payload(got)
        first = sent["id"] not in seen
        seen.add(sent["id"])
        return (
            500 if first and sent["seq"] == 1 and int(sent["room"]["id"].rsplit("-", 1)[1]) % 2 == 0 else 200
        )

    receiver = Receiver(delay=0.05, status_for=first_attempt_of_even_rooms_started_fails).start()
    try:
        hook = register(client, auth["Authorization"], receiver.url)
        room_ids = [f"order-{n}" for n in range(8)]
        held_back(
            rt, config, keys.authenticate(rt, auth["Authorization"]).project_id, room_ids, shutdown=True
        )
        release(rt, hook)
        got = receiver.wait_for(8 * 2 + 4, timeout=30)  # two events a room, four of them retried once
    finally:
        receiver.stop()
    assert receiver.max_in_flight > 1
    for room_id in room_ids:
        sent = [(payload(g)["seq"], g.at) for g in got if payload(g)["room"]["id"] == room_id]
        seqs = [seq for seq, _ in sent]
        assert seqs == ([1, 1, 2] if int(room_id[-1]) % 2 == 0 else [1, 2]), (room_id, seqs)
    assert len({payload(g)["id"] for g in got}) == 16


def test_retries_still_follow_the_schedule(client, auth, rt, config):
    receiver = Receiver(answers=[500, 500]).start()
    try:
        hook = register(client, auth["Authorization"], receiver.url)
        held_back(rt, config, keys.authenticate(rt, auth["Authorization"]).project_id, ["scheduled"])
        release(rt, hook)
        first, second, third = receiver.wait_for(3, timeout=30)
    finally:
        receiver.stop()
    schedule, jitter = config.webhook_retry_schedule, 0.2
    for delay, (before, after) in zip(schedule, [(first, second), (second, third)], strict=False):
        assert delay * (1 - jitter) - 0.05 <= after.at - before.at <= delay * (1 + jitter) + 2.5
    log = wait_for(lambda: (found := attempts(rt, hook))[-1].state == "succeeded" and found)
    assert [(d.attempt, d.state, d.status_code) for d in log] == [
        (1, "failed", 500),
        (2, "failed", 500),
        (3, "succeeded", 200),
    ]
    for d, delay in zip(log[:2], schedule, strict=False):
        waited = (d.next_attempt_at - d.attempted_at).total_seconds()
        assert delay * (1 - jitter) <= waited <= delay * (1 + jitter) + 1


def test_a_hanging_receiver_holds_up_no_other_endpoint(client, auth, rt, config, receiver):
    project_id = keys.authenticate(rt, auth["Authorization"]).project_id
    other_key = keys.create_key(rt, project_id)[1]
    hanging = Receiver(delay=10).start()  # answers long after the 3 s timeout
    try:
        stuck = register(client, auth["Authorization"], hanging.url)
        fine = register(client, other_key, receiver.url)
        held_back(rt, config, project_id, [f"hung-{n}" for n in range(12)])
        release(rt, stuck, fine)
        got = receiver.wait_for(12, timeout=30)
        first_hung = min(g.at for g in hanging.wait_for(1))
        assert max(g.at for g in got) < first_hung + config.webhook_timeout
        assert hanging.max_in_flight <= pump.PER_ENDPOINT
    finally:
        client.delete(f"/webhooks/{stuck}", headers=auth)  # its pending retries go with it
        hanging.stop()


def test_an_endpoint_whose_last_attempt_failed_gets_fewer_senders(client, auth, rt, config):
    hanging = Receiver(delay=10).start()
    try:
        stuck = register(client, auth["Authorization"], hanging.url)
        with rt.db.transaction() as s:
            s.execute(
                update(WebhookEndpoint).where(WebhookEndpoint.id == stuck).values(failing_since=rt.now())
            )
        held_back(
            rt,
            config,
            keys.authenticate(rt, auth["Authorization"]).project_id,
            [f"few-{n}" for n in range(6)],
        )
        release(rt, stuck)
        hanging.wait_for(pump.PER_FAILING_ENDPOINT)
        time.sleep(1)  # within the 3 s timeout: had more been sent, they would be in flight now
        assert hanging.max_in_flight == pump.PER_FAILING_ENDPOINT
    finally:
        client.delete(f"/webhooks/{stuck}", headers=auth)
        hanging.stop()


def test_a_batch_a_dead_worker_left_sending_is_sent_again(client, auth, rt, config, receiver):
    hook = register(client, auth["Authorization"], receiver.url)
    held_back(
        rt, config, keys.authenticate(rt, auth["Authorization"]).project_id, [f"dead-{n}" for n in range(5)]
    )
    with rt.db.transaction() as s:
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == hook)
            .values(state="sending", attempted_at=rt.now() - outbox.STALE_SENDING - timedelta(seconds=1))
        )
    assert outbox.dispatch_pending(rt) >= 5  # and any other test's left due
    got = receiver.wait_for(5)
    assert sorted(payload(g)["room"]["id"] for g in got) == [f"dead-{n}" for n in range(5)]
    assert wait_for(lambda: [d.state for d in attempts(rt, hook)] == ["succeeded"] * 5)


def test_a_sender_reuses_one_connection_for_posts_one_after_another(receiver):
    sender = delivery.Sender()
    results = [sender.post(receiver.url, b"{}", {}, timeout=3, allowlist=["127.0.0.1"]) for _ in range(5)]
    assert all(r.ok for r in results), results
    assert (receiver.connections, len(receiver.requests)) == (1, 5)
    assert "Connection" not in receiver.requests[0].headers
    sender.close()


def test_a_kept_connection_is_not_used_once_its_address_is_refused(receiver):
    sender = delivery.Sender()
    assert sender.post(receiver.url, b"{}", {}, timeout=3, allowlist=["127.0.0.1"]).ok
    refused = sender.post(receiver.url, b"{}", {}, timeout=3, allowlist=())
    assert not refused.ok and (refused.error or "").startswith("refused")
    assert len(receiver.requests) == 1
    sender.close()


def test_a_connection_the_receiver_closed_is_replaced(receiver):
    sender = delivery.Sender()
    assert sender.post(receiver.url, b"{}", {}, timeout=3, allowlist=["127.0.0.1"]).ok
    receiver.close_connections()
    assert sender.post(receiver.url, b"{}", {}, timeout=3, allowlist=["127.0.0.1"]).ok
    assert (receiver.connections, len(receiver.requests)) == (2, 2)
    sender.close()


def test_the_one_shot_post_closes_its_connection(receiver):
    assert delivery.post(receiver.url, b"{}", {}, timeout=3, allowlist=["127.0.0.1"]).ok
    assert receiver.requests[0].headers["Connection"] == "close"
