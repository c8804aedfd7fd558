"""S3 faults beyond a refused connection: 5xx answers, a hanging server, a slow one.

A fault proxy (tests/faultproxy.py) stands between meetrec and the session's S3 server. The storage port
answers every fault with StorageError within a bounded time; finalize, push ingest and a capture lose
nothing during an outage and finish once S3 is back.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.config import Config
from app.errors import StorageError
from app.factory import create_app
from app.runtime import Runtime
from app.services.core import recordings
from app.services.pipeline import finalize, segments
from app.storage import ObjectStore
from tests.conftest import WorkerProcesses
from tests.faultproxy import FaultProxy
from tests.helpers import join_room, wait_for
from tests.test_finalize import keys_of, stopped_recording
from tests.test_finalize import segment_files as segment_files  # the module's fixture, shared

pytestmark = pytest.mark.critical

TIMEOUT, RETRIES = 2, 1  # MEETREC_S3_TIMEOUT and MEETREC_S3_RETRIES through the proxy
# A call against a hanging server gives up after (RETRIES + 1) x TIMEOUT plus backoff; slack for CI.
BOUND = (RETRIES + 1) * TIMEOUT + 4


@pytest.fixture(scope="module")
def proxy(rt: Runtime, config: Config) -> Iterator[FaultProxy]:
    # The first write into a fresh bucket makes SeaweedFS grow a volume (seconds): not through the
    # proxy's short timeout.
    rt.storage.put_bytes(f"faults/{secrets.token_hex(6)}", b"warm-up", "text/plain")
    with FaultProxy(config.s3_endpoint) as p:
        yield p


@pytest.fixture(autouse=True)
def healthy(proxy: FaultProxy) -> Iterator[None]:
    """Every test starts and ends with the proxy passing everything through."""
    proxy.pass_through()
    proxy.faulted.clear()
    yield
    proxy.pass_through()


def proxied(config: Config, proxy: FaultProxy, **changes: object) -> Config:
    """`config` with its S3 traffic through `proxy` (links still signed for the real server)."""
    settings: dict[str, object] = {"s3_timeout": TIMEOUT, "s3_retries": RETRIES, **changes}
    return replace(
        config, s3_endpoint=proxy.endpoint, s3_public_endpoint=config.s3_public_endpoint, **settings
    )


@pytest.fixture
def store(rt: Runtime, config: Config, proxy: FaultProxy) -> ObjectStore:
    return ObjectStore(proxied(config, proxy))


def key() -> str:
    return f"faults/{secrets.token_hex(6)}"


def bounded(call, bound: float = BOUND) -> StorageError:  # type: ignore[no-untyped-def]
    """Run `call`, which must raise StorageError within `bound` seconds; return the error."""
    began = time.monotonic()
    with pytest.raises(StorageError) as caught:
        call()
    elapsed = time.monotonic() - began
    assert elapsed < bound, f"gave up after {elapsed:.1f} s, not within {bound} s"
    return caught.value


# (a) The storage port: one error policy, bounded in time.


def test_the_default_client_waits_a_bounded_time(config: Config):
    http = ObjectStore(config)._client._http
    timeout, retries = http.connection_pool_kw["timeout"], http.connection_pool_kw["retries"]
    assert timeout.connect_timeout <= 5 and timeout.read_timeout == config.s3_timeout <= 60
    assert retries.total == config.s3_retries and not retries.respect_retry_after_header


def test_a_hanging_server_is_a_storage_error_within_the_timeout(store, proxy):
    name = key()
    store.put_bytes(name, b"before", "text/plain")
    proxy.hang()
    bounded(store.ping)
    bounded(lambda: store.stat(name))
    bounded(lambda: store.get_bytes(name))
    bounded(lambda: store.put_bytes(key(), b"x", "text/plain"))


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_answers_are_storage_errors(store, proxy, status, tmp_path):
    name = key()
    store.put_bytes(name, b"before", "text/plain")
    proxy.error(status)
    bounded(lambda: store.put_bytes(key(), b"x", "text/plain"))
    bounded(lambda: store.stat(name))  # a 5xx is no "missing object" (None)
    bounded(lambda: store.get_bytes(name))
    bounded(lambda: store.download(name, tmp_path / "copy"))
    assert not (tmp_path / "copy").exists() and not (tmp_path / "copy.part").exists()
    bounded(lambda: store.delete_keys([name]))
    proxy.pass_through()
    assert store.get_bytes(name) == b"before"


def test_a_503_asking_to_retry_in_an_hour_does_not_hold_the_call(store, proxy):
    proxy.error(503, retry_after=3600)  # urllib3 would sleep up to six hours on it by default
    bounded(lambda: store.put_bytes(key(), b"x", "text/plain"))
    assert len(proxy.faulted) == RETRIES + 1  # retried all the same, on our own backoff


def test_idempotent_requests_are_retried_through_a_passing_5xx(store, proxy):
    name = key()
    proxy.error(503, only=lambda method, path: method == "PUT", times=RETRIES)
    store.put_bytes(name, b"after a SlowDown", "text/plain")
    assert [f[1] for f in proxy.faulted[-RETRIES:]] == ["PUT"] * RETRIES
    assert store.get_bytes(name) == b"after a SlowDown"


def test_a_refused_connection_is_a_storage_error(store, proxy):
    proxy.refuse()
    bounded(lambda: store.put_bytes(key(), b"x", "text/plain"))
    bounded(store.ping)


def test_a_slow_server_within_the_timeout_still_works(rt, config, proxy):
    slow = ObjectStore(proxied(config, proxy, s3_timeout=3))
    name = key()
    proxy.delay(0.5)
    slow.put_bytes(name, b"slowly", "text/plain")
    assert slow.get_bytes(name) == b"slowly"
    assert slow.stat(name) is not None


def test_a_server_slower_than_the_timeout_is_a_storage_error(store, proxy):
    proxy.delay(TIMEOUT + 3)
    bounded(store.ping)


def test_a_multipart_upload_into_a_5xx_is_a_storage_error(store, proxy, tmp_path: Path):
    big = tmp_path / "big.bin"
    big.write_bytes(secrets.token_bytes(6 * 1024 * 1024))
    proxy.error(503, only=lambda method, path: "uploadId" in path)  # the parts, not the initiation
    name = key()
    bounded(lambda: store.put_file_multipart(name, big, "application/octet-stream", part_size=5 << 20))
    proxy.pass_through()
    assert store.stat(name) is None  # no half object under the final key
    stored, digest = store.put_file_multipart(name, big, "application/octet-stream", part_size=5 << 20)
    assert stored.size == big.stat().st_size


# (b) Finalize: the recording stays `stopped`, its segments stay, and a retry finishes it once.


def final_upload(method: str, path: str) -> bool:
    """The final object's requests (a multipart upload, the single PUT of a small file)."""
    return "/recording.webm" in path


