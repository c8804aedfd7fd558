"""Settings of the serving processes: gunicorn, logs and the metrics endpoint.

They are read by `app/gunicorn_conf.py` in gunicorn's master before any app exists, and by the CLI before
it configures logging, so they live beside `app.config.Config` rather than in it. Both are declared in the
one table of `app.settings` (these are `ServerFields`); like `Config`, this is the only place that reads
their environment variables, and bad values raise `ConfigError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from app.errors import ConfigError
from app.settings import PROMETHEUS_MULTIPROC, ServerFields, read

LOG_FORMATS = ("auto", "json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class ServerSettings(ServerFields):
    """gunicorn's, the logs' and /metrics' settings (fields: `app.settings.ServerFields`)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerSettings:
        """Build the settings from `env` (default `os.environ`), validating every value."""
        env = os.environ if env is None else env
        return cls(**read(cls, env, invalid="{env}: {raw!r} is not an integer")).checked()

    def checked(self) -> ServerSettings:
        """These settings, or ConfigError naming the first one out of range."""
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


# Read by prometheus_client itself: where gunicorn's workers share their metric files (see gunicorn_conf).
PROMETHEUS_MULTIPROC_DIR = PROMETHEUS_MULTIPROC.env
