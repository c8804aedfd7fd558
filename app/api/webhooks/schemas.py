"""Request and response shapes of the webhooks resource (Eyeson-compatible, plus delivery logs)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from app.services.outbox.endpoints import parse_types

F = ma.fields


class TypesField(F.Field):
    """Eyeson's `types`: a comma-separated string (or a list, `types[]=...`) of event types."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if not (
            isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        ):
            raise ma.ValidationError("a comma-separated string of event types")
        try:
            return parse_types(value)
        except ValueError as e:
            raise ma.ValidationError(str(e)) from e


class RegisterArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # Eyeson ignores parameters it does not know; so do we

    url = F.String(
        required=True,
        validate=[
            ma.validate.Length(max=2000),
            ma.validate.URL(schemes={"http", "https"}, require_tld=False),
        ],
        metadata={"description": "Where to POST events; its host must resolve to a public address"},
    )
    types = TypesField(
        required=True,
        metadata={"description": "Comma-separated: recording_update, room_update", "type": "string"},
    )


class WebhookSchema(ma.Schema):
    id = F.String()
    url = F.String()
    types = F.List(F.String())
    last_request_sent_at = F.String(allow_none=True, metadata={"description": "ISO 8601 UTC"})
    last_response_code = F.Integer(allow_none=True, metadata={"description": "null when no answer came"})
    created_at = F.String()
    disabled_at = F.String(allow_none=True, metadata={"description": "Set when deliveries stopped"})
    disabled_reason = F.String(allow_none=True, metadata={"description": "Why deliveries stopped"})
    failing_since = F.String(allow_none=True, metadata={"description": "Every attempt failed since then"})
    previous_secret_expires_at = F.String(
        allow_none=True, metadata={"description": "Until then the rotated-out secret also signs"}
    )
    secret = F.String(
        allow_none=True,
        metadata={"description": "Standard Webhooks whsec_ secret: shown once, when the webhook is created"},
    )


class EyesonWebhookSchema(ma.Schema):
    """Eyeson's `GET /webhooks` object (its documented example), plus why deliveries stopped, if they did."""

    id = F.String()
    types = F.String(
        metadata={"description": "The event types it receives, comma-separated as Eyeson shows them"}
    )
    url = F.String()
    last_request_sent_at = F.String(allow_none=True, metadata={"description": "ISO 8601 UTC"})
    last_response_code = F.String(
        allow_none=True,
        metadata={
            "description": 'The last answer\'s HTTP status as Eyeson shows it, a string ("201"); null '
            "when none came"
        },
    )
    disabled_at = F.String(allow_none=True, metadata={"description": "meetrec: set when deliveries stopped"})
    disabled_reason = F.String(allow_none=True, metadata={"description": "meetrec: why deliveries stopped"})


class RotatedSecretSchema(ma.Schema):
    id = F.String()
    secret = F.String(metadata={"description": "The new whsec_ secret, shown once"})
    previous_secret_expires_at = F.String(metadata={"description": "The old secret signs until then"})


class DeliverySchema(ma.Schema):
    id = F.String()
    event_id = F.String(metadata={"description": "The webhook-id header: the same on every attempt"})
    type = F.String()
    resource_id = F.String()
    seq = F.Integer(metadata={"description": "The event's number among its resource's events"})
    attempt = F.Integer()
    manual = F.Boolean(metadata={"description": "An operator's redelivery"})
    state = F.String(metadata={"description": "pending, sending, succeeded, failed or cancelled"})
    created_at = F.String()
    due_at = F.String()
    attempted_at = F.String(allow_none=True)
    status_code = F.Integer(allow_none=True)
    duration_ms = F.Integer(allow_none=True)
    error = F.String(allow_none=True)
    response_excerpt = F.String(allow_none=True, metadata={"description": "The first 1 KiB of the answer"})
    next_attempt_at = F.String(allow_none=True, metadata={"description": "When the retry is due"})


class DeliveriesArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    page = F.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100000))