def fault(proxy: FaultProxy, name: str, only=None) -> None:  # type: ignore[no-untyped-def]
    {"refuse": proxy.refuse, "503": proxy.error, "500": lambda **kw: proxy.error(500, **kw),
     "hang": proxy.hang}[name](only=only)  # fmt: skip


def segments_stored(rt: Runtime, recording_id: str) -> bool:
    parts = segments.for_recording(rt, recording_id)
    return bool(parts) and all(rt.storage.stat(p.object_key) is not None for p in parts)


@pytest.mark.parametrize("outage", ["refuse", "503", "hang"])
def test_finalize_during_an_outage_keeps_the_recording_stopped_and_a_rerun_finishes_it(
    rt, config, client, auth, proxy, segment_files, outage
):
    recording_id = stopped_recording(rt, client, auth, f"faults-finalize-{outage}", segment_files)
    behind = Runtime(proxied(config, proxy))
    fault(proxy, outage, only=final_upload)
    began = time.monotonic()
    with pytest.raises(StorageError):  # RQ retries the job on its schedule
        finalize.finalize(behind, recording_id)
    assert time.monotonic() - began < 60
    assert any(final_upload(m, p) for _, m, p in proxy.faulted)
    rec = recordings.load(rt, recording_id)
    assert rec.state == "stopped" and rec.object_key is None
    assert rec.lease_owner is None  # released: a retry or the reconciler need not wait for it
    assert segments_stored(rt, recording_id)
    assert rt.storage.stat(finalize.final_key(recording_id)) is None
    proxy.pass_through()
    assert finalize.finalize(behind, recording_id).startswith("finished")
    rec = recordings.load(rt, recording_id)
    assert rec.state == "finished"
    assert keys_of(rt, recording_id) == [finalize.poster_key(recording_id), finalize.final_key(recording_id)]


