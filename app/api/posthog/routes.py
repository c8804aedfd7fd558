"""PostHog's session-recordings and playlists API (`posthog-*.txt`) under `/api/projects/{project_id}/`,
over the web replays the rrweb dialect ingests: a tool written against PostHog works with its host and
key changed. Every route takes a trailing slash or none; errors take PostHog's shape
(app.api.posthog.errors). `{project_id}` is the key's project id (from `GET /api/projects/`) or
`@current`.
"""

from __future__ import annotations

import json
import uuid
from itertools import chain
from typing import Any
from urllib.parse import urlsplit

from flask import Response, request
from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.api.posthog import access, presenters
from app.api.posthog.access import caller, key, require, rt
from app.api.posthog.schemas import (
    PostHogMatchingEventsSchema,
    PostHogPageArgs,
    PostHogPlaylistCreateSchema,
    PostHogPlaylistFieldsSchema,
    PostHogPlaylistListArgs,
    PostHogPlaylistPageSchema,
    PostHogPlaylistRecordingsSchema,
    PostHogPlaylistSchema,
    PostHogProjectPageSchema,
    PostHogProjectSchema,
    PostHogPropertiesSchema,
    PostHogRecordingPageSchema,
    PostHogRecordingSchema,
    PostHogRecordingUpdateSchema,
    PostHogSharingSchema,
    PostHogSharingUpdateSchema,
    PostHogSimilarArgs,
    PostHogSimilarListSchema,
    PostHogSnapshotArgs,
    PostHogSnapshotSourcesSchema,
    PostHogSuccessSchema,
    PostHogSummarySchema,
)
from app.errors import BadPayload, NotFound
from app.models import Recording
from app.services.access import keys
from app.services.core import recordings, retention
from app.services.interactions import (
    catalog,
    playlists,
    replay_facts,
    replay_insights,
    sharing,
    snapshots,
    views,
)

blp = Blueprint(
    "posthog",
    __name__,
    url_prefix="/api/projects",
    description="PostHog dialect: session recordings, snapshots, sharing and playlists",
)

_UNKNOWN = "unknown recording, another project's, or deleted (or another project's id)"
_MATCH_LIMIT = 10_000
_CUSTOM = 5  # rrweb's Custom event: `data.tag` names it
_MAX_BLOB_KEY = 2**31 - 1  # a block index (ReplayBlock.seq is a 32-bit integer)
_MAX_JSON_PARAM = 20_000  # characters of a JSON query parameter (session_ids, events)
_EVENTS = uuid.UUID("0d6f3f55-7c55-4d5e-8d0f-6f1e2b9b6c01")  # namespace of event uuids
# PostHog reads these of a session's first page view; meetrec keeps the metadata keys of these names.
_PROPERTIES = ("$os", "$browser", "$device_type", "$geoip_country_code", "$geoip_country_name")


def _entry(project_id: str, recording_id: str) -> catalog.Entry:
    """The recording in full (for its JSON), if the caller may read it."""
    access.readable(recording_id)
    return catalog.entry(rt(), project_id, recording_id)


def _recording(project_id: str, recording_id: str) -> Recording:
    """The recording row alone (to act on it), if the caller may read it."""
    access.readable(recording_id)
    return catalog.locate(rt(), project_id, recording_id)


# --- projects -------------------------------------------------------------------------------------


@blp.route("", strict_slashes=False)
class Projects(MethodView):
    @require("project:read")
    @blp.response(200, PostHogProjectPageSchema, description="the projects the key sees: its own")
    def get(self):
        """List the projects the key can read (a key belongs to one project)"""
        found = _project(access.project_id())
        return {"count": 1, "next": None, "previous": None, "results": [found]}


@blp.route("/<project_id>", strict_slashes=False)
class ProjectById(MethodView):
    @require("project:read")
    @blp.response(200, PostHogProjectSchema, description="the project, with its public api_token")
    @blp.errors(e404="another project's id")
    def get(self, project_id: str):
        """Get a project by id or `@current`, with its public ingest token"""
        return _project(project_id)


@blp.route("/<project_id>/reset_token", strict_slashes=False)
class ResetToken(MethodView):
    @require("project:write")
    @blp.response(200, PostHogProjectSchema, description="the project, with its new api_token")
    @blp.errors(e404="another project's id")
    def patch(self, project_id: str):
        """Rotate the project's public ingest token: the old one stops working, a new one is shown"""
        keys.rotate_public_token(rt(), project_id)
        return _project(project_id)


