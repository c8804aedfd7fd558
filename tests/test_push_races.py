"""Push ingest against a stop: an acknowledged chunk is in the recording, a refused one leaves nothing;
oversize chunked bodies are refused whole; a push recording's duration is its media's, at stop and at
finish; a stop's answer never shows an end time on a recording still started."""

from __future__ import annotations

import http.client
import io
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from app.services.core import recordings
from app.services.pipeline import segments
from tests.helpers import join_room, serving, wait_for


def put(client, auth, recording_id, seq, data):  # type: ignore[no-untyped-def]
    return client.put(
        f"/recordings/{recording_id}/media/{seq}",
        data=data,
        headers={**auth, "Content-Type": "video/webm"},
    )


def stored_seqs(rt, recording_id: str) -> set[int]:  # type: ignore[no-untyped-def]
    return {part.seq for part in segments.for_recording(rt, recording_id)}


def chunk_objects(rt, recording_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return list(rt.storage.iter_keys(segments.prefix(recording_id)))


def stop_during_upload(monkeypatch, rt, recording_id: str) -> None:  # type: ignore[no-untyped-def]
    """The next chunk upload to storage is followed by a stop, before the chunk's row is written: the
    window between put_chunk's state check and its insert, without timing."""
    real_put = rt.storage.put_bytes

    def put_then_stop(key, data, content_type):  # type: ignore[no-untyped-def]
        stored = real_put(key, data, content_type)
        monkeypatch.setattr(rt.storage, "put_bytes", real_put)
        recordings.stop_recording(rt, recording_id)
        return stored

    monkeypatch.setattr(rt.storage, "put_bytes", put_then_stop)


def assert_stopped_with_its_chunks(rec: dict[str, Any]) -> None:
    """The stop moved the recording to stopped with its chunks. The session's media worker, when an
    earlier test started it, may already have tried to finalize these bytes (they are not media): a
    failure by finalize is fine here, a failure by the stop (no media seen) is not."""
    assert rec["stopped_at"] is not None, rec
    assert rec["state"] in ("stopped", "failed"), rec
    assert "no media was uploaded" not in (rec["error"] or ""), rec


def chunked_put(base: str, path: str, key: str, body: bytes, piece: int = 1 << 16) -> tuple[int, bytes]:
    """PUT `body` with Transfer-Encoding: chunked (no Content-Length) over a real connection."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
    conn.putrequest("PUT", path)
    conn.putheader("Authorization", key)
    conn.putheader("Content-Type", "video/webm")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    try:
        for i in range(0, len(body), piece):
            part = body[i : i + piece]
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):  # the server answered 413 before the body ended
        pass
    try:
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# --- a chunk against a stop --------------------------------------------------------------------------


def test_a_chunk_whose_upload_a_stop_overtakes_is_409_and_leaves_no_object(
    client, auth, rt, pushed, monkeypatch
):
    stop_during_upload(monkeypatch, rt, pushed["id"])
    resp = put(client, auth, pushed["id"], 0, b"\x1a\x45\xdf\xa3 raced")
    assert resp.status_code == 409, resp.get_json()
    assert stored_seqs(rt, pushed["id"]) == set()
    assert chunk_objects(rt, pushed["id"]) == []
    rec = client.get(f"/recordings/{pushed['id']}", headers=auth).get_json()
    assert rec["state"] == "failed" and "no media" in rec["error"]  # true: no chunk was acknowledged


def test_a_stop_overtaking_a_later_chunk_keeps_the_acknowledged_ones(client, auth, rt, pushed, monkeypatch):
    assert put(client, auth, pushed["id"], 0, b"first").status_code == 201
    stop_during_upload(monkeypatch, rt, pushed["id"])
    assert put(client, auth, pushed["id"], 1, b"second").status_code == 409
    assert stored_seqs(rt, pushed["id"]) == {0}
    assert len(chunk_objects(rt, pushed["id"])) == 1
    assert_stopped_with_its_chunks(client.get(f"/recordings/{pushed['id']}", headers=auth).get_json())


def test_a_retry_of_a_stored_chunk_after_the_stop_is_200(client, auth, pushed):
    assert put(client, auth, pushed["id"], 0, b"kept").status_code == 201
    client.delete(f"/rooms/{pushed['access_key']}/recording")
    assert put(client, auth, pushed["id"], 0, b"kept").status_code == 200
    assert put(client, auth, pushed["id"], 0, b"other").status_code == 409


def test_concurrent_chunks_and_a_stop_on_a_real_server_keep_exactly_the_acknowledged(
    app, client, auth, rt, pushed
):
    answers: dict[int, int] = {}
    with serving(app) as (_, urls):
        base = urls["http"]

        def upload(seq: int) -> None:
            time.sleep(0.01 * (seq % 8))
            resp = requests.put(
                f"{base}/recordings/{pushed['id']}/media/{seq}",
                data=b"chunk %d " % seq * 2000,
                headers={**auth, "Content-Type": "video/webm"},
                timeout=30,
            )
            answers[seq] = resp.status_code

        threads = [threading.Thread(target=upload, args=(seq,)) for seq in range(24)]
        for t in threads:
            t.start()
        wait_for(lambda: len(answers) >= 4, timeout=30, interval=0.005)
        stop = requests.delete(f"{base}/rooms/{pushed['access_key']}/recording", timeout=30)
        for t in threads:
            t.join(30)
    assert stop.status_code == 200
    assert set(answers.values()) <= {201, 409}
    acknowledged = {seq for seq, status in answers.items() if status == 201}
    assert acknowledged, answers
    assert stored_seqs(rt, pushed["id"]) == acknowledged
    assert len(chunk_objects(rt, pushed["id"])) == len(acknowledged)  # refused chunks left no object
    assert_stopped_with_its_chunks(client.get(f"/recordings/{pushed['id']}", headers=auth).get_json())


@pytest.mark.slow
def test_a_finished_push_recording_holds_every_acknowledged_chunk_and_no_other(
    client, auth, rt, pushed, workers, mediarecorder_stream, monkeypatch
):
    half = len(mediarecorder_stream) // 2
    assert put(client, auth, pushed["id"], 0, mediarecorder_stream[:half]).status_code == 201
    stop_during_upload(monkeypatch, rt, pushed["id"])
    assert put(client, auth, pushed["id"], 1, mediarecorder_stream[half:]).status_code == 409
    stopped = client.get(f"/recordings/{pushed['id']}", headers=auth).get_json()
    final = wait_for(
        lambda: (
            (r := client.get(f"/recordings/{pushed['id']}", headers=auth).get_json())["state"]
            in ("finished", "failed")
            and r
        ),
        timeout=60,
    )
    assert final["state"] == "finished", final["error"]
    assert stored_seqs(rt, pushed["id"]) == {0}
    assert 0.5 < final["duration_ms"] / 1000 < 3.5  # the first half of 4 s, not the whole stream
    assert final["duration_ms"] == stopped["duration_ms"]


# --- body limits -------------------------------------------------------------------------------------


def test_an_oversize_chunked_body_is_413_on_a_real_server(app, auth, rt, pushed):
    limit = rt.config.max_chunk_bytes
    with serving(app) as (_, urls):
        path = f"/recordings/{pushed['id']}/media/0"
        status, _ = chunked_put(urls["http"], path, auth["Authorization"], b"x" * (limit + 1))
    assert status == 413
    assert stored_seqs(rt, pushed["id"]) == set()
    assert chunk_objects(rt, pushed["id"]) == []


def test_a_chunked_body_within_the_limit_is_stored_whole_on_a_real_server(app, auth, rt, pushed):
    body = bytes(range(256)) * 4096  # 1 MiB: several reads
    with serving(app) as (_, urls):
        status, answer = chunked_put(
            urls["http"], f"/recordings/{pushed['id']}/media/0", auth["Authorization"], body
        )
    assert status == 201, answer
    assert segments.find(rt, pushed["id"], 0).size == len(body)


# gunicorn and werkzeug's server say they end a dechunked stream (wsgi.input_terminated); a2wsgi does not.
@pytest.mark.parametrize("terminated", [{"wsgi.input_terminated": True}, {}], ids=["gunicorn", "a2wsgi"])
def test_an_oversize_chunked_body_is_413_through_the_test_client(client, auth, rt, pushed, terminated):
    limit = rt.config.max_chunk_bytes
    resp = client.put(
        f"/recordings/{pushed['id']}/media/0",
        input_stream=io.BytesIO(b"x" * (limit + 1)),
        headers={**auth, "Content-Type": "video/webm", "Transfer-Encoding": "chunked"},
        environ_overrides=terminated,
    )
    assert resp.status_code == 413
    assert set(resp.get_json()) >= {"code", "status", "message"}
    assert stored_seqs(rt, pushed["id"]) == set()
    assert chunk_objects(rt, pushed["id"]) == []


@pytest.mark.parametrize("terminated", [{"wsgi.input_terminated": True}, {}], ids=["gunicorn", "a2wsgi"])
def test_a_chunked_body_within_the_limit_is_stored_whole_through_the_test_client(
    client, auth, rt, pushed, terminated
):
    body = b"chunk bytes " * 1000
    resp = client.put(
        f"/recordings/{pushed['id']}/media/0",
        input_stream=io.BytesIO(body),
        headers={**auth, "Content-Type": "video/webm", "Transfer-Encoding": "chunked"},
        environ_overrides=terminated,
    )
    assert resp.status_code == 201
    assert resp.get_json()["size"] == len(body)


def test_a_body_of_exactly_the_limit_is_taken(client, auth, rt, pushed):
    resp = put(client, auth, pushed["id"], 0, b"x" * rt.config.max_chunk_bytes)
    assert resp.status_code == 201


# --- one truth per field ----------------------------------------------------------------------------


def test_the_stop_reports_the_medias_duration_not_the_wall_time(client, auth, pushed, mediarecorder_stream):
    cuts = [0, 1, 4000, 50_001, len(mediarecorder_stream) // 2, len(mediarecorder_stream)]
    for seq, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)):
        assert put(client, auth, pushed["id"], seq, mediarecorder_stream[a:b]).status_code == 201
    stopped = client.delete(f"/rooms/{pushed['access_key']}/recording").get_json()
    assert stopped["state"] == "stopped"
    assert abs(stopped["duration_ms"] / 1000 - 4.0) <= 0.05  # the stream's 4 s, whatever the wall time


@pytest.mark.slow
def test_a_push_recordings_duration_is_the_same_at_stop_and_at_finish(
    client, auth, pushed, workers, mediarecorder_stream
):
    time.sleep(1.5)  # wall time from the start past the media's: the old stop reported it
    half = len(mediarecorder_stream) // 3
    assert put(client, auth, pushed["id"], 0, mediarecorder_stream[:half]).status_code == 201
    assert put(client, auth, pushed["id"], 1, mediarecorder_stream[half:]).status_code == 201
    stopped = client.delete(f"/rooms/{pushed['access_key']}/recording").get_json()
    final = wait_for(
        lambda: (
            (r := client.get(f"/recordings/{pushed['id']}", headers=auth).get_json())["state"]
            in ("finished", "failed")
            and r
        ),
        timeout=60,
    )
    assert final["state"] == "finished", final["error"]
    assert (stopped["duration"], stopped["duration_ms"]) == (final["duration"], final["duration_ms"])


def test_a_stop_answer_shows_no_end_time_while_the_recording_is_started(client, auth):
    room = join_room(client, auth, "pull-stop-shape", **{"options[media_source]": "synthetic://meeting"})
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    try:
        body = client.delete(f"/rooms/{room['access_key']}/recording").get_json()
        assert body["state"] == "started"  # no capture worker runs here: the stop is only requested
        assert body["end_time"] is None and body["duration"] is None
        got = client.get(f"/recordings/{body['id']}", headers=auth).get_json()
        assert got["state"] == "started" and got["end_time"] is None
    finally:
        client.delete(f"/rooms/{room['room']['id']}", headers=auth)


def test_a_stopped_push_recording_shows_its_end_time(client, auth, pushed):
    put(client, auth, pushed["id"], 0, b"bytes")
    body = client.delete(f"/rooms/{pushed['access_key']}/recording").get_json()
    assert body["state"] == "stopped"
    assert body["end_time"] is not None and body["duration"] is not None
