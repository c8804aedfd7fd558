"""Gunicorn settings of the api process, read from the environment (`app.observability.settings`).

`meetrec api` loads this module; it also works on its own: `gunicorn -c python:app.gunicorn_conf
'app.factory:create_app()'`. gthread workers: each worker process serves `threads` requests at once, so
slow clients and S3 presigning do not hold a whole process. Migrations never run here: `meetrec migrate`
(the `migrate` role) does them once per release, before the api replicas start.

Metrics: every worker writes its request samples to PROMETHEUS_MULTIPROC_DIR (a fresh temporary directory
when unset) and any worker's `/metrics` sums them; the directory is emptied when the master starts, as
prometheus_client requires, and a dead worker's live gauges are dropped.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from app.config import Config
from app.observability import logs
from app.observability.settings import PROMETHEUS_MULTIPROC_DIR, ServerSettings

_server = ServerSettings.from_env()
_config = Config.from_env()

bind = f"{_config.host}:{_config.port}"
workers = _server.api_workers
worker_class = "gthread"
threads = _server.api_threads
timeout = _server.api_timeout
# SIGTERM: stop accepting, finish the requests in flight for up to this long, then exit.
graceful_timeout = _server.api_graceful_timeout
keepalive = _server.api_keepalive
# Recycle a worker after this many requests (jittered so they do not all restart at once).
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


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    path = getattr(server, "_meetrec_metrics_tmp", None)
    if path:
        shutil.rmtree(path, ignore_errors=True)