def _project(project_id: str) -> dict[str, Any]:
    project = catalog.project(rt(), project_id)
    token = keys.public_token(rt(), project_id)
    return presenters.project(project, token, catalog.retention_days(rt(), project_id))


# --- session recordings ---------------------------------------------------------------------------


@blp.route("/<project_id>/session_recordings", strict_slashes=False)
class SessionRecordings(MethodView):
    @require("session_recording:read")
    @blp.arguments(PostHogPageArgs, location="query")
    @blp.response(200, PostHogRecordingPageSchema, description="the project's web replays, newest first")
    @blp.errors(e400="limit outside 1..1000 or a negative offset", e404="another project's id")
    def get(self, args: dict, project_id: str):
        """List session recordings (limit/offset pages with absolute next/previous links)"""
        count, found = catalog.page(rt(), project_id, args["limit"], args["offset"])
        following, preceding = presenters.page_links(
            rt().config.public_url, count, args["limit"], args["offset"]
        )
        now = rt().now()
        results = [presenters.recording(e, key().id, now) for e in found]
        return _json({"count": count, "next": following, "previous": preceding, "results": results})


@blp.route("/<project_id>/session_recordings/<session:recording_id>", strict_slashes=False)
class SessionRecording(MethodView):
    @require("session_recording:read", shared=True)
    @blp.response(
        200, PostHogRecordingSchema, description="the recording (a sharing token sees id, duration, times)"
    )
    @blp.errors(e404=_UNKNOWN)
    def get(self, project_id: str, recording_id: str):
        """Retrieve a session recording with its computed facts (marks it viewed by the key)"""
        entry = _entry(project_id, recording_id)
        api_key = caller().key
        if api_key is None:
            return presenters.shared_recording(entry)
        views.mark_viewed(rt(), entry.recording.id, api_key.id)
        return _json(presenters.recording(entry.viewed_by(api_key.id), api_key.id, rt().now()))

    @require("session_recording:write")
    @blp.arguments(PostHogRecordingUpdateSchema)
    @blp.response(200, PostHogSuccessSchema, description="updated")
    @blp.errors(e400="neither viewed nor analyzed is true, or a field of the wrong type", e404=_UNKNOWN)
    def patch(self, args: dict, project_id: str, recording_id: str):
        """Update a session recording: `viewed: true` marks it viewed by the key"""
        if not (args.get("viewed") or args.get("analyzed")):
            raise BadPayload("At least one of 'viewed' or 'analyzed' must be provided.")
        recording = _recording(project_id, recording_id)
        if args.get("viewed"):
            views.mark_viewed(rt(), recording.id, key().id)
        return {"success": True}

    @require("session_recording:write")
    @blp.response(204, description="deleted with its stored events; it answers 404 afterwards")
    @blp.errors(
        e404=_UNKNOWN,
        e409="the recording is under legal hold",
        e503="object storage is unavailable; nothing was deleted",
    )
    def delete(self, project_id: str, recording_id: str):
        """Delete a session recording and its stored events"""
        recordings.delete(rt(), project_id, _recording(project_id, recording_id).id)


@blp.route("/<project_id>/session_recordings/<session:recording_id>/persist", strict_slashes=False)
class Persist(MethodView):
    @require("session_recording:write")
    @blp.response(200, PostHogSuccessSchema, description="persisted: retention no longer destroys it")
    @blp.errors(e404=_UNKNOWN, e409="the recording is being deleted")
    def post(self, project_id: str, recording_id: str):
        """Persist a session recording: exempt it from retention"""
        retention.set_flags(rt(), key(), _recording(project_id, recording_id).id, persist=True)
        return {"success": True}


