"""Readiness: does this process reach its database, Redis and object storage? Read by `/readyz`.

`/readyz` answers anyone, so it says only "ok" or "fail" per component: why one failed (an exception's
text names hosts, ports, users and paths) goes to the log, where operators read it (`problems` returns it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import text

from app.runtime import Runtime
from app.services.operations import counts, system

log = logging.getLogger(__name__)

OK = "ok"
FAIL = "fail"


def problems(rt: Runtime) -> dict[str, str | None]:
    """None or "<type>: <message>" for each of database, redis and storage; never raises."""
    probes: dict[str, Callable[[Runtime], None]] = {
        "database": _database,
        "redis": _redis,
        "storage": _storage,
    }
    return {name: _outcome(probe, rt) for name, probe in probes.items()}


def checks(rt: Runtime) -> dict[str, str]:
    """ "ok" or "fail" for each of database, redis and storage, for anyone to read; the reason of each
    failure is logged (a warning), never returned. Never raises."""
    found = problems(rt)
    for name, problem in found.items():
        if problem is not None:
            log.warning("readiness: %s unreachable: %s", name, problem)
    return {name: OK if problem is None else FAIL for name, problem in found.items()}


def ready(found: dict[str, str]) -> bool:
    """True when every check of `found` (from `checks`) passed."""
    return all(v == OK for v in found.values())


def details(rt: Runtime) -> dict[str, object]:
    """Informational, never failing readiness: how many workers beat, when each scheduler entry last
    ticked (seconds ago). Names and hosts are for the admin's `GET /system` only."""
    try:
        ticks = system.scheduler(rt)["last_ticks"]
        return {
            "workers": counts.workers(rt),
            "scheduler_last_ticks": {entry: t["seconds_ago"] for entry, t in ticks.items()},
        }
    except Exception as e:  # noqa: BLE001 - details must not fail the probe
        log.warning("readiness: details unavailable: %s: %s", type(e).__name__, e)
        return {"error": "unavailable"}


def _outcome(probe: Callable[[Runtime], None], rt: Runtime) -> str | None:
    try:
        probe(rt)
    except Exception as e:  # noqa: BLE001 - readiness reports every failure, whatever its kind
        return f"{type(e).__name__}: {e}"[:300]
    return None


def _database(rt: Runtime) -> None:
    with rt.db.read() as s:
        s.execute(text("SELECT 1"))


def _redis(rt: Runtime) -> None:
    rt.jobs.ping()


def _storage(rt: Runtime) -> None:
    rt.storage.ping()
