"""Request and response shapes of the sessions API (`sessions-api.txt`), for parsing and the OpenAPI
document. Event batches are parsed by `app.api.sessions.events` (hand-written, for speed); the event
schemas here document them."""

from __future__ import annotations

import marshmallow as ma

from app.api.schemas import RecordingSchema

F = ma.fields
MAX_LIMIT = 10_000
MAX_OFFSET = 1_000_000_000  # far below SQL's 64-bit integers, which a larger offset overflows


class WireNumber(F.Float):
    """A number shown as stored: an integral one (a whole-second timestamp, a pixel) stays an integer,
    as in the streamed event lists, instead of marshmallow's float (`1622547605.0`)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None or isinstance(value, int) and not isinstance(value, bool):
            return value
        number = float(value)
        return int(number) if number.is_integer() else number


class StartSessionArgs(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    description = F.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(max=2000),
        metadata={"example": "demo"},
    )
    media_source = F.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(min=1, max=2000),
        metadata={
            "description": "Record video too: a pull URL (srt, rtmp(s), rtsp(s), http(s)) or `push` to "
            "upload MediaRecorder chunks to PUT /recordings/{id}/media/{seq}"
        },
    )


class SessionIdSchema(ma.Schema):
    session_id = F.String(metadata={"description": "The new session's id (a recording id)"})


class ListArgs(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    limit = F.Integer(
        validate=ma.validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Page size (1-{MAX_LIMIT}); all ids when absent"},
    )
    offset = F.Integer(
        load_default=0,
        validate=ma.validate.Range(min=0, max=MAX_OFFSET),
        metadata={"description": f"Ids to skip (0-{MAX_OFFSET})"},
    )


class IdListSchema(ma.Schema):
    recordings = F.List(F.String())


class StopSchema(ma.Schema):
    success = F.Boolean()
    session_id = F.String()
    state = F.String(
        metadata={"description": "stopped or finished once stopped; started while a capture ends"}
    )


class CoordinatesSchema(ma.Schema):
    x = WireNumber(required=True)
    y = WireNumber(required=True)


class EventSchema(ma.Schema):
    id = F.String(metadata={"description": "The client's id (1-64 of A-Za-z0-9._:-) or a generated UUID"})
    type = F.String(required=True, metadata={"description": "click, key, scroll, text or custom"})
    timestamp = WireNumber(required=True, metadata={"description": "Unix seconds, fractions allowed"})
    coordinates = F.Nested(CoordinatesSchema, metadata={"description": "click (required), scroll"})
    click_data = F.Dict(metadata={"description": 'click: {"button": left|middle|right, "pressed": bool}'})
    key_data = F.Dict(metadata={"description": 'key: {"key", "modifiers"?: [str], "pressed"?: bool}'})
    scroll_data = F.Dict(metadata={"description": 'scroll: {"x", "y", "dx"?, "dy"?}'})
    text_data = F.Dict(metadata={"description": 'text: {"text", "target"?}'})
    name = F.String(metadata={"description": "custom: a name"})
    custom_data = F.Raw(metadata={"description": "custom: any JSON value up to 16 KiB"})


class EventInSchema(EventSchema):
    screenshot = F.String(
        metadata={"description": "base64 PNG/JPEG/WebP (or a data: URL); in multipart, a file part's name"}
    )
    grab_frame = F.Boolean(
        metadata={"description": "Take a frame of the session's video at the timestamp (default: clicks)"}
    )


class EventOutSchema(EventSchema):
    screenshot_path = F.String(allow_none=True, metadata={"description": "A one-hour link to the screenshot"})
    offset = F.Float(allow_none=True, metadata={"description": "Seconds into the session's video"})


class EventBatchSchema(ma.Schema):
    events = F.List(F.Nested(EventInSchema), metadata={"description": "Up to 1000 events"})


class AppendedSchema(ma.Schema):
    stored = F.Integer(metadata={"description": "Events stored by this call"})
    duplicates = F.Integer(metadata={"description": "Events whose id was stored before (skipped)"})
    ids = F.List(F.String(), metadata={"description": "Every event's id, in the batch's order"})


class SessionSchema(RecordingSchema):
    events = F.List(F.Nested(EventOutSchema), metadata={"description": "Every event, in timestamp order"})


class ActionSchema(ma.Schema):
    id = F.String()
    type = F.String(metadata={"description": "click, keypress, scroll or text"})
    timestamp = WireNumber(metadata={"description": "Unix seconds, fractions allowed"})
    details = F.Dict(metadata={"description": "click: coordinates, button, pressed; keypress: key, ..."})
    screenshot_path = F.String(allow_none=True)
    offset = F.Float(allow_none=True)


class ActionsSchema(ma.Schema):
    actions = F.List(F.Nested(ActionSchema))
