"""`meetrec signing-keys` rotates the keys presigned URLs are signed with; `keys create --origin`."""

from __future__ import annotations

import secrets

import pytest

from app.cli import main
from app.services.access import keys, signing
from tests.cli import cli_env  # noqa: F401 - a fixture

pytestmark = pytest.mark.usefixtures("cli_env")


@pytest.fixture
def project(rt):  # type: ignore[no-untyped-def]
    return keys.create_project(rt, "cli-" + secrets.token_hex(3))


def test_signing_keys_create_makes_the_new_key_current(rt, project, capsys):
    old = signing.current_key(rt, project.id)
    assert main(["signing-keys", "create", "--project", project.id]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t")[1] == "current" and old.id in lines[1]
    assert signing.current_key(rt, project.id).id != old.id


def test_signing_keys_retire_stops_a_key(rt, project, capsys):
    old = signing.current_key(rt, project.id)
    assert main(["signing-keys", "retire", old.id, "--project", project.id]) == 0
    assert f"{old.id}\tretired" in capsys.readouterr().out
    assert main(["signing-keys", "retire", old.id, "--project", project.id]) == 1


def test_keys_create_with_origins_makes_a_key_bound_to_them(rt, project, capsys):
    args = ["keys", "create", "--project", project.id, "--scope", "ingest", "--origin", "https://Shop.test/"]
    assert main(args) == 0
    key = keys.authenticate(rt, capsys.readouterr().out.strip())
    assert key is not None and key.allowed_origins == "https://shop.test"
    assert keys.origin_allowed(key, "https://shop.test") and not keys.origin_allowed(key, "https://evil.test")


def test_keys_create_refuses_a_bad_origin(project, capsys):
    assert main(["keys", "create", "--project", project.id, "--origin", "shop.test"]) == 2
    assert "not an origin" in capsys.readouterr().err
