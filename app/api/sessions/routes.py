"""The sessions API (`sessions-api.txt`): start, list and stop sessions, their events and actions.

A session is a Recording, so `GET /recordings/{id}` (in app.api.recordings) answers for both with the
superset. The write side the document leaves out is `POST /recordings/{id}/events`.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask.views import MethodView
from werkzeug.exceptions import UnsupportedMediaType

from app.api import jsonbody, presenters
from app.api.auth import current_key, require
from app.api.blueprint import Blueprint
from app.api.sessions import events as event_batch
from app.api.sessions import stream
from app.api.sessions.schemas import (
    EVENTS_EXAMPLES,
    START_EXAMPLES,
    ActionsSchema,
    AppendedSchema,
    EventBatchSchema,
    EventOutSchema,
    IdListSchema,
    ListArgs,
    SessionIdSchema,
    SessionSchema,
    StartSessionArgs,
    StopSchema,
)
from app.errors import Unprocessable
from app.runtime import Runtime
from app.services.core import recordings, sessions
from app.services.interactions import event_store

blp = Blueprint("sessions", __name__, description="Interaction sessions (the sessions API)")

_UNKNOWN = "unknown recording, another project's, or deleted"
# The sessions API's actions: input events renamed the way the document names them.
ACTION_TYPES = {"click": "click", "key": "keypress", "scroll": "scroll", "text": "text"}


def rt() -> Runtime:
    return current_app.extensions["meetrec"]


@blp.route("/recordings")
class Sessions(MethodView):
    @require("recording:write")
    @blp.arguments(StartSessionArgs, location="eyeson", required=False, examples=START_EXAMPLES)
    @blp.response(201, SessionIdSchema, description="the session runs and takes events")
    @blp.errors(
        e400="malformed JSON",
        e422="unknown field, or a media source that is malformed, unsafe or not allowed",
        e503="the job queue is unavailable (a video session's capture could not be enqueued)",
    )
    def post(self, args: dict):
        """Start a recording session (optionally with video from a media source)"""
        recording = sessions.start(rt(), current_key().project_id, args["description"], args["media_source"])
        return {"session_id": recording.id}

    @require("recording:read")
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, IdListSchema, description="ids, oldest first; a Link header names the next page")
    @blp.errors(e422="limit outside 1-10000, or offset outside 0-1000000000")
    def get(self, args: dict):
        """List this project's recording ids (sessions and room recordings)"""
        limit, offset = args.get("limit"), args["offset"]
        ids = sessions.ids(rt(), current_key().project_id, limit + 1 if limit else None, offset)
        headers = {}
        if limit and len(ids) > limit:
            ids = ids[:limit]
            base = f"{rt().config.public_url}/recordings"
            headers["Link"] = f'<{base}?limit={limit}&offset={offset + limit}>; rel="next"'
        return {"recordings": ids}, 200, headers


@blp.route("/recordings/<recording_id>/stop", methods=["POST"])
@require("recording:write")
@blp.response(200, StopSchema, description="stop accepted (stopping again is a no-op)")
@blp.errors(e404=_UNKNOWN)
def stop(recording_id: str):
    """Stop a recording session; a session without video is finished at once"""
    recording = sessions.stop(rt(), current_key().project_id, recording_id)
    return {"success": True, "session_id": recording.id, "state": recording.state}


