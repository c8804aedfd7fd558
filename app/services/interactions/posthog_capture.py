"""What posthog-js captures, filed into web replays: `$snapshot` events carry rrweb events, every other
event (`$pageview`, `$autocapture`, custom ones) is kept with its session's replay as an rrweb Custom
event (type 5) tagged with the event's name, so `matching_events/` finds it and a replay shows it.

A posthog-js session is one replay: its `$session_id` is the recording's external id, the first event
creates it and later ones (from any window of the session) continue it. posthog-js compresses the bulky
parts of some rrweb events itself (`"cv": "2024-10"`: a FullSnapshot's `data`, a Mutation's `texts`,
`attributes`, `removes` and `adds`, a StyleSheetRule's `adds` and `removes`, each gzip bytes as a latin-1
string); they are stored expanded, as rrweb made them, so every reader sees plain rrweb.

The events of one request and session are stored as one batch keyed by their `uuid`s, so a request the
client retries (posthog-js retries what failed) stores nothing twice. An event that names no session,
or a session id meetrec cannot take, is refused and reported in the answer, never dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app import payloads
from app.errors import BadPayload, PayloadTooLarge
from app.runtime import Runtime
from app.services.interactions import metadata, replays

SNAPSHOT = "$snapshot"
COMPRESSION_VERSION = "2024-10"
CUSTOM = 5
FULL_SNAPSHOT, INCREMENTAL = 2, 3
MUTATION, STYLE_SHEET_RULE = 0, 8
_PACKED_FIELDS = {MUTATION: ("texts", "attributes", "removes", "adds"), STYLE_SHEET_RULE: ("adds", "removes")}
DISTINCT_ID = "distinct_id"  # the metadata key replay facts read the person from


@dataclass
class Filed:
    """What a request's events became: events stored per session id, and the events refused (why)."""

    stored: dict[str, int] = field(default_factory=dict)
    refused: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Session:
    events: list[dict[str, Any]] = field(default_factory=list)
    uuids: list[str] = field(default_factory=list)
    keyed: bool = True  # every event carried a uuid: the batch can be made idempotent
    distinct_id: str | None = None


class _Budget:
    """How many decompressed bytes the request may still grow by (MEETREC_MAX_INFLATED_BYTES in all)."""

    def __init__(self, limit: int):
        self.left = limit

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise PayloadTooLarge("the snapshot data inflates to more than the request's limit")


def file_events(rt: Runtime, project_id: str, events: list[Any], token: str | None) -> Filed:
    """Store the replays' share of a capture request's events (decoded PostHog events) for the project
    whose `token` the request named (an event naming another token is refused).

    Raises BadPayload (nothing stored) when an event's snapshot data is not rrweb events; StorageError and
    Conflict as `replays.ingest` does, for the session being stored then."""
    filed = Filed()
    received_ms = int(rt.now().timestamp() * 1000)  # the time of an event without a readable one
    sessions: dict[str, _Session] = {}
    budget = _Budget(rt.config.max_inflated_bytes)
    for index, event in enumerate(events):
        problem = _problem(event, token)
        if problem is not None:
            filed.refused.append(_refusal(index, event, problem))
            continue
        props = event.get("properties") or {}
        session = sessions.setdefault(props["$session_id"], _Session())
        if event["event"] == SNAPSHOT:
            session.events.extend(_snapshot_events(props.get("$snapshot_data"), index, budget))
        else:
            session.events.append(_custom_event(event, props, received_ms))
        uuid = event.get("uuid")
        if isinstance(uuid, str) and uuid:
            session.uuids.append(uuid)
        else:
            session.keyed = False
        distinct = event.get("distinct_id", props.get("distinct_id"))
        if isinstance(distinct, str | int) and str(distinct):
            session.distinct_id = str(distinct)[: metadata.MAX_MATCH_LENGTH]
    for session_id, session in sessions.items():
        if not session.events:
            continue
        checked = payloads.check_events(session.events)
        key = _batch_key(session_id, session.uuids) if session.keyed else None
        stored = replays.ingest(rt, project_id, session_id, checked, batch_key=key)
        filed.stored[session_id] = stored.events
        if session.distinct_id is not None:
            _note_person(rt, project_id, stored.recording_id, session.distinct_id)
    return filed


def event_token(event: Any) -> str | None:
    """The project token one event names, if any (`properties.token`, `token` or `api_key`)."""
    if not isinstance(event, dict):
        return None
    props = event.get("properties")
    found = props.get("token") if isinstance(props, dict) else None
    found = found or event.get("token") or event.get("api_key")
    return found if isinstance(found, str) and found else None


