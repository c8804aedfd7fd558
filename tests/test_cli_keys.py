"""`meetrec keys list|create|revoke|rotate`: a project's API keys managed without SQL."""

from __future__ import annotations

import secrets

import pytest

from app.cli import main
from app.services.access import key_use, keys
from tests.cli import cli_env, run, run_json  # noqa: F401 - cli_env is a fixture

pytestmark = pytest.mark.usefixtures("cli_env")


@pytest.fixture
def project(rt):  # type: ignore[no-untyped-def]
    """A fresh project."""
    return keys.create_project(rt, "cli-keys-" + secrets.token_hex(3))


def test_list_shows_the_keys_in_an_aligned_table(rt, project, capsys):
    key = keys.create_key(rt, project.id, ("recording:read",), name="reporting")[0]
    code, out, _ = run(capsys, "keys", "list", "--project", project.id)
    header, row = out.splitlines()
    assert code == 0 and header.split() == [
        "ID",
        "NAME",
        "PREFIX",
        "SCOPES",
        "CREATED",
        "LAST",
        "USED",
        "REVOKED",
        "ORIGINS",
    ]
    assert row.split()[:4] == [key.id, "reporting", f"{key.prefix}…", "recording:read"]
    assert header.index("NAME") == row.index("reporting")


def test_list_json_has_every_field(rt, project, capsys):
    key = keys.create_key(rt, project.id, ("ingest",), name="shop", origins=("https://shop.test",))[0]
    [listed] = run_json(capsys, "keys", "list", "--project", project.id)
    assert listed == {
        "id": key.id,
        "name": "shop",
        "prefix": key.prefix,
        "scopes": ["ingest"],
        "allowed_origins": ["https://shop.test"],
        "public_token": False,
        "created_at": key.created_at.isoformat(),
        "last_used_at": None,
        "revoked_at": None,
    }


def test_list_shows_when_a_key_was_last_used(rt, project, capsys):
    raw = keys.create_key(rt, project.id)[1]
    keys.authenticate(rt, raw)
    key_use.flush()
    [listed] = run_json(capsys, "keys", "list", "--project", project.id)
    assert listed["last_used_at"] is not None


def test_list_leaves_revoked_keys_out_unless_asked_for_all(rt, project, capsys):
    key = keys.create_key(rt, project.id)[0]
    assert main(["keys", "revoke", key.id, "--project", project.id]) == 0
    assert run_json(capsys, "keys", "list", "--project", project.id) == []
    assert [k["id"] for k in run_json(capsys, "keys", "list", "--all", "--project", project.id)] == [key.id]


def test_list_without_a_project_lists_the_first_project(rt, capsys):
    first = keys.bootstrap_project_id(rt)
    key = keys.create_key(rt, first, name="first-project")[0]
    assert key.id in [k["id"] for k in run_json(capsys, "keys", "list")]


def test_list_of_an_unknown_project_fails(capsys):
    code, _, err = run(capsys, "keys", "list", "--project", "no-such-project")
    assert code == 1 and "no project no-such-project" in err


def test_create_json_shows_the_key_and_its_secret(rt, project, capsys):
    created = run_json(
        capsys, "keys", "create", "--project", project.id, "--name", "app", "--scope", "ingest"
    )
    key = keys.authenticate(rt, created["key"])
    assert key is not None and key.id == created["id"] and created["scopes"] == ["ingest"]


def test_create_without_options_prints_only_the_secret(rt, project, capsys):
    code, out, _ = run(capsys, "keys", "create", "--project", project.id)
    key = keys.authenticate(rt, out.strip())
    assert code == 0 and key is not None and key.scope_set == set(keys.DEFAULT_SCOPES)


def test_revoke_stops_the_key(rt, project, capsys):
    key, raw = keys.create_key(rt, project.id, name="laptop")
    code, out, _ = run(capsys, "keys", "revoke", key.id, "--project", project.id)
    assert code == 0 and out.startswith(f"revoked {key.id} (laptop")
    assert keys.authenticate(rt, raw) is None


def test_revoke_twice_says_it_was_revoked_already(rt, project, capsys):
    key = keys.create_key(rt, project.id)[0]
    run(capsys, "keys", "revoke", key.id, "--project", project.id)
    code, out, _ = run(capsys, "keys", "revoke", key.id, "--project", project.id)
    assert code == 0 and "was already revoked" in out


def test_revoke_of_another_projects_key_is_not_found(rt, project, capsys):
    other = keys.create_project(rt, "cli-keys-other")
    key, raw = keys.create_key(rt, other.id)
    code, _, err = run(capsys, "keys", "revoke", key.id, "--project", project.id)
    assert code == 1 and f"no API key {key.id}" in err
    assert keys.authenticate(rt, raw) is not None


def test_revoke_of_an_unknown_id_fails(project, capsys):
    code, out, err = run(capsys, "keys", "revoke", "no-such-key", "--project", project.id)
    assert (code, out) == (1, "") and err.startswith("meetrec: no API key no-such-key")


def test_rotate_mints_a_key_like_the_old_one(rt, project, capsys):
    old = keys.create_key(rt, project.id, ("ingest",), name="shop", origins=("https://shop.test",))[0]
    code, out, err = run(capsys, "keys", "rotate", old.id, "--project", project.id)
    new = keys.authenticate(rt, out.strip())
    assert code == 0 and new is not None and new.id != old.id and new.id in err
    assert (new.name, new.scopes, new.allowed_origins) == (old.name, old.scopes, old.allowed_origins)


def test_rotate_revokes_the_old_key(rt, project, capsys):
    old, raw = keys.create_key(rt, project.id)
    rotated = run_json(capsys, "keys", "rotate", old.id, "--project", project.id)
    assert rotated["replaces"] == old.id and keys.authenticate(rt, raw) is None


def test_rotate_of_a_revoked_key_is_refused(rt, project, capsys):
    old = keys.create_key(rt, project.id)[0]
    run(capsys, "keys", "revoke", old.id, "--project", project.id)
    code, out, err = run(capsys, "keys", "rotate", old.id, "--project", project.id)
    assert (code, out) == (1, "") and "revoked already" in err


def test_rotate_of_the_public_token_mints_a_new_public_token(rt, project, capsys):
    token = keys.public_token(rt, project.id)
    old = keys.authenticate(rt, token)
    rotated = run_json(capsys, "keys", "rotate", old.id, "--project", project.id)
    assert rotated["public_token"] and keys.public_token(rt, project.id) == rotated["key"]
    assert keys.authenticate(rt, token) is None


@pytest.mark.parametrize("command", ["list", "create", "revoke", "rotate"])
def test_every_keys_command_explains_itself_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as done:
        main(["keys", command, "--help"])
    assert done.value.code == 0
    assert "example" in capsys.readouterr().out
