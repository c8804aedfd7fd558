"""What posthog-js calls to record a session into meetrec: a page that loads posthog-js with `api_host`
set to meetrec and the project's `api_token` (`GET /api/projects/@current/`) records with session
recording on, unchanged otherwise.

- `GET /array/{token}/config.js` and `/array/{token}/config` (its remote config: session recording on,
  snapshots sent to `/s/`, compression `gzip-js`), `POST /flags/` and the older `/decide/` (no feature
  flags, and the same config for clients that read it there);
- `POST /e/`, `/s/`, `/i/v0/e/`, `/batch/`, `/capture/`: events, compressed as posthog-js does (wire.py);
  `$snapshot` events become the session's replay, other events are kept with it (services'
  posthog_capture), events without a session are refused in the answer;
- `GET /static/array.js`, `/array/{token}/array.js` (with the config inside) and what posthog-js loads
  lazily: the recorder (`/static/lazy-recorder.js`, also as `posthog-recorder.js` and `recorder.js`)
  and `surveys.js`, also under `/static/{version}/`; vendored from the npm package
  (app/static/vendor/posthog-js, with its licence).

The token is public (scope `ingest` only: it can write events, never read) and is checked on every
request; a key naming allowed origins works from those pages only. Pages on any origin may call these
routes (CORS). Errors take PostHog's shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path

from flask import Flask, Response, current_app, request, send_file
from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.api.posthog_capture import wire
from app.api.posthog_capture.schemas import CaptureResultSchema, FlagsSchema, RemoteConfigSchema
from app.errors import BadPayload, Forbidden, NotFound, Unauthorized
from app.runtime import Runtime
from app.services.access import keys
from app.services.interactions import posthog_capture

blp = Blueprint(
    "posthog_capture",
    __name__,
    description="posthog-js ingest: remote config, flags and capture, so posthog-js records into meetrec",
)

CAPTURE_PATHS = ("/e", "/s", "/i/v0/e", "/batch", "/capture")
FLAGS_PATHS = ("/flags", "/decide")
ERROR_PREFIXES = tuple(p + "/" for p in CAPTURE_PATHS + FLAGS_PATHS) + ("/array/",)
SNAPSHOT_ENDPOINT = "/s/"
EVENTS_ENDPOINT = "/e/"
VENDOR = Path(__file__).resolve().parent.parent.parent / "static" / "vendor" / "posthog-js"
RECORDER_KINDS = ("lazy-recorder", "posthog-recorder", "recorder")
ASSETS = {
    "array": VENDOR / "array.js",
    "surveys": VENDOR / "surveys.js",  # loaded whether surveys are on or not (they are off)
    **{kind: VENDOR / "lazy-recorder.js" for kind in RECORDER_KINDS},
}
ASSET_MAX_AGE = 3600
_JS = "text/javascript"
_TOKEN_DOC = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
_REQUEST_HEADERS = re.compile(r"^[A-Za-z0-9\-, ]{1,500}$")
_CAPTURE_BODY = {
    "description": 'posthog-js events: a JSON array, `{"api_key": ..., "batch": [...]}` or one event; '
    "gzip as `text/plain` (`?compression=gzip-js`, or sniffed), or `data=<base64>` form-encoded "
    "(`?compression=base64`)",
    "required": True,
    "content": {
        "application/json": {
            "schema": {"type": "array", "items": {"type": "object"}},
            "examples": {
                "pageview": {
                    "summary": "An event: kept with its session's replay as an rrweb Custom event",
                    "value": [
                        {
                            "event": "$pageview",
                            "properties": {
                                "token": "phc_...",
                                "$session_id": "0193a6f0-1c2d",
                                "distinct_id": "u-1",
                            },
                            "timestamp": "2026-12-03T10:00:00.000Z",
                        }
                    ],
                },
                "snapshot": {
                    "summary": "Recorded rrweb events of a session (`$snapshot_data`)",
                    "value": [
                        {
                            "event": "$snapshot",
                            "properties": {
                                "token": "phc_...",
                                "$session_id": "0193a6f0-1c2d",
                                "$window_id": "0193a6f0-9e8f",
                                "distinct_id": "u-1",
                                "$snapshot_data": [
                                    {
                                        "type": 4,
                                        "timestamp": 1796292000000,
                                        "data": {"href": "https://shop.example/"},
                                    },
                                    {
                                        "type": 3,
                                        "timestamp": 1796292001000,
                                        "data": {"source": 2, "type": 2, "id": 12, "x": 100, "y": 200},
                                    },
                                ],
                            },
                        }
                    ],
                },
            },
        },
        "text/plain": {"schema": {"type": "string", "format": "binary"}},
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": {"data": {"type": "string"}}}
        },
    },
}


def rt() -> Runtime:
    return current_app.extensions["meetrec"]


def _project_for(token: str | None) -> str:
    """The project a public token belongs to; 401 for none or an unknown one, 403 for a key without the
    ingest scope or used from a page its allowed origins do not name."""
    if not token:
        raise Unauthorized("API key not provided. You can find your project API key in meetrec.")
    key = keys.authenticate(rt(), token)
    if key is None:
        raise Unauthorized("Project API key invalid. You can find your project API key in meetrec.")
    if not keys.has_scope(key, "ingest"):
        raise Forbidden("this key lacks the ingest scope")
    if not keys.origin_allowed(key, request.headers.get("Origin")):
        raise Forbidden("this key may not be used from this origin")
    return key.project_id


def remote_config(token: str) -> dict:
    """What posthog-js needs to record into meetrec: session recording on, snapshots sent to `/s/` with
    gzip, console logs recorded; the features meetrec does not serve (flags, surveys, heatmaps,
    autocapture, exception capture, site apps) off."""
    return {
        "token": token,
        "supportedCompression": list(wire.COMPRESSIONS),
        "hasFeatureFlags": False,
        "analytics": {"endpoint": EVENTS_ENDPOINT},
        "autocapture_opt_out": True,
        "autocaptureExceptions": False,
        "errorTracking": {"autocaptureExceptions": False},
        "captureDeadClicks": False,
        "capturePerformance": False,
        "elementsChainAsString": True,
        "heatmaps": False,
        "surveys": False,
        "productTours": False,
        "defaultIdentifiedOnly": True,
        "siteApps": [],
        "isAuthenticated": False,
        "toolbarParams": {},
        "sessionRecording": {
            "endpoint": SNAPSHOT_ENDPOINT,
            "consoleLogRecordingEnabled": True,
            "recorderVersion": "v2",
            "sampleRate": None,
            "minimumDurationMilliseconds": None,
            "linkedFlag": None,
            "networkPayloadCapture": None,
            "urlTriggers": [],
            "urlBlocklist": [],
            "eventTriggers": [],
        },
    }


def _config_script(token: str) -> str:
    """The remote config as posthog-js's `config.js`: it files the config under the token."""
    config = json.dumps({"config": remote_config(token), "siteApps": []})
    return (
        "(function(){window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};"
        f"window._POSTHOG_REMOTE_CONFIG[{json.dumps(token)}]={config};}})();\n"
    )


