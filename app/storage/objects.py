"""The object storage port: generic S3 (path-style) through the `minio` SDK.

Every failure leaves as `StorageError` (`raise StorageError(...) from e`); a missing object is `None`
from `stat`, never an exception, because callers treat "not there" as a normal answer.
Presigned links are signed for the *public* endpoint, which may differ from the internal one.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error

from app.config import Config
from app.errors import StorageError
from app.storage import presign

PART_SIZE = 16 * 1024 * 1024  # minio-py holds ~4-6 parts in memory: 16 MiB keeps a worker near 130 MB
# Parts in flight for put_file_multipart. Measured on a 1 GiB upload with 16 MiB parts: peak RSS grew by
# 112 MB with minio-py's default 3 (7 parts held: in flight, queued, being read), 80 MB with 2, and the
# SeaweedFS server's CPU, not our parallelism, bounded throughput (100-150 MiB/s either way).
UPLOAD_THREADS = 2
# Prefix listings in flight when many recordings are deleted at once (below the pool's 10 connections).
LIST_THREADS = 8
DOWNLOAD_BLOCK = 1024 * 1024
AMBIGUOUS = ("", -1)  # `parts`: a part number whose uploads disagree
MAX_LINK_TTL = 7 * 24 * 3600  # SigV4's limit on X-Amz-Expires
CONNECT_TIMEOUT = 5  # seconds: a loopback or LAN S3 server accepts at once


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    etag: str


def _client(endpoint: str, config: Config) -> Minio:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StorageError(f"S3 endpoint must be an http(s) URL, got {endpoint!r}")
    http = urllib3.PoolManager(timeout=_timeout(config), retries=_retry(config), maxsize=10)
    return Minio(
        parts.netloc,
        access_key=config.s3_access_key,
        secret_key=config.s3_secret_key,
        secure=parts.scheme == "https",
        region=config.s3_region,
        http_client=http,
    )


def _timeout(config: Config) -> urllib3.Timeout:
    """Each request's bounds: connecting (also each send of a body) and each wait for the server.

    minio-py's own default waits 5 minutes for either, retried 5 times: a server that accepts and never
    answers held a request (an API call, a finalize) for half an hour.
    """
    return urllib3.Timeout(connect=min(CONNECT_TIMEOUT, config.s3_timeout), read=config.s3_timeout)


def _retry(config: Config) -> urllib3.Retry:
    """Retries of idempotent requests (GET, HEAD, PUT, DELETE; a POST is never resent) that could not
    connect, timed out or got a 5xx, with a short backoff. A 503's Retry-After is not obeyed: urllib3
    would sleep up to six hours on a server's word, and the caller's own retry (RQ, a client) waits instead.
    The worst case of one call against a hanging server is about (retries + 1) x MEETREC_S3_TIMEOUT.
    """
    return urllib3.Retry(
        total=config.s3_retries,
        backoff_factor=0.5,
        status_forcelist=[500, 502, 503, 504],
        respect_retry_after_header=False,
    )


def _fast_signer(config: Config, public: Minio) -> presign.PathStyleSigner | None:
    """The path-style signer for the public endpoint, when it signs exactly as minio-py does there
    (checked once on a probe link); None keeps minio-py's signer (virtual-host endpoints, no region)."""
    parts = urlsplit(config.s3_public_endpoint)
    if not config.s3_region or not presign.path_style(parts.netloc):
        return None
    signer = presign.PathStyleSigner(
        parts.scheme, parts.netloc, config.s3_region, config.s3_access_key, config.s3_secret_key
    )
    probe_key, when = "probe/a b~é+%.webm", datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    disposition = {"response-content-disposition": 'attachment; filename="a b.webm"'}
    ours = signer.get(config.s3_bucket, probe_key, 3600, when, disposition)
    try:
        theirs = public.presigned_get_object(
            config.s3_bucket, probe_key, timedelta(hours=1), dict[str, Any](disposition), when
        )
    except (MinioException, ValueError):
        return None
    return signer if ours == theirs else None


