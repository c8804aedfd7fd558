"""Operators' view of the running system."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app
from flask.views import MethodView

from app.api.auth import require
from app.api.blueprint import Blueprint
from app.errors import QueueError, Unavailable
from app.services.operations import system

blp = Blueprint("system", __name__, description="What runs: workers, scheduler, queues")


class SystemSchema(ma.Schema):
    workers = ma.fields.List(ma.fields.Dict(), metadata={"description": "RQ workers with their heartbeats"})
    scheduler = ma.fields.Dict(metadata={"description": "the leader and each timetable entry's last tick"})
    queues = ma.fields.Dict(metadata={"description": "jobs waiting per queue"})
    recordings = ma.fields.Dict(metadata={"description": "recordings started and stopped (in flight)"})


@blp.route("/system")
class System(MethodView):
    @require("admin")
    @blp.response(200, SystemSchema, description="workers, scheduler ticks, queue depths, work in flight")
    @blp.errors(e503="Redis unreachable")
    def get(self):
        """Workers' heartbeats, the scheduler's last ticks and queue depths (admin)"""
        try:
            return system.status(current_app.extensions["meetrec"])
        except QueueError as e:
            raise Unavailable(f"Redis is unreachable: {e}") from e
