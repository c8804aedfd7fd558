"""The rrweb cloud routes (`rrweb-cloud.txt`) under `/rrweb`: a client built for rrweb cloud works with
only its base URL changed to `http://<meetrec>/rrweb`.

The WebSocket ingest route (`/rrweb/recordings/{recordingId}/ingest/ws`) runs on the ASGI side of the api
process (app.api.rrweb.socket); every other route is here. Ids are the client's own (a recording's
project-scoped external id). Ingest and meta answer CORS preflights. `GET /rrweb/record.js` serves the
first-party recorder (app.api.rrweb.script): a page's beacon sends its unacknowledged WebSocket frames
to the batch ingest with `?key=`, a text/plain body and stream positioning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import chain
from urllib.parse import urlencode

from flask import Response, current_app, request
from flask.views import MethodView

from app import payloads
from app.api.blueprint import Blueprint
from app.api.rrweb import access, script
from app.api.rrweb.access import project_id, require, rt
from app.api.rrweb.schemas import (
    EXAMPLE_REPLAY,
    INGEST_EXAMPLES,
    EventSchema,
    IngestArgs,
    ListArgs,
    MetaEntrySchema,
    RecordingListSchema,
    SigningKeySchema,
    StatisticsSchema,
)
from app.errors import BadPayload, Unprocessable
from app.services.access import signing
from app.services.interactions import metadata, replays
from app.services.interactions.replays import StreamPosition

blp = Blueprint("rrweb", __name__, url_prefix="/rrweb", description="rrweb cloud: web session replays")

_UNKNOWN = "unknown recording, another project's, or deleted"
_META_FILTER = re.compile(r"^meta\[(.+)\]$")
_BROWSER_ROUTES = re.compile(r"^/rrweb/recordings/[^/]+/(ingest|meta)/?$")
_STREAM_CHUNK = 64 * 1024
_BATCH_BODY = {
    "description": "rrweb events `{type, timestamp, data}` (`type` 0-255: 0 DomContentLoaded, 1 Load, 2 "
    "FullSnapshot, 3 IncrementalSnapshot, 4 Meta, 5 Custom, 6 Plugin; `timestamp` Unix ms; `data` an "
    "object, stored as recorded): a JSON array, an object with `events`, or NDJSON; optionally "
    "compressed (`Content-Encoding: gzip | br | zstd`, or `?contentEncoding=` where no header can be "
    "set). An `Idempotency-Key` header makes a retried batch a no-op; so does stream positioning "
    "(`?stream=&after=&frames=`: the batch is frames after+1..after+frames of that WebSocket stream, "
    "stored only if the stream holds exactly `after`).",
    "required": True,
    "content": {
        "application/json": {
            "schema": {"type": "array", "items": {"type": "object"}},
            "examples": INGEST_EXAMPLES,
        },
        "application/x-ndjson": {
            "schema": {"type": "string"},
            "example": "\n".join(json.dumps(event) for event in EXAMPLE_REPLAY[:3]),
        },
        "text/plain": {
            "schema": {"type": "string"},
            "description": "JSON or NDJSON, told apart by its content (what a beacon can send)",
        },
    },
}


@blp.before_request
def _cors_preflight() -> Response | None:
    if request.method == "OPTIONS" and _BROWSER_ROUTES.match(request.path):
        return access.preflight()
    return None


@blp.after_request
def _cors(response: Response) -> Response:
    return access.allow_origin(response) if _BROWSER_ROUTES.match(request.path) else response


@blp.route("/record.js")
class RecordScript(MethodView):
    @blp.response(
        200,
        {"type": "string"},
        description="the script: rrweb's recorder and the `rrwebCloud` client (ETag; cached a day; any "
        "origin may load it)",
        content_type="text/javascript",
        headers={"ETag": {"description": "The script's version", "schema": {"type": "string"}}},
    )
    @blp.alt_response(304, description="Not Modified: the If-None-Match ETag is the current script's")
    def get(self):
        """Get the first-party recorder script for a `<script src>` (rrweb cloud's record.js)"""
        return script.response(request, current_app.static_folder or "")


@blp.route("/recordings/<recording_id>/ingest", strict_slashes=False)
class Ingest(MethodView):
    @require("ingest", query_key=True)
    @blp.arguments(IngestArgs, location="query")
    @blp.doc(requestBody=_BATCH_BODY)
    @blp.response(
        204,
        description="the batch is stored durably (or was: under its Idempotency-Key, or with stream "
        "positioning when the stream holds these frames already)",
    )
    @blp.errors(
        e400="malformed JSON or NDJSON, corrupt compression, or events without type/timestamp "
        "(errors.json.events.<index> says which); nothing of the batch is stored",
        e409="the recording is being deleted, or has ended and takes no more events; or, with stream "
        "positioning, the stream holds some of these frames but not all, or fewer than `after` "
        "(`errors.acked` says how many it holds; nothing is stored)",
        e413="the body, or the batch once decompressed, is over its limit",
        e415="an unsupported Content-Encoding or Content-Type",
        e422="a recording id that is not 1..64 characters of A-Z a-z 0-9 . _ : -, or bad stream "
        "positioning: stream, after and frames not all given, more frames than events, or with an "
        "Idempotency-Key",
        e503="object storage is unavailable; nothing is stored, send the batch again",
    )
    def post(self, args: dict, recording_id: str):
        """Ingest a batch of rrweb events (creates the recording on its first batch)"""
        config = rt().config
        request.max_content_length = config.max_ingest_body_bytes
        encoding = payloads.encoding_of(
            request.headers.get("Content-Encoding") or args.get("contentEncoding")
        )
        raw = payloads.inflate(request.get_data(cache=False), encoding, config.max_inflated_bytes)
        events = payloads.parse_events(raw, request.mimetype or None)
        if "stream" in args:
            replays.ingest_frames(rt(), project_id(), recording_id, events, _position(args, len(events)))
        else:
            replays.ingest(rt(), project_id(), recording_id, events, batch_key=_idempotency_key())


def _position(args: dict, events: int) -> StreamPosition:
    """Where a positioned batch goes in its stream: frames after+1..after+frames."""
    if request.headers.get("Idempotency-Key") is not None:
        raise Unprocessable("stream positioning makes a repeat a no-op: leave out the Idempotency-Key")
    if args["frames"] > events:
        raise Unprocessable("frames is more than the events in the batch (a frame holds one or more)")
    return StreamPosition(args["stream"], args["after"] + args["frames"], args["after"])


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 200:
        raise BadPayload("Idempotency-Key must be 1..200 characters")
    return key


@blp.route("/recordings/<recording_id>/meta", strict_slashes=False)
class Meta(MethodView):
    @require("ingest")
    @blp.doc(
        requestBody={
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "additionalProperties": True},
                    "example": {"userId": "user-123", "orgId": "org-9", "plan": "pro"},
                }
            },
        }
    )
    @blp.response(204, description="the metadata is stored; each changed key's version rose by one")
    @blp.errors(
        e400="not a JSON object",
        e409="the recording is being deleted, or has ended",
        e413="the body is over MEETREC_MAX_INGEST_BODY_BYTES",
        e422="no keys, over 100 keys, a key over 200 characters, a value that is not a string, number, "
        "boolean or null or is over 500 characters, or a bad recording id",
    )
    def post(self, recording_id: str):
        """Attach searchable metadata to a recording (creates the recording when new)"""
        request.max_content_length = rt().config.max_ingest_body_bytes
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadPayload("the body must be a JSON object of key/value pairs")
        metadata.set_meta(rt(), project_id(), recording_id, body)