@blp.route("/recordings/<recording_id>/events", methods=["POST"])
@require("recording:write")
@blp.doc(
    requestBody={
        "required": True,
        "description": 'A list of events, or {"events": [...]}; multipart: an `events` field with that '
        "JSON and screenshot file parts named by the events' `screenshot` values",
        "content": {
            "application/json": {"schema": EventBatchSchema, "examples": EVENTS_EXAMPLES},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"events": {"type": "string"}}}
            },
        },
    }
)
@blp.response(201, AppendedSchema, description="events stored (duplicates of stored ids skipped)")
@blp.alt_response(200, schema=AppendedSchema, description="every event was a duplicate: nothing new stored")
@blp.errors(
    e400="malformed JSON, nested deeper than 64 levels, an integer past 64 bits or a lone surrogate",
    e404=_UNKNOWN,
    e409="the session was stopped: it takes no more events",
    e413="more than 1000 events or 500,000 JSON values, a screenshot or the body too large",
    e415="neither JSON nor multipart/form-data",
    e422="an invalid event (errors.events.<index> says which and why); nothing was stored",
    e503="object storage unavailable (screenshots); nothing was stored",
)
def add_events(recording_id: str):
    """Add a batch of interaction events to a running session (idempotent per event id)"""
    config = rt().config
    # An unknown or foreign recording is refused before its body is read, let alone parsed.
    recordings.get(rt(), current_key().project_id, recording_id)
    request.max_content_length = config.max_events_body_bytes
    payload, files = _batch_body()
    batch = event_batch.parse_batch(payload, files, config.max_screenshot_bytes)
    appended = event_store.append(rt(), current_key().project_id, recording_id, batch)
    body = {
        "stored": len(appended.stored),
        "duplicates": len(appended.duplicates),
        "ids": [e.event_id for e in batch],
    }
    return body, 201 if appended.stored else 200


def _batch_body() -> tuple[Any, Any]:
    if request.mimetype == "multipart/form-data":
        raw = request.form.get("events")
        if raw is None and "events" in request.files:
            raw = request.files["events"].read().decode("utf-8", "replace")
        if raw is None:
            raise Unprocessable("a multipart batch needs an `events` field", errors={"events": ["required"]})
        return jsonbody.loads(raw), request.files
    if request.is_json:
        return request.get_json(), None
    raise UnsupportedMediaType("send application/json or multipart/form-data")  # HTTP, not a domain rule


@blp.route("/recordings/<recording_id>/event/<event_id>")
class SessionEvent(MethodView):
    @require("recording:read")
    @blp.response(200, EventOutSchema, description="the event")
    @blp.errors(e404="unknown recording or event")
    def get(self, recording_id: str, event_id: str):
        """Get one event of a session"""
        recording, event = event_store.get(rt(), current_key().project_id, recording_id, event_id)
        return presenters.session_event(rt(), event, recording.timeline)

    @require("recording:write")
    @blp.response(200, SessionSchema, description="the session as it is now, without the event")
    @blp.errors(
        e404="unknown recording or event",
        e409="the recording is under legal hold: the event and its screenshot are kept",
    )
    def delete(self, recording_id: str, event_id: str):
        """Delete one event (and its screenshot); answers the updated session"""
        recording = event_store.remove(rt(), current_key().project_id, recording_id, event_id)
        return stream.session(rt(), recording, current_key().id)


@blp.route("/recordings/<recording_id>/actions", methods=["GET"])
@require("recording:read")
@blp.response(200, ActionsSchema, description="clicks, keypresses, scrolls and text input, in time order")
@blp.errors(e404=_UNKNOWN)
def actions(recording_id: str):
    """List a session's user actions with their details"""
    recording = recordings.get(rt(), current_key().project_id, recording_id)
    return stream.json_object({}, "actions", stream.events(rt(), recording, ACTION_TYPES, _action))


def _action(event: dict[str, Any]) -> dict[str, Any]:
    kind = event["type"]
    if kind == "click":
        details = {"coordinates": event["coordinates"], **event["click_data"]}
    elif kind == "key":
        details = dict(event["key_data"])
    else:
        details = {
            **event[f"{kind}_data"],
            **({"coordinates": event["coordinates"]} if "coordinates" in event else {}),
        }
    return {
        "id": event["id"],
        "type": ACTION_TYPES[kind],
        "timestamp": event["timestamp"],
        "details": details,
        "screenshot_path": event["screenshot_path"],
        "offset": event["offset"],
    }


@blp.route("/active_sessions", methods=["GET"])
@require("recording:read")
@blp.response(200, IdListSchema, description="ids of the recordings still running, oldest first")
def active_sessions():
    """List this project's running recordings (sessions and room recordings)"""
    return {"recordings": sessions.active_ids(rt(), current_key().project_id)}
