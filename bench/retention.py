"""Retention purge: how long one run takes to destroy N expired recordings, against the raw tools.

Its own SeaweedFS server (or `S3_ENDPOINT`) and SQLite (or `DATABASE_URL`). N expired recordings with
`--objects` objects each are made straight in SQL and S3, then `retention.purge_expired` runs once:
objects listed per recording (all versions) and removed in multi-object deletes of 1000 keys, rows
tombstoned in batches of 1000, one `recording_update` event each. The "raw" figure is the same
work without meetrec: minio-py listing each prefix and `remove_objects` over the lot, then one bare
`UPDATE recordings SET state='deleted' WHERE id IN (...)` per 1000 rows (no events). Ratio is ours / raw.

    .venv/bin/python bench/retention.py [--recordings 10000] [--objects 2]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from minio.deleteobjects import DeleteObject  # noqa: E402
from sqlalchemy import insert, update  # noqa: E402

from app import migrate  # noqa: E402
from app.config import Config  # noqa: E402
from app.embedded.servers import S3Server  # noqa: E402
from app.models import Recording, utcnow  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from app.services.access import keys  # noqa: E402
from app.services.core import recordings, retention  # noqa: E402
from app.services.ids import new_id  # noqa: E402
from tests.helpers import free_weed_ports  # noqa: E402


def seed(rt: Runtime, project_id: str, n: int, objects: int) -> list[str]:
    ids = [new_id() for _ in range(n)]
    created = utcnow() - timedelta(days=rt.config.retention_days + 1)
    rows = [
        {
            "id": i,
            "project_id": project_id,
            "state": "finished",
            "media_source": "synthetic://meeting",
            "created_at": created,
            "object_key": f"{recordings.object_prefix(i)}recording.webm",
        }
        for i in ids
    ]
    with rt.db.transaction() as s:
        for start in range(0, n, 1000):
            s.execute(insert(Recording), rows[start : start + 1000])
    names = ["recording.webm", "poster.jpg", *(f"segments/seg-{k:06d}.mkv" for k in range(objects))][:objects]
    object_keys = [f"{recordings.object_prefix(i)}{name}" for i in ids for name in names]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: rt.storage.put_bytes(k, b"x" * 64, "video/webm"), object_keys))
    return ids


def raw_purge(rt: Runtime, ids: list[str]) -> None:
    client, bucket = rt.storage._client, rt.storage.bucket

    def versions(prefix: str) -> list[DeleteObject]:
        listed = client.list_objects(bucket, prefix=prefix, recursive=True, include_version=True)
        return [DeleteObject(o.object_name or "", o.version_id) for o in listed]

    with ThreadPoolExecutor(8) as pool:
        batch = [o for objs in pool.map(versions, [recordings.object_prefix(i) for i in ids]) for o in objs]
    assert not list(client.remove_objects(bucket, iter(batch)))
    with rt.db.transaction() as s:
        for start in range(0, len(ids), 1000):
            s.execute(
                update(Recording)
                .where(Recording.id.in_(ids[start : start + 1000]))
                .values(state="deleted", deleted_at=utcnow())
                .execution_options(synchronize_session=False)
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recordings", type=int, default=10000)
    ap.add_argument("--objects", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if os.environ.get("S3_ENDPOINT"):
            env = {k: os.environ[k] for k in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY")}
        else:
            access, secret = "AK" + secrets.token_hex(8), secrets.token_hex(20)
            server = S3Server(free_weed_ports(), Path(tmp) / "s3", access, secret)
            server.start()
            server.wait_ready(60)
            env = {"S3_ENDPOINT": server.endpoint, "S3_ACCESS_KEY": access, "S3_SECRET_KEY": secret}
        env |= {
            "S3_BUCKET": "meetrec-bench-" + secrets.token_hex(4),
            "MEETREC_DATA_DIR": tmp,
            "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{tmp}/bench.db"),
        }
        try:
            config = Config.from_env(env)
            migrate.upgrade(config.database_url)
            rt = Runtime(config)
            rt.storage.ensure_bucket()
            project = keys.create_project(rt, "bench")

            ids = seed(rt, project.id, args.recordings, args.objects)
            started = time.perf_counter()
            purged = retention.purge_expired(rt)
            ours = time.perf_counter() - started
            assert purged == args.recordings, purged

            ids = seed(rt, project.id, args.recordings, args.objects)
            started = time.perf_counter()
            raw_purge(rt, ids)
            raw = time.perf_counter() - started
        finally:
            if server is not None:
                server.stop()
    n, k = args.recordings, args.objects
    print(
        f"purge of {n} expired recordings x {k} objects: "
        f"ours {ours:.1f} s, raw {raw:.1f} s, ratio {ours / raw:.2f}"
    )


if __name__ == "__main__":
    main()
