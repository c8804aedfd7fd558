"""Liveness and readiness."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from sqlalchemy import text

from app.api.blueprint import Blueprint
from app.runtime import Runtime
from app.services.operations import system

blp = Blueprint("health", __name__, description="Health checks")


def _checks(rt: Runtime) -> dict[str, str]:
    results: dict[str, str] = {}
    for name, check in (("database", _db), ("redis", _redis), ("storage", _storage)):
        try:
            check(rt)
            results[name] = "ok"
        except Exception as e:  # noqa: BLE001 - readiness reports every failure, whatever its kind
            results[name] = f"error: {type(e).__name__}: {e}"[:300]
    return results


def _db(rt: Runtime) -> None:
    with rt.db.read() as s:
        s.execute(text("SELECT 1"))


def _redis(rt: Runtime) -> None:
    rt.redis.ping()


def _storage(rt: Runtime) -> None:
    rt.storage.ping()


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, description="the api process answers")
    def get(self):
        """The process is alive"""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, description="every backing service answered")
    @blp.alt_response(503, description="a backing service is unreachable; details name it")
    def get(self):
        """Database, Redis and object storage are reachable"""
        rt = current_app.extensions["meetrec"]
        checks = _checks(rt)
        ok = all(v == "ok" for v in checks.values())
        body = {"status": "ok" if ok else "unavailable", "checks": checks}
        if checks["redis"] == "ok":
            body["details"] = _details(rt)
        return body, (200 if ok else 503)


def _details(rt: Runtime) -> dict[str, object]:
    """Informational, never failing readiness: how many workers beat, when each scheduler entry last
    ticked (seconds ago). Names and hosts are for the admin's `GET /system` only."""
    try:
        ticks = system.scheduler(rt)["last_ticks"]
        return {
            "workers": len(system.workers(rt)),
            "scheduler_last_ticks": {entry: t["seconds_ago"] for entry, t in ticks.items()},
        }
    except Exception as e:  # noqa: BLE001 - details must not fail the probe
        return {"error": f"{type(e).__name__}: {e}"[:200]}
