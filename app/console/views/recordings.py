"""Recordings: the filtered list, live states, the detail page with its player, and the actions."""

from __future__ import annotations

from flask import Response, flash, jsonify, redirect, render_template, request, url_for

from app.console import auth, blueprint, facts, player, queries, replay, steps
from app.console.auth import current_key, rt
from app.console.blueprint import bp
from app.errors import DomainError, NotFound, StorageError
from app.models import RecordingState
from app.services.access import links
from app.services.core import recordings, retention, sessions


@bp.get("/recordings", endpoint="recordings")
@auth.signed_in()
def recordings_list():
    """The project's recordings and web replays, filtered (kind, room, state, dates, text, replay facts)."""
    f = queries.RecordingFilter.from_args(request.args)
    pid = current_key().project_id
    page = queries.recordings(rt(), pid, f)
    return render_template(
        "console/recordings.html",
        f=f,
        page=page,
        room_keys=queries.room_keys(rt(), pid),
        posters={row.rec.id: links.poster_link(rt(), row.rec) for row in page.items},
        retention=facts.retention(rt(), pid),
        media_words=facts.MEDIA,
    )


@bp.get("/recordings/states")
@auth.signed_in(json=True)
def states():
    """The current state, duration and size of the recordings named in `ids` (comma-separated)."""
    ids = [i for i in request.args.get("ids", "").split(",") if i]
    return jsonify(queries.states(rt(), current_key().project_id, ids))


@bp.get("/recordings/<recording_id>")
@auth.signed_in()
def recording(recording_id: str):
    """One recording: players (video, web replay), facts, state timeline, events, deliveries, actions."""
    key = current_key()
    rec = recordings.get(rt(), key.project_id, recording_id)
    web = replay.facts(rt(), key.project_id, rec.id)
    if web is not None:
        blueprint.allow_replay_content()
    deliveries = queries.deliveries_for_recording(rt(), key, rec.id) if auth.may("webhook:write") else None
    return render_template(
        "console/recording.html",
        rec=rec,
        media=player.sources(rt(), rec, key.id),
        replay=web,
        steps=steps.states(rec),
        events=steps.event_rows(player.events(rt(), rec), rec.created_at.timestamp()),
        deliveries=deliveries,
        kept=facts.retention(rt(), key.project_id).of(rec),
        ingested=facts.ingested(rt(), rec),
    )


@bp.get("/recordings/<recording_id>/replay")
@auth.signed_in()  # unsigned, it redirects to sign-in like a page: replay.js then reloads the page
def replay_events(recording_id: str):
    """A web replay's stored events in time order for the player (capped), with its timeline markers."""
    pid = current_key().project_id
    rec = recordings.get(rt(), pid, recording_id)
    web = replay.facts(rt(), pid, rec.id)
    if web is None:
        raise NotFound("this recording has no web replay")
    return Response(replay.events_body(rt(), rec.id, web.summary.events), mimetype="application/json")


@bp.get("/recordings/<recording_id>/download")
@auth.signed_in()
def download(recording_id: str):
    """Download a finished recording: a redirect to a freshly signed one-hour link, as the API does."""
    key = current_key()
    recording = recordings.get(rt(), key.project_id, recording_id)
    return redirect(links.download(rt(), recording, key.id), code=302)


@bp.post("/recordings/<recording_id>/stop")
@auth.signed_in("recording:write")
def stop(recording_id: str):
    """Stop a running recording as the API's stop does: a capture closes its last segment and the
    recording is finalized; pushed and events-only recordings stop at once."""
    pid = current_key().project_id
    rec = recordings.get(rt(), pid, recording_id)
    if rec.state != RecordingState.STARTED:
        flash(f"Not stopped: the recording is {rec.state} already.", "error")
    else:
        with _Reported():
            flash(STOPPED[sessions.stop(rt(), pid, recording_id).state], "info")
    return redirect(url_for(".recording", recording_id=recording_id), code=303)


STOPPED = {
    RecordingState.STARTED: (
        "Stop requested: the capture closes its last segment, then the video is finalized."
    ),
    RecordingState.STOPPED: "Recording stopped: the video is being finalized.",
    RecordingState.FINISHED: "Recording stopped and finished.",
    RecordingState.FAILED: "Recording stopped, and it failed: see why below.",
}


@bp.post("/recordings/<recording_id>/persist")
@auth.signed_in("recording:write")
def persist(recording_id: str):
    """Persist a recording (retention no longer destroys it), or undo that with persist=0."""
    on = request.form.get("persist") == "1"
    with _Reported():
        retention.set_flags(rt(), current_key(), recording_id, persist=on)
        flash(
            "Recording persisted: retention keeps it." if on else "Persist undone: retention applies.", "info"
        )
    return redirect(url_for(".recording", recording_id=recording_id), code=303)


@bp.post("/recordings/<recording_id>/legal-hold")
@auth.signed_in("admin")
def legal_hold(recording_id: str):
    """Put a recording under legal hold, or lift it with hold=0 (admin keys only)."""
    on = request.form.get("hold") == "1"
    with _Reported():
        retention.set_flags(rt(), current_key(), recording_id, legal_hold=on)
        flash("Legal hold set." if on else "Legal hold lifted.", "info")
    return redirect(url_for(".recording", recording_id=recording_id), code=303)


@bp.get("/recordings/<recording_id>/delete")
@auth.signed_in("recording:write")
def confirm_delete(recording_id: str):
    """Ask for confirmation before deleting a recording."""
    rec = recordings.get(rt(), current_key().project_id, recording_id)
    return render_template("console/confirm_delete.html", rec=rec)


@bp.post("/recordings/<recording_id>/delete")
@auth.signed_in("recording:write")
def delete(recording_id: str):
    """Delete a recording and its stored media, then show the list."""
    with _Reported() as outcome:
        recordings.delete(rt(), current_key().project_id, recording_id)
        flash(f"Recording {recording_id} deleted.", "info")
    if outcome.failed:
        return redirect(url_for(".recording", recording_id=recording_id), code=303)
    return redirect(url_for(".recordings"), code=303)


class _Reported:
    """Turn a service's refusal (legal hold, storage down, ...) into an error message on the next page."""

    failed = False

    def __enter__(self) -> _Reported:
        return self

    def __exit__(self, kind, error, tb) -> bool:
        if isinstance(error, DomainError | StorageError):
            self.failed = True
            message = error.message if isinstance(error, DomainError) else "object storage is unavailable"
            flash(f"Not done: {message}.", "error")
            return True
        return False
