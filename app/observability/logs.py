"""Structured logs: one JSON object per line, carrying the request id, job id and recording id.

The ids live in a context variable bound by the request hooks (`app.observability.requests`) and by the
worker around each job, so every line a service logs while handling them carries them without passing
them around. `configure()` sets up the root logger of a process; gunicorn gets the same configuration
as a `logconfig_dict` (see `app/gunicorn_conf.py`).

An idle stack is quiet at INFO: what ticks while nothing happens (the scheduler's runs, RQ's account of
every job, the worker's job starts, gunicorn's worker recycling) is shown at DEBUG by `Routine`, and the
domain logs one line per thing that happened (a recording's state change, a failure, a restart).
"""

from __future__ import annotations

import functools
import json
import logging
import logging.config
import math
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from itertools import filterfalse
from typing import Any

_context: ContextVar[dict[str, str]] = ContextVar("meetrec_log_context", default={})  # noqa: B039 - never mutated

# Attributes every LogRecord has: anything else on a record came through `extra=` and is logged as a field.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
# What json.dumps(..., default=str, ensure_ascii=False) builds on every call, built once.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


def bind(**fields: str | None) -> Token[dict[str, str]]:
    """Add `fields` to the log context of this thread (or task); undo with `unbind(token)`."""
    merged = {**_context.get(), **{k: str(v) for k, v in fields.items() if v}}
    return _context.set(merged)


def bind_request(request_id: str, recording_id: object = None) -> Token[dict[str, str]]:
    """`bind(request_id=request_id, recording_id=recording_id)`, as the request hooks call it once per
    request, without building and filtering keyword arguments."""
    merged = {**_context.get(), "request_id": request_id} if request_id else dict(_context.get())
    if recording_id:
        merged["recording_id"] = str(recording_id)
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

    # The second the last line was logged in, and its "YYYY-MM-DDTHH:MM:SS" (a whole tuple is swapped in,
    # so threads sharing the formatter read a consistent pair).
    _second: tuple[int, str] = (0, "1970-01-01T00:00:00")

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_context.get())
        fields = record.__dict__
        for key in filterfalse(_STANDARD.__contains__, fields):
            if not key.startswith("_"):
                out[key] = fields[key]
        if record.exc_info:
            out["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.stack_info:
            out["stack"] = record.stack_info
        return _ENCODER.encode(out)

    def timestamp(self, created: float) -> str:
        """`datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`, the date and time
        of day formatted once per second: the same rounding to microseconds as datetime's."""
        fraction, whole = math.modf(created)
        micros = round(fraction * 1e6)
        if micros >= 1_000_000:
            whole, micros = whole + 1, micros - 1_000_000
        elif micros < 0:
            whole, micros = whole - 1, micros + 1_000_000
        second = int(whole)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, datetime.fromtimestamp(second, UTC).isoformat()[:19])
        return f"{cached[1]}.{micros // 1000:03d}+00:00"


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


# Loggers of machinery whose INFO lines tick while nothing happens: APScheduler's run of each timetable
# entry, RQ's dequeue / "Job OK" / result TTL / registry cleaning of every job, the worker's "job starting"
# line, gunicorn's worker boots and exits. Their warnings and errors keep their level.
ROUTINE_LOGGERS = ("apscheduler", "rq.worker", "rq.scheduler", "meetrec.worker", "gunicorn.error")
# Lines of those loggers that stay INFO: a process (re)started, or stopping.
KEPT_INFO = frozenset(
    {
        "Worker %s: started with PID %d, version %s",  # rq: a worker process started
        "Worker %s [PID %d]: warm shut down requested",  # rq: a worker stopping
        "Listening at: %s (%s)",  # gunicorn: the api's master started
        "Handling signal: %s",  # gunicorn: why the master stops or reloads (term, int, hup)
        "Shutting down: %s",  # gunicorn: the api's master stopping
    }
)


class Routine(logging.Filter):
    """Shows the routine INFO lines of ROUTINE_LOGGERS at DEBUG, and drops every line below `level`.

    A handler filter, because the loggers it tames belong to libraries (RQ even sets its own logger's
    level): it sees each record after its logger let it through."""

    def __init__(self, level: str | int = "INFO") -> None:
        super().__init__()
        self.level = logging.getLevelNamesMapping()[level.upper()] if isinstance(level, str) else level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and is_routine(record):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= self.level


def is_routine(record: logging.LogRecord) -> bool:
    """An INFO line of machinery ticking (see ROUTINE_LOGGERS), not one of KEPT_INFO."""
    if not routine_logger(record.name):
        return False
    return not (isinstance(record.msg, str) and record.msg in KEPT_INFO)


@functools.lru_cache(maxsize=1024)  # every INFO line asks; a process has a few dozen logger names
def routine_logger(name: str) -> bool:
    """`name` is one of ROUTINE_LOGGERS or below one."""
    return any(name == logger or name.startswith(logger + ".") for logger in ROUTINE_LOGGERS)


def resolve_format(log_format: str) -> str:
    """ "auto" is text on a terminal and JSON everywhere else (containers, files, supervisors)."""
    if log_format != "auto":
        return log_format
    return "text" if sys.stderr.isatty() else "json"


def dict_config(log_format: str = "auto", level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for a meetrec process: one stderr handler on the root logger, the
    chosen formatter, routine lines shown at DEBUG (`Routine`), gunicorn's error log sent through it and
    its access log off, alembic's chatter kept at WARNING."""
    formatter = JsonFormatter if resolve_format(log_format) == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"meetrec": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "filters": {"routine": {"()": f"{__name__}.Routine", "level": level.upper()}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "meetrec",
                "filters": ["routine"],
                "stream": "ext://sys.stderr",
            }
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