def _problem(event: Any, token: str | None) -> str | None:
    """Why an event cannot be filed into a replay, or None when it can."""
    if not isinstance(event, dict):
        return "an event must be a JSON object"
    named = event_token(event)
    if named is not None and named != token:
        return "the event names another project token than the request"
    if not isinstance(event.get("event"), str) or not event["event"]:
        return "event (the event's name) must be a non-empty string"
    props = event.get("properties")
    if props is not None and not isinstance(props, dict):
        return "properties must be an object"
    session_id = (props or {}).get("$session_id")
    if session_id is None:
        return "no properties.$session_id: meetrec keeps events with their session's recording only"
    if not isinstance(session_id, str) or not replays.EXTERNAL_ID.fullmatch(session_id):
        return "properties.$session_id must be 1..64 characters of A-Z a-z 0-9 . _ : -"
    return None


def _refusal(index: int, event: Any, reason: str) -> dict[str, Any]:
    named = event if isinstance(event, dict) else {}
    found = {"index": index, "reason": reason}
    for name in ("event", "uuid"):
        if isinstance(named.get(name), str):
            found[name] = named[name][:200]
    return found


def _snapshot_events(data: Any, index: int, budget: _Budget) -> list[dict[str, Any]]:
    """The rrweb events a `$snapshot` event carries (`$snapshot_data`: a list of events or one event)."""
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise BadPayload(
            f"event {index}: properties.$snapshot_data must be a non-empty array of rrweb events",
            errors={"events": {str(index): ["$snapshot_data must be a non-empty array of rrweb events"]}},
        )
    return [_expanded(e, index, budget) if isinstance(e, dict) and "cv" in e else e for e in data]


def _expanded(event: dict[str, Any], index: int, budget: _Budget) -> dict[str, Any]:
    """An rrweb event posthog-js packed (`cv`), as rrweb made it."""
    if event["cv"] != COMPRESSION_VERSION:
        raise BadPayload(f"event {index}: unknown snapshot compression version {str(event['cv'])[:40]!r}")
    plain = {k: v for k, v in event.items() if k != "cv"}
    data = plain.get("data")
    if plain.get("type") == FULL_SNAPSHOT and isinstance(data, str):
        plain["data"] = _unpacked(data, index, budget)
    elif plain.get("type") == INCREMENTAL and isinstance(data, dict):
        source = data.get("source")
        fields = _PACKED_FIELDS.get(source, ()) if type(source) is int else ()
        plain["data"] = {
            k: _unpacked(v, index, budget) if k in fields and isinstance(v, str) else v
            for k, v in data.items()
        }
    return plain


def _unpacked(packed: str, index: int, budget: _Budget) -> Any:
    """One packed field: gzip bytes carried as a latin-1 string, holding JSON."""
    try:
        raw = packed.encode("latin-1")
    except UnicodeEncodeError:
        raise BadPayload(f"event {index}: a packed snapshot field is not a latin-1 byte string") from None
    text = payloads.inflate(raw, "gzip", max(budget.left, 0))
    budget.spend(len(text))
    return payloads.parse_document(text)


def _custom_event(event: dict[str, Any], props: dict[str, Any], received_ms: int) -> dict[str, Any]:
    """A non-snapshot event as the rrweb Custom event a replay keeps it as."""
    payload: dict[str, Any] = {"event": event["event"], "properties": props}
    for name in ("uuid", "distinct_id"):
        if name in event:
            payload[name] = event[name]
    return {
        "type": CUSTOM,
        "timestamp": _timestamp_ms(event.get("timestamp"), received_ms),
        "data": {"tag": event["event"], "payload": payload},
    }


def _timestamp_ms(value: Any, fallback: int) -> int:
    """An event's `timestamp` (ISO 8601, UTC unless it says otherwise, or ms since the epoch) in ms;
    `fallback` when it is absent, unreadable or outside what an rrweb event may carry."""
    found: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        found = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            moment = datetime.fromisoformat(value)
            found = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000
        except (ValueError, OverflowError, OSError):
            return fallback
    return int(found) if found is not None and 0 <= found <= payloads.MAX_TIMESTAMP else fallback


def _batch_key(session_id: str, uuids: list[str]) -> str:
    digest = hashlib.sha256(json.dumps([session_id, uuids]).encode()).hexdigest()
    return f"posthog:{digest}"


# The person last noted per (database, project, recording) in this process: a session's events repeat
# its distinct id on every request, and only a change needs a write.
_people: OrderedDict[tuple[str, str, str], str] = OrderedDict()
_PEOPLE_SIZE = 10_000
_people_lock = threading.Lock()


def _note_person(rt: Runtime, project_id: str, recording_id: str, distinct_id: str) -> None:
    slot = (rt.config.database_url, project_id, recording_id)
    with _people_lock:
        if _people.get(slot) == distinct_id:
            return
    metadata.set_meta_on(rt, project_id, recording_id, {DISTINCT_ID: distinct_id})
    with _people_lock:
        _people[slot] = distinct_id
        _people.move_to_end(slot)
        while len(_people) > _PEOPLE_SIZE:
            _people.popitem(last=False)
