"""`/metrics`: Prometheus text with request latency by route, and figures read from SQL and Redis."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from app.factory import create_app
from app.models import Recording, Segment, WebhookDelivery, WebhookEndpoint, WebhookEvent
from app.observability import metrics
from app.observability.metrics import StateCollector
from app.queueing import RECONCILE
from app.runtime import Runtime
from app.services.access import keys
from app.services.ids import new_id
from tests.helpers import make_recording, runtime_on_redis_db


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def collect(rt: Runtime) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The SQL and Redis figures now (no cache)."""
    out = {}
    for family in StateCollector(rt, cache_seconds=0).collect():
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(figures, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return figures[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def project_id(rt: Runtime) -> str:
    return keys.create_project(rt, "metrics-" + secrets.token_hex(3)).id


@pytest.fixture
def isolated_redis(rt: Runtime):  # type: ignore[no-untyped-def]
    """A runtime on a Redis database of its own (no worker consumes its queues)."""
    with runtime_on_redis_db(rt, 7) as other:
        yield other


def test_metrics_is_prometheus_text(client):
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.content_type.startswith("text/plain; version=")
    assert samples(resp.get_data(as_text=True))


def test_request_latency_is_labelled_by_route_template_not_path(client, auth):
    client.get("/recordings/some-recording-id", headers=auth)
    text = client.get("/metrics").get_data(as_text=True)
    labels = dict(method="GET", endpoint="/recordings/<recording_id>", status="404")
    assert value(samples(text), "meetrec_http_request_duration_seconds_count", **labels) >= 1
    assert "some-recording-id" not in text


def test_the_cached_latency_child_counts_each_status_apart():
    """`observe_request` keeps REQUEST_LATENCY's child per (method, endpoint, status): the one `labels()`
    gives, so every status still counts on its own series."""
    endpoint = "/_cached/" + secrets.token_hex(4)

    def count(status: str) -> float:
        child = metrics.REQUEST_LATENCY.labels("GET", endpoint, status)
        return next(s.value for s in child.collect()[0].samples if s.name.endswith("_count"))

    for status in (200, 200, 404, 200):
        metrics.observe_request("GET", endpoint, status, 0.001)
    assert (count("200"), count("404")) == (3, 1)
    assert metrics._children[("GET", endpoint, 200)] is metrics.REQUEST_LATENCY.labels("GET", endpoint, "200")


def test_the_latency_child_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(metrics, "_children", {})
    monkeypatch.setattr(metrics, "MAX_CHILDREN", 2)
    for n in range(5):
        metrics.observe_request("GET", f"/_bounded/{n}", 200, 0.001)
    assert len(metrics._children) <= 2


def test_recordings_by_state_count_the_rows(rt, project_id):
    before = collect(rt)
    make_recording(rt, project_id, state="failed")
    after = collect(rt)
    assert (
        value(after, "meetrec_recordings", state="failed")
        == value(before, "meetrec_recordings", state="failed") + 1
    )


def test_running_captures_count_live_leases_only(rt, project_id):
    before = value(collect(rt), "meetrec_captures_running")
    live, expired = (
        make_recording(rt, project_id, state="started"),
        make_recording(rt, project_id, state="started"),
    )
    with rt.db.transaction() as s:
        for rec_id, delta in ((live, 30), (expired, -30)):
            s.execute(
                update(Recording)
                .where(Recording.id == rec_id)
                .values(ingest="pull", lease_owner="w", lease_expires_at=rt.now() + timedelta(seconds=delta))
            )
    assert value(collect(rt), "meetrec_captures_running") == before + 1
    with rt.db.transaction() as s:  # do not leave captures the reconciler would chase
        s.execute(update(Recording).where(Recording.id.in_([live, expired])).values(state="failed"))


def test_finalize_durations_are_stop_to_finish(rt, project_id):
    name = "meetrec_finalize_duration_seconds"
    before = collect(rt)
    rec_id = make_recording(rt, project_id, state="finished")
    with rt.db.transaction() as s:
        now = rt.now()
        s.execute(
            update(Recording)
            .where(Recording.id == rec_id)
            .values(stopped_at=now - timedelta(seconds=7), finished_at=now)
        )
    after = collect(rt)
    assert value(after, name + "_count") == value(before, name + "_count") + 1
    assert value(after, name + "_bucket", le="10.0") == value(before, name + "_bucket", le="10.0") + 1
    assert value(after, name + "_bucket", le="5.0") == value(before, name + "_bucket", le="5.0")
    assert value(after, name + "_sum") == pytest.approx(value(before, name + "_sum") + 7, abs=0.01)


def test_webhook_delivery_outcomes_count_the_attempt_log(rt, project_id):
    name = "meetrec_webhook_deliveries_total"
    before = collect(rt)
    key, _ = keys.create_key(rt, project_id)
    with rt.db.transaction() as s:
        endpoint = WebhookEndpoint(
            id=new_id(), project_id=project_id, api_key_id=key.id, url="https://example.com/hook",
            types="recording_update", eyeson_key_sealed="x", secret_sealed="x",
        )  # fmt: skip
        event = WebhookEvent(
            id=new_id(),
            project_id=project_id,
            type="recording_update",
            resource_id=new_id(),
            seq=1,
            payload={},
        )
        s.add_all([endpoint, event])
        s.flush()
        for state in ("succeeded", "failed", "failed", "pending"):
            s.add(WebhookDelivery(id=new_id(), endpoint_id=endpoint.id, event_id=event.id, state=state))
    after = collect(rt)
    for outcome, added in (("succeeded", 1), ("failed", 2), ("cancelled", 0)):
        assert value(after, name, outcome=outcome) == value(before, name, outcome=outcome) + added
    waiting = "meetrec_webhook_deliveries_waiting"
    assert value(after, waiting, state="pending") == value(before, waiting, state="pending") + 1


def test_storage_bytes_add_final_files_and_unjoined_segments(rt, project_id):
    before = collect(rt)
    make_recording(rt, project_id, state="finished")  # a 4-byte final file
    stopped = make_recording(rt, project_id, state="stopped")
    with rt.db.transaction() as s:
        s.add(Segment(recording_id=stopped, seq=0, object_key="k", size=1000, sha256="0" * 64))
        s.execute(update(Recording).where(Recording.id == stopped).values(stopped_at=rt.now()))
    after = collect(rt)
    for kind, added in (("recordings", 4), ("segments", 1000)):
        assert (
            value(after, "meetrec_storage_bytes", kind=kind)
            == value(before, "meetrec_storage_bytes", kind=kind) + added
        )
    with rt.db.transaction() as s:  # a stopped recording without media would be finalized (and fail)
        s.execute(update(Recording).where(Recording.id == stopped).values(state="failed"))


def test_queue_depth_counts_queued_jobs(isolated_redis):
    isolated_redis.jobs.enqueue(RECONCILE, job_id="metrics-depth-1")
    isolated_redis.jobs.enqueue(RECONCILE, job_id="metrics-depth-2")
    figures = collect(isolated_redis)
    assert value(figures, "meetrec_queue_jobs", queue="default", status="queued") == 2
    assert value(figures, "meetrec_queue_jobs", queue="capture", status="queued") == 0


def test_an_unreachable_redis_is_reported_not_raised(rt):
    down = Runtime(replace(rt.config, redis_url="redis://127.0.0.1:1/0"))
    figures = collect(down)
    assert value(figures, "meetrec_metrics_source_up", source="redis") == 0
    assert value(figures, "meetrec_metrics_source_up", source="database") == 1


def test_metrics_token_is_required_when_set(rt, monkeypatch):
    monkeypatch.setenv("MEETREC_METRICS_TOKEN", "scrape-me")
    client = create_app(runtime=rt).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200


def test_metrics_is_open_without_a_token(client):
    assert client.get("/metrics").status_code == 200
