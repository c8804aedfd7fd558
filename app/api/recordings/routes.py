"""Eyeson recordings: retrieve (with a fresh one-hour download link and, for sessions, the events) and
delete; push media chunks; retention flags (persist, legal hold), the download redirect and the link
issuance log."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Response, current_app, redirect, request
from flask.views import MethodView

from app.api import direct, presenters
from app.api.auth import authorized, authorized_if_known, current_key, require
from app.api.blueprint import Blueprint
from app.api.recordings import bodies
from app.api.recordings.schemas import ChunkSchema, FlagsArgs, LinkIssuanceSchema, LinksPageArgs
from app.api.schemas import RecordingSchema
from app.api.sessions import stream
from app.api.sessions.schemas import SessionSchema
from app.errors import Unprocessable
from app.models import ApiKey, Recording
from app.runtime import Runtime
from app.services.access import links
from app.services.core import display, recordings, retention
from app.services.pipeline import ingest

blp = Blueprint("recordings", __name__, url_prefix="/recordings", description="Eyeson-compatible recordings")


def rt() -> Runtime:
    return current_app.extensions["meetrec"]


def one(recording: Recording) -> dict:
    """A recording answer; a download link in it goes to the issuance log with the calling key."""
    return presenters.issued(rt(), [recording], current_key().id)[0]


def read(rt: Runtime, key: ApiKey, recording_id: str) -> Response:
    """`GET /recordings/{id}` for `key`, through Flask or direct."""
    return stream.session(rt, display.recording(rt, key.project_id, recording_id), key.id)


def _read_direct(rt: Runtime, headers: Mapping[str, str], recording_id: str) -> Response:
    return read(rt, authorized(rt, headers.get("authorization", ""), READ), recording_id)


async def _read_on_loop(rt: Runtime, headers: Mapping[str, str], recording_id: str) -> Response | None:
    """`read` on the event loop when all it needs is its one SQL read: a key this process holds, a
    recording with no events to stream, no link new to the audit log. Else None: `read` answers."""
    key = authorized_if_known(rt, headers.get("authorization", ""), READ)
    if key is None:
        return None
    recording = await display.recording_on_loop(rt, key.project_id, recording_id)
    if recording.event_count:
        return None
    shown = presenters.issued_again(rt, [recording], key.id)
    return None if shown is None else stream.json_object(shown[0], "events", ())


READ = "recording:read"
DIRECT = [direct.Route("GET", "/recordings/<recording_id>", _read_direct, on_loop=_read_on_loop)]


@blp.route("/<recording_id>")
class RecordingById(MethodView):
    @require(READ)
    @blp.response(200, SessionSchema, description="the recording in its current state, with its events")
    @blp.errors(
        e404="unknown recording, another project's, or deleted",
    )
    def get(self, recording_id: str):
        """Get a recording or session; duration and links.download tell started, stopped and finished apart"""
        return read(rt(), current_key(), recording_id)

    @require("recording:write")
    @blp.arguments(FlagsArgs, location="eyeson")
    @blp.response(200, RecordingSchema, description="the recording with its flags changed")
    @blp.errors(
        e400="malformed body",
        e403="key lacks recording:write, or changes legal_hold without the admin scope",
        e404="unknown recording, another project's, or deleted",
        e409="a deletion is removing the recording's objects: its flags can no longer change",
        e422="no persist or legal_hold given, a non-boolean value, or an unknown field",
    )
    def patch(self, args: dict, recording_id: str):
        """Set persist (exempt from retention) or legal_hold (admin only)"""
        return one(retention.set_flags(rt(), current_key(), recording_id, **args))

    @require("recording:write")
    @blp.response(200, RecordingSchema, description="deleted; the body is the recording as it was")
    @blp.errors(
        e404="unknown recording, another project's, or deleted",
        e409="the recording is under legal hold",
        e503="object storage unavailable; nothing was deleted",
    )
    def delete(self, recording_id: str):
        """Delete a recording and its stored media; it answers 404 afterwards"""
        rec = recordings.get(rt(), current_key().project_id, recording_id)
        recordings.delete(rt(), rec.project_id, rec.id)
        # Unsigned: links.self names the (now 404) resource, download and poster are null, as the schema says.
        return presenters.recording(rt(), rec) | {"state": "deleted"}


@blp.route("/<recording_id>/media/<int:seq>")
class RecordingMedia(MethodView):
    @require("ingest")
    @blp.doc(
        requestBody={
            "required": True,
            "description": "One MediaRecorder chunk (WebM bytes), numbered from 0 in recording order",
            "content": {"video/webm": {"schema": {"type": "string", "format": "binary"}}},
        }
    )
    @blp.response(201, ChunkSchema, description="chunk stored")
    @blp.alt_response(200, schema=ChunkSchema, description="the same bytes were stored before (a retry)")
    @blp.errors(
        e404="unknown recording, another project's, or deleted",
        e409="the recording pulls its own source, or its stop was requested before this chunk was stored "
        "(nothing kept: send the stop after the last chunk's answer), or this number holds other bytes",
        e413="the chunk is larger than MEETREC_MAX_CHUNK_BYTES (sent with Content-Length or chunked)",
        e422="empty chunk",
        e503="object storage unavailable; retry the same chunk",
    )
    def put(self, recording_id: str, seq: int):
        """Upload one chunk of a pushed recording (idempotent per number)"""
        data = bodies.read_limited(request, rt().config.max_chunk_bytes)
        if not data:
            raise Unprocessable("the chunk is empty", errors={"body": ["send the chunk's bytes"]})
        if seq > ingest.MAX_SEQ:
            raise Unprocessable(f"seq must be 0..{ingest.MAX_SEQ}", errors={"seq": ["out of range"]})
        created, digest = ingest.put_chunk(rt(), current_key().project_id, recording_id, seq, data)
        return {"seq": seq, "size": len(data), "sha256": digest}, (201 if created else 200)


_FLAG_ERRORS = {
    "e404": "unknown recording, another project's, or deleted",
    "e409": "a deletion is removing the recording's objects: its flags can no longer change",
}


@blp.route("/<recording_id>/persist")
class RecordingPersist(MethodView):
    @require("recording:write")
    @blp.response(200, RecordingSchema, description="persisted: retention no longer destroys it")
    @blp.errors(**_FLAG_ERRORS)
    def post(self, recording_id: str):
        """Persist a recording: keep it past the retention period until deleted"""
        return one(retention.set_flags(rt(), current_key(), recording_id, persist=True))

    @require("recording:write")
    @blp.response(200, RecordingSchema, description="no longer persisted: retention applies again")
    @blp.errors(**_FLAG_ERRORS)
    def delete(self, recording_id: str):
        """Undo persist: the recording expires with its project's retention again"""
        return one(retention.set_flags(rt(), current_key(), recording_id, persist=False))


