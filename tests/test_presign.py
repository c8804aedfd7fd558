"""The path-style signer signs GET links exactly as minio-py does, and the S3 server accepts them."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from minio import Minio

from app.storage import presign
from app.storage.objects import ObjectStore

WHEN = datetime(2026, 12, 3, 23, 59, 59, tzinfo=UTC)
KEYS = ["p/r/recording.webm", "a b/c~d/é(1)+%2F.webm", "x/ünï cödé/'quote'&amp;=.webm"]


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:9000", "https://S3.Example.test", "http://localhost:80"]
)
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("filename", [None, 'talk "final" ä.webm'])
def test_a_link_is_byte_for_byte_minio_pys(endpoint: str, key: str, filename: str | None):
    scheme, netloc = endpoint.split("://")
    client = Minio(netloc, access_key="ak", secret_key="sk", secure=scheme == "https", region="eu-west-1")
    response = {"response-content-disposition": f'attachment; filename="{filename}"'} if filename else None
    theirs = client.presigned_get_object("bucket", key, timedelta(seconds=3600), response, WHEN)  # type: ignore[arg-type]
    ours = presign.PathStyleSigner(scheme, netloc, "eu-west-1", "ak", "sk").get(
        "bucket", key, 3600, WHEN, response
    )
    assert ours == theirs


def test_virtual_host_endpoints_keep_minio_pys_signer():
    assert presign.path_style("127.0.0.1:9000")
    assert not presign.path_style("s3.eu-west-1.amazonaws.com")


def test_the_store_signs_with_the_fast_signer_and_the_server_accepts_its_links(rt):
    store: ObjectStore = rt.storage
    assert store._signer is not None
    store.put_bytes("presign/é x.bin", b"hello", "application/octet-stream")
    link = store.presign_get("presign/é x.bin", 60, filename="x.bin")
    with urllib.request.urlopen(link, timeout=10) as answer:
        assert answer.read() == b"hello"
        assert 'filename="x.bin"' in answer.headers["Content-Disposition"]


def test_a_link_past_its_expiry_is_refused(rt):
    store: ObjectStore = rt.storage
    store.put_bytes("presign/old.bin", b"x", "application/octet-stream")
    link = store.presign_get("presign/old.bin", 60, issued_at=datetime.now(UTC) - timedelta(minutes=5))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(link, timeout=10)
    assert refused.value.code == 403
