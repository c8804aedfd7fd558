"""Rooms: the project's meetings and each room id's recordings."""

from __future__ import annotations

from flask import render_template, request

from app.console import auth, queries
from app.console.auth import current_key, rt
from app.console.blueprint import bp
from app.services.core import room_recordings, rooms


@bp.get("/rooms", endpoint="rooms")
@auth.signed_in()
def rooms_list():
    """The project's meetings, newest first, with how many recordings each holds."""
    page = queries.rooms(rt(), current_key().project_id, _page())
    return render_template("console/rooms.html", page=page)


@bp.get("/rooms/<path:room_key>")
@auth.signed_in()
def room(room_key: str):
    """One room id: its meetings (a room id can run again) and their recordings, newest first."""
    pid, page = current_key().project_id, _page()
    instances = rooms.instances(rt(), pid, room_key)
    found = room_recordings.list_for_room(rt(), pid, room_key, page)
    return render_template(
        "console/room.html",
        room_key=room_key,
        instances=instances,
        recordings=found,
        page=page,
        more=len(found) == room_recordings.PAGE_SIZE,
    )


def _page() -> int:
    return queries.page_number(request.args.get("page", "1"))
