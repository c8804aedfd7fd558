"""Shapes of the posthog-js ingest answers."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields as F


class RefusedEventSchema(ma.Schema):
    index = F.Integer(metadata={"description": "the event's position in the request", "example": 3})
    reason = F.String(
        metadata={
            "example": "no properties.$session_id: meetrec keeps events with their session's recording only"
        }
    )
    event = F.String(metadata={"example": "$pageview"})
    uuid = F.String(metadata={"example": "0193a6f0-1c2d-7000-8000-000000000001"})


class CaptureResultSchema(ma.Schema):
    status = F.Integer(metadata={"description": "1, as PostHog answers", "example": 1})
    stored = F.Dict(
        keys=F.String(),
        values=F.Integer(),
        metadata={"description": "rrweb events stored per session id", "example": {"0193a6f0-1c2d": 42}},
    )
    refused = F.List(F.Nested(RefusedEventSchema), metadata={"description": "events not kept, and why"})


class SessionRecordingConfigSchema(ma.Schema):
    endpoint = F.String(metadata={"example": "/s/"})
    consoleLogRecordingEnabled = F.Boolean(metadata={"example": True})  # noqa: N815 - PostHog's name
    recorderVersion = F.String(metadata={"example": "v2"})  # noqa: N815


class RemoteConfigSchema(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE

    token = F.String(metadata={"example": "phc_..."})
    supportedCompression = F.List(F.String(), metadata={"example": ["gzip-js", "base64"]})  # noqa: N815
    hasFeatureFlags = F.Boolean(metadata={"example": False})  # noqa: N815
    sessionRecording = F.Nested(SessionRecordingConfigSchema)  # noqa: N815
    analytics = F.Dict(metadata={"example": {"endpoint": "/e/"}})


class FlagsSchema(RemoteConfigSchema):
    featureFlags = F.Dict(metadata={"example": {}})  # noqa: N815
    featureFlagPayloads = F.Dict(metadata={"example": {}})  # noqa: N815
    flags = F.Dict(metadata={"example": {}})
    errorsWhileComputingFlags = F.Boolean(metadata={"example": False})  # noqa: N815
    quotaLimited = F.List(F.String(), metadata={"example": []})  # noqa: N815
