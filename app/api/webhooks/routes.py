"""Eyeson webhooks: one per API key, signed both ways, with every delivery attempt visible.

A webhook belongs to the key that registered it: a key sees, rotates and deletes its own, an admin key
every one of its project's; any other is 404, like another project's. `GET /webhooks` answers as Eyeson
does (the key's one webhook, one object); `GET /webhooks/list` is meetrec's list with every field.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from app.api.auth import current_key, presented_key, require
from app.api.blueprint import Blueprint
from app.api.webhooks.schemas import (
    DeliveriesArgs,
    DeliverySchema,
    EyesonWebhookSchema,
    RegisterArgs,
    RotatedSecretSchema,
    WebhookSchema,
)
from app.models import WebhookDelivery, WebhookEndpoint
from app.runtime import Runtime
from app.services.outbox import deliveries, endpoints
from app.wire import iso

blp = Blueprint("webhooks", __name__, url_prefix="/webhooks", description="Eyeson-compatible webhooks")

UNKNOWN = "unknown webhook, another project's, or (for a key without admin) another key's"


def rt() -> Runtime:
    return current_app.extensions["meetrec"]


def present(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "types": endpoint.type_list,
        "last_request_sent_at": iso(endpoint.last_request_sent_at),
        "last_response_code": endpoint.last_response_code,
        "created_at": iso(endpoint.created_at),
        "disabled_at": iso(endpoint.disabled_at),
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": iso(endpoint.failing_since),
        "previous_secret_expires_at": iso(endpoint.previous_secret_expires_at),
        "secret": secret,
    }


def present_eyeson(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """Eyeson's `GET /webhooks` object: `types` comma-separated as registered, `last_response_code` a
    string (`"201"`)."""
    code = endpoint.last_response_code
    return {
        "id": endpoint.id,
        "types": ",".join(endpoint.type_list),
        "url": endpoint.url,
        "last_request_sent_at": iso(endpoint.last_request_sent_at),
        "last_response_code": str(code) if code is not None else None,
        "disabled_at": iso(endpoint.disabled_at),
        "disabled_reason": endpoint.disabled_reason,
    }


def present_delivery(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "event_id": d.event.id,
        "type": d.event.type,
        "resource_id": d.event.resource_id,
        "seq": d.event.seq,
        "attempt": d.attempt,
        "manual": d.manual,
        "state": d.state,
        "created_at": iso(d.created_at),
        "due_at": iso(d.due_at),
        "attempted_at": iso(d.attempted_at),
        "status_code": d.status_code,
        "duration_ms": d.duration_ms,
        "error": d.error,
        "response_excerpt": d.response_excerpt,
        "next_attempt_at": iso(d.next_attempt_at),
    }


@blp.route("")
class Webhooks(MethodView):
    @require("webhook:write")
    @blp.arguments(RegisterArgs, location="eyeson")
    @blp.response(201, WebhookSchema, description="registered or replaced; `secret` only when created")
    @blp.errors(
        e400="malformed body",
        e413="body too large",
        e422="invalid url or types, or a url resolving to a non-public address",
        e503="MEETREC_SECRET_KEY is not set, so signing keys cannot be stored",
    )
    def post(self, args: dict):
        """Register this API key's webhook, replacing the one it had"""
        key = current_key()
        done = endpoints.register(rt(), key.project_id, key.id, presented_key(), args["url"], args["types"])
        return present(done.endpoint, done.secret)

    @require("webhook:write")
    @blp.response(
        200,
        EyesonWebhookSchema,
        description="Eyeson's answer: this API key's webhook as one object, with its last request and answer",
    )
    @blp.errors(e404="this API key has registered no webhook")
    def get(self):
        """Get this API key's webhook with its last request and answer (Eyeson)"""
        return present_eyeson(endpoints.registered_by(rt(), current_key()))


@blp.route("/list", methods=["GET"])
@require("webhook:write")
@blp.response(
    200,
    WebhookSchema(many=True),
    description="meetrec extension: the key's own webhook, or every webhook of the project for an admin "
    "key, oldest first, with every field",
)
def list_webhooks():
    """List the webhooks this key manages (an admin key: all of its project's)"""
    return [present(e) for e in endpoints.list_for_key(rt(), current_key())]


@blp.route("/<hexid:webhook_id>")
class WebhookById(MethodView):
    @require("webhook:write")
    @blp.response(200, WebhookSchema, description="the webhook, with why it is disabled if it is")
    @blp.errors(e404=UNKNOWN)
    def get(self, webhook_id: str):
        """Get one webhook"""
        return present(endpoints.get(rt(), current_key(), webhook_id))

    @require("webhook:write")
    @blp.response(204, description="deleted with its delivery log; nothing more is sent to it")
    @blp.errors(e404=UNKNOWN)
    def delete(self, webhook_id: str):
        """Delete a webhook"""
        endpoints.remove(rt(), current_key(), webhook_id)
        return None


@blp.route("/<hexid:webhook_id>/rotate-secret", methods=["POST"])
@require("webhook:write")
@blp.response(200, RotatedSecretSchema, description="a new secret; the old one signs too for 24 hours")
@blp.errors(e404=UNKNOWN, e503="MEETREC_SECRET_KEY is not set")
def rotate_secret(webhook_id: str):
    """Rotate the webhook's whsec_ signing secret"""
    endpoint, secret = endpoints.rotate_secret(rt(), current_key(), webhook_id)
    return {
        "id": endpoint.id,
        "secret": secret,
        "previous_secret_expires_at": iso(endpoint.previous_secret_expires_at),
    }


@blp.route("/<hexid:webhook_id>/deliveries", methods=["GET"])
@require("webhook:write")
@blp.arguments(DeliveriesArgs, location="query")
@blp.response(200, DeliverySchema(many=True), description="attempts, newest first, 50 a page")
@blp.errors(e404=UNKNOWN, e422="invalid page")
def list_deliveries(args: dict, webhook_id: str):
    """List every delivery attempt to a webhook"""
    found = deliveries.list_for_endpoint(rt(), current_key(), webhook_id, args["page"])
    return [present_delivery(d) for d in found]


@blp.route("/<hexid:webhook_id>/deliveries/<delivery_id>/redeliver", methods=["POST"])
@require("webhook:write")
@blp.response(202, DeliverySchema, description="a new attempt of the same event (same webhook-id) is queued")
@blp.errors(
    e404="unknown webhook or delivery, another project's, or (for a key without admin) another key's",
    e409="the webhook is disabled; register it again first",
)
def redeliver(webhook_id: str, delivery_id: str):
    """Send a logged delivery's event again"""
    again = deliveries.redeliver(rt(), current_key(), webhook_id, delivery_id)
    return present_delivery(again)
