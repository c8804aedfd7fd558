"""ObjectStore's streamed multipart upload, download and batch delete against the real S3 server."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import pytest

from app.errors import StorageError
from app.runtime import Runtime

MIB = 1024 * 1024
PART = 5 * MIB  # S3's smallest part: the 40 MiB file below becomes 9 parts
Uploaded = tuple[str, int, str, str]  # key, size, etag, sha256


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("objects") / "big.bin"
    path.write_bytes(os.urandom(40 * MIB + 12345))  # not a whole number of parts
    return path


@pytest.fixture(scope="module")
def uploaded(rt: Runtime, big_file: Path) -> Uploaded:
    key = f"test/multipart-{secrets.token_hex(4)}.bin"
    stored, digest = rt.storage.put_file_multipart(key, big_file, "application/octet-stream", part_size=PART)
    return key, stored.size, stored.etag, digest


def test_multipart_upload_returns_size_and_sha256(big_file: Path, uploaded: Uploaded) -> None:
    _, size, _, digest = uploaded
    assert size == big_file.stat().st_size
    assert digest == sha256(big_file)


def test_multipart_upload_is_really_multipart(uploaded: Uploaded) -> None:
    etag = uploaded[2]
    assert etag.endswith("-9"), etag  # S3 marks a multipart object's etag with its part count


def test_multipart_object_has_the_file_size(rt: Runtime, uploaded: Uploaded) -> None:
    key, size, _, _ = uploaded
    stat = rt.storage.stat(key)
    assert stat is not None and stat.size == size


def test_download_round_trips(rt: Runtime, tmp_path: Path, uploaded: Uploaded) -> None:
    key, size, _, digest = uploaded
    target = tmp_path / "copy.bin"
    got = rt.storage.download(key, target)
    assert got.size == size == target.stat().st_size
    assert sha256(target) == digest
    assert not (tmp_path / "copy.bin.part").exists()


def test_small_file_uploads_in_one_part(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "small.bin"
    path.write_bytes(b"segment bytes")
    stored, digest = rt.storage.put_file_multipart("test/small.bin", path, "video/webm")
    assert (stored.size, digest) == (13, hashlib.sha256(b"segment bytes").hexdigest())


def test_download_of_a_missing_key_is_a_storage_error(rt: Runtime, tmp_path: Path) -> None:
    target = tmp_path / "missing.bin"
    with pytest.raises(StorageError, match="no such object"):
        rt.storage.download("test/never-uploaded.bin", target)
    assert not target.exists() and not (tmp_path / "missing.bin.part").exists()


def test_upload_of_a_missing_file_is_a_storage_error(rt: Runtime, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="upload of test/x.bin failed"):
        rt.storage.put_file_multipart("test/x.bin", tmp_path / "absent.bin", "video/webm")


def test_delete_keys_removes_exactly_those_keys(rt: Runtime) -> None:
    prefix = f"test/delete-{secrets.token_hex(4)}/"
    for name in ("a", "b", "keep"):
        rt.storage.put_bytes(prefix + name, b"x", "application/octet-stream")
    assert rt.storage.delete_keys([prefix + "a", prefix + "b"]) == 2
    assert sorted(rt.storage.iter_keys(prefix)) == [prefix + "keep"]


def test_delete_keys_ignores_missing_keys(rt: Runtime) -> None:
    assert rt.storage.delete_keys(["test/not-there-1", "test/not-there-2"]) == 2
    assert rt.storage.delete_keys([]) == 0