@blp.route("/recordings/<recording_id>/events", strict_slashes=False)
class Events(MethodView):
    @require("recording:read")
    @blp.response(200, EventSchema(many=True), description="every stored event in sequence order, streamed")
    @blp.errors(e404=_UNKNOWN, e503="object storage is unavailable")
    def get(self, recording_id: str):
        """Get a recording's events in order (streamed; `Accept: application/x-ndjson` for JSON lines)"""
        recording, _ = replays.replay_of(rt(), project_id(), recording_id)
        lines = replays.iter_event_lines(rt(), recording.id, recording.external_id)
        first = next(lines, None)  # storage trouble answers 503 before any byte is sent
        events = lines if first is None else chain([first], lines)
        if request.accept_mimetypes.best_match(["application/json", "application/x-ndjson"]) == (
            "application/x-ndjson"
        ):
            return Response(_chunks(line + b"\n" for line in events), mimetype="application/x-ndjson")
        return Response(_json_array(events), mimetype="application/json")


def _json_array(lines: Iterator[bytes]) -> Iterator[bytes]:
    """The lines as one JSON array, written in large pieces as they are read."""
    separated = (line if i == 0 else b"," + line for i, line in enumerate(lines))
    yield from _chunks(chain([b"["], separated, [b"]"]))


