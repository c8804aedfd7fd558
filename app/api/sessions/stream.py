"""Streamed JSON answers: a recording with all its events, or an event list, without loading it whole.

A short list answers at once; a long one is written as the events are read (`event_store.iter_events`
pages through the index), so a session with a million events costs a few thousand rows of memory, not a
million objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from flask import Response

from app.api import presenters
from app.models import Recording
from app.runtime import Runtime
from app.services.interactions import event_store
from app.services.interactions.event_store import StoredEvent

CHUNK = 500  # events a write


def json_object(head: dict[str, Any], key: str, items: Iterable[dict[str, Any]]) -> Response:
    """`head` with `key` holding `items` as a list. Up to CHUNK items answer in one body with a
    Content-Length (most recordings); more are streamed, `items` consumed while writing."""
    items = iter(items)
    first = list(islice(items, CHUNK))
    if len(first) < CHUNK:
        return presenters.json_answer({**head, key: first})

    def body() -> Iterator[str]:
        opening = presenters.dumps(head)
        yield (opening[:-1] + "," if len(opening) > 2 else "{") + presenters.dumps(key) + ":["
        yield ",".join(presenters.dumps(item) for item in first)
        chunk: list[str] = []
        for item in items:
            chunk.append(presenters.dumps(item))
            if len(chunk) == CHUNK:
                yield "," + ",".join(chunk)
                chunk = []
        if chunk:
            yield "," + ",".join(chunk)
        yield "]}"

    return Response(body(), mimetype="application/json")


def session(rt: Runtime, recording: Recording, api_key_id: str) -> Response:
    """`GET /recordings/{id}`: the recording (download link audited) with its events in time order."""
    head = presenters.issued(rt, [recording], api_key_id)[0]
    # `event_count` moves in the same transactions as the rows: a room recording costs no events query.
    return json_object(head, "events", events(rt, recording) if recording.event_count else ())


def events(
    rt: Runtime,
    recording: Recording,
    types: Iterable[str] | None = None,
    shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Iterator[dict[str, Any]]:
    """The recording's events as the API shows them, optionally of some `types` and reshaped."""
    rows: Iterator[StoredEvent] = event_store.iter_events(rt, recording.id, types=list(types or ()))
    for row in rows:
        shown = presenters.session_event(rt, row, recording.timeline)
        yield shape(shown) if shape else shown