@blp.route("/<recording_id>/legal-hold")
class RecordingLegalHold(MethodView):
    @require("admin")
    @blp.response(200, RecordingSchema, description="on hold: neither retention nor DELETE removes it")
    @blp.errors(**_FLAG_ERRORS)
    def post(self, recording_id: str):
        """Put a recording under legal hold (admin keys only)"""
        return one(retention.set_flags(rt(), current_key(), recording_id, legal_hold=True))

    @require("admin")
    @blp.response(200, RecordingSchema, description="hold lifted: retention and DELETE apply again")
    @blp.errors(**_FLAG_ERRORS)
    def delete(self, recording_id: str):
        """Lift a recording's legal hold (admin keys only)"""
        return one(retention.set_flags(rt(), current_key(), recording_id, legal_hold=False))


@blp.route("/<recording_id>/download", methods=["GET"])
@require("recording:read")
@blp.response(302, description="redirect to a fresh presigned link, valid one hour")
@blp.errors(
    e404="unknown recording, another project's, or deleted",
    e409="the recording is not finished yet",
    e503="object storage unavailable",
)
def download(recording_id: str):
    """Download a finished recording: a redirect to a freshly signed one-hour link"""
    key = current_key()
    recording = recordings.get(rt(), key.project_id, recording_id)
    return redirect(links.download(rt(), recording, key.id), code=302)


@blp.route("/<recording_id>/links", methods=["GET"])
@require("admin")
@blp.arguments(LinksPageArgs, location="query")
@blp.response(200, LinkIssuanceSchema(many=True), description="issued links, newest first, 50 a page")
@blp.errors(
    e404="unknown recording or another project's",
    e422="invalid page",
)
def link_issuances(args: dict, recording_id: str):
    """List the download links handed out for a recording (audit log, admin keys only)"""
    found = links.issuances(rt(), current_key().project_id, recording_id, args["page"])
    return [
        {
            "recording_id": i.recording_id,
            "api_key_id": i.api_key_id,
            "purpose": i.purpose,
            "issued_at": presenters.iso(i.issued_at),
            "expires_at": presenters.iso(i.expires_at),
        }
        for i in found
    ]
