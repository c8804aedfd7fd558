"""RQ job functions of the `webhooks` queue, apart from the media jobs: a delivery imports nothing of
ffmpeg or the capture pipeline, so neither can break or slow the other."""

from __future__ import annotations

from app.services.outbox import outbox, pump
from workers.context import runtime


def deliver_webhook(delivery_id: str | None = None) -> str:
    """Send the due webhook deliveries, concurrently, until none is left. `delivery_id` names the retry
    this job was scheduled for (it goes out with the others)."""
    return pump.run(runtime(), delivery_id)


def dispatch_webhooks() -> int:
    """Wake a delivery job when deliveries are due but none is queued (the scheduler, every 30 s)."""
    return outbox.dispatch_pending(runtime())
