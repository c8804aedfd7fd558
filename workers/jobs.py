"""RQ job functions: thin, they take ids and call one service."""

from __future__ import annotations

from app.observability import logs
from app.services.access import links
from app.services.core import retention
from app.services.operations import reconciler
from app.services.pipeline import capture, finalize
from workers import shutdown
from workers.context import runtime


def capture_recording(recording_id: str) -> str:
    """Capture a recording until it is stopped, or until this worker shuts down (queue `capture`)."""
    with logs.context(recording_id=recording_id):
        return capture.capture(runtime(), recording_id, draining=shutdown.draining)


def finalize_recording(recording_id: str) -> str:
    """Verify and finish a stopped recording (queue `media`)."""
    with logs.context(recording_id=recording_id):
        return finalize.finalize(runtime(), recording_id)


def digest_recording(recording_id: str) -> str:
    """Record the SHA-256 of a recording joined in the object store (queue `media`)."""
    with logs.context(recording_id=recording_id):
        return finalize.digest(runtime(), recording_id)


def purge_expired() -> int:
    """Destroy recordings past their retention (queue `default`)."""
    return retention.purge_expired(runtime())


def reconcile() -> dict[str, int]:
    """Rebuild lost work from SQL (queue `default`, every few seconds)."""
    return vars(reconciler.reconcile(runtime()))


def drain_link_issuances() -> int:
    """Move the link audit's stream into SQL (queue `default`, every few seconds)."""
    return links.drain(runtime())