@blp.after_request
def _cors(response: Response) -> Response:
    """Let any page read the answers (the token decides what is allowed); posthog-js may send cookies."""
    origin = request.headers.get("Origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers.add("Vary", "Origin")
        if request.method == "OPTIONS":
            asked = request.headers.get("Access-Control-Request-Headers", "")
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = (
                asked if _REQUEST_HEADERS.match(asked) else "Content-Type"
            )
            response.headers["Access-Control-Max-Age"] = "600"
    return response


def _document() -> object:
    """The request body read as posthog-js sends it (bounded by the ingest limits)."""
    config = rt().config
    request.max_content_length = config.max_ingest_body_bytes
    body = request.get_data(cache=False)
    return wire.decode(body, request.args.get("compression"), request.mimetype, config.max_inflated_bytes)


class Capture(MethodView):
    @blp.doc(requestBody=_CAPTURE_BODY)
    @blp.response(
        200, CaptureResultSchema, description="stored durably: events per session, and the refused ones"
    )
    @blp.errors(
        e400="an unreadable body (JSON, gzip, base64), malformed snapshot data (nothing stored), or no "
        "event that can be kept: each refused event says why",
        e401="no project token, or an unknown one",
        e403="the token lacks the ingest scope, or may not be used from this page's origin",
        e409="a session's recording is being deleted",
        e413="the body, or the events once decompressed, over the ingest limits",
        e415="a compression meetrec does not read",
        e503="object storage is unavailable: nothing of that session is stored, send again",
    )
    def post(self):
        """Capture posthog-js events: `$snapshot` events into the session's replay, others kept with it"""
        found = wire.capture(_document())
        project_id = _project_for(found.token)
        filed = posthog_capture.file_events(rt(), project_id, found.events, found.token)
        refused = filed.refused
        if not filed.stored:
            reasons = {str(r["index"]): [r["reason"]] for r in refused[:10]}
            raise BadPayload(
                f"no event could be kept: {refused[0]['reason']}" if refused else "no events in the request",
                errors={"events": reasons},
            )
        return {"status": 1, "stored": filed.stored, "refused": refused}


for _path in CAPTURE_PATHS:
    blp.add_url_rule(
        _path, endpoint=f"capture{_path.replace('/', '_')}", view_func=Capture, strict_slashes=False
    )


class Flags(MethodView):
    @blp.response(200, FlagsSchema, description="no feature flags, and the remote config")
    @blp.errors(
        e400="an unreadable body", e401="no project token, or an unknown one", e403="token refused here"
    )
    def post(self):
        """Evaluate feature flags for posthog-js (meetrec has none) and hand out the remote config
        (`/flags/`, and older posthog-js's `/decide/`)"""
        return _flags()


for _path in FLAGS_PATHS:
    blp.add_url_rule(_path, endpoint=f"flags{_path.replace('/', '_')}", view_func=Flags, strict_slashes=False)


def _flags() -> Response:
    document = _document()
    token = wire.token_of(document) or request.args.get("token") or ""
    _project_for(token)
    flags = {"featureFlags": {}, "featureFlagPayloads": {}, "flags": {}, "errorsWhileComputingFlags": False}
    return _json({**remote_config(token), **flags, "quotaLimited": []})


def _json(body: dict) -> Response:
    """`body` as built: every key posthog-js reads, not only those the schema documents."""
    return Response(json.dumps(body), mimetype="application/json")


def by_token(view: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate a view of `/array/{token}/...`: the token must be a project's, usable from this page."""

    @wraps(view)
    def wrapper(self: MethodView, token: str) -> Response:
        _project_for(token)
        return view(self, token)

    documented = blp.doc(parameters=[_TOKEN_DOC])(wrapper)
    return Blueprint.errors(e401="an unknown token", e403="the token is refused from this page")(documented)


@blp.route("/array/<token>/config", strict_slashes=False)
class Config(MethodView):
    @blp.response(200, RemoteConfigSchema, description="the remote config: session recording into meetrec")
    @by_token
    def get(self, token: str):
        """Get posthog-js's remote config for a project token"""
        return _json(remote_config(token))


@blp.route("/array/<token>/config.js")
class ConfigScript(MethodView):
    @blp.response(200, description="a script filing the config under the token", content_type=_JS)
    @by_token
    def get(self, token: str):
        """Get posthog-js's remote config for a project token, as the script it loads"""
        return _script(_config_script(token))


@blp.route("/array/<token>/array.js")
class ArrayScript(MethodView):
    @blp.response(200, description="posthog-js with the project's remote config", content_type=_JS)
    @by_token
    def get(self, token: str):
        """Get posthog-js (the npm package's `array.js`) with the project's remote config inside"""
        return _script(_config_script(token) + _vendored_text("array"))


@cache
def _vendored_text(kind: str) -> str:
    return ASSETS[kind].read_text(encoding="utf-8")


def _script(text: str) -> Response:
    response = Response(text, mimetype=_JS)
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


def static_asset(kind: str, version: str | None = None) -> Response:
    """posthog-js's `array.js`, or the recorder it loads lazily, from the vendored npm package."""
    path = ASSETS.get(kind)
    if path is None or (version is not None and len(version) > 40):
        raise NotFound(f"meetrec serves {', '.join(sorted(ASSETS))} under /static/")
    response = send_file(path, mimetype="text/javascript", max_age=ASSET_MAX_AGE, conditional=True)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def register_assets(app: Flask) -> None:
    """Serve the posthog-js files at the paths posthog-js asks for (`/static/<kind>.js`,
    `/static/<version>/<kind>.js`), beside the app's own static files."""
    for kind in ASSETS:
        app.add_url_rule(f"/static/{kind}.js", f"posthog_js_{kind}", static_asset, defaults={"kind": kind})
        app.add_url_rule(
            f"/static/<version>/{kind}.js",
            f"posthog_js_{kind}_versioned",
            static_asset,
            defaults={"kind": kind},
        )
