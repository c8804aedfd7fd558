"""Request and response shapes of the recordings resource beyond Eyeson's recording object."""

from __future__ import annotations

import marshmallow as ma

F = ma.fields


class StrictBoolean(F.Boolean):
    """A JSON true or false, or the text `true` / `false` (a form field or query parameter). Not 0, 1,
    "yes" or "on", which marshmallow's Boolean takes: a flag such as legal_hold is never set by accident."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.make_error("invalid", input=value)


class FlagsArgs(ma.Schema):
    """`PATCH /recordings/{id}`: unknown fields are refused (a typo must not pass as a no-op)."""

    class Meta:
        unknown = ma.RAISE

    persist = StrictBoolean(
        metadata={"description": "Keep the recording past the retention period (true or false)"}
    )
    legal_hold = StrictBoolean(
        metadata={
            "description": "Keep it and refuse its deletion (true or false); only admin keys set or lift it"
        }
    )


class LinksPageArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    page = F.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100000))


class LinkIssuanceSchema(ma.Schema):
    recording_id = F.String()
    api_key_id = F.String(allow_none=True, metadata={"description": "null when issued in a webhook"})
    purpose = F.String(metadata={"description": "api (a recording answer), download (the redirect), webhook"})
    issued_at = F.String(metadata={"description": "ISO 8601 UTC"})
    expires_at = F.String(metadata={"description": "ISO 8601 UTC; the link is refused after it"})


class ChunkSchema(ma.Schema):
    seq = F.Integer()
    size = F.Integer(metadata={"description": "Bytes stored for this chunk"})
    sha256 = F.String()
