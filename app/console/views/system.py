"""System: queue depths, workers and their heartbeats, the scheduler's ticks, storage used (admin)."""

from __future__ import annotations

from flask import render_template

from app.console import auth, queries
from app.console.auth import current_key, rt
from app.console.blueprint import bp
from app.errors import QueueError
from app.services.operations import system as system_service


@bp.get("/system", endpoint="system")
@auth.signed_in("admin")
def system_page():
    """What runs now; Redis being down is shown on the page rather than failing it."""
    try:
        status, redis_error = system_service.status(rt()), None
    except QueueError as e:
        status, redis_error = None, str(e)
    storage = {
        "all": queries.storage_used(rt()),
        "project": queries.storage_used(rt(), current_key().project_id),
    }
    return render_template("console/system.html", status=status, redis_error=redis_error, storage=storage)
