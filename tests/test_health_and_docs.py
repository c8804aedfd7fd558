"""Liveness, readiness and the published API description."""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest

from app.api.posthog_capture import routes as capture_routes
from app.config import Config
from app.factory import create_app
from tests.conftest import _free_port
from tests.helpers import wait_for

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
GENERIC_DESCRIPTIONS = {"OK", "Created", "No Content", "Not Found", "Unprocessable Entity"}


@pytest.fixture(scope="module")
def spec(app):  # type: ignore[no-untyped-def]
    resp = app.test_client().get("/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def operations(spec):  # type: ignore[no-untyped-def]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_healthz_answers_without_a_key(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}


def test_readyz_reports_each_backing_service(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json()["checks"] == {"database": "ok", "redis": "ok", "storage": "ok"}


def test_readyz_details_count_workers_and_scheduler_ticks(client, rt, workers):
    from workers.scheduler import TIMETABLE, tick

    tick(rt, next(e for e in TIMETABLE if e.id == "retention-purge"))
    details = wait_for(lambda: (d := client.get("/readyz").get_json()["details"])["workers"] >= 3 and d)
    assert "retention-purge" in details["scheduler_last_ticks"]


def test_readyz_is_503_naming_an_unreachable_store(config: Config):
    dead = dataclasses.replace(config, s3_endpoint=f"http://127.0.0.1:{_free_port()}")
    resp = create_app(dead).test_client().get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["storage"] == "fail"


@pytest.fixture(scope="module")
def redis_down(config: Config):  # type: ignore[no-untyped-def]
    """A client of an api whose Redis is a closed loopback port, and that port."""
    port = _free_port()
    app = create_app(dataclasses.replace(config, redis_url=f"redis://127.0.0.1:{port}/0"))
    return app.test_client(), port


def test_readyz_tells_anyone_only_which_backend_failed(redis_down):
    client, port = redis_down
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "fail", "storage": "ok"},
    }
    assert str(port) not in resp.get_data(as_text=True)


def test_an_outage_answers_503_with_a_retry_after(redis_down, rt):
    from app.services.access import keys

    client, _port = redis_down
    admin = keys.create_key(rt, keys.bootstrap_project_id(rt), ("admin",))[1]
    resp = client.get("/system", headers={"Authorization": admin})
    assert resp.status_code == 503
    assert resp.get_json()["message"].startswith("Redis is unreachable")
    assert resp.headers["Retry-After"] == "5"


def test_readyz_logs_why_a_backend_failed(redis_down, caplog: pytest.LogCaptureFixture):
    client, port = redis_down
    with caplog.at_level(logging.WARNING, logger="app.services.operations.readiness"):
        client.get("/readyz")
    assert any("redis" in r.getMessage() and str(port) in r.getMessage() for r in caplog.records)


def test_openapi_lists_the_eyeson_endpoints(spec):
    assert {
        "/rooms",
        "/rooms/{room}",
        "/rooms/{access_key}/recording",
        "/rooms/{room_id}/recordings",
        "/recordings/{recording_id}",
        "/healthz",
        "/readyz",
    } <= set(spec["paths"])


def test_no_two_paths_are_one_template(spec):
    # `/rooms/{access_key}` beside `/rooms/{room_id}` is one template twice: invalid OpenAPI.
    shapes = [re.sub(r"\{[^}]*\}", "{}", path) for path in spec["paths"]]
    assert sorted(shapes) == sorted(set(shapes))


def test_every_operation_has_a_one_line_summary(spec):
    missing = [f"{m.upper()} {p}" for p, m, op in operations(spec) if not op.get("summary")]
    assert missing == []


def test_start_recording_documents_every_status_code(spec):
    responses = spec["paths"]["/rooms/{access_key}/recording"]["post"]["responses"]
    assert {"201", "404", "405", "406", "410", "422"} <= set(responses)


def test_every_response_says_what_it_means(spec):
    vague = [
        f"{m.upper()} {p} {code}"
        for p, m, op in operations(spec)
        for code, r in op["responses"].items()
        if code != "default" and (not r.get("description") or r["description"] in GENERIC_DESCRIPTIONS)
    ]
    assert vague == []


