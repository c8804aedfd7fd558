"""The runtime: the long-lived clients one process needs, built once from a Config.

The Flask app keeps one in `app.extensions["meetrec"]`; each worker builds one at start. Services take
it as their first argument, so they run the same way in a request, a job or a test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cached_property

from redis import Redis

from app.config import Config
from app.db import Database
from app.models import utcnow
from app.queueing import JobQueue
from app.storage import ObjectStore


class Runtime:
    def __init__(self, config: Config, clock: Callable[[], datetime] = utcnow):
        self.config = config
        self.clock = clock

    @cached_property
    def db(self) -> Database:
        return Database(self.config.database_url)

    @cached_property
    def redis(self) -> Redis:
        """The raw Redis client the `jobs` port is built on; services use `jobs`, never this."""
        return Redis.from_url(self.config.redis_url, socket_timeout=10, socket_connect_timeout=5)

    @cached_property
    def storage(self) -> ObjectStore:
        return ObjectStore(self.config)

    @cached_property
    def jobs(self) -> JobQueue:
        """The job queue port: everything meetrec asks of Redis."""
        return JobQueue(self.redis)

    def now(self) -> datetime:
        return self.clock()