@blp.route("/<project_id>/session_recordings/<session:recording_id>/snapshots", strict_slashes=False)
class Snapshots(MethodView):
    @require("session_recording:read", shared=True)
    @blp.arguments(PostHogSnapshotArgs, location="query")
    @blp.doc(
        responses={
            200: {
                "description": "without `source`: the sources (one blob_v2 per stored block); with "
                "`source=blob_v2&start_blob_key=&end_blob_key=`: those blocks' events as JSON lines "
                "`[windowId, event]`",
                "content": {
                    "application/json": {"schema": PostHogSnapshotSourcesSchema},
                    "application/jsonl": {"schema": {"type": "string"}},
                },
            }
        }
    )
    @blp.errors(
        e400="an unknown source, block keys missing or not integers, or more than 100 blocks at once",
        e404=_UNKNOWN + ", or a block index past the last block",
        e503="object storage is unavailable",
    )
    def get(self, args: dict, project_id: str, recording_id: str):
        """Get a recording's snapshot sources, or the events of a range of its blocks as JSON lines"""
        recording = _recording(project_id, recording_id)
        source = args.get("source")
        if source is None:
            blocks = snapshots.blocks_of(rt(), recording.id)
            return _json({"sources": [_source(b) for b in blocks]})
        if source != "blob_v2":
            raise BadPayload(
                "Invalid source must be one of [blob_v2, None]",
                errors={"query": {"source": ["Invalid source must be one of [blob_v2, None]"]}},
            )
        first, last = _blob_range(args)
        api_key = caller().key
        if api_key is not None:
            views.mark_viewed(rt(), recording.id, api_key.id)
        chunks = snapshots.read(rt(), recording.id, recording.external_id, first, last)
        head = next(chunks, b"")  # storage trouble answers 503 before any byte is sent
        response = Response(chain([head], chunks), mimetype="application/jsonl")
        # Blocks never change, but a shared link can be turned off: no cache may keep what a token read.
        response.headers["Cache-Control"] = "private, max-age=3600" if api_key else "no-store"
        return response


def _json(body: dict) -> Response:
    """`body` as built (it has the documented shape already): the hot routes skip the schema's dump."""
    return Response(json.dumps(body), mimetype="application/json")


def _source(block: Any) -> dict[str, Any]:
    return {
        "source": "blob_v2",
        "blob_key": str(block.seq),
        "start_timestamp": presenters.iso_ms(block.first_timestamp),
        "end_timestamp": presenters.iso_ms(block.last_timestamp),
    }


def _blob_range(args: dict) -> tuple[int, int]:
    start, end = args.get("start_blob_key"), args.get("end_blob_key")
    if start is None or end is None:
        raise BadPayload("Must provide both start blob key and end blob key")
    try:
        first, last = int(start), int(end)
    except ValueError:
        raise BadPayload("Blob keys must be integers") from None
    if last > _MAX_BLOB_KEY:
        raise NotFound("Block index out of range")
    if first < 0 or last < first:
        raise BadPayload("start_blob_key must be 0 or more and at most end_blob_key")
    if last - first + 1 > snapshots.MAX_BLOCKS_PER_READ:
        raise BadPayload(f"Cannot request more than {snapshots.MAX_BLOCKS_PER_READ} blob keys at once")
    return first, last


@blp.route("/<project_id>/session_recordings/<session:recording_id>/similar_sessions", strict_slashes=False)
class SimilarSessions(MethodView):
    @require("session_recording:read")
    @blp.arguments(PostHogSimilarArgs, location="query")
    @blp.response(
        200,
        PostHogSimilarListSchema,
        description="the project's other recordings most like this one, most similar first. Similarity "
        "(0..1) = 0.5 x Jaccard index of the sets of pages visited (URL without query or fragment) + "
        "0.5 x cosine similarity of the action profiles (per-minute rates of clicks, keypresses, mouse "
        "activity and console errors, and the active fraction of the time); among the newest 5,000.",
    )
    @blp.errors(e400="limit outside 1..50", e404=_UNKNOWN)
    def get(self, args: dict, project_id: str, recording_id: str):
        """Find recordings similar to this one by pages visited and action profile"""
        entry = _entry(project_id, recording_id)
        now = rt().now()
        results = [
            presenters.recording(found, key().id, now) | {"similarity": round(score, 4)}
            for score, found in catalog.similar(rt(), project_id, entry, args["limit"])
        ]
        return {"results": results}


@blp.route("/<project_id>/session_recordings/<session:recording_id>/summarize", strict_slashes=False)
class Summarize(MethodView):
    @require("session_recording:read")
    @blp.response(
        200,
        PostHogSummarySchema,
        description="a summary built by fixed rules from the stored events (pages visited, key actions, "
        "console errors, rage clicks: 3+ clicks within 1 s and 30 px, time active); no language model "
        "is involved, so the same events always give the same summary",
    )
    @blp.errors(e404=_UNKNOWN, e503="object storage is unavailable")
    def post(self, project_id: str, recording_id: str):
        """Summarize a recording from its events by fixed rules (deterministic, no language model)"""
        recording = _recording(project_id, recording_id)
        events = (event for _, event in snapshots.events_in_time_order(rt(), recording.id))
        return replay_insights.summarize(events) | {"generated_by": "meetrec rules (no language model)"}


