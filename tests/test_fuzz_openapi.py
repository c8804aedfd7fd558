"""A property-based fuzz of the whole API against its own OpenAPI document (schemathesis).

Every operation of `/openapi.json` is called with generated valid and invalid requests, with an admin key
so authenticated routes are reached, and every answer must conform: no 5xx, a documented status code,
content type and headers, a body matching the documented schema, and invalid data refused. A stateful run
follows the links schemathesis infers between operations (create a room, start its recording, read it).

The fuzzed app has a database and a Redis database of its own: the recordings it starts only enqueue
jobs there, where no worker runs and no other test's reconciler looks, so no capture ever starts.
Seeded and deterministic, and bounded to a few examples an operation to stay within a few minutes.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from rq import Worker

from app import migrate
from app.config import Config
from app.factory import create_app
from app.runtime import Runtime
from app.services.access import keys

FUZZ_REDIS_DB = 13  # no other test uses it, so no worker ever consumes what the fuzz enqueues
FUZZ_KEY = "mr_" + secrets.token_urlsafe(32)  # an admin key, stored in the fuzzed app's database
SEED = 20251203
MAX_EXAMPLES = 12


class LateApp:
    """The WSGI app the eagerly loaded schema calls: the fuzzed app, bound by its fixture."""

    app: Flask | None = None

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        assert self.app is not None, "the fuzz_app fixture binds the app"
        return self.app(environ, start_response)


LATE_APP = LateApp()


def fuzz_config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "auth": {"openapi": {"ApiKey": {"api_key": FUZZ_KEY}}},
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
            "checks": {
                "not_a_server_error": {"enabled": True},
                "status_code_conformance": {"enabled": True},
                "content_type_conformance": {"enabled": True},
                "response_headers_conformance": {"enabled": True},
                "response_schema_conformance": {"enabled": True},
                "negative_data_rejection": {"enabled": True},
                # Valid by the document yet refused on meaning (an unsafe media source, a bad id): not a lie.
                "positive_data_acceptance": {"enabled": False},
            },
        }
    )


def document() -> dict:
    """The app's OpenAPI document, read at collection time (building the app does no I/O)."""
    return create_app(Config.from_env({})).test_client().get("/openapi.json").get_json()


# Bodies the document types by media type only: a MediaRecorder chunk (bytes as generated) and rrweb's
# JSON lines (text as generated; the route refuses what is not JSON lines).
schemathesis.serializer.alias("video/webm", "application/octet-stream")
schemathesis.serializer.alias("application/x-ndjson", "text/plain")

# Loaded eagerly so that each operation is a test of its own.
schema = schemathesis.openapi.from_dict(document(), config=fuzz_config())
schema.app = LATE_APP


@pytest.fixture(scope="module")
def fuzz_rt(rt: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    base, _, _ = rt.config.redis_url.rpartition("/")
    config = dataclasses.replace(
        rt.config,
        database_url=f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}",
        redis_url=f"{base}/{FUZZ_REDIS_DB}",
    )
    migrate.upgrade(config.database_url)
    runtime = Runtime(config)
    runtime.redis.flushdb()
    project = keys.create_project(runtime, "fuzz")
    keys.create_key(runtime, project.id, ("admin",), name="fuzz", raw=FUZZ_KEY)
    yield runtime
    runtime.redis.flushdb()


@pytest.fixture(scope="module")
def fuzz_app(fuzz_rt: Runtime) -> Iterator[Flask]:
    app = create_app(runtime=fuzz_rt)
    app.testing = True
    LATE_APP.app = app
    yield app
    LATE_APP.app = None


def no_worker_listens(rt: Runtime) -> bool:
    return Worker.all(connection=rt.redis) == []


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case, fuzz_app: Flask) -> None:  # type: ignore[no-untyped-def]
    assert no_worker_listens(fuzz_app.extensions["meetrec"])
    case.call_and_validate()


def test_stateful_sequences_answer_as_documented(fuzz_app: Flask) -> None:
    stateful = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app, config=fuzz_config())
    stateful.as_state_machine().run(
        settings=settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            deadline=None,
            stateful_step_count=8,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert no_worker_listens(fuzz_app.extensions["meetrec"])


def test_the_fuzzed_app_has_a_database_of_its_own(fuzz_rt: Runtime, rt: Runtime) -> None:
    assert fuzz_rt.config.database_url != rt.config.database_url
    assert Path(fuzz_rt.config.database_url.removeprefix("sqlite:///")).exists()
