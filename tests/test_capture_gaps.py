"""The gaps a capture records when its source cannot be reached: each measured from its own attempt.

A capture in this process, with real SQL, Redis and name resolution: `.invalid` never resolves (RFC 6761).
"""

from __future__ import annotations

import dataclasses
import time

from sqlalchemy import update

from app.models import Recording
from app.runtime import Runtime
from app.services.core import recordings
from app.services.pipeline import capture
from tests.helpers import join_room


def test_each_attempt_whose_source_does_not_resolve_is_a_gap_of_its_own(rt, client, auth):
    room = join_room(client, auth, "gaps-unresolvable", **{"options[media_source]": "push"})
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    recording_id = client.get("/rooms/gaps-unresolvable/recordings", headers=auth).get_json()[0]["id"]
    # The API refuses a source whose host does not resolve: this one stopped resolving since it was set.
    with rt.db.transaction() as s:
        s.execute(
            update(Recording)
            .where(Recording.id == recording_id)
            .values(ingest="pull", media_source="srt://gone.meetrec.invalid:9000")
        )
    twice = Runtime(dataclasses.replace(rt.config, max_reconnects=2))
    began = time.monotonic()
    result = capture.capture(twice, recording_id)
    elapsed = time.monotonic() - began
    final = recordings.load(rt, recording_id)
    assert result.startswith("failed") and "interrupted 3 times" in final.error, result
    waits = [capture.RECONNECT_DELAY_SECONDS * n for n in (1, 2)]  # before the second and third attempts
    seconds = [gap["seconds"] for gap in final.gaps]
    assert len(seconds) == 2 and all(s >= w for s, w in zip(seconds, waits, strict=True)), seconds
    assert sum(seconds) <= elapsed, f"gaps {seconds} for {elapsed:.1f} s of capture"
