"""Observability of the api and workers: structured logs, request ids, Prometheus metrics.

`init_app` wires the request hooks and `/metrics` into a Flask app; the modules import prometheus_client
only when used, so gunicorn's master can read `settings` and `logs` before it chooses the metrics mode.
"""

from __future__ import annotations

from flask import Flask

from app.observability.settings import ServerSettings
from app.runtime import Runtime


def init_app(app: Flask, rt: Runtime, settings: ServerSettings | None = None) -> None:
    """Request ids, access lines and latency for every request; `/metrics`."""
    from app.observability import metrics, requests

    settings = settings or ServerSettings.from_env()
    requests.init_app(app)
    metrics.init_app(app, rt, token=settings.metrics_token)
