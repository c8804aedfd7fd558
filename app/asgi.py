"""The api process's ASGI app: HTTP to the Flask app, rrweb WebSocket ingest to asyncio handlers.

Why an event loop: rrweb clients stream a web replay over a WebSocket that stays open for the whole page
view and is idle most of the time. Under gunicorn's gthread workers every open socket would hold one of a
worker's few threads; on an event loop an idle socket is a few kilobytes of memory and no thread. So
`meetrec api` runs gunicorn with `uvicorn_worker.UvicornWorker` workers serving this one app:

- `http`: the unchanged Flask app through `a2wsgi.WSGIMiddleware`, on a pool of MEETREC_API_THREADS
  threads per worker (measured 6.3k requests/s, against 7.6k for bare gthread 2 x 4: the price of the
  loop-to-thread hop, paid for sockets that cost no thread). The hottest calls (a room recording's
  start and stop, a recording's read: `app.api.direct`) skip a2wsgi and Flask: one hop to the same
  pool runs the same services and answers as Flask would, with Flask's request id, access line and
  latency sample. A read that needs only its one SQL statement is answered on the loop itself, without
  the hop (`direct.Route.on_loop`, `app.db.LoopReads`);
- `websocket`: `/rrweb/recordings/{recordingId}/ingest/ws` (app.api.rrweb.socket) as a coroutine; its
  blocking calls (SQL, object storage, decompression) run on a second pool of the same size, so sockets
  and requests never wait for each other's threads. Any other WebSocket path is answered 404;
- `lifespan`: startup and shutdown are acknowledged; shutdown releases the pools.

The Flask app keeps its request ids, access lines and metrics (they run inside it); a socket gets its own
request id and one access line when it ends. Standalone: `gunicorn -c python:app.gunicorn_conf
'app.asgi:create_from_env()'` (the config module names that app, so `gunicorn -c python:app.gunicorn_conf`
alone serves it too).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from a2wsgi import WSGIMiddleware
from flask import Flask, Response

from app.api import direct
from app.api.rrweb import socket
from app.api.rrweb.socket import Message, Outcome, Receive, Send
from app.config import Config
from app.observability import logs, requests
from app.observability.settings import ServerSettings
from app.runtime import Runtime

access_log = logging.getLogger("meetrec.access")


class Asgi:
    """One ASGI app for the api process: HTTP to Flask through a2wsgi, WebSocket ingest on the loop."""

    def __init__(self, flask_app: Flask, threads: int):
        self.rt: Runtime = flask_app.extensions["meetrec"]
        self.http = WSGIMiddleware(flask_app, workers=threads)  # type: ignore[arg-type]
        self.direct = direct.routes()
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="meetrec-ws")

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            method = scope["method"]
            if method in self.direct.by_method:
                headers = socket.headers_of(scope)
                call = self.direct.match(method, socket.path_of(scope), scope["query_string"], headers)
                if call is not None:
                    await self._direct(call, scope, send)
                    return
            await self.http(scope, receive, send)  # type: ignore[arg-type]
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _direct(self, call: direct.Call, scope: Message, send: Send) -> None:
        """A direct route's call: answered on the loop when its route can (`Route.on_loop`), else one
        hop to the HTTP pool (a streamed body is sent from there)."""
        loop = asyncio.get_running_loop()
        client = (scope.get("client") or ("", 0))[0]
        messages = await self._answer_on_loop(call, client) if call.route.on_loop is not None else None
        if messages is None:
            messages = await loop.run_in_executor(self.http.executor, self._answer, call, client, loop, send)
        for message in messages:
            await send(message)

    async def _answer_on_loop(self, call: direct.Call, client: str) -> list[Message] | None:
        """On the loop: the answer's messages, or None when the route answers on a thread."""
        with _bound(call) as (started, request_id):
            response = await call.answer_on_loop(self.rt)
            if response is None:
                return None
            return _whole(self._start(call, client, started, request_id, response), response)

    def _answer(
        self, call: direct.Call, client: str, loop: asyncio.AbstractEventLoop, send: Send
    ) -> list[Message]:
        """On a pool thread: the answer's messages for the loop to send, or none when its body was
        streamed from here."""
        with _bound(call) as (started, request_id):
            response = call.answer(self.rt)
            start = self._start(call, client, started, request_id, response)
            if not response.is_streamed:
                return _whole(start, response)
            try:
                _stream(loop, send, start, response)
            finally:
                response.close()
            return []

    @staticmethod
    def _start(
        call: direct.Call, client: str, started: float, request_id: str, response: Response
    ) -> Message:
        """The answer's start message, its call logged and sampled: the request id, log context,
        latency sample and access line are the Flask hooks' (`requests`)."""
        status, route = response.status_code, call.route
        requests.record(route.method, route.rule, call.args, status, time.perf_counter() - started, client)
        head = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
        head.append((b"x-request-id", request_id.encode()))
        return {"type": "http.response.start", "status": status, "headers": head}

    async def _websocket(self, scope: Message, receive: Receive, send: Send) -> None:
        match = socket.PATH.fullmatch(socket.path_of(scope))
        headers = socket.headers_of(scope)
        token = logs.bind(request_id=requests.request_id_from(headers.get(requests.HEADER.lower())))
        started = time.perf_counter()
        try:
            if match is None:
                outcome = await _not_found(scope, receive, send)
            else:
                outcome = await socket.serve(self.rt, self.pool, scope, receive, send, match.group(1))
            _log_socket(scope, match and match.group(1), outcome, time.perf_counter() - started)
        finally:
            logs.unbind(token)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.rt.db.on_loop.close()
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self) -> None:
        """Release the thread pools (uvicorn has finished every connection by now)."""
        self.pool.shutdown(wait=False)
        self.http.executor.shutdown(wait=False)