@blp.route("/<project_id>/session_recordings/<session:recording_id>/sharing", strict_slashes=False)
class Sharing(MethodView):
    @require("sharing_configuration:read")
    @blp.response(200, PostHogSharingSchema, description="the recording's public link settings")
    @blp.errors(e404=_UNKNOWN)
    def get(self, project_id: str, recording_id: str):
        """Get a recording's sharing settings: whether its public link is on, and its token"""
        recording = _recording(project_id, recording_id)
        return _sharing(sharing.configuration(rt(), project_id, recording.id))

    @require("sharing_configuration:write")
    @blp.arguments(PostHogSharingUpdateSchema)
    @blp.response(
        200,
        PostHogSharingSchema,
        description="on: a new access token opens this recording read-only (retrieve and snapshots, "
        "with ?sharing_access_token=); off: the token stops working at once",
    )
    @blp.errors(e400="enabled missing or not a boolean", e404=_UNKNOWN)
    def patch(self, args: dict, project_id: str, recording_id: str):
        """Turn a recording's public link on or off (off revokes its token at once)"""
        recording = _recording(project_id, recording_id)
        return _sharing(sharing.set_enabled(rt(), project_id, recording.id, args["enabled"]))


@blp.route("/<project_id>/session_recordings/<session:recording_id>/sharing/refresh", strict_slashes=False)
class SharingRefresh(MethodView):
    @require("sharing_configuration:write")
    @blp.response(200, PostHogSharingSchema, description="a new token; the old one stops working at once")
    @blp.errors(e404=_UNKNOWN)
    def post(self, project_id: str, recording_id: str):
        """Replace the access token of a recording's public link"""
        recording = _recording(project_id, recording_id)
        return _sharing(sharing.refresh(rt(), project_id, recording.id))


def _sharing(found: sharing.Sharing) -> dict[str, Any]:
    return {
        "created_at": presenters.iso(found.created_at),
        "enabled": found.enabled,
        "access_token": found.access_token,
        "settings": {},
        "password_required": False,
    }


@blp.route("/<project_id>/session_recordings/matching_events", strict_slashes=False)
class MatchingEvents(MethodView):
    @require("session_recording:read")
    @blp.doc(
        parameters=[
            {
                "name": "session_ids",
                "in": "query",
                "required": True,
                "schema": {"type": "string"},
                "description": 'A JSON array holding exactly one session id: ["<id>"]',
            },
            {
                "name": "events",
                "in": "query",
                "schema": {"type": "string"},
                "description": 'A JSON array of event filters `[{"id": "$pageview"}]`: `$pageview` matches '
                "rrweb Meta events, `$autocapture` clicks, any other name custom events with that tag",
            },
        ]
    )
    @blp.response(200, PostHogMatchingEventsSchema, description="the matching events, in order")
    @blp.errors(
        e400="session_ids not a JSON array of exactly one id, or no event filter", e503="storage unavailable"
    )
    def get(self, project_id: str):
        """List the events of one recording that match event filters"""
        session_ids = _json_param("session_ids")
        if not isinstance(session_ids, list) or len(session_ids) != 1 or not isinstance(session_ids[0], str):
            raise BadPayload("Must specify exactly one session_id")
        names = _event_names(_json_param("events"))
        if not names:
            raise BadPayload("Must specify at least one event or action filter, or event properties filter")
        try:
            recording = catalog.locate(rt(), project_id, session_ids[0])
        except NotFound:
            return {"results": []}
        return {"results": _matching(recording, names)}


def _json_param(name: str) -> Any:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        if len(raw) > _MAX_JSON_PARAM:
            raise ValueError("too long")
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise BadPayload(f"{name} must be JSON", errors={"query": {name: ["must be JSON"]}}) from None


def _event_names(filters: Any) -> set[str]:
    if filters is None:
        return set()
    if not isinstance(filters, list):
        raise BadPayload(
            "events must be a JSON array", errors={"query": {"events": ["must be a JSON array"]}}
        )
    names = [f.get("id") if isinstance(f, dict) else f for f in filters]
    return {n for n in names if isinstance(n, str) and n}


