"""Eyeson rooms and room recordings.

Calls that carry an access key in the path are authorized by that key (as in Eyeson); calls that name
a room id need an API key of the room's project.
"""

from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView

from app.api import direct, presenters
from app.api.auth import current_key, presented_key, require
from app.api.blueprint import Blueprint
from app.api.rooms.schemas import JoinArgs, MembershipSchema, RoomRecordingsArgs, StartRecordingArgs
from app.api.schemas import RecordingSchema
from app.models import ApiKey
from app.runtime import Runtime
from app.services.access import keys
from app.services.core import recordings, room_recordings, rooms
from app.services.core.rooms import JoinRequest

blp = Blueprint("rooms", __name__, url_prefix="/rooms", description="Eyeson-compatible rooms")


def rt() -> Runtime:
    return current_app.extensions["meetrec"]


def membership(room, participant, access_key: str) -> dict:
    base = rt().config.public_url
    return {
        "access_key": access_key,
        "ready": True,
        "room": presenters.room(room),
        "user": presenters.user(participant),
        "links": {
            "self": f"{base}/rooms/{access_key}",
            "gui": f"{base}/console/rooms/{room.key}",
            "guest_join": f"{base}/guests/{room.guest_token}",
            "websocket": None,
        },
    }


# What a client does next with a join's answer (OpenAPI links): the participant's access key opens the
# meeting and starts its recording; the room id shuts it down.
JOIN_LINKS = {
    "GetMeeting": {
        "operationRef": "#/paths/~1rooms~1{room}/get",
        "parameters": {"room": "$response.body#/access_key"},
        "description": "The meeting as this participant sees it",
    },
    "StartRecording": {
        "operationRef": "#/paths/~1rooms~1{access_key}~1recording/post",
        "parameters": {"access_key": "$response.body#/access_key"},
        "description": "Start recording the meeting",
    },
    "ShutDown": {
        "operationRef": "#/paths/~1rooms~1{room}/delete",
        "parameters": {"room": "$response.body#/room/id"},
        "description": "Shut the meeting down",
    },
}


@blp.route("")
class Rooms(MethodView):
    @require("room:write")
    @blp.arguments(JoinArgs, location="eyeson")
    @blp.response(201, MembershipSchema, description="joined: a new access key for the running meeting")
    @blp.doc(responses={201: {"links": JOIN_LINKS}})
    @blp.errors(
        e400="malformed body",
        e413="body too large",
        e422="invalid parameters or refused media source",
    )
    def post(self, args: dict):
        """Start a meeting or join the running one with this room id"""
        user = args["user"]
        m = rooms.join(
            rt(),
            current_key().project_id,
            JoinRequest(
                user_name=user["name"],
                user_id=user.get("id"),
                avatar=user.get("avatar"),
                room_key=args.get("id"),
                room_name=args.get("name"),
                options=args.get("options") or {},
            ),
        )
        return membership(m.room, m.participant, m.access_key)


# GET names a participant's access key, DELETE a room id: one path template, `{room}`, for both.
@blp.route("/<room>")
class RoomByAccessKey(MethodView):
    @blp.response(200, MembershipSchema, description="the meeting as this participant sees it")
    @blp.errors(e404="unknown access key", e410="the meeting has been shut down")
    def get(self, room: str):
        """Get the meeting an access key belongs to (`room`: the access key)"""
        participant = rooms.by_access_key(rt(), room)
        return membership(participant.room, participant, room)


@blp.route("/<room>", methods=["DELETE"])
@require("room:write")
@blp.response(204, description="the meeting is shut down; its access keys now answer 410")
@blp.errors(e404="no running meeting with this room id")
def shutdown_room(room: str):
    """Shut a meeting down and stop its recording (`room`: the room id)"""
    shut = rooms.shutdown(rt(), current_key().project_id, room)
    if shut.active_recording_id:
        recordings.stop_recording(rt(), shut.active_recording_id)
    return None


def start(
    rt: Runtime, access_key: str, media_source: str | None = None, api_key: ApiKey | None = None
) -> Response:
    """`POST /rooms/{access_key}/recording`, through Flask or direct (which takes no parameters)."""
    recording = room_recordings.start(rt, access_key, media_source, api_key)
    return Response(status=201, headers={"Location": f"{rt.config.public_url}/recordings/{recording.id}"})


def stop(rt: Runtime, access_key: str) -> Response:
    """`DELETE /rooms/{access_key}/recording`, through Flask or direct."""
    return presenters.json_answer(presenters.issued(rt, [room_recordings.stop(rt, access_key)], None)[0])


DIRECT = [
    # A start with parameters (a media source of the caller's choice) goes through Flask, which reads them.
    direct.Route(
        "POST",
        "/rooms/<access_key>/recording",
        lambda rt, _headers, access_key: start(rt, access_key),
        reads_query=True,
    ),
    direct.Route(
        "DELETE", "/rooms/<access_key>/recording", lambda rt, _headers, access_key: stop(rt, access_key)
    ),
]


@blp.route("/<access_key>/recording")
class RoomRecording(MethodView):
    # An instance: given the class, webargs would build a schema on every call.
    @blp.arguments(StartRecordingArgs(), location="eyeson", required=False)
    @blp.response(
        201,
        description="recording started; no body (Eyeson sends only the status), the new recording's URL in "
        "Location (a push recording's chunks go to its /media/{seq})",
        headers={
            "Location": {
                "description": "The new recording: {MEETREC_PUBLIC_URL}/recordings/{recording_id}",
                "schema": {"type": "string", "format": "uri"},
            }
        },
    )
    @blp.errors(
        e404="unknown access key",
        e405="recording is not available in this room (options[recording_available]=false)",
        e403="a media_source other than the room's, without an API key of the room's project that "
        "has the room:write scope",
        e406="a recording is already running, or the room has no media source",
        e410="the meeting has been shut down",
        e422="invalid parameters or refused media source",
    )
    def post(self, args: dict, access_key: str):
        """Start recording the meeting"""
        api_key = keys.authenticate(rt(), presented_key()) if args.get("media_source") else None
        return start(rt(), access_key, args.get("media_source"), api_key)

    @blp.response(
        200,
        RecordingSchema,
        description="stop requested; the recording as it stands: a pushed one is stopped (duration and "
        "end_time set), a captured one is still started (both null) until its capture has closed",
    )
    @blp.errors(e404="unknown access key, or nothing is recording", e410="the meeting has been shut down")
    def delete(self, access_key: str):
        """Stop the meeting's running recording"""
        return stop(rt(), access_key)


@blp.route("/<room_id>/recordings")
@require("recording:read")
@blp.arguments(RoomRecordingsArgs, location="query")
@blp.response(200, RecordingSchema(many=True), description="one page of recordings, newest first")
@blp.errors(
    e404="unknown room id",
    e422="invalid page or started_at",
)
def recordings_of_room(args: dict, room_id: str):
    """List a room's recordings, newest first, 25 a page"""
    found = room_recordings.list_for_room(
        rt(), current_key().project_id, room_id, args["page"], args.get("started_at")
    )
    return presenters.issued(rt(), found, current_key().id)