@contextmanager
def _bound(call: direct.Call) -> Iterator[tuple[float, str]]:
    """A direct call's start time and request id, its log context bound for the block."""
    started = time.perf_counter()
    request_id = requests.request_id_from(call.headers.get("x-request-id"))
    token = logs.bind_request(request_id, call.args.get("recording_id"))
    try:
        yield started, request_id
    finally:
        logs.unbind(token)


def _whole(start: Message, response: Response) -> list[Message]:
    """The messages of an answer whose body is made already."""
    body = response.get_data()
    if "Content-Length" not in response.headers:
        start["headers"].append((b"content-length", str(len(body)).encode()))
    return [start, {"type": "http.response.body", "body": body}]


def _stream(loop: asyncio.AbstractEventLoop, send: Send, start: Message, response: Response) -> None:
    """Send `response` from this pool thread, chunk by chunk as its body is made (as a2wsgi sends)."""

    async def sent(message: Message) -> None:
        await send(message)

    def now(message: Message) -> None:
        asyncio.run_coroutine_threadsafe(sent(message), loop).result()

    now(start)
    for chunk in response.iter_encoded():
        if chunk:
            now({"type": "http.response.body", "body": chunk, "more_body": True})
    now({"type": "http.response.body", "body": b""})


async def _not_found(scope: Message, receive: Receive, send: Send) -> Outcome:
    await receive()  # websocket.connect
    await socket.refuse(scope, send, 404, "no WebSocket route at this path")
    return Outcome(status=404)


def _log_socket(scope: Message, recording_id: str | None, outcome: Outcome, seconds: float) -> None:
    """The socket's access line: route template and ids, never its query (keys, signatures)."""
    route = socket.ROUTE if recording_id is not None else "<unmatched>"
    extra: dict[str, Any] = {
        "method": "GET",
        "route": route,
        "ids": {"recordingId": recording_id[:100]} if recording_id is not None else {},
        "status": outcome.status,
        "duration_ms": round(seconds * 1000, 2),
        "remote_addr": (scope.get("client") or ("", 0))[0],
        "close_code": outcome.close_code,
        "frames": outcome.frames,
        "events": outcome.events,
    }
    access_log.info("GET %s %s", route, outcome.status, extra=extra)


def create_asgi(flask_app: Flask, threads: int) -> Asgi:
    """The api process's ASGI app around `flask_app`; `threads` sizes each of its two thread pools."""
    return Asgi(flask_app, threads)


def create_from_env() -> Asgi:
    """The ASGI app configured from the environment (`gunicorn ... 'app.asgi:create_from_env()'`)."""
    from app.factory import create_app

    return create_asgi(create_app(Config.from_env()), ServerSettings.from_env().api_threads)
