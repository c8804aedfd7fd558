"""Request and response shapes of the rrweb cloud dialect, for parsing and the OpenAPI document."""

from __future__ import annotations

import marshmallow as ma

from app.payloads import ENCODINGS
from app.services.interactions.replays import EXTERNAL_ID

F = ma.fields

# A short web replay as rrweb records it (`{type, timestamp: Unix ms, data}`): Meta (4), FullSnapshot (2),
# IncrementalSnapshot (3) with a MouseInteraction click (source 2, type 2) and an Input (source 5), a
# Custom event (5) and a console error from the rrweb/console@1 plugin (6). The OpenAPI examples of the
# batch ingest; README.md describes the same; tests/test_readme_examples.py feeds them to the parser.
EXAMPLE_REPLAY: list[dict] = [
    {
        "type": 4,
        "timestamp": 1764700000000,
        "data": {"href": "https://shop.example/", "width": 1280, "height": 720},
    },
    {
        "type": 2,
        "timestamp": 1764700000010,
        "data": {
            "node": {"type": 0, "id": 1, "childNodes": [{"type": 1, "id": 2, "name": "html"}]},
            "initialOffset": {"left": 0, "top": 0},
        },
    },
    {"type": 3, "timestamp": 1764700001000, "data": {"source": 2, "type": 2, "id": 12, "x": 100, "y": 200}},
    {
        "type": 3,
        "timestamp": 1764700001500,
        "data": {"source": 5, "id": 15, "text": "jane", "isChecked": False},
    },
    {"type": 5, "timestamp": 1764700002000, "data": {"tag": "checkout", "payload": {"cart": 3}}},
    {
        "type": 6,
        "timestamp": 1764700002500,
        "data": {
            "plugin": "rrweb/console@1",
            "payload": {"level": "error", "payload": ['"boom"'], "trace": []},
        },
    },
]
INGEST_EXAMPLES = {
    "replay": {
        "summary": "A page view: meta, snapshot, a click, input, custom, console",
        "value": EXAMPLE_REPLAY,
    },
    "wrapped": {"summary": "The same under `events`", "value": {"events": EXAMPLE_REPLAY[:3]}},
}


class ListArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # meta[key]=value filters are read by the view

    limit = F.Integer(
        load_default=50,
        validate=ma.validate.Range(1, 100),
        metadata={"description": "Maximum number of results (1-100)"},
    )
    offset = F.Integer(
        load_default=0,
        validate=ma.validate.Range(0, 1_000_000),
        metadata={"description": "Number of results to skip"},
    )
    includeSignedUrls = F.Boolean(  # noqa: N815 - the dialect's wire name
        load_default=False,
        metadata={"description": "Add links.eventsSigned: a presigned events URL valid MEETREC_LINK_TTL"},
    )


class LinksSchema(ma.Schema):
    self = F.String(metadata={"example": "/rrweb/recordings/000e8400-e00b-00d0-a716-446655440000"})
    events = F.String(metadata={"example": "/rrweb/recordings/000e8400-e00b-00d0-a716-446655440000/events"})
    eventsSigned = F.String(  # noqa: N815
        metadata={
            "description": "Only with includeSignedUrls=true",
            "example": "/rrweb/recordings/000e8400-e00b-00d0-a716-446655440000/events"
            "?expires=1735689600&keyId=key-2026-12-02-a1b2c3&signature=a1b2c3d4e5f6...",
        }
    )


class ListedSchema(ma.Schema):
    recordingId = F.String(metadata={"example": "000e8400-e00b-00d0-a716-446655440000"})  # noqa: N815
    timestamp = F.Integer(metadata={"description": "When the recording was created (Unix ms)"})
    links = F.Nested(LinksSchema)


class RecordingListSchema(ma.Schema):
    recordings = F.List(F.Nested(ListedSchema))


class MetaEntrySchema(ma.Schema):
    key = F.String(metadata={"example": "userId"})
    value = F.Raw(metadata={"description": "A string, number, boolean or null", "example": "user-123"})
    timestamp = F.Integer(metadata={"description": "When the value last changed (Unix ms)"})
    version = F.Integer(metadata={"description": "1, rising by one on every change of the value"})


class EventSchema(ma.Schema):
    type = F.Integer(metadata={"description": "rrweb event type (0-6)", "example": 3})
    timestamp = F.Integer(metadata={"description": "Unix ms, as recorded", "example": 1764700000000})
    data = F.Dict(metadata={"description": "The event's data, as recorded"})
    sequenceId = F.Integer(metadata={"description": "1, 2, ... in the order stored"})  # noqa: N815
    recordingId = F.String()  # noqa: N815


class StatisticsSchema(ma.Schema):
    totalRecordings = F.Integer(metadata={"description": "Live web replays of the project"})  # noqa: N815
    recordingsThisMonth = F.Integer(  # noqa: N815
        metadata={"description": "Of those, created this calendar month (UTC)"}
    )
    totalStorageBytes = F.Integer(  # noqa: N815
        metadata={"description": "Bytes their stored event blocks take (compressed)"}
    )


class SigningKeySchema(ma.Schema):
    keyId = F.String(attribute="id", metadata={"example": "key-2026-12-02-a1b2c3"})  # noqa: N815
    createdAt = F.DateTime(attribute="created_at")  # noqa: N815
    retiredAt = F.DateTime(attribute="retired_at", allow_none=True)  # noqa: N815
    current = F.Boolean(metadata={"description": "New links are signed with this key"})


class IngestArgs(ma.Schema):
    """The batch ingest's query: what a `navigator.sendBeacon` (which sets no headers) needs to say."""

    class Meta:
        unknown = ma.EXCLUDE  # a presigned URL's signature, expires and keyId are read by `require`

    key = F.String(
        metadata={
            "description": "A public key, for browsers that cannot set headers (sendBeacon); "
            "`Authorization` wins when both are given"
        }
    )
    contentEncoding = F.String(  # noqa: N815 - the dialect's wire name (as on the WebSocket)
        validate=ma.validate.OneOf(ENCODINGS),
        metadata={"description": "How the body is compressed when no Content-Encoding header says so"},
    )
    stream = F.String(
        validate=ma.validate.Regexp(r"^[A-Za-z0-9._:-]{1,64}$"),
        metadata={"description": "A WebSocket stream id: the body holds frames after..after+frames of it"},
    )
    after = F.Integer(
        validate=ma.validate.Range(0, 2**53),
        metadata={"description": "With stream: the frames of the stream before this batch"},
    )
    frames = F.Integer(
        validate=ma.validate.Range(1, 100_000),
        metadata={"description": "With stream: the frames this batch holds (each frame one event or more)"},
    )

    @ma.validates_schema
    def _positioned(self, data: dict, **kwargs: object) -> None:
        given = [name for name in ("stream", "after", "frames") if name in data]
        if given and len(given) != 3:
            raise ma.ValidationError("stream, after and frames go together", "stream")
        if "stream" in data and not EXTERNAL_ID.fullmatch(data["stream"]):  # `$` lets a newline in
            raise ma.ValidationError("1..64 characters of A-Z a-z 0-9 . _ : -", "stream")
