"""A meeting app's whole flow against real workers, Redis, S3 and ffmpeg.

room -> start -> ~5 s -> stop -> finished -> download the one-hour link -> a playable WebM.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from app.media.ebml import doc_type
from app.media.probe import probe
from app.models import utcnow
from tests.helpers import join_room, wait_for

pytestmark = pytest.mark.slow


def get_recording(client, auth, recording_id):  # type: ignore[no-untyped-def]
    resp = client.get(f"/recordings/{recording_id}", headers=auth)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def capturing(rt, recording_id: str) -> bool:  # type: ignore[no-untyped-def]
    """True once the capture's ffmpeg has opened its source and begun its first segment in the spool
    (the workers share this machine's spool directory with the test)."""
    return any((rt.config.spool_dir / recording_id).glob("*/seg-*.mkv"))


@pytest.fixture(scope="module")
def finished(app, rt, workers, tmp_path_factory):  # type: ignore[no-untyped-def]
    """One recording taken through the whole lifecycle; each state seen on the way is kept."""
    from app.services.access import keys

    client = app.test_client()
    project = keys.create_project(rt, "e2e")
    auth = {"Authorization": keys.create_key(rt, project.id)[1]}
    room = join_room(client, auth, "e2e-room", **{"options[media_source]": "synthetic://meeting"})
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    started = client.get("/rooms/e2e-room/recordings", headers=auth).get_json()[0]
    wait_for(lambda: capturing(rt, started["id"]), timeout=30)
    time.sleep(5)
    stopped_call = client.delete(f"/rooms/{room['access_key']}/recording")
    stopped = wait_for(
        lambda: (r := get_recording(client, auth, started["id"]))["state"] != "started" and r, timeout=30
    )
    final = wait_for(
        lambda: (r := get_recording(client, auth, started["id"]))["state"] in ("finished", "failed") and r,
        timeout=60,
    )
    handed_out = utcnow()  # the final answer's link was handed out just before
    path = tmp_path_factory.mktemp("download") / "recording.webm"
    return {
        "client": client,
        "auth": auth,
        "started": started,
        "stop_call": stopped_call,
        "stopped": stopped,
        "final": final,
        "handed_out": handed_out,
        "path": path,
        "project_id": project.id,
    }


def test_start_state_has_no_duration_and_no_download(finished):
    assert finished["started"]["duration"] is None
    assert finished["started"]["links"]["download"] is None


def test_stop_state_has_duration_but_no_download(finished):
    assert finished["stop_call"].status_code == 200
    stopped = finished["stopped"]
    if stopped["state"] == "stopped":  # finalize may already have run by the time we looked
        assert stopped["duration"] is not None
        assert stopped["links"]["download"] is None


def test_finished_state_has_duration_and_download(finished):
    final = finished["final"]
    assert final["state"] == "finished", final.get("error")
    assert final["duration"] is not None
    assert final["links"]["download"]
    assert final["size"] > 0
    assert len(final["sha256"]) == 64


def test_download_link_is_a_one_hour_presigned_link(finished):
    link = finished["final"]["links"]["download"]
    query = parse_qs(urlsplit(link).query)
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    valid_until = signed_at + timedelta(seconds=int(query["X-Amz-Expires"][0]))
    handed_out = finished["handed_out"]
    # Signed at the start of its reuse window (MEETREC_LINK_REUSE): valid at least the hour from then.
    assert handed_out + timedelta(hours=1) - timedelta(seconds=1) <= valid_until
    assert valid_until <= handed_out + timedelta(hours=1, seconds=61)
    assert "X-Amz-Signature=" in link


def test_downloaded_file_is_a_webm_with_video_and_audio_of_the_recorded_length(finished):
    resp = requests.get(finished["final"]["links"]["download"], timeout=30)
    assert resp.status_code == 200
    finished["path"].write_bytes(resp.content)
    info = probe(finished["path"])
    assert "webm" in info.format_name or "matroska" in info.format_name
    assert doc_type(finished["path"]) == "webm"  # ffprobe's name fits Matroska too: the header tells
    assert info.has_video and info.has_audio
    assert abs(info.duration - 5.0) <= 1.0, info.duration


def test_download_link_with_a_tampered_signature_is_refused(finished):
    link = finished["final"]["links"]["download"]
    tampered = link.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert requests.get(tampered, timeout=30).status_code == 403


def test_another_project_cannot_see_the_recording(finished, other_project_key):
    resp = finished["client"].get(
        f"/recordings/{finished['final']['id']}", headers={"Authorization": other_project_key}
    )
    assert resp.status_code == 404


def test_delete_removes_objects_then_answers_404(finished, rt):
    client, auth, rec_id = finished["client"], finished["auth"], finished["final"]["id"]
    assert client.delete(f"/recordings/{rec_id}", headers=auth).status_code == 200
    assert list(rt.storage.iter_keys(f"recordings/{rec_id}/")) == []
    assert client.get(f"/recordings/{rec_id}", headers=auth).status_code == 404
    assert client.delete(f"/recordings/{rec_id}", headers=auth).status_code == 404
