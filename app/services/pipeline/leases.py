"""Capture leases: the one capture job allowed to write a recording's segments.

RQ may run one job twice (a retry after a lost worker, a reconciler re-enqueue racing the original).
The lease is a row column, taken and renewed with conditional updates, so whichever job holds it is the
only writer; a job that cannot renew stops its ffmpeg.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import case, or_, update

from app.db import affected
from app.models import Recording, RecordingState
from app.runtime import Runtime

STARTED = RecordingState.STARTED


def acquire(rt: Runtime, recording_id: str, owner: str, state: RecordingState = STARTED) -> bool:
    """Take the lease of a recording in `state` (a capture: started, a finalize: stopped) when it is
    free, expired or already ours. A capture taking it anew counts one more capture attempt."""
    now = rt.now()
    values: dict[str, object] = {"lease_owner": owner, "lease_expires_at": _expiry(rt)}
    if state == STARTED:
        attempts = Recording.capture_attempts
        values["capture_attempts"] = case((Recording.lease_owner == owner, attempts), else_=attempts + 1)
    with rt.db.transaction() as s:
        return bool(
            affected(
                s,
                update(Recording)
                .where(
                    Recording.id == recording_id,
                    Recording.state == state,
                    or_(
                        Recording.lease_owner.is_(None),
                        Recording.lease_owner == owner,
                        Recording.lease_expires_at < now,
                    ),
                )
                .values(values),
            )
        )


def acquire_patiently(rt: Runtime, recording_id: str, owner: str, state: RecordingState = STARTED) -> bool:
    """Take the lease, waiting out one lease period: a crashed holder's lease expires, a live holder
    keeps renewing it and this job gives up (False)."""
    deadline = time.monotonic() + rt.config.capture_lease_seconds + 1
    while not acquire(rt, recording_id, owner, state):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def renew(rt: Runtime, recording_id: str, owner: str, state: RecordingState = STARTED) -> bool:
    """Extend our lease; False when another job took it or the recording left `state`."""
    with rt.db.transaction() as s:
        return bool(
            affected(
                s,
                update(Recording)
                .where(Recording.id == recording_id, Recording.lease_owner == owner, Recording.state == state)
                .values(lease_expires_at=_expiry(rt)),
            )
        )


def release(rt: Runtime, recording_id: str, owner: str) -> None:
    """Give the lease up (a capture that ended), so a rerun need not wait for it to expire."""
    with rt.db.transaction() as s:
        s.execute(
            update(Recording)
            .where(Recording.id == recording_id, Recording.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )


def _expiry(rt: Runtime):
    return rt.now() + timedelta(seconds=rt.config.capture_lease_seconds)


class Held:
    """A lease renewed by a background thread while a long step (an ffmpeg run, an upload) goes on.

    `lost` is set when a renewal fails; the holder checks it between steps and before it commits.
    """

    def __init__(self, rt: Runtime, recording_id: str, owner: str, state: RecordingState):
        self.rt, self.recording_id, self.owner, self.state = rt, recording_id, owner, state
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{recording_id}", daemon=True)

    def __enter__(self) -> Held:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)
        release(self.rt, self.recording_id, self.owner)

    def _renew(self) -> None:
        interval = self.rt.config.capture_lease_seconds / 3
        while not self._done.wait(interval):
            try:
                if not renew(self.rt, self.recording_id, self.owner, self.state):
                    self.lost.set()
                    return
            except Exception:  # noqa: BLE001 - a database blip: the next renewal may work, expiry decides
                continue
