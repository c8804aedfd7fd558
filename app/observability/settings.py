"""Settings of the serving processes: gunicorn, logs and the metrics endpoint.

They are read by `app/gunicorn_conf.py` in gunicorn's master before any app exists, and by the CLI before
it configures logging, so they live beside `app.config.Config` rather than in it; like it, this is the only
place that reads their environment variables (`ENV_NAMES`), and bad values raise `ConfigError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from app.errors import ConfigError

LOG_FORMATS = ("auto", "json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class ServerSettings:
    api_workers: int = 2
    api_threads: int = 4
    api_timeout: int = 60
    api_graceful_timeout: int = 20
    api_keepalive: int = 5
    api_max_requests: int = 10000
    api_max_requests_jitter: int = 1000
    log_format: str = "auto"
    log_level: str = "INFO"
    metrics_token: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerSettings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(ENV_NAMES[f.name], "")
            if raw == "":
                continue
            if f.type == "int":
                try:
                    values[f.name] = int(raw)
                except ValueError as e:
                    raise ConfigError(f"{ENV_NAMES[f.name]}: {raw!r} is not an integer") from e
            else:
                values[f.name] = raw
        return cls(**values).checked()

    def checked(self) -> ServerSettings:
        if not 1 <= self.api_workers <= 64:
            raise ConfigError("MEETREC_API_WORKERS must be 1..64")
        if not 1 <= self.api_threads <= 256:
            raise ConfigError("MEETREC_API_THREADS must be 1..256")
        if not 5 <= self.api_timeout <= 3600:
            raise ConfigError("MEETREC_API_TIMEOUT must be 5..3600 seconds")
        if not 1 <= self.api_graceful_timeout <= 3600:
            raise ConfigError("MEETREC_API_GRACEFUL_TIMEOUT must be 1..3600 seconds")
        if not 0 <= self.api_keepalive <= 300:
            raise ConfigError("MEETREC_API_KEEPALIVE must be 0..300 seconds")
        if self.api_max_requests < 0 or self.api_max_requests_jitter < 0:
            raise ConfigError("MEETREC_API_MAX_REQUESTS and its jitter must be >= 0 (0: never recycle)")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"MEETREC_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
        if self.log_level.upper() not in LOG_LEVELS:
            raise ConfigError(f"MEETREC_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        return self


ENV_NAMES: dict[str, str] = {
    "api_workers": "MEETREC_API_WORKERS",
    "api_threads": "MEETREC_API_THREADS",
    "api_timeout": "MEETREC_API_TIMEOUT",
    "api_graceful_timeout": "MEETREC_API_GRACEFUL_TIMEOUT",
    "api_keepalive": "MEETREC_API_KEEPALIVE",
    "api_max_requests": "MEETREC_API_MAX_REQUESTS",
    "api_max_requests_jitter": "MEETREC_API_MAX_REQUESTS_JITTER",
    "log_format": "MEETREC_LOG_FORMAT",
    "log_level": "MEETREC_LOG_LEVEL",
    "metrics_token": "MEETREC_METRICS_TOKEN",
}

# Read by prometheus_client itself: where gunicorn's workers share their metric files (see gunicorn_conf).
PROMETHEUS_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
