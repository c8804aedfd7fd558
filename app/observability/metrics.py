"""Prometheus metrics at `/metrics`.

Two kinds of figures, gathered two ways:

- Request latency is measured in the api process that served the request (`observe_request`). Under
  gunicorn several worker processes serve, so prometheus_client's multiprocess mode is used: each worker
  writes its samples to files in PROMETHEUS_MULTIPROC_DIR and a scrape, whichever worker answers it, sums
  them all (`app/gunicorn_conf.py` sets the directory up).
- Everything else is computed when scraped, from SQL and Redis (`StateCollector`): recordings by state,
  running captures, queue depths, finalize durations, webhook delivery outcomes, stored bytes, each as
  defined once in `app.services.operations.counts` (the console and `GET /system` read the same). SQL is the
  truth and outlives every process, so these figures are the same whichever api replica is scraped, need
  no instrumentation in workers (which serve no HTTP), and survive restarts. Finalize durations are
  `finished_at - stopped_at` of every finished recording and delivery outcomes count the attempt log;
  both only grow (rows are tombstoned, never removed), so they are exposed as a histogram and a counter.
  A scrape's SQL and Redis figures are cached for `CACHE_SECONDS`, so scrapers cannot load the database.
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from collections.abc import Iterable, Iterator

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.utils import floatToGoString

from app.errors import Unauthorized
from app.runtime import Runtime
from app.services.operations import counts, system

CACHE_SECONDS = 5.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FINALIZE_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
DELIVERY_OUTCOMES = ("succeeded", "failed", "cancelled")
DELIVERY_WAITING = ("pending", "sending")

REQUEST_LATENCY = Histogram(
    "meetrec_http_request_duration_seconds",
    "API request latency by route template (not raw path), method and status code",
    ["method", "endpoint", "status"],
    buckets=LATENCY_BUCKETS,
)

blp = Blueprint("metrics", __name__)


def init_app(app: Flask, rt: Runtime, token: str = "") -> None:
    """Serve `/metrics` from `app`; with `token`, only to `Authorization: Bearer <token>`."""
    app.config["MEETREC_METRICS_TOKEN"] = token
    app.extensions["meetrec_metrics"] = StateCollector(rt)
    app.register_blueprint(blp)


# REQUEST_LATENCY's child per (method, endpoint, status): `labels()` validates, converts and locks on
# every call. Its children are never removed, so a cached one is the one `labels()` would return.
_children: dict[tuple[str, str, int], Histogram] = {}
MAX_CHILDREN = 4096  # methods are the caller's choice: past this many, the cache starts over


def observe_request(method: str, endpoint: str, status: int, seconds: float) -> None:
    key = (method, endpoint, status)
    child = _children.get(key)
    if child is None:
        if len(_children) >= MAX_CHILDREN:
            _children.clear()
        child = _children[key] = REQUEST_LATENCY.labels(method, endpoint, str(status))
    child.observe(seconds)


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


@blp.get("/metrics")
def scrape() -> Response:
    """Prometheus text format. With MEETREC_METRICS_TOKEN set, only `Authorization: Bearer <token>`."""
    token = current_app.config.get("MEETREC_METRICS_TOKEN", "")
    if token:
        presented = request.headers.get("Authorization", "")
        if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
            raise Unauthorized("/metrics needs Authorization: Bearer <MEETREC_METRICS_TOKEN>")
    if multiprocess_mode():
        requests_registry = CollectorRegistry()
        MultiProcessCollector(requests_registry)
    else:
        requests_registry = REGISTRY
    state_registry = CollectorRegistry(auto_describe=False)
    state_registry.register(current_app.extensions["meetrec_metrics"])
    body = generate_latest(requests_registry) + generate_latest(state_registry)
    return Response(body, content_type=CONTENT_TYPE_LATEST)


class StateCollector:
    """The figures read from SQL and Redis at scrape time (see the module docstring)."""

    def __init__(self, rt: Runtime, cache_seconds: float = CACHE_SECONDS):
        self.rt = rt
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] = (0.0, [])

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            expires, families = self._cached
            if time.monotonic() >= expires:
                families = list(self._gather())
                self._cached = (time.monotonic() + self.cache_seconds, families)
        yield from families

    def _gather(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "meetrec_metrics_source_up", "1 when the scrape could read this source", labels=["source"]
        )
        for source, gather in (("database", self._sql), ("redis", self._redis)):
            try:
                yield from list(gather())
                up.add_metric([source], 1)
            except Exception:  # noqa: BLE001 - a source that is down is reported, not raised
                up.add_metric([source], 0)
        yield up

    def _sql(self) -> Iterable[Metric]:
        rt = self.rt
        yield _labelled(
            GaugeMetricFamily,
            "meetrec_recordings",
            "Recordings by state",
            "state",
            counts.recordings_by_state(rt),
        )
        yield GaugeMetricFamily(
            "meetrec_captures_running",
            "Pull captures holding a live lease (ffmpeg running)",
            value=counts.captures_running(rt),
        )
        deliveries = counts.deliveries_by_state(rt)
        yield _labelled(
            CounterMetricFamily,
            "meetrec_webhook_deliveries",
            "Webhook delivery attempts by outcome",
            "outcome",
            {outcome: deliveries[outcome] for outcome in DELIVERY_OUTCOMES},
        )
        yield _labelled(
            GaugeMetricFamily,
            "meetrec_webhook_deliveries_waiting",
            "Delivery attempts due or in flight",
            "state",
            {state: deliveries[state] for state in DELIVERY_WAITING},
        )
        yield _labelled(
            GaugeMetricFamily,
            "meetrec_storage_bytes",
            "Bytes in object storage per SQL: final files of finished recordings, segments not yet joined",
            "kind",
            counts.storage_bytes(rt),
        )
        yield _finalize_histogram(counts.finalize_durations(rt, FINALIZE_BUCKETS))

    def _redis(self) -> Iterable[Metric]:
        jobs = GaugeMetricFamily(
            "meetrec_queue_jobs",
            "RQ jobs per queue: queued (the queue depth), started, scheduled, failed",
            labels=["queue", "status"],
        )
        for queue, by_status in counts.queue_jobs(self.rt).items():
            for status, n in by_status.items():
                jobs.add_metric([queue, status], n)
        yield jobs
        yield GaugeMetricFamily(
            "meetrec_workers", "RQ workers registered in Redis", value=counts.workers(self.rt)
        )
        ages = GaugeMetricFamily(
            "meetrec_scheduler_last_tick_age_seconds",
            "Seconds since the scheduler last enqueued each timetable entry",
            labels=["entry"],
        )
        for entry, tick in system.scheduler(self.rt)["last_ticks"].items():
            ages.add_metric([entry], tick["seconds_ago"])
        yield ages


def _labelled(
    family: type[GaugeMetricFamily | CounterMetricFamily],
    name: str,
    doc: str,
    label: str,
    values: dict[str, int],
) -> Metric:
    """A `family` metric with one sample per item of `values`, its key as the `label` label."""
    metric = family(name, doc, labels=[label])
    for key, n in values.items():
        metric.add_metric([key], n)
    return metric


def _finalize_histogram(durations: counts.Durations) -> HistogramMetricFamily:
    buckets = [(floatToGoString(b), n) for b, n in zip(FINALIZE_BUCKETS, durations.at_most, strict=True)]
    buckets.append(("+Inf", durations.count))
    return HistogramMetricFamily(
        "meetrec_finalize_duration_seconds",
        "Stop to finished, per finished recording (from SQL)",
        buckets=buckets,
        sum_value=durations.total,
    )