class ObjectStore:
    """Put, stat, delete and presign objects in one bucket."""

    def __init__(self, config: Config):
        self.bucket = config.s3_bucket
        self._client = _client(config.s3_endpoint, config)
        # Signing needs no network call when the region is given, so a public endpoint that is not
        # reachable from here (a CDN, another hostname) still yields valid links.
        self._public = _client(config.s3_public_endpoint, config)
        self._signer = _fast_signer(config, self._public)

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist."""
        try:
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket)
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StorageError(f"cannot create bucket {self.bucket}: {e}") from e

    def ping(self) -> None:
        """Raise StorageError unless the bucket is reachable with our credentials."""
        try:
            if not self._client.bucket_exists(self.bucket):
                raise StorageError(f"bucket {self.bucket} does not exist")
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StorageError(f"object storage unreachable: {e}") from e

    def put_file(self, key: str, path: Path, content_type: str) -> tuple[StoredObject, str]:
        """Upload `path` streamed in parts; return the object and the file's SHA-256 (hex)."""
        digest = _sha256_file(path)
        try:
            result = self._client.fput_object(
                self.bucket, key, str(path), content_type=content_type, part_size=PART_SIZE
            )
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StorageError(f"upload of {key} failed: {e}") from e
        return StoredObject(key, path.stat().st_size, result.etag or ""), digest

    def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        """Upload a small object held in memory."""
        try:
            result = self._client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
            )
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StorageError(f"upload of {key} failed: {e}") from e
        return StoredObject(key, len(data), result.etag or "")

    def stat(self, key: str) -> StoredObject | None:
        """The object's size and etag, or None when it does not exist."""
        try:
            st = self._client.stat_object(self.bucket, key)
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return None
            raise StorageError(f"stat of {key} failed: {e}") from e
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StorageError(f"stat of {key} failed: {e}") from e
        return StoredObject(key, st.size or 0, st.etag or "")

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object (and version) under `prefix`; return how many were deleted."""
        return self.delete_prefixes([prefix])

    def delete_prefixes(self, prefixes: Iterable[str]) -> int:
        """Delete every object version under each of `prefixes`; return how many were deleted.

        The listings run `LIST_THREADS` at a time; the deletes go as S3 multi-object deletes of up to
        1000 keys (with versions) a request, so a thousand recordings cost a few requests, not thousands.
        """
        prefixes = list(prefixes)
        try:
            with ThreadPoolExecutor(max(1, min(LIST_THREADS, len(prefixes)))) as pool:
                batch = [o for listed in pool.map(self._versions, prefixes) for o in listed]
            errors = list(self._client.remove_objects(self.bucket, iter(batch))) if batch else []
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StorageError(f"delete under {len(prefixes)} prefixes failed: {e}") from e
        if errors:
            raise StorageError(f"delete of {errors[0].name} failed: {errors[0]}")
        self.abort_uploads(prefixes)
        return len(batch)

    def abort_uploads(self, prefixes: list[str]) -> int:
        """Abort every unfinished multipart upload of a key under `prefixes` (a capture's parts, see
        app.services.pipeline.packs); return how many. One listing for all of them (their common prefix)."""
        if not prefixes:
            return 0
        common = os.path.commonprefix(prefixes)
        aborted, key_marker, id_marker = 0, None, None
        while True:
            try:
                listed = self._client._list_multipart_uploads(
                    self.bucket, prefix=common, key_marker=key_marker, upload_id_marker=id_marker
                )
            except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
                raise StorageError(f"listing the unfinished uploads under {common} failed: {e}") from e
            for upload in listed.uploads:
                name = upload.object_name or ""
                if upload.upload_id and any(name.startswith(p) for p in prefixes):
                    self.abort_upload(name, upload.upload_id)
                    aborted += 1
            if not listed.is_truncated or not listed.uploads:
                return aborted
            key_marker, id_marker = listed.uploads[-1].object_name, listed.uploads[-1].upload_id

    def _versions(self, prefix: str) -> list[DeleteObject]:
        listed = self._client.list_objects(self.bucket, prefix=prefix, recursive=True, include_version=True)
        return [DeleteObject(o.object_name or "", o.version_id) for o in listed]

    def presign_get(
        self, key: str, ttl: int, filename: str | None = None, issued_at: datetime | None = None
    ) -> str:
        """A GET link on the public endpoint, valid for `ttl` seconds from `issued_at` (default: now)."""
        headers: dict[str, str] | None = (
            {"response-content-disposition": f'attachment; filename="{filename}"'} if filename else None
        )
        if self._signer is not None and 1 <= ttl <= MAX_LINK_TTL:
            return self._signer.get(self.bucket, key, ttl, issued_at or datetime.now(UTC), headers)
        try:
            return self._public.presigned_get_object(
                self.bucket,
                key,
                expires=timedelta(seconds=ttl),
                response_headers=headers,  # type: ignore[arg-type]
                request_date=issued_at,
            )
        except (MinioException, ValueError) as e:
            raise StorageError(f"cannot sign a link for {key}: {e}") from e

    def put_file_multipart(
        self, key: str, path: Path, content_type: str, part_size: int = PART_SIZE
    ) -> tuple[StoredObject, str]:
        """Upload `path` streamed from disk in `part_size` parts, hashing it in the same single read.

        Memory stays near five parts whatever the file's size (minio-py holds each part in memory to sign
        it; `UPLOAD_THREADS` upload at once). Returns the object and the SHA-256 (hex) of the bytes sent.
        """
        try:
            with path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                reader = _HashingReader(f)
                result = self._client.put_object(
                    self.bucket,
                    key,
                    cast(BinaryIO, reader),
                    size,
                    content_type=content_type,
                    part_size=part_size,
                    num_parallel_uploads=UPLOAD_THREADS,
                )
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StorageError(f"upload of {key} failed: {e}") from e
        if reader.count != size:
            raise StorageError(f"upload of {key} read {reader.count} of {size} bytes: the file changed")
        return StoredObject(key, size, result.etag or ""), reader.hexdigest()

    def presign_internal(self, key: str, ttl: int) -> str:
        """A GET link on the internal endpoint, for this machine's own readers (ffmpeg grabbing frames)."""
        try:
            return self._client.presigned_get_object(self.bucket, key, expires=timedelta(seconds=ttl))
        except (MinioException, ValueError) as e:
            raise StorageError(f"cannot sign a link for {key}: {e}") from e

    # Multipart uploads assembled over time (app.services.pipeline.packs): parts uploaded while a capture
    # runs, the object made at its finish by CompleteMultipartUpload, which joins them without copying.
    # minio-py keeps these S3 calls private; they are stable across its 7.x releases.

    def create_upload(self, key: str, content_type: str) -> str:
        """Start a multipart upload of `key`; return its upload id."""
        return self._call(f"start of an upload of {key}", self._client._create_multipart_upload,
                          self.bucket, key, {"Content-Type": content_type})  # fmt: skip

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        """Upload part `number` (1..10000; every part but the last at least 5 MiB); return its ETag."""
        etag: str = self._call(f"upload of part {number} of {key}", self._client._upload_part,
                               self.bucket, key, data, None, upload_id, number)  # fmt: skip
        return etag.strip('"')

    def parts(self, key: str, upload_id: str) -> dict[int, tuple[str, int]] | None:
        """{part number: (ETag, size)} of an unfinished upload (`AMBIGUOUS` for a number uploaded twice
        with other bytes); None when there is no such upload (it was completed, aborted, or expired:
        MinIO drops uploads left unfinished for 24 hours)."""
        found: dict[int, tuple[str, int]] = {}
        marker: str | None = None
        while True:
            try:
                listed = self._client._list_parts(self.bucket, key, upload_id, part_number_marker=marker)
            except S3Error as e:
                if e.code in ("NoSuchUpload", "NoSuchKey", "NotFound"):
                    return None
                raise StorageError(f"listing the parts of {key} failed: {e}") from e
            except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
                raise StorageError(f"listing the parts of {key} failed: {e}") from e
            for part in listed.parts:
                entry = ((part.etag or "").strip('"'), part.size or 0)
                # SeaweedFS lists every upload of a part number: two that differ are no known part.
                found[part.part_number] = entry if found.get(part.part_number, entry) == entry else AMBIGUOUS
            if not listed.is_truncated:
                return found
            marker = str(listed.next_part_number_marker)

    def complete_upload(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Join the listed (number, ETag) parts, in order, into the object `key`."""
        self._call(f"completion of {key}", self._client._complete_multipart_upload,
                   self.bucket, key, upload_id, [Part(number, etag) for number, etag in parts])  # fmt: skip

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Drop an unfinished upload and its parts (one already gone is no error)."""
        try:
            self._client._abort_multipart_upload(self.bucket, key, upload_id)
        except S3Error as e:
            if e.code not in ("NoSuchUpload", "NoSuchKey", "NotFound"):
                raise StorageError(f"abort of the upload of {key} failed: {e}") from e
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StorageError(f"abort of the upload of {key} failed: {e}") from e

    def sha256_of(self, key: str) -> tuple[str, int]:
        """(SHA-256 hex, size) of object `key`, read once as a stream in DOWNLOAD_BLOCK pieces."""
        digest, size, response = hashlib.sha256(), 0, None
        try:
            response = self._client.get_object(self.bucket, key)
            for block in response.stream(DOWNLOAD_BLOCK):
                digest.update(block)
                size += len(block)
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StorageError(f"read of {key} failed: {e}") from e
        finally:
            if response is not None:
                response.close()
                response.release_conn()
        return digest.hexdigest(), size

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """`length` bytes of `key` from `offset`."""
        response = None
        try:
            response = self._client.get_object(self.bucket, key, offset=offset, length=length)
            return response.read()
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StorageError(f"read of {key} failed: {e}") from e
        finally:
            if response is not None:
                response.close()
                response.release_conn()

    def _call(self, what: str, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StorageError(f"{what} failed: {e}") from e

    def download(self, key: str, path: Path) -> StoredObject:
        """Stream object `key` into the file `path` (replaced whole, never left half-written)."""
        partial = path.with_name(path.name + ".part")
        response = None
        try:
            response = self._client.get_object(self.bucket, key)
            with partial.open("wb") as f:
                for block in response.stream(DOWNLOAD_BLOCK):
                    f.write(block)
            os.replace(partial, path)
        except S3Error as e:
            partial.unlink(missing_ok=True)
            if e.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                raise StorageError(f"download of {key} failed: no such object") from e
            raise StorageError(f"download of {key} failed: {e}") from e
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            partial.unlink(missing_ok=True)
            raise StorageError(f"download of {key} failed: {e}") from e
        finally:
            if response is not None:
                response.close()
                response.release_conn()
        return StoredObject(key, path.stat().st_size, (response.headers.get("ETag") or "").strip('"'))

    def get_bytes(self, key: str) -> bytes:
        """A small object's bytes, read whole (replay blocks: a few hundred KB at most)."""
        response = None
        try:
            response = self._client.get_object(self.bucket, key)
            return response.read()
        except S3Error as e:
            missing = e.code in ("NoSuchKey", "NoSuchObject", "NotFound")
            raise StorageError(f"read of {key} failed: {'no such object' if missing else e}") from e
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StorageError(f"read of {key} failed: {e}") from e
        finally:
            if response is not None:
                response.close()
                response.release_conn()

    def delete_keys(self, keys: Iterable[str]) -> int:
        """Delete the objects named by `keys` (missing ones are no error); return how many were named.

        Deletes the current version only: on a versioned bucket use `delete_prefix`, which removes them all.
        """
        batch = [DeleteObject(key) for key in keys]
        if not batch:
            return 0
        try:
            errors = list(self._client.remove_objects(self.bucket, iter(batch)))
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StorageError(f"delete of {len(batch)} objects failed: {e}") from e
        if errors:
            raise StorageError(f"delete of {errors[0].name} failed: {errors[0]}")
        return len(batch)

    def iter_keys(self, prefix: str) -> Iterator[str]:
        """Every object key under `prefix`."""
        try:
            for o in self._client.list_objects(self.bucket, prefix=prefix, recursive=True):
                yield o.object_name or ""
        except (MinioException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StorageError(f"listing {prefix} failed: {e}") from e


class _HashingReader:
    """A file's `read`, hashing every byte it hands out: one pass over the disk for upload and digest."""

    def __init__(self, f: BinaryIO):
        self._f = f
        self._hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._hash.update(data)
        self.count += len(data)
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()