def _matching(recording: Recording, names: set[str]) -> list[dict[str, str | None]]:
    """The recording's events with one of `names`, in time order. An event posthog-js captured is itself
    (its own uuid); where the recording holds none of a name, rrweb's own events stand in: a Meta event
    for `$pageview`, a click for `$autocapture`."""
    own: dict[str, list[tuple[int, dict[str, str | None]]]] = {}
    derived: dict[str, list[tuple[int, dict[str, str | None]]]] = {}
    for order, (sequence, event) in enumerate(snapshots.events_in_time_order(rt(), recording.id)):
        name, captured_uuid = _event_name(event)
        if name not in names:
            continue
        bucket = (own if captured_uuid else derived).setdefault(name, [])
        if len(bucket) < _MATCH_LIMIT:
            match_uuid = captured_uuid or str(uuid.uuid5(_EVENTS, f"{recording.id}:{sequence}"))
            bucket.append(
                (order, {"uuid": match_uuid, "timestamp": presenters.iso_ms(int(event["timestamp"]))})
            )
    chosen = [own.get(name) or derived.get(name, []) for name in names]
    return [match for _, match in sorted(chain.from_iterable(chosen), key=lambda m: m[0])[:_MATCH_LIMIT]]


def _event_name(event: dict[str, Any]) -> tuple[str | None, str | None]:
    """The PostHog event name an rrweb event answers to, and the uuid of the event posthog-js captured
    (kept as a Custom event) when it is one."""
    kind, data = event.get("type"), replay_facts.data_of(event)
    if kind == replay_facts.META:
        return "$pageview", None
    if kind == _CUSTOM and isinstance(data.get("tag"), str):
        payload = data.get("payload")
        captured = payload.get("uuid") if isinstance(payload, dict) else None
        return str(data["tag"]), captured if isinstance(captured, str) and captured else None
    if (
        kind == replay_facts.INCREMENTAL
        and data.get("source") == replay_facts.MOUSE_INTERACTION
        and data.get("type") in replay_facts.CLICK_TYPES
    ):
        return "$autocapture", None
    return None, None


@blp.route("/<project_id>/session_recordings/properties", strict_slashes=False)
class Properties(MethodView):
    @require("session_recording:read")
    @blp.doc(
        parameters=[
            {
                "name": "session_ids",
                "in": "query",
                "required": True,
                "schema": {"type": "string"},
                "description": 'A JSON array of session ids (at most 100): ["<id>", ...]',
            }
        ]
    )
    @blp.response(
        200,
        PostHogPropertiesSchema,
        description="per known session: $current_url, $host, $pathname (its first page) and the metadata "
        "keys $os, $browser, $device_type, $geoip_country_code, $geoip_country_name where set",
    )
    @blp.errors(e400="session_ids missing, not a JSON array of strings, or over 100")
    def get(self, project_id: str):
        """Get the properties of sessions: their first page and browser facts"""
        session_ids = _json_param("session_ids")
        if not isinstance(session_ids, list) or not session_ids:
            raise BadPayload("Must specify at least one session_id")
        if len(session_ids) > 100:
            raise BadPayload("At most 100 session_ids at once")
        for item in session_ids:
            if not isinstance(item, str):
                raise BadPayload(f"Invalid session_id: {str(item)[:64]} - not a string")
        found = catalog.by_external_ids(rt(), project_id, session_ids)
        return {"results": [{"id": e.recording.external_id, "properties": _properties(e)} for e in found]}


def _properties(entry: catalog.Entry) -> dict[str, Any]:
    found: dict[str, Any] = {name: entry.meta[name] for name in _PROPERTIES if name in entry.meta}
    url = entry.summary.start_url
    if url:
        parts = urlsplit(url)
        found |= {"$current_url": url, "$host": parts.netloc, "$pathname": parts.path or "/"}
    return found


# --- playlists ------------------------------------------------------------------------------------


@blp.route("/<project_id>/session_recording_playlists", strict_slashes=False)
class Playlists(MethodView):
    @require("session_recording_playlist:read")
    @blp.arguments(PostHogPlaylistListArgs, location="query")
    @blp.response(
        200, PostHogPlaylistPageSchema, description="the project's playlists, pinned first, then newest"
    )
    @blp.errors(e400="a bad limit, offset, type or pinned", e404="another project's id")
    def get(self, args: dict, project_id: str):
        """List session recording playlists"""
        recording_id = None
        if "session_recording_id" in args:
            try:
                recording_id = catalog.locate(rt(), project_id, args["session_recording_id"]).id
            except NotFound:
                recording_id = ""
        count, found = playlists.page(
            rt(),
            project_id,
            args["limit"],
            args["offset"],
            search=args.get("search"),
            pinned=args.get("pinned"),
            kind=args.get("type"),
            recording_id=recording_id,
        )
        following, preceding = presenters.page_links(
            rt().config.public_url, count, args["limit"], args["offset"]
        )
        return {"count": count, "next": following, "previous": preceding, "results": _playlists(found)}

    @require("session_recording_playlist:write")
    @blp.arguments(PostHogPlaylistCreateSchema)
    @blp.response(201, PostHogPlaylistSchema, description="the new playlist, with its short_id")
    @blp.errors(e400="type missing or not collection/filters, or a field of the wrong type")
    def post(self, args: dict, project_id: str):
        """Create a session recording playlist"""
        args.pop("_create_in_folder", None)
        return _playlists([playlists.create(rt(), project_id, key().id, args)])[0], 201


