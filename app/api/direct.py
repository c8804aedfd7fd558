"""Direct routes: the hottest calls, answered by the api's ASGI app without the round through Flask.

A meeting app's recording calls (`POST` and `DELETE /rooms/{access_key}/recording`, `GET
/recordings/{id}`) are most of the api's traffic. Through a2wsgi and Flask each one paid for a WSGI
environ, a request context, the hooks, flask-smorest's layers and several loop-to-thread hops before
and after the work itself (measured: about as much CPU as the work). A direct route is the same call
served by the ASGI app (`app.asgi`) in one hop to the HTTP thread pool: the handler here runs the same
services and presenters as the Flask view of the same rule, and errors answer through the same
`errors.response_for`; the request id, access line and latency sample are the Flask hooks' own.

A route may also answer on the event loop itself (`Route.on_loop`) when its call needs nothing the loop
must wait for but one short read (`app.db.LoopReads`): the thread's hop costs more than such a call
does. When the call turns out to need more, the route's handler answers it on a thread as before.

Only the plain form of a call goes direct: the rule's method, no request body, no Content-Type, and no
query string unless the view reads none. Anything else (a start with a body or query parameters, HEAD,
a trailing slash) is served by Flask, which documents every one of these rules at /docs.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from flask import Response

from app.api import errors
from app.db import NotOnLoop
from app.runtime import Runtime

# (runtime, the request's headers by lower-case name, the rule's path arguments) -> the answer.
Handler = Callable[..., Response]
# The same, on the event loop: the answer, or None (or `NotOnLoop` raised) when the call needs what the
# loop must not wait for (SQL beside its read, a write): `Handler` then answers it on a thread.
LoopHandler = Callable[..., Awaitable[Response | None]]


@dataclass(frozen=True)
class Route:
    method: str
    rule: str  # the Flask rule serving the same call: its OpenAPI entry and its name in logs and metrics
    handler: Handler
    reads_query: bool = False  # True: the view reads its query string, so a call with one goes to Flask
    on_loop: LoopHandler | None = None  # tried first, on the loop (`app.db.LoopReads`)
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # `<name>` is Flask's default converter: one path segment.
        parts = re.split(r"<(\w+)>", self.rule)  # literal, name, literal, ...
        regex = "".join(f"(?P<{p}>[^/]+)" if i % 2 else re.escape(p) for i, p in enumerate(parts))
        object.__setattr__(self, "pattern", re.compile(regex))


class Routes:
    """Direct routes by method; `match` picks the one serving a request, if any."""

    def __init__(self, routes: list[Route]):
        self.by_method: dict[str, list[Route]] = {}
        for route in routes:
            self.by_method.setdefault(route.method, []).append(route)

    def match(self, method: str, path: str, query: bytes, headers: Mapping[str, str]) -> Call | None:
        """The call of a direct route this request is, or None (Flask serves it)."""
        candidates = self.by_method.get(method)
        if not candidates or "content-type" in headers or "transfer-encoding" in headers:
            return None
        if headers.get("content-length", "0") != "0":
            return None
        for route in candidates:
            found = route.pattern.fullmatch(path)
            if found is not None:
                return (
                    Call(route, found.groupdict(), path, headers)
                    if not (query and route.reads_query)
                    else None
                )
        return None


@dataclass(frozen=True)
class Call:
    """A request a direct route serves: its path arguments by name, its headers by lower-case name."""

    route: Route
    args: dict[str, str]
    path: str
    headers: Mapping[str, str]

    def answer(self, rt: Runtime) -> Response:
        """The route's answer; an error it raised answers as the Flask app would answer it."""
        try:
            return self.route.handler(rt, self.headers, **self.args)
        except Exception as e:  # noqa: BLE001 - rendered as Flask's error handlers render it (500s logged)
            return errors.response_for(self.path, e)

    async def answer_on_loop(self, rt: Runtime) -> Response | None:
        """The route's answer made on the event loop, or None: `answer` must make it on a thread."""
        if self.route.on_loop is None:
            return None
        try:
            return await self.route.on_loop(rt, self.headers, **self.args)
        except NotOnLoop:
            return None
        except Exception as e:  # noqa: BLE001 - as in `answer`
            return errors.response_for(self.path, e)


def routes() -> Routes:
    """Every direct route of the api."""
    from app.api.recordings import routes as recordings
    from app.api.rooms import routes as rooms

    return Routes([*rooms.DIRECT, *recordings.DIRECT])
