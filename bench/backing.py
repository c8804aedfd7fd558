"""The backing services a bench's own stack runs on: redis-server, a SeaweedFS S3 server and SQLite (or
DATABASE_URL), in a temporary directory that is gone afterwards.

    with bench_stack({"MEETREC_LOG_FORMAT": "json"}) as stack:
        serve the app with stack.config.child_env(), seed through stack.rt, ...

The database is migrated and the bucket made before the block runs; the servers stop when it ends, how
ever it ends. What the block starts itself (an api, workers) it stops itself, before that.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app import migrate
from app.config import Config
from app.embedded.servers import RedisServer, S3Server
from app.runtime import Runtime
from tests.helpers import free_port, free_weed_ports


@dataclass(frozen=True)
class Stack:
    """A running stack: its temporary directory (for logs and files of the bench's own), the Runtime
    over it, and the S3 server (whose process a bench may watch)."""

    base: Path
    rt: Runtime
    s3: S3Server

    @property
    def config(self) -> Config:
        return self.rt.config


@contextmanager
def bench_stack(env: Mapping[str, str] | None = None) -> Iterator[Stack]:
    """Start the servers, build the Config (DATABASE_URL from the environment when set; `env` adds or
    overrides settings), migrate, and yield the Stack; stop the servers after."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        redis = RedisServer(free_port(), base / "redis", persist=False)
        access, secret = "BENCH" + secrets.token_hex(6).upper(), secrets.token_hex(20)
        s3 = S3Server(free_weed_ports(), base / "s3", access, secret)
        redis.start()
        s3.start()
        try:
            redis.wait_ready(30)
            s3.wait_ready(60)
            settings = {
                "MEETREC_DATA_DIR": str(base / "data"),
                "REDIS_URL": redis.url,
                "S3_ENDPOINT": s3.endpoint,
                "S3_ACCESS_KEY": access,
                "S3_SECRET_KEY": secret,
                "MEETREC_SECRET_KEY": secrets.token_hex(32),
            }
            if os.environ.get("DATABASE_URL"):
                settings["DATABASE_URL"] = os.environ["DATABASE_URL"]
            config = Config.from_env({**settings, **(env or {})})
            migrate.upgrade(config.database_url)
            rt = Runtime(config)
            rt.storage.ensure_bucket()
            yield Stack(base, rt, s3)
        finally:
            s3.stop()
            redis.stop()