POSTHOG_PREFIXES = ("/api/", *capture_routes.ERROR_PREFIXES)


def is_posthog_path(path: str) -> bool:
    """A path answering in PostHog's error shape: its dialect's API and posthog-js's ingest calls."""
    return any(path.startswith(prefix) or path == prefix.rstrip("/") for prefix in POSTHOG_PREFIXES)


def error_refs(spec, posthog: bool) -> set[str]:  # type: ignore[no-untyped-def]
    return {
        r["content"]["application/json"]["schema"]["$ref"]
        for p, m, op in operations(spec)
        for code, r in op["responses"].items()
        if code.startswith("4") and "content" in r and is_posthog_path(p) == posthog
    }


def test_error_responses_share_one_schema(spec):
    assert error_refs(spec, posthog=False) == {"#/components/schemas/Error"}


def test_posthog_routes_document_posthogs_error_shape_and_no_422(spec):
    assert error_refs(spec, posthog=True) == {"#/components/schemas/PostHogError"}
    assert not [p for p, m, op in operations(spec) if is_posthog_path(p) and "422" in op["responses"]]


def test_authenticated_operations_declare_the_key(spec):
    unsecured = [
        f"{m.upper()} {p}"
        for p, m, op in operations(spec)
        if p not in ("/healthz", "/readyz") and not op.get("security") and not spec.get("security")
    ]
    # A participant's access key is the credential of /rooms/{access_key}... (as in Eyeson); GET
    # /rooms/{room} takes one too (DELETE there takes a room id and an API key). posthog-js sends its
    # project token in the body or the path (browsers' scripts and beacons send no headers); the
    # recorder script is public.
    assert all(
        "{access_key}" in name
        or name in ("GET /rooms/{room}", "GET /rrweb/record.js")
        or is_posthog_path(name.split(" ", 1)[1])
        for name in unsecured
    ), unsecured


def test_every_operation_that_requires_a_key_documents_401_and_403(spec):
    # `require(scope)` both marks an operation's security and documents its 401 and 403.
    secured = [(p, m, op) for p, m, op in operations(spec) if op.get("security")]
    undocumented = [f"{m.upper()} {p}" for p, m, op in secured if not {"401", "403"} <= set(op["responses"])]
    assert secured and undocumented == []


def test_a_view_may_describe_its_403_more_closely(spec):
    forbidden = spec["paths"]["/recordings/{recording_id}"]["patch"]["responses"]["403"]["description"]
    assert "legal_hold" in forbidden


def test_docs_page_is_served(client):
    resp = client.get("/docs")
    assert resp.status_code == 200
    assert b"openapi.json" in resp.get_data()


def test_docs_assets_are_served_locally(client):
    page = client.get("/docs").get_data(as_text=True)
    assert "cdn" not in page
    resp = client.get("/static/swagger-ui/swagger-ui-bundle.js")
    assert resp.status_code == 200
    assert len(resp.get_data()) > 100_000
    resp.close()


def test_system_needs_an_admin_key(client, auth):
    assert client.get("/system", headers=auth).status_code == 403


def test_system_shows_workers_and_scheduler_ticks(client, rt, workers):
    from app.services.access import keys
    from workers.scheduler import TIMETABLE, tick

    admin = keys.create_key(rt, keys.bootstrap_project_id(rt), ("admin",))[1]
    tick(rt, next(e for e in TIMETABLE if e.id == "reconcile"))
    body = wait_for(  # worker processes register once they are up
        lambda: (
            (b := client.get("/system", headers={"Authorization": admin}).get_json())
            and any("capture" in w["queues"] for w in b["workers"])
            and b
        )
    )
    assert all(w["last_heartbeat"] for w in body["workers"])
    assert body["scheduler"]["last_ticks"]["reconcile"]["seconds_ago"] < 60
    assert set(body["queues"]) >= {"capture", "media", "webhooks", "default"}
