"""The Flask application factory. No I/O happens here: clients connect on first use."""

from __future__ import annotations

from collections.abc import Callable
from inspect import CO_COROUTINE
from pathlib import Path
from types import FunctionType, MethodType
from typing import Any

from flask import Flask
from flask_smorest import Api
from werkzeug.routing import BaseConverter

from app import console, observability
from app.api import errors, jsonbody
from app.api.auth import SECURITY_SCHEME
from app.api.chunked import DechunkedBodies
from app.api.posthog import errors as posthog_errors
from app.api.posthog.access import SHARING_SCHEME, SessionId, ShortId
from app.api.posthog_capture import routes as capture_routes
from app.api.rrweb.access import PRESIGNED_SCHEMES
from app.config import Config
from app.runtime import Runtime


class _Api(Api):
    ERROR_SCHEMA = errors.ErrorSchema  # documents our one error shape as the "Error" component


class _Flask(Flask):
    """Flask, with `ensure_sync` answering without `inspect.iscoroutinefunction` for plain functions.

    Flask passes every hook, view and decorator layer of every request through `ensure_sync` (about ten
    per request here), and `iscoroutinefunction` unwraps and inspects each time. A function (or a
    method of one) that is no `async def` and carries no coroutine mark (`inspect.markcoroutinefunction`)
    is returned as is, as Flask would; anything else (coroutine functions, partials, callable objects)
    goes to Flask's own `ensure_sync`."""

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        f = func.__func__ if type(func) is MethodType else func
        if type(f) is FunctionType and not (f.__code__.co_flags & CO_COROUTINE or _MARK in f.__dict__):
            return func
        return super().ensure_sync(func)


_MARK = "_is_coroutine_marker"  # the attribute inspect.markcoroutinefunction sets (Python 3.12+)


class HexId(BaseConverter):
    """An id meetrec minted (`app.services.ids.new_id`): 24 hex digits. A path segment of another shape
    is no id, so `/webhooks/list` never also matches `/webhooks/<hexid:webhook_id>`."""

    regex = "[0-9a-f]{24}"


def create_app(config: Config | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the API app from `config` (default: the environment)."""
    config = config or (runtime.config if runtime else Config.from_env())
    app = _Flask("meetrec", root_path=str(Path(__file__).parent))
    app.json = jsonbody.JSONProvider(app)  # request.get_json() reads under jsonbody's bounds
    app.config.update(
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        API_TITLE="meetrec",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        # swagger-ui-dist is vendored under app/static: a self-hosted /docs must not need a CDN.
        OPENAPI_SWAGGER_UI_URL="/static/swagger-ui/",
        API_SPEC_OPTIONS={
            "info": {"description": "Self-hosted recording orchestrator for video meeting apps."},
        },
        JSON_SORT_KEYS=False,
    )
    app.extensions["meetrec"] = runtime or Runtime(config)
    app.wsgi_app = DechunkedBodies(app.wsgi_app, config.largest_body_bytes)  # type: ignore[method-assign]
    app.url_map.converters["hexid"] = HexId
    app.url_map.converters["session"] = SessionId
    app.url_map.converters["short"] = ShortId
    api = _Api(app)
    api.register_converter(HexId, lambda _: {"type": "string", "pattern": "^[0-9a-f]{24}$"})
    api.register_converter(SessionId, lambda _: {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"})
    api.register_converter(ShortId, lambda _: {"type": "string", "pattern": "^[A-Za-z0-9]{1,16}$"})
    api.spec.components.security_scheme("ApiKey", SECURITY_SCHEME)
    api.spec.components.security_scheme("SharingToken", SHARING_SCHEME)
    for name, (param, description) in PRESIGNED_SCHEMES.items():
        api.spec.components.security_scheme(
            name, {"type": "apiKey", "in": "query", "name": param, "description": description}
        )
    _register_blueprints(api)
    capture_routes.register_assets(app)
    for prefix in (posthog_errors.PREFIX, *capture_routes.ERROR_PREFIXES):
        posthog_errors.document(api.spec, prefix)
        errors.shape_for(prefix, posthog_errors.shape)
    errors.register(app)
    observability.init_app(app, app.extensions["meetrec"])
    console.init_app(app, config)
    return app


def _register_blueprints(api: Api) -> None:
    from app.api import health, system
    from app.api.posthog import routes as posthog
    from app.api.posthog_capture import routes as posthog_capture
    from app.api.recordings import routes as recordings
    from app.api.rooms import routes as rooms
    from app.api.rrweb import routes as rrweb
    from app.api.sessions import routes as sessions
    from app.api.webhooks import routes as webhooks

    for module in (health, rooms, recordings, sessions, webhooks, rrweb, posthog, posthog_capture, system):
        api.register_blueprint(module.blp)
