"""The runtime of this worker process, built once when the worker starts (not at import)."""

from __future__ import annotations

from app.config import Config
from app.runtime import Runtime

_runtime: Runtime | None = None


def init(config: Config) -> Runtime:
    global _runtime
    _runtime = Runtime(config)
    return _runtime


def runtime() -> Runtime:
    """The process's runtime; a job run outside `meetrec worker` builds one from the environment."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime(Config.from_env())
    return _runtime
