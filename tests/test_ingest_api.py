"""Push ingest: a meeting app uploads its MediaRecorder chunks."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from app.media.ebml import webm_layout
from app.media.probe import probe
from tests.helpers import join_room, wait_for


def put(client, auth, recording_id, seq, data, **headers):  # type: ignore[no-untyped-def]
    return client.put(
        f"/recordings/{recording_id}/media/{seq}",
        data=data,
        headers={**auth, "Content-Type": "video/webm", **headers},
    )


def test_push_recording_starts_without_a_capture(client, auth, pushed):
    rec = client.get(f"/recordings/{pushed['id']}", headers=auth).get_json()
    assert rec["ingest"] == "push"
    assert rec["state"] == "started"


def test_a_room_push_recording_takes_chunks_at_the_location_its_start_answered(client, auth):
    room = join_room(client, auth, "push-location", **{"options[media_source]": "push"})
    location = client.post(f"/rooms/{room['access_key']}/recording").headers["Location"]
    path = urlsplit(location).path
    assert put(client, auth, path.rsplit("/", 1)[1], 0, b"\x1a\x45\xdf\xa3 chunk zero").status_code == 201
    assert client.get(path, headers=auth).get_json()["ingest"] == "push"
    client.delete("/rooms/push-location", headers=auth)


def test_first_upload_of_a_chunk_is_201(client, auth, pushed):
    resp = put(client, auth, pushed["id"], 0, b"\x1a\x45\xdf\xa3 chunk zero")
    assert resp.status_code == 201
    assert resp.get_json()["size"] == len(b"\x1a\x45\xdf\xa3 chunk zero")


def test_retrying_the_same_chunk_is_200(client, auth, pushed):
    put(client, auth, pushed["id"], 0, b"same bytes")
    resp = put(client, auth, pushed["id"], 0, b"same bytes")
    assert resp.status_code == 200


def test_other_bytes_for_a_stored_number_are_409(client, auth, pushed):
    put(client, auth, pushed["id"], 0, b"first")
    resp = put(client, auth, pushed["id"], 0, b"second")
    assert resp.status_code == 409
    assert resp.get_json()["code"] == 409


def test_an_oversize_chunk_is_413_in_the_error_shape(client, auth, pushed, rt):
    resp = put(client, auth, pushed["id"], 0, b"x" * (rt.config.max_chunk_bytes + 1))
    assert resp.status_code == 413
    assert set(resp.get_json()) >= {"code", "status", "message"}


def test_an_empty_chunk_is_422(client, auth, pushed):
    assert put(client, auth, pushed["id"], 0, b"").status_code == 422


def test_chunks_need_a_key(client, pushed):
    assert put(client, {}, pushed["id"], 0, b"x").status_code == 401


def test_another_projects_recording_is_404(client, other_project_key, pushed):
    assert put(client, {"Authorization": other_project_key}, pushed["id"], 0, b"x").status_code == 404


def test_a_pull_recording_takes_no_chunks(client, auth):
    room = join_room(client, auth, "pull-no-chunks", **{"options[media_source]": "synthetic://meeting"})
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    rec = client.get("/rooms/pull-no-chunks/recordings", headers=auth).get_json()[0]
    try:
        assert put(client, auth, rec["id"], 0, b"x").status_code == 409
    finally:
        client.delete(f"/rooms/{room['room']['id']}", headers=auth)


def test_stop_with_chunks_moves_to_stopped(client, auth, pushed):
    put(client, auth, pushed["id"], 0, b"bytes")
    resp = client.delete(f"/rooms/{pushed['access_key']}/recording")
    assert resp.status_code == 200
    assert resp.get_json()["state"] == "stopped"
    assert resp.get_json()["duration"] is not None


def test_stop_without_chunks_fails_with_a_reason(client, auth, pushed):
    resp = client.delete(f"/rooms/{pushed['access_key']}/recording")
    assert resp.get_json()["state"] == "failed"
    assert "no media" in resp.get_json()["error"]


def test_no_chunks_after_the_stop(client, auth, pushed):
    put(client, auth, pushed["id"], 0, b"bytes")
    client.delete(f"/rooms/{pushed['access_key']}/recording")
    assert put(client, auth, pushed["id"], 1, b"late").status_code == 409


@pytest.mark.slow
def test_pushed_chunks_finish_as_one_seekable_webm(
    client, auth, pushed, rt, workers, mediarecorder_stream, tmp_path
):
    cuts = [0, 1, 4000, 50_001, len(mediarecorder_stream) // 2, len(mediarecorder_stream)]
    for seq, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)):
        assert put(client, auth, pushed["id"], seq, mediarecorder_stream[a:b]).status_code == 201
    client.delete(f"/rooms/{pushed['access_key']}/recording")
    final = wait_for(
        lambda: (
            (r := client.get(f"/recordings/{pushed['id']}", headers=auth).get_json())["state"]
            in ("finished", "failed")
            and r
        ),
        timeout=60,
    )
    assert final["state"] == "finished", final["error"]
    assert abs(final["duration_ms"] / 1000 - 4.0) <= 0.5
    path = tmp_path / "pushed.webm"
    path.write_bytes(requests.get(final["links"]["download"], timeout=30).content)
    assert webm_layout(path).seekable
    assert probe(path).has_audio
