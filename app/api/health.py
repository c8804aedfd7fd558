"""Liveness and readiness."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.services.operations import readiness

blp = Blueprint("health", __name__, description="Health checks")


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, description="the api process answers")
    def get(self):
        """The process is alive"""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, description="every backing service answered")
    @blp.alt_response(503, description="a backing service is unreachable: its check says fail, why is logged")
    def get(self):
        """Database, Redis and object storage are reachable"""
        # Unauthenticated: each check is "ok" or "fail", never an error's text (hosts, users, paths).
        rt = current_app.extensions["meetrec"]
        checks = readiness.checks(rt)
        ok = readiness.ready(checks)
        body: dict[str, object] = {"status": "ok" if ok else "unavailable", "checks": checks}
        if checks["redis"] == readiness.OK:
            body["details"] = readiness.details(rt)
        return body, (200 if ok else 503)