@pytest.fixture
def own(config: Config, proxy: FaultProxy, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime through the proxy on a Redis database of its own (the session's workers do not
    consume its queues) with its own data dir, and worker processes started on it by the test."""
    base, _, _ = config.redis_url.rpartition("/")
    runtime = Runtime(
        proxied(config, proxy, s3_timeout=3, redis_url=f"{base}/11", data_dir=(tmp_path / "data").resolve())
    )
    runtime.redis.flushdb()
    procs = WorkerProcesses(runtime.config, tmp_path)
    runtime.procs = procs  # type: ignore[attr-defined]
    try:
        yield runtime
    finally:
        procs.stop()
        proxy.pass_through()
        runtime.redis.flushdb()


@pytest.mark.slow
@pytest.mark.parametrize("outage", ["503", "hang"])
def test_a_finalize_job_is_retried_through_an_outage_and_finishes_once(
    rt, client, auth, proxy, own, segment_files, outage
):
    recording_id = stopped_recording(rt, client, auth, f"faults-job-{outage}", segment_files)
    fault(proxy, outage, only=final_upload)
    own.procs.start("media", "media")
    recordings.enqueue_finalize(own, recording_id)
    job_id = recordings.finalize_job_id(recording_id)
    wait_for(lambda: own.jobs.job_status(job_id) == "scheduled", timeout=60)  # failed, retry pending
    assert recordings.load(rt, recording_id).state == "stopped"
    assert segments_stored(rt, recording_id)
    proxy.pass_through()
    wait_for(lambda: own.jobs.job_status(job_id) in ("finished", "failed"), timeout=60)
    final = recordings.load(rt, recording_id)
    assert final.state == "finished", final.error
    assert keys_of(rt, recording_id) == [finalize.poster_key(recording_id), finalize.final_key(recording_id)]


# (c) Push ingest: a documented 503 during an outage, nothing stored; the same chunk again stores it.


@pytest.fixture
def behind_client(config: Config, proxy: FaultProxy):  # type: ignore[no-untyped-def]
    return create_app(runtime=Runtime(proxied(config, proxy))).test_client()


@pytest.mark.parametrize("outage", ["refuse", "503", "500", "hang"])
def test_a_pushed_chunk_during_an_outage_is_a_503_and_a_retry_stores_it(
    rt, behind_client, auth, proxy, outage
):
    room = join_room(behind_client, auth, f"faults-push-{outage}", **{"options[media_source]": "push"})
    assert behind_client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    recording_id = behind_client.get(f"/rooms/{room['room']['id']}/recordings", headers=auth).get_json()[0][
        "id"
    ]
    url, headers = f"/recordings/{recording_id}/media/0", {**auth, "Content-Type": "video/webm"}
    fault(proxy, outage)
    began = time.monotonic()
    resp = behind_client.put(url, data=b"\x1a\x45\xdf\xa3 chunk", headers=headers)
    assert time.monotonic() - began < BOUND
    assert resp.status_code == 503, resp.get_json()
    assert resp.get_json()["code"] == 503 and resp.headers["Retry-After"]
    assert segments.for_recording(rt, recording_id) == []
    proxy.pass_through()
    assert behind_client.put(url, data=b"\x1a\x45\xdf\xa3 chunk", headers=headers).status_code == 201
    assert behind_client.put(url, data=b"\x1a\x45\xdf\xa3 chunk", headers=headers).status_code == 200
    assert [s.seq for s in segments.for_recording(rt, recording_id)] == [0]


# (d) A capture while S3 answers 503: segments wait in the spool and go up afterwards.


@pytest.mark.slow
def test_a_capture_through_a_5xx_outage_keeps_its_segments_and_uploads_them_after(auth, proxy, own):
    client = create_app(runtime=own).test_client()
    own.procs.start("capture", "capture")
    own.procs.start("media", "media")
    room = join_room(client, auth, "faults-capture", **{"options[media_source]": "synthetic://meeting"})
    assert client.post(f"/rooms/{room['access_key']}/recording").status_code == 201
    recording_id = client.get("/rooms/faults-capture/recordings", headers=auth).get_json()[0]["id"]
    count = lambda: len(segments.for_recording(own, recording_id))  # noqa: E731
    wait_for(lambda: count() >= 1, timeout=60)
    began = time.monotonic()
    proxy.error(503)
    time.sleep(12)  # segments close into the spool meanwhile
    during = count()
    assert any(m == "PUT" and "/segments/" in p for _, m, p in proxy.faulted)
    assert list((own.config.spool_dir / recording_id).rglob("seg-*.mkv"))
    proxy.pass_through()
    wait_for(lambda: count() > during + 2, timeout=60)  # the backlog went up
    client.delete(f"/rooms/{room['access_key']}/recording")
    recorded_for = time.monotonic() - began
    final = wait_for(
        lambda: (r := recordings.load(own, recording_id)).state in ("finished", "failed") and r, timeout=120
    )
    assert final.state == "finished", final.error
    assert final.duration >= recorded_for - 2 * own.config.segment_seconds
