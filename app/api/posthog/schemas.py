"""Request and response shapes of the PostHog dialect, for parsing and the OpenAPI document."""

from __future__ import annotations

import json

import marshmallow as ma

F = ma.fields
# PostgreSQL text holds no NUL: a string with one is bad input (400), never a database error.
NO_NUL = ma.validate.Regexp(r"^[^\x00]*$", error="must not contain NUL characters")
MAX_FILTERS_JSON = 64 * 1024


def _small_json(value: object) -> bool:
    if len(json.dumps(value)) > MAX_FILTERS_JSON:
        raise ma.ValidationError(f"at most {MAX_FILTERS_JSON} bytes of JSON")
    return True


_ISO = "2026-12-03T10:15:22Z"


class PostHogPageArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # PostHog clients send filters meetrec does not read

    limit = F.Integer(
        load_default=50,
        validate=ma.validate.Range(1, 1000),
        metadata={"description": "Results per page (1-1000)"},
    )
    offset = F.Integer(
        load_default=0,
        validate=ma.validate.Range(0, 10_000_000),
        metadata={"description": "The index of the first result"},
    )


class PostHogPlaylistListArgs(PostHogPageArgs):
    search = F.String(
        validate=[ma.validate.Length(max=400), NO_NUL], metadata={"description": "Part of the name"}
    )
    pinned = F.Boolean(metadata={"description": "Only pinned (true) or unpinned (false) playlists"})
    type = F.String(validate=ma.validate.OneOf(["collection", "filters"]))
    session_recording_id = F.String(
        validate=[ma.validate.Length(1, 64), NO_NUL],
        metadata={"description": "Only playlists holding this recording"},
    )


class PostHogPersonSchema(ma.Schema):
    id = F.Integer(metadata={"description": "Stable number derived from the distinct id"})
    name = F.String()
    distinct_ids = F.List(F.String())
    properties = F.Dict(metadata={"description": "The recording's metadata"})
    created_at = F.String(metadata={"example": _ISO})
    uuid = F.String(metadata={"description": "UUIDv5 of the project and distinct id"})
    last_seen_at = F.String(metadata={"example": _ISO})


class PostHogRecordingSchema(ma.Schema):
    id = F.String(metadata={"description": "The client's session id", "example": "0193a1b2-c3d4-7e5f"})
    distinct_id = F.String(allow_none=True)
    viewed = F.Boolean(metadata={"description": "The calling key has read it"})
    viewers = F.List(F.String(), metadata={"description": "Names of the other keys that read it"})
    recording_duration = F.Integer(metadata={"description": "Seconds from the first event to the last"})
    active_seconds = F.Integer()
    inactive_seconds = F.Integer()
    start_time = F.String(allow_none=True, metadata={"example": _ISO})
    end_time = F.String(allow_none=True, metadata={"example": _ISO})
    click_count = F.Integer()
    keypress_count = F.Integer()
    mouse_activity_count = F.Integer()
    console_log_count = F.Integer()
    console_warn_count = F.Integer()
    console_error_count = F.Integer()
    start_url = F.String(allow_none=True)
    person = F.Nested(PostHogPersonSchema, allow_none=True)
    retention_period_days = F.Integer(allow_none=True, metadata={"description": "null while persisted"})
    expiry_time = F.String(allow_none=True, metadata={"example": _ISO})
    recording_ttl = F.Integer(allow_none=True, metadata={"description": "Days left before it is destroyed"})
    snapshot_source = F.String(metadata={"example": "web"})
    snapshot_library = F.String(allow_none=True, metadata={"example": "rrweb"})
    ongoing = F.Boolean(metadata={"description": "Still taking events (the recording is started)"})
    activity_score = F.Float()
    external_references = F.List(F.Dict())


class PostHogSharedRecordingSchema(ma.Schema):
    id = F.String()
    recording_duration = F.Integer()
    start_time = F.String(allow_none=True)
    end_time = F.String(allow_none=True)


class PostHogRecordingPageSchema(ma.Schema):
    count = F.Integer()
    next = F.String(allow_none=True, metadata={"description": "Absolute URL of the next page"})
    previous = F.String(allow_none=True, metadata={"description": "Absolute URL of the previous page"})
    results = F.List(F.Nested(PostHogRecordingSchema))


class PostHogRecordingUpdateSchema(ma.Schema):
    viewed = F.Boolean(metadata={"description": "true marks the recording read by the calling key"})
    analyzed = F.Boolean()
    player_metadata = F.Dict(allow_none=True)


class PostHogSuccessSchema(ma.Schema):
    success = F.Boolean(metadata={"example": True})


class PostHogSnapshotSourceSchema(ma.Schema):
    source = F.String(metadata={"example": "blob_v2"})
    blob_key = F.String(metadata={"description": "The block's index", "example": "0"})
    start_timestamp = F.String(metadata={"example": _ISO})
    end_timestamp = F.String(metadata={"example": _ISO})


