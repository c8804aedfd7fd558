"""RQ job functions of the `webhooks` queue, apart from the media jobs: a delivery imports nothing of
ffmpeg or the capture pipeline, so neither can break or slow the other."""

from __future__ import annotations

from app.services.outbox import deliveries, outbox
from workers.context import runtime


def deliver_webhook(delivery_id: str) -> str:
    """One webhook delivery attempt."""
    return deliveries.deliver(runtime(), delivery_id)


def dispatch_webhooks() -> int:
    """Enqueue the webhook deliveries that are due but not queued (the scheduler runs it every 30 s)."""
    return outbox.dispatch_pending(runtime())
