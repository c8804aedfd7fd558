"""Request and response shapes of the sessions API (`sessions-api.txt`), for parsing and the OpenAPI
document. Event batches are parsed by `app.api.sessions.events` (hand-written, for speed); the event
schemas here document them."""

from __future__ import annotations

import marshmallow as ma

from app.api.schemas import RecordingSchema

F = ma.fields
MAX_LIMIT = 10_000
MAX_OFFSET = 1_000_000_000  # far below SQL's 64-bit integers, which a larger offset overflows

# One event of each type, as `POST /recordings/{id}/events` takes them (the OpenAPI examples; README.md
# shows the same, and tests/test_readme_examples.py feeds them to the parser).
EXAMPLE_EVENTS: list[dict] = [
    {
        "id": "c1",
        "type": "click",
        "timestamp": 1796200000.25,
        "coordinates": {"x": 100, "y": 200},
        "click_data": {"button": "left", "pressed": True},
    },
    {
        "id": "k1",
        "type": "key",
        "timestamp": 1796200001,
        "key_data": {"key": "A", "modifiers": ["Shift"], "pressed": True},
    },
    {"id": "s1", "type": "scroll", "timestamp": 1796200002, "scroll_data": {"x": 0, "y": 640, "dy": 640}},
    {
        "id": "t1",
        "type": "text",
        "timestamp": 1796200003,
        "text_data": {"text": "jane@example.com", "target": "#email"},
    },
    {"id": "u1", "type": "custom", "timestamp": 1796200004, "name": "checkout", "custom_data": {"cart": 3}},
]
EVENTS_EXAMPLES = {
    "one-of-each": {"summary": "One event of each type", "value": EXAMPLE_EVENTS},
    "wrapped": {"summary": "The same list under `events`", "value": {"events": EXAMPLE_EVENTS[:2]}},
    "screenshot": {
        "summary": "A click with its screenshot (base64 or a data: URL)",
        "value": [{**EXAMPLE_EVENTS[0], "id": "c2", "screenshot": "data:image/png;base64,iVBORw0KGgo..."}],
    },
    "no-frame": {
        "summary": "A click that needs no frame of the video; a key press that does",
        "value": [
            {**EXAMPLE_EVENTS[0], "id": "c3", "grab_frame": False},
            {**EXAMPLE_EVENTS[1], "id": "k2", "grab_frame": True},
        ],
    },
}
START_EXAMPLES = {
    "events": {"summary": "Interaction events only", "value": {"description": "checkout"}},
    "push": {
        "summary": "With video the app uploads",
        "value": {"description": "checkout", "media_source": "push"},
    },
    "pull": {
        "summary": "With video captured from a source",
        "value": {"description": "support call", "media_source": "rtmp://media.example/live/call-42"},
    },
}


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
        metadata={"description": "Free text shown with the session", "example": "checkout"},
    )
    media_source = F.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(min=1, max=2000),
        metadata={
            "description": "Record video too: a pull URL (srt, rtmp(s), rtsp(s), http(s)) or `push` to "
            "upload MediaRecorder chunks to PUT /recordings/{id}/media/{seq}; absent: events only",
            "example": "push",
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
    x = WireNumber(required=True, metadata={"description": "CSS pixels from the left", "example": 100})
    y = WireNumber(required=True, metadata={"description": "CSS pixels from the top", "example": 200})


class EventSchema(ma.Schema):
    """An interaction event; the fields besides id, type and timestamp are those of its type."""

    id = F.String(
        metadata={
            "description": "The client's id (1-64 of A-Za-z0-9._:-) or a generated UUID; a retried "
            "batch stores an id once",
            "example": "c1",
        }
    )
    type = F.String(
        required=True, metadata={"description": "click, key, scroll, text or custom", "example": "click"}
    )
    timestamp = WireNumber(
        required=True,
        metadata={
            "description": "Unix seconds (after 2001), fractions allowed; milliseconds are refused",
            "example": 1796200000.25,
        },
    )
    coordinates = F.Nested(CoordinatesSchema, metadata={"description": "click (required), scroll"})
    click_data = F.Dict(
        metadata={
            "description": 'click: {"button": left|middle|right (left), "pressed": bool (true)}',
            "example": {"button": "left", "pressed": True},
        }
    )
    key_data = F.Dict(
        metadata={
            "description": 'key: {"key": 1-64 characters, "modifiers"?: [str], "pressed"?: bool}',
            "example": {"key": "A", "modifiers": ["Shift"], "pressed": True},
        }
    )
    scroll_data = F.Dict(
        metadata={
            "description": 'scroll: {"x", "y", "dx"?, "dy"?}: numbers, the position after and the change',
            "example": {"x": 0, "y": 640, "dy": 640},
        }
    )
    text_data = F.Dict(
        metadata={
            "description": 'text: {"text": up to 10,000 characters, "target"?: up to 500 (a selector)}',
            "example": {"text": "jane@example.com", "target": "#email"},
        }
    )
    name = F.String(metadata={"description": "custom: a name (up to 200 characters)", "example": "checkout"})
    custom_data = F.Raw(
        metadata={"description": "custom (required): any JSON value up to 16 KiB", "example": {"cart": 3}}
    )


class EventInSchema(EventSchema):
    screenshot = F.String(
        metadata={
            "description": "base64 PNG/JPEG/WebP (or a data: URL); in multipart, a file part's name",
            "example": "data:image/png;base64,iVBORw0KGgo...",
        }
    )
    grab_frame = F.Boolean(
        metadata={
            "description": "Take a frame of the session's video at the timestamp (default: clicks)",
            "example": False,
        }
    )


class EventOutSchema(EventSchema):
    screenshot_path = F.String(allow_none=True, metadata={"description": "A one-hour link to the screenshot"})
    offset = F.Float(allow_none=True, metadata={"description": "Seconds into the session's video"})


class EventBatchSchema(ma.Schema):
    events = F.List(F.Nested(EventInSchema), metadata={"description": "Up to 1000 events, all or nothing"})


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