class PostHogSnapshotSourcesSchema(ma.Schema):
    sources = F.List(F.Nested(PostHogSnapshotSourceSchema))


class PostHogSnapshotArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    source = F.String(metadata={"description": "blob_v2 to read blocks; none to list them"})
    start_blob_key = F.String(metadata={"description": "First block index (with source=blob_v2)"})
    end_blob_key = F.String(metadata={"description": "Last block index, inclusive (at most 100 blocks)"})


class PostHogSimilarArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    limit = F.Integer(load_default=3, validate=ma.validate.Range(1, 50))


class PostHogSimilarSchema(PostHogRecordingSchema):
    similarity = F.Float(metadata={"description": "0..1, see the operation's description"})


class PostHogSimilarListSchema(ma.Schema):
    results = F.List(F.Nested(PostHogSimilarSchema))


class PostHogSummarySchema(ma.Schema):
    summary = F.String()
    pages = F.List(F.Dict())
    key_actions = F.List(F.Dict())
    errors = F.List(F.Dict())
    rage_clicks = F.List(F.Dict())
    active_seconds = F.Float()
    inactive_seconds = F.Float()
    duration_seconds = F.Float()
    counts = F.Dict()
    generated_by = F.String(metadata={"example": "meetrec rules (no language model)"})


class PostHogSharingSchema(ma.Schema):
    created_at = F.String(allow_none=True, metadata={"example": _ISO})
    enabled = F.Boolean()
    access_token = F.String(allow_none=True, metadata={"description": "null while sharing is off"})
    settings = F.Dict()
    password_required = F.Boolean()


class PostHogSharingUpdateSchema(ma.Schema):
    enabled = F.Boolean(required=True)


class PostHogMatchingEventSchema(ma.Schema):
    uuid = F.String()
    timestamp = F.String(metadata={"example": _ISO})


class PostHogMatchingEventsSchema(ma.Schema):
    results = F.List(F.Nested(PostHogMatchingEventSchema))


class PostHogPropertiesEntrySchema(ma.Schema):
    id = F.String()
    properties = F.Dict()


class PostHogPropertiesSchema(ma.Schema):
    results = F.List(F.Nested(PostHogPropertiesEntrySchema))


class PostHogPlaylistFieldsSchema(ma.Schema):
    name = F.String(allow_none=True, validate=[ma.validate.Length(max=400), NO_NUL])
    derived_name = F.String(allow_none=True, validate=[ma.validate.Length(max=400), NO_NUL])
    description = F.String(allow_none=True, validate=[ma.validate.Length(max=10_000), NO_NUL])
    pinned = F.Boolean()
    deleted = F.Boolean()
    filters = F.Dict(
        allow_none=True, validate=_small_json, metadata={"description": "at most 64 KiB of JSON"}
    )
    _create_in_folder = F.String(load_only=True, allow_none=True)


class PostHogPlaylistCreateSchema(PostHogPlaylistFieldsSchema):
    type = F.String(
        required=True,
        validate=ma.validate.OneOf(["collection", "filters"]),
        metadata={"description": "collection (recordings added one by one) or filters (a saved search)"},
    )


class PostHogPlaylistSchema(ma.Schema):
    id = F.Integer()
    short_id = F.String(metadata={"example": "a1B2c3D4"})
    name = F.String(allow_none=True)
    derived_name = F.String(allow_none=True)
    description = F.String()
    pinned = F.Boolean()
    created_at = F.String(metadata={"example": _ISO})
    created_by = F.Dict(allow_none=True)
    deleted = F.Boolean()
    filters = F.Dict()
    last_modified_at = F.String(metadata={"example": _ISO})
    last_modified_by = F.Dict(allow_none=True)
    recordings_counts = F.Dict()
    type = F.String()


class PostHogPlaylistPageSchema(ma.Schema):
    count = F.Integer()
    next = F.String(allow_none=True)
    previous = F.String(allow_none=True)
    results = F.List(F.Nested(PostHogPlaylistSchema))


class PostHogPlaylistRecordingsSchema(ma.Schema):
    results = F.List(F.Nested(PostHogRecordingSchema))
    has_next = F.Boolean()
    version = F.Integer(metadata={"example": 4})


class PostHogProjectSchema(ma.Schema):
    id = F.String(metadata={"description": "Use it (or @current) as {project_id}"})
    uuid = F.String()
    organization = F.String()
    project_id = F.String()
    api_token = F.String(
        metadata={"description": "The public ingest token (scope ingest), safe in web pages"}
    )
    name = F.String()
    timezone = F.String(metadata={"example": "UTC"})
    created_at = F.String(metadata={"example": _ISO})
    session_recording_opt_in = F.Boolean()
    session_recording_retention_period = F.String(metadata={"example": "14d"})


class PostHogProjectPageSchema(ma.Schema):
    count = F.Integer()
    next = F.String(allow_none=True)
    previous = F.String(allow_none=True)
    results = F.List(F.Nested(PostHogProjectSchema))