def _chunks(pieces: Iterator[bytes]) -> Iterator[bytes]:
    buffer: list[bytes] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= _STREAM_CHUNK:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


@blp.route("/recordings/<recording_id>", strict_slashes=False)
class RecordingMeta(MethodView):
    @require("recording:read")
    @blp.response(200, MetaEntrySchema(many=True), description="every metadata pair, by key")
    @blp.errors(e404=_UNKNOWN)
    def get(self, recording_id: str):
        """Get a recording's metadata key/value pairs with their versions"""
        return [
            {
                "key": m.key,
                "value": metadata.value_of(m),
                "timestamp": _ms(m.updated_at),
                "version": m.version,
            }
            for m in metadata.meta_of(rt(), project_id(), recording_id)
        ]


@blp.route("/recordings", strict_slashes=False)
class Recordings(MethodView):
    @require("recording:read")
    @blp.arguments(ListArgs, location="query")
    @blp.doc(
        parameters=[
            {
                "name": "meta",
                "in": "query",
                "style": "deepObject",
                "explode": True,
                "schema": {"type": "object", "additionalProperties": {"type": "string"}},
                "description": "Filters `meta[key]=value`, combined with AND (at most 10)",
                "example": {"userId": "user-123", "plan": "pro"},
            }
        ]
    )
    @blp.response(200, RecordingListSchema, description="matching web replays, most recent first")
    @blp.errors(e422="limit outside 1..100, a negative offset, or more than 10 meta filters")
    def get(self, args: dict):
        """List recordings by metadata filters (AND), most recent first"""
        filters = _meta_filters()
        listed = metadata.search(rt(), project_id(), filters, args["limit"], args["offset"])
        sign = signing.signer(rt(), project_id()) if args["includeSignedUrls"] and listed else None
        return {"recordings": [_listed(item, sign) for item in listed]}


def _meta_filters() -> dict[str, str]:
    filters: dict[str, str] = {}
    for name, value in request.args.items(multi=True):
        m = _META_FILTER.match(name)
        if m:
            if m.group(1) in filters:
                raise Unprocessable(f"meta[{m.group(1)}] is given twice")
            filters[m.group(1)] = value
    return filters


def _listed(item: metadata.Listed, sign: signing.Signer | None) -> dict:
    base = f"{blp.url_prefix}/recordings/{item.external_id}"
    links = {"self": base, "events": f"{base}/events"}
    if sign is not None:
        links["eventsSigned"] = f"{links['events']}?{urlencode(sign('GET', links['events'], None))}"
    return {"recordingId": item.external_id, "timestamp": _ms(item.created_at), "links": links}


def _ms(moment) -> int:
    return int(moment.timestamp() * 1000)


@blp.route("/statistics", strict_slashes=False)
class Statistics(MethodView):
    @require("recording:read")
    @blp.response(200, StatisticsSchema, description="counts and bytes of the project's live web replays")
    def get(self):
        """Get statistics of the project's web replays: totals, this month, storage"""
        stats = metadata.statistics(rt(), project_id())
        return {
            "totalRecordings": stats.total_recordings,
            "recordingsThisMonth": stats.recordings_this_month,
            "totalStorageBytes": stats.total_storage_bytes,
        }


@blp.route("/signing-keys", strict_slashes=False)
class SigningKeys(MethodView):
    @require("admin")
    @blp.response(200, SigningKeySchema(many=True), description="newest first; retired keys included")
    def get(self):
        """List the keys presigned URLs are signed with"""
        return _keys()

    @require("admin")
    @blp.response(201, SigningKeySchema(many=True), description="the keys, the new one first and current")
    def post(self):
        """Rotate: create a signing key; new links are signed with it, old ones verify until retired"""
        signing.create_key(rt(), project_id())
        return _keys(), 201


@blp.route("/signing-keys/<key_id>", strict_slashes=False)
class SigningKeyById(MethodView):
    @require("admin")
    @blp.response(204, description="links signed with this key no longer work")
    @blp.errors(e404="no active signing key with this id in the project")
    def delete(self, key_id: str):
        """Retire a signing key: links signed with it stop working at once"""
        signing.retire_key(rt(), project_id(), key_id)


def _keys() -> list[dict]:
    found = signing.keys_of(rt(), project_id())
    current = next((k.id for k in found if k.retired_at is None), None)
    return [
        {"id": k.id, "created_at": k.created_at, "retired_at": k.retired_at, "current": k.id == current}
        for k in found
    ]
