"""What every request passes through, made cheaper: the app's `ensure_sync`, error documentation that adds no
call per request, and the context lookups of `require`."""

from __future__ import annotations

import functools
import inspect

import flask_smorest
import pytest
from flask import Flask

from app.api.auth import current_key, presented_key
from app.api.blueprint import _DOCUMENTER, Blueprint
from app.factory import create_app


def plain(x: int) -> int:
    return x


async def coroutine(x: int) -> int:
    return x


class Holder:
    def method(self) -> str:
        return "sync"

    async def amethod(self) -> str:
        return "async"


@pytest.fixture(scope="module")
def app(config):  # type: ignore[no-untyped-def]
    return create_app(config)


@pytest.mark.parametrize(
    "func",
    [plain, Holder().method, Holder.method, lambda: None],
    ids=["function", "bound", "unbound", "lambda"],
)
def test_ensure_sync_returns_a_plain_function_itself(app, func):
    assert app.ensure_sync(func) is func is Flask.ensure_sync(app, func)


def assert_as_flask(app: Flask, func: object) -> None:
    """`app.ensure_sync(func)` answers as Flask's own: the same function, or the same refusal (a coroutine
    function needs asgiref, which is not installed here)."""
    try:
        expected = Flask.ensure_sync(app, func)  # type: ignore[arg-type]
    except RuntimeError as e:
        with pytest.raises(RuntimeError) as ours:
            app.ensure_sync(func)  # type: ignore[arg-type]
        assert str(ours.value) == str(e)
        return
    assert app.ensure_sync(func) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "func",
    [coroutine, Holder().amethod, functools.partial(coroutine, 1), functools.partial(plain, 1), len],
    ids=["coroutine", "async-bound", "async-partial", "partial", "builtin"],
)
def test_ensure_sync_leaves_everything_else_to_flask(app, func):
    assert_as_flask(app, func)


def test_ensure_sync_leaves_a_function_marked_as_a_coroutine_to_flask(app):
    def marked(x: int) -> int:
        return x

    mark = getattr(inspect, "markcoroutinefunction", None)  # Python 3.12+
    if mark is not None:
        mark(marked)
    else:
        marked._is_coroutine_marker = object()  # type: ignore[attr-defined]
    assert_as_flask(app, marked)


def test_documented_errors_add_no_call_per_request():
    def view() -> str:
        return "ok"

    documented = Blueprint.errors(e404="unknown thing", e410="gone")(view)
    stacked = _DOCUMENTER.alt_response(410, schema="Error", description="Gone: gone")(
        _DOCUMENTER.alt_response(404, schema="Error", description="Not Found: unknown thing")(lambda: "ok")
    )
    assert documented is view
    assert documented._apidoc == stacked._apidoc  # type: ignore[attr-defined]
    assert set(documented._apidoc["response"]["responses"]) == {404, 410}  # type: ignore[attr-defined]


def test_doc_adds_no_call_per_request():
    def view() -> str:
        return "ok"

    documented = Blueprint.doc(summary="a view", parameters=[{"in": "path", "name": "x"}])(view)
    flask_smorests = flask_smorest.Blueprint.doc(summary="a view", parameters=[{"in": "path", "name": "x"}])(
        lambda: "ok"
    )
    assert documented is view and documented._apidoc == flask_smorests._apidoc  # type: ignore[attr-defined]


def test_what_is_no_function_keeps_its_documenting_wrapper(app):
    view = functools.partial(plain, 1)
    documented = Blueprint.errors(e404="unknown thing")(view)
    assert documented is not view and 404 in documented._apidoc["response"]["responses"]
    with app.app_context():
        assert documented() == 1


def test_documenting_errors_leaves_the_views_earlier_document_alone():
    def view() -> str:
        return "ok"

    view._apidoc = earlier = {"manual_doc": {"security": [{"ApiKey": []}]}}  # type: ignore[attr-defined]
    Blueprint.errors(e404="unknown thing")(view)
    assert earlier == {"manual_doc": {"security": [{"ApiKey": []}]}}
    assert view._apidoc["manual_doc"] == earlier["manual_doc"]  # type: ignore[attr-defined]
    assert 404 in view._apidoc["response"]["responses"]  # type: ignore[attr-defined]


def test_require_reads_the_key_and_stores_it_for_the_view(app, client, auth):
    with app.test_request_context(headers={"Authorization": "Bearer  abc "}):
        assert presented_key() == "abc"
    assert client.get("/recordings/nosuchrecording", headers=auth).status_code == 404
    assert client.get("/recordings/nosuchrecording").status_code == 401
    assert client.get("/recordings/nosuchrecording", headers={"Authorization": "nope"}).status_code == 401
    with app.test_request_context(), pytest.raises(AttributeError):
        current_key()
