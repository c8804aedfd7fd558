"""The api process: the Flask app under gunicorn (gthread workers)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from app.config import Config


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, config: Config, options: dict[str, Any]):
        self.meetrec_config = config
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):  # type: ignore[no-untyped-def]
        from app.factory import create_app

        return create_app(self.meetrec_config)


def gunicorn_options(config: Config, workers: int = 2, threads: int = 4) -> dict[str, Any]:
    return {
        "bind": f"{config.host}:{config.port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 60,
        "graceful_timeout": 20,
        "keepalive": 5,
        "max_requests": 10000,
        "max_requests_jitter": 1000,
        "accesslog": "-",
        "errorlog": "-",
        # gunicorn 25+ opens a control socket at a fixed path under $HOME; two stacks would collide.
        "control_socket_disable": True,
    }


def serve(config: Config, workers: int = 2, threads: int = 4) -> None:
    """Serve the API until SIGTERM (gunicorn drains in-flight requests for `graceful_timeout`)."""
    _Gunicorn(config, gunicorn_options(config, workers, threads)).run()
