"""Request and response shapes of the rooms resource (Eyeson-compatible)."""

from __future__ import annotations

from datetime import UTC

import marshmallow as ma

from app.api.schemas import RoomSchema, UserSchema

F = ma.fields
_name = ma.validate.Length(min=1, max=200)
# A room id is a path segment (`/rooms/{room_id}/recordings`, the console's room page), so only characters
# that stay one there: never `/`, `%`, `?`, `#`, spaces, control characters or NUL.
_ROOM_ID = r"[A-Za-z0-9._~:@+=\[\]-]{1,200}"
ROOM_ID_PATTERN = f"^{_ROOM_ID}$"  # for the OpenAPI document (ECMA: `$` is the end)
ROOM_ID_CHARS = "1 to 200 of A-Z a-z 0-9 and . _ ~ : @ + = [ ] -"
_room_id = ma.validate.Regexp(_ROOM_ID + r"\Z", error=ROOM_ID_CHARS)  # `$` would pass a trailing newline


class _Lenient(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # Eyeson ignores parameters it does not know; so do we


class UserArgs(_Lenient):
    name = F.String(required=True, validate=_name)
    id = F.String(validate=_name)
    avatar = F.String(validate=ma.validate.Length(max=2000))


class OptionsArgs(_Lenient):
    """Eyeson room options: known ones are type-checked and kept; unknown keys are dropped."""

    recording_available = F.Boolean()
    broadcast_available = F.Boolean()
    layout_available = F.Boolean()
    reaction_available = F.Boolean()
    show_names = F.Boolean()
    show_label = F.Boolean()
    widescreen = F.Boolean()
    kick_available = F.Boolean()
    lock_available = F.Boolean()
    audio_insert = F.String(validate=ma.validate.OneOf(["enabled", "disabled", "audio_only"]))
    audio_insert_position = F.String()
    layout = F.String(validate=ma.validate.OneOf(["auto", "custom"]))
    sfu_mode = F.String(validate=ma.validate.OneOf(["ptp", "disabled", "screencast"]))
    background_color = F.String(validate=ma.validate.Length(max=20))
    exit_url = F.String(validate=ma.validate.Length(max=2000))
    custom_fields = F.Dict(keys=F.String(), values=F.Raw())
    media_source = F.String(
        validate=ma.validate.Length(min=1, max=2000),
        metadata={"description": "meetrec extension: URL to record, e.g. synthetic://meeting or srt://"},
    )


class JoinArgs(_Lenient):
    id = F.String(
        validate=_room_id,
        metadata={
            "description": f"Room id ({ROOM_ID_CHARS}); joining a running one adds a user",
            "pattern": ROOM_ID_PATTERN,
        },
    )
    name = F.String(validate=_name)
    user = F.Nested(UserArgs, required=True)
    options = F.Nested(OptionsArgs, load_default=dict)


class StartRecordingArgs(_Lenient):
    media_source = F.String(
        validate=ma.validate.Length(min=1, max=2000),
        metadata={
            "description": "meetrec extension: record this source instead of the room's; needs an API key "
            "of the room's project with the room:write scope in Authorization (403 otherwise)"
        },
    )


class RoomLinksSchema(ma.Schema):
    self = F.String()
    gui = F.String()
    guest_join = F.String()
    websocket = F.String(allow_none=True)


class MembershipSchema(ma.Schema):
    access_key = F.String()
    ready = F.Boolean()
    room = F.Nested(RoomSchema)
    user = F.Nested(UserSchema)
    links = F.Nested(RoomLinksSchema)
    recording = F.Dict(allow_none=True, metadata={"description": "The running recording, if any"})


class RoomRecordingsArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    page = F.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100000))
    started_at = F.AwareDateTime(
        default_timezone=UTC,
        metadata={"description": "Only the meeting instance running at this ISO 8601 time"},
    )
