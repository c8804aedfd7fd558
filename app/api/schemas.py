"""Response schemas shared by resources: Eyeson's room, user and recording objects."""

from __future__ import annotations

import marshmallow as ma

F = ma.fields


class UserSchema(ma.Schema):
    id = F.String()
    name = F.String()
    avatar = F.String(allow_none=True)
    guest = F.Boolean()
    joined_at = F.String(metadata={"description": "ISO 8601 UTC"})


class RoomSchema(ma.Schema):
    id = F.String(metadata={"description": "The room id the caller chose (or one meetrec made)"})
    name = F.String()
    ready = F.Boolean()
    started_at = F.String(metadata={"description": "ISO 8601 UTC"})
    shutdown = F.Boolean()
    guest_token = F.String()
    options = F.Dict()
    media_source = F.String(
        allow_none=True,
        metadata={
            "description": "The source recorded, credentials redacted: `rtmp://***@host/...`, `?key=***`"
        },
    )


class RecordingLinksSchema(ma.Schema):
    self = F.String()
    download = F.String(
        allow_none=True, metadata={"description": "Presigned link valid one hour; null until finished"}
    )
    poster = F.String(
        allow_none=True, metadata={"description": "Presigned link to a poster JPEG; null until finished"}
    )


class RecordingSchema(ma.Schema):
    id = F.String()
    created_at = F.Integer(metadata={"description": "Unix seconds"})
    duration = F.Integer(allow_none=True, metadata={"description": "Seconds; null until stopped"})
    links = F.Nested(RecordingLinksSchema)
    user = F.Nested(UserSchema, allow_none=True)
    room = F.Nested(RoomSchema, allow_none=True)
    state = F.String(metadata={"description": "started, stopped, finished or failed"})
    duration_ms = F.Integer(allow_none=True)
    size = F.Integer(allow_none=True, metadata={"description": "Bytes of the final WebM"})
    sha256 = F.String(allow_none=True)
    error = F.String(allow_none=True, metadata={"description": "Why the recording failed"})
    ingest = F.String(
        metadata={"description": "pull (meetrec captures), push (chunks uploaded) or none (events only)"}
    )
    stop_reason = F.String(
        allow_none=True, metadata={"description": "Why it stopped by itself (maximum duration, source ended)"}
    )
    reconnects = F.Integer(
        metadata={"description": "How often the capture was interrupted and went on: the number of gaps"}
    )
    capture_attempts = F.Integer(
        metadata={"description": "Capture jobs that recorded it: more than 1 after a handover or a resume"}
    )
    gaps = F.List(
        F.Dict(),
        metadata={
            "description": "Each interruption (a dropped source, a worker handover, a lost capture resumed): "
            "after_seq (the last segment before it), seconds without media, reason"
        },
    )
    persist = F.Boolean(metadata={"description": "Kept past the retention period until deleted"})
    legal_hold = F.Boolean(
        metadata={"description": "Kept past retention and not deletable; only admin keys set or lift it"}
    )
    stopped_at = F.String(allow_none=True)
    finished_at = F.String(allow_none=True)
    description = F.String(allow_none=True, metadata={"description": "A session's description"})
    start_time = F.Integer(metadata={"description": "Unix seconds (the sessions API's name for created_at)"})
    end_time = F.Integer(allow_none=True, metadata={"description": "Unix seconds of the stop; null before"})
    event_count = F.Integer(metadata={"description": "Interaction events stored"})
