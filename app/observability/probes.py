"""Health probes for containers (`meetrec health api|worker|scheduler`), one per role.

Each returns None when healthy, else what is wrong. The api is asked over HTTP (`/readyz`: it answers and
reaches its database, Redis and storage); a worker, which serves no HTTP, is healthy when Redis holds a
fresh heartbeat of a worker on this host; the scheduler when the reconcile entry ticked recently (ticks
are enqueued by whichever scheduler replica leads, so this says the scheduling works, not which replica).
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime

from app.config import Config
from app.runtime import Runtime
from app.services.operations import system

WORKER_HEARTBEAT_MAX_AGE = 150  # seconds; a busy worker beats every 30 s, an idle one every 45 s
SCHEDULER_TICK_MAX_AGE = 60  # seconds; the reconcile entry ticks every 5 s


def api(config: Config, timeout: float = 5) -> str | None:
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    url = f"http://{host}:{config.port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - our own loopback URL
            return None if resp.status == 200 else f"{url} answered {resp.status}"
    except urllib.error.HTTPError as e:
        return f"{url} answered {e.code}: {e.read()[:300].decode('utf-8', 'replace')}"
    except OSError as e:
        return f"{url}: {e}"


def worker(rt: Runtime, hostname: str | None = None) -> str | None:
    hostname = hostname or socket.gethostname()
    now = datetime.now(UTC)
    mine = [w for w in rt.jobs.workers() if w.hostname == hostname]
    if not mine:
        return f"no worker of host {hostname} is registered in Redis"
    ages = [_age(now, w.last_heartbeat) for w in mine]
    if min(ages) > WORKER_HEARTBEAT_MAX_AGE:
        return f"the workers of host {hostname} last beat {min(ages):.0f} s ago"
    return None


def scheduler(rt: Runtime) -> str | None:
    tick = system.scheduler(rt)["last_ticks"].get("reconcile")
    if tick is None:
        return "the scheduler has not ticked yet"
    if tick["seconds_ago"] > SCHEDULER_TICK_MAX_AGE:
        return f"the scheduler last ticked {tick['seconds_ago']:.0f} s ago"
    return None


def _age(now: datetime, beat: datetime | None) -> float:
    if beat is None:
        return float("inf")
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    return (now - beat).total_seconds()
