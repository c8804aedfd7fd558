"""Eyeson rooms and room recordings.

Calls that carry an access key in the path are authorized by that key (as in Eyeson); calls that name
a room id need an API key of the room's project.
"""

from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView

from app.api import presenters
from app.api.auth import current_key, require
from app.api.blueprint import Blueprint
from app.api.rooms.schemas import JoinArgs, MembershipSchema, RoomRecordingsArgs, StartRecordingArgs
from app.api.schemas import RecordingSchema
from app.runtime import Runtime
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


@blp.route("")
class Rooms(MethodView):
    @require("room:write")
    @blp.arguments(JoinArgs, location="eyeson")
    @blp.response(201, MembershipSchema, description="joined: a new access key for the running meeting")
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


@blp.route("/<access_key>")
class RoomByAccessKey(MethodView):
    @blp.response(200, MembershipSchema, description="the meeting as this participant sees it")
    @blp.errors(e404="unknown access key", e410="the meeting has been shut down")
    def get(self, access_key: str):
        """Get the meeting an access key belongs to"""
        participant = rooms.by_access_key(rt(), access_key)
        return membership(participant.room, participant, access_key)


@blp.route("/<room_id>", methods=["DELETE"])
@require("room:write")
@blp.response(204, description="the meeting is shut down; its access keys now answer 410")
@blp.errors(e404="no running meeting with this room id")
def shutdown_room(room_id: str):
    """Shut a meeting down and stop its recording"""
    room = rooms.shutdown(rt(), current_key().project_id, room_id)
    if room.active_recording_id:
        recordings.stop_recording(rt(), room.active_recording_id)
    return None


@blp.route("/<access_key>/recording")
class RoomRecording(MethodView):
    @blp.arguments(StartRecordingArgs, location="eyeson", required=False)
    @blp.response(201, description="recording started; no body (Eyeson sends only the status)")
    @blp.errors(
        e404="unknown access key",
        e405="recording is not available in this room (options[recording_available]=false)",
        e406="a recording is already running, or the room has no media source",
        e410="the meeting has been shut down",
        e422="invalid parameters or refused media source",
    )
    def post(self, args: dict, access_key: str):
        """Start recording the meeting"""
        room_recordings.start(rt(), access_key, args.get("media_source"))
        return Response(status=201)

    @blp.response(
        200,
        RecordingSchema,
        description="stop requested; the recording as it stands: a pushed one is stopped (duration and "
        "end_time set), a captured one is still started (both null) until its capture has closed",
    )
    @blp.errors(e404="unknown access key, or nothing is recording", e410="the meeting has been shut down")
    def delete(self, access_key: str):
        """Stop the meeting's running recording"""
        return presenters.issued(rt(), [room_recordings.stop(rt(), access_key)], None)[0]


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
