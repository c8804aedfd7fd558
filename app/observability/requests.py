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

from flask import Flask, Response, g, request

from app.observability import logs, metrics

HEADER = "X-Request-Id"
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")
# `room` is a room id for DELETE /rooms/{room} but an access key for GET: never logged either way.
_SECRET_ARGS = frozenset({"access_key", "room"})
_QUIET = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapers: DEBUG, not INFO

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
    g.request_started = time.perf_counter()
    g.request_id = request_id_from(request.headers.get(HEADER))
    args = request.view_args or {}
    g.log_token = logs.bind(request_id=g.request_id, recording_id=args.get("recording_id"))


def _end(response: Response) -> Response:
    started = g.get("request_started")
    if started is None:  # before_request did not run (an error raised before it)
        return response
    seconds = time.perf_counter() - started
    route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    response.headers[HEADER] = g.request_id
    metrics.observe_request(request.method, route, response.status_code, seconds)
    ids = {k: v for k, v in (request.view_args or {}).items() if k not in _SECRET_ARGS}
    access_log.log(
        logging.DEBUG if route in _QUIET else logging.INFO,
        "%s %s %s",
        request.method,
        route,
        response.status_code,
        extra={
            "method": request.method,
            "route": route,
            "ids": ids,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 2),
            "remote_addr": request.remote_addr,
        },
    )
    return response


def _teardown(_exc: BaseException | None) -> None:
    token = g.pop("log_token", None)
    if token is not None:
        logs.unbind(token)
