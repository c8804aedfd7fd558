"""The api process: gunicorn with uvicorn workers serving `app.asgi` (the Flask app for HTTP, rrweb
WebSocket ingest on the event loop), configured by `app/gunicorn_conf.py`."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import Application

from app.config import Config

CONFIG_MODULE = "python:app.gunicorn_conf"


class _Gunicorn(Application):
    def __init__(self, config: Config, overrides: dict[str, Any]):
        self.meetrec_config = config
        self.overrides = overrides
        super().__init__()

    def init(self, parser, opts, args):
        return None  # settings come from CONFIG_MODULE, never from gunicorn's command line

    def load_config(self) -> None:
        self.load_config_from_module_name_or_filename(CONFIG_MODULE)
        for key, value in self.overrides.items():
            self.cfg.set(key, value)

    def load(self):
        from app.asgi import create_asgi
        from app.factory import create_app

        return create_asgi(create_app(self.meetrec_config), self.cfg.threads)


def serve(config: Config, workers: int | None = None, threads: int | None = None) -> None:
    """Serve the API on `config.host:config.port` until SIGTERM, which drains: gunicorn stops accepting,
    finishes the requests in flight and closes open WebSockets (1012, after storing what they buffered)
    within MEETREC_API_GRACEFUL_TIMEOUT seconds before it exits. `threads` sizes each worker's pools."""
    overrides: dict[str, Any] = {"bind": f"{config.host}:{config.port}"}
    if workers:
        overrides["workers"] = workers
    if threads:
        overrides["threads"] = threads
    _Gunicorn(config, overrides).run()
