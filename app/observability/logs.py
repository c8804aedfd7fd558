"""Structured logs: one JSON object per line, carrying the request id, job id and recording id.

The ids live in a context variable bound by the request hooks (`app.observability.requests`) and by the
worker around each job, so every line a service logs while handling them carries them without passing
them around. `configure()` sets up the root logger of a process; gunicorn gets the same configuration
as a `logconfig_dict` (see `app/gunicorn_conf.py`).
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

_context: ContextVar[dict[str, str]] = ContextVar("meetrec_log_context", default={})  # noqa: B039 - never mutated

# Attributes every LogRecord has: anything else on a record came through `extra=` and is logged as a field.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def bind(**fields: str | None) -> Token[dict[str, str]]:
    """Add `fields` to the log context of this thread (or task); undo with `unbind(token)`."""
    merged = {**_context.get(), **{k: str(v) for k, v in fields.items() if v}}
    return _context.set(merged)


def unbind(token: Token[dict[str, str]]) -> None:
    _context.reset(token)


@contextmanager
def context(**fields: str | None) -> Iterator[None]:
    """Log lines inside the block carry `fields`."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def current() -> dict[str, str]:
    """The fields bound now."""
    return dict(_context.get())


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", <context ids>, <extra fields>, "exc"}`, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_context.get())
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic one-line format for a terminal, with the context ids appended."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = _context.get()
        if not ids:
            return line
        head, sep, tail = line.partition("\n")
        return head + " [" + " ".join(f"{k}={v}" for k, v in ids.items()) + "]" + sep + tail


def resolve_format(log_format: str) -> str:
    """ "auto" is text on a terminal and JSON everywhere else (containers, files, supervisors)."""
    if log_format != "auto":
        return log_format
    return "text" if sys.stderr.isatty() else "json"


def dict_config(log_format: str = "auto", level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for a meetrec process: one stderr handler on the root logger, the
    chosen formatter, gunicorn's error log sent through it and its access log off, alembic's chatter kept
    at WARNING."""
    formatter = JsonFormatter if resolve_format(log_format) == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"meetrec": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "meetrec", "stream": "ext://sys.stderr"}
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            # Replaced by the app's own access line (route template, request id, no access keys).
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            "alembic": {"level": "WARNING"},
        },
    }


def configure(log_format: str = "auto", level: str = "INFO") -> None:
    """Configure this process's logging (call once, at the entry point)."""
    logging.config.dictConfig(dict_config(log_format, level))
