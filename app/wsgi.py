"""The api process: the Flask app under gunicorn, configured by `app/gunicorn_conf.py`."""

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
        from app.factory import create_app

        return create_app(self.meetrec_config)


def serve(config: Config, workers: int | None = None, threads: int | None = None) -> None:
    """Serve the API on `config.host:config.port` until SIGTERM, which drains: gunicorn stops accepting
    and finishes the requests in flight for MEETREC_API_GRACEFUL_TIMEOUT seconds before it exits."""
    overrides: dict[str, Any] = {"bind": f"{config.host}:{config.port}"}
    if workers:
        overrides["workers"] = workers
    if threads:
        overrides["threads"] = threads
    _Gunicorn(config, overrides).run()
