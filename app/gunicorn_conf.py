"""Gunicorn settings of the api process, read from the environment (`app.observability.settings`).

`meetrec api` loads this module; it also works on its own: `gunicorn -c python:app.gunicorn_conf` (which
serves `app.asgi:create_from_env()`, named below). Workers are uvicorn's (`Worker` below): each runs
an event loop serving the ASGI app of `app.asgi`, which hands HTTP requests to the Flask app on a pool of
`threads` threads (so slow clients and S3 presigning do not hold a whole process) and keeps rrweb
WebSocket ingest on the loop, where an idle socket holds no thread. `timeout` is the loop's heartbeat: a
worker whose loop stalls that long is restarted (a request running on the pool does not stall it).
Migrations never run here: `meetrec migrate` (the `migrate` role) does them once per release, before the
api replicas start.

Metrics: every worker writes its request samples to PROMETHEUS_MULTIPROC_DIR (a fresh temporary directory
when unset) and any worker's `/metrics` sums them; the directory is emptied when the master starts, as
prometheus_client requires, and a dead worker's live gauges are dropped.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

from uvicorn_worker import UvicornWorker

from app.config import Config
from app.observability import logs
from app.observability.settings import PROMETHEUS_MULTIPROC_DIR, ServerSettings

_server = ServerSettings.from_env()
_config = Config.from_env()

bind = f"{_config.host}:{_config.port}"
wsgi_app = "app.asgi:create_from_env()"  # `meetrec api` passes the app itself (app.wsgi)
workers = _server.api_workers
worker_class = "app.gunicorn_conf.Worker"
# Sizes each worker's pool for HTTP requests (a2wsgi) and its pool for WebSocket storage calls.
threads = _server.api_threads
timeout = _server.api_timeout
# SIGTERM: stop accepting, finish the requests in flight for up to this long, then exit.
graceful_timeout = _server.api_graceful_timeout
keepalive = _server.api_keepalive
# Recycle a worker after this many requests (jittered so they do not all restart at once); its open
# WebSockets are closed with 1012 (service restart), their buffered events stored, and clients resume.
max_requests = _server.api_max_requests
max_requests_jitter = _server.api_max_requests_jitter
# The app logs one JSON line per request with its request id (app.observability.requests).
accesslog = None
errorlog = "-"
loglevel = _server.log_level.lower()
logconfig_dict = logs.dict_config(_server.log_format, _server.log_level)
# Heartbeat files on tmpfs: a container's overlay filesystem can stall them and get workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn 25+ opens a control socket at a fixed path under $HOME; two stacks would collide.
control_socket_disable = True
proc_name = "meetrec-api"


class Worker(UvicornWorker):
    """uvicorn's gunicorn worker without WebSocket permessage-deflate: rrweb clients send frames they
    compressed themselves, and deflate's state cost 61 KB per idle socket against 24 KB without it
    (measured with 19,000 idle sockets on one worker, bench/replay_sockets.py)."""

    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "ws_per_message_deflate": False}


def on_starting(server) -> None:
    """Before the workers fork: choose and empty the metrics directory."""
    path = os.environ.get(PROMETHEUS_MULTIPROC_DIR)
    if not path:
        path = tempfile.mkdtemp(prefix="meetrec-metrics-")
        os.environ[PROMETHEUS_MULTIPROC_DIR] = path
        server._meetrec_metrics_tmp = path
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))


def post_worker_init(worker) -> None:
    """uvicorn's loggers through the root handler, as every other line. Its access lines are off (the app
    logs its own), and so are its INFO lines: they carry query strings, which hold WebSocket keys and
    signatures."""
    level = logging.getLevelNamesMapping()[_server.log_level.upper()]
    for name, floor in (("uvicorn.error", logging.WARNING), ("uvicorn.access", logging.CRITICAL)):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
        logger.setLevel(max(floor, level))


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    path = getattr(server, "_meetrec_metrics_tmp", None)
    if path:
        shutil.rmtree(path, ignore_errors=True)