def _playlists(found: list) -> list[dict[str, Any]]:
    api_key = caller().key
    counts = playlists.counts(rt(), [p.id for p in found], api_key.id if api_key else None)
    return [presenters.playlist(p, counts[p.id]) for p in found]


@blp.route("/<project_id>/session_recording_playlists/<short:short_id>", strict_slashes=False)
class PlaylistById(MethodView):
    @require("session_recording_playlist:read")
    @blp.response(200, PostHogPlaylistSchema, description="the playlist")
    @blp.errors(e404="unknown, deleted or another project's playlist")
    def get(self, project_id: str, short_id: str):
        """Retrieve a session recording playlist by short_id"""
        return _playlists([playlists.get(rt(), project_id, short_id)])[0]

    @require("session_recording_playlist:write")
    @blp.arguments(PostHogPlaylistFieldsSchema)
    @blp.response(
        200, PostHogPlaylistSchema, description="the playlist as updated (`deleted: true` soft-deletes)"
    )
    @blp.errors(e400="a field of the wrong type", e404="unknown, deleted or another project's playlist")
    def patch(self, args: dict, project_id: str, short_id: str):
        """Update a playlist; `deleted: true` deletes it, `deleted: false` restores it"""
        args.pop("_create_in_folder", None)
        return _playlists([playlists.update_fields(rt(), project_id, short_id, args)])[0]

    @require("session_recording_playlist:write")
    @blp.response(204, description="deleted (soft, as `PATCH {deleted: true}`; PostHog itself answers 405)")
    @blp.errors(e404="unknown, deleted or another project's playlist")
    def delete(self, project_id: str, short_id: str):
        """Delete a playlist (soft: the same as PATCH deleted=true)"""
        playlists.soft_delete(rt(), project_id, short_id)


@blp.route("/<project_id>/session_recording_playlists/<short:short_id>/recordings", strict_slashes=False)
class PlaylistRecordings(MethodView):
    @require("session_recording_playlist:read")
    @blp.arguments(PostHogPageArgs, location="query")
    @blp.response(
        200, PostHogPlaylistRecordingsSchema, description="the playlist's recordings, last added first"
    )
    @blp.errors(e400="a bad limit or offset", e404="unknown, deleted or another project's playlist")
    def get(self, args: dict, project_id: str, short_id: str):
        """List the recordings of a playlist"""
        playlist = playlists.get(rt(), project_id, short_id)
        ids = playlists.recording_ids(rt(), playlist, args["limit"] + 1, args["offset"])
        found = catalog.entries(rt(), project_id, ids[: args["limit"]])
        now = rt().now()
        results = [presenters.recording(e, key().id, now) for e in found]
        return {"results": results, "has_next": len(ids) > args["limit"], "version": 4}


@blp.route(
    "/<project_id>/session_recording_playlists/<short:short_id>/recordings/<recording_id>",
    strict_slashes=False,
)
class PlaylistRecording(MethodView):
    @require("session_recording_playlist:write")
    @blp.response(
        200, PostHogSuccessSchema, description="the recording is in the playlist (adding twice is a no-op)"
    )
    @blp.errors(
        e400="the playlist is of type filters (it holds no recordings)",
        e404="unknown playlist or recording, deleted, or another project's",
    )
    def post(self, project_id: str, short_id: str, recording_id: str):
        """Add a recording to a playlist"""
        playlists.add(rt(), project_id, short_id, catalog.locate(rt(), project_id, recording_id).id)
        return {"success": True}

    @require("session_recording_playlist:write")
    @blp.response(204, description="the recording is no longer in the playlist")
    @blp.errors(e404="unknown playlist or recording, or the playlist does not hold it")
    def delete(self, project_id: str, short_id: str, recording_id: str):
        """Remove a recording from a playlist"""
        playlists.remove(rt(), project_id, short_id, catalog.locate(rt(), project_id, recording_id).id)
