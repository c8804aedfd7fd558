"""Per request: an id (accepted from `X-Request-Id` when sane, else generated) echoed in the answer and
bound to every log line, one JSON access line, and the latency histogram by endpoint.

The access line names the route template and the ids in it, not the raw path: room calls carry their
access key in the path (`/rooms/{access_key}/recording`), and logs must not collect credentials.
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

from flask import Flask, Response, request

from app.contexts import behind
from app.observability import logs, metrics

HEADER = "X-Request-Id"
_HEADER_KEY = "HTTP_X_REQUEST_ID"  # HEADER's key in the WSGI environ, as `request.headers` looks it up
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")
# `room` is a room id for DELETE /rooms/{room} but an access key for GET: never logged either way.
_SECRET_ARGS = frozenset({"access_key", "room"})
_QUIET = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapers: DEBUG, not INFO
# Where `_begin` leaves (started, request id, log context token) for the later hooks: the request's WSGI
# environ, reached from the request object each hook takes once (not through `g`'s proxy per field).
_STATE = "meetrec.request"

access_log = logging.getLogger("meetrec.access")


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is a sane token (at most 128 URL-safe characters), else a new one."""
    if header and _SANE.fullmatch(header):
        return header
    # 128 random bits as uuid4().hex has them, without a getrandom() call per request: ids only need to
    # be unique, and `random` is reseeded in every forked worker.
    return f"{random.getrandbits(128):032x}"


def init_app(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_end)
    app.teardown_request(_teardown)


def _begin() -> None:
    req = behind(request)
    started = time.perf_counter()
    request_id = request_id_from(req.environ.get(_HEADER_KEY))
    args = req.view_args
    token = logs.bind_request(request_id, args.get("recording_id") if args else None)
    req.environ[_STATE] = (started, request_id, token)


def _end(response: Response) -> Response:
    req = behind(request)
    state = req.environ.get(_STATE)
    if state is None:  # before_request did not run (an error raised before it)
        return response
    rule = req.url_rule
    response.headers[HEADER] = state[1]
    record(
        req.method,
        rule.rule if rule is not None else "<unmatched>",
        req.view_args,
        response.status_code,
        time.perf_counter() - state[0],
        req.remote_addr,
    )
    return response


def record(
    method: str, route: str, args: dict[str, Any] | None, status: int, seconds: float, remote_addr: str | None
) -> None:
    """A request's latency sample and its access line: the route template and the ids in its path
    (`args`, access keys left out)."""
    metrics.observe_request(method, route, status, seconds)
    level = logging.DEBUG if route in _QUIET else logging.INFO
    if access_log.isEnabledFor(level):
        extra = {
            "method": method,
            "route": route,
            "ids": {k: v for k, v in args.items() if k not in _SECRET_ARGS} if args else {},
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "remote_addr": remote_addr,
        }
        _log_access(level, (method, route, status), extra)


def _log_access(level: int, args: tuple[Any, ...], extra: dict[str, Any]) -> None:
    """`access_log.log(level, "%s %s %s", *args, extra=extra)` once the level is known to be enabled: the
    same record through the same filters and handlers, without Logger.log's walk up the stack for the
    caller (the record names this function as its caller)."""
    record = access_log.makeRecord(
        access_log.name, level, *_CALLER, "%s %s %s", args, None, _CALLER_NAME, extra
    )
    access_log.handle(record)


_CALLER = (_log_access.__code__.co_filename, _log_access.__code__.co_firstlineno)
_CALLER_NAME = _log_access.__code__.co_name


def _teardown(_exc: BaseException | None) -> None:
    state = behind(request).environ.pop(_STATE, None)
    if state is not None:
        logs.unbind(state[2])
