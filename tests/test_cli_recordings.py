"""`meetrec recordings list|show`: a project's recent recordings and one recording's facts."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest

from app.cli import main
from app.models import Ingest
from app.services.access import keys
from app.services.core import recordings
from app.services.operations import inventory
from app.services.outbox import endpoints
from tests.cli import cli_env, run, run_json  # noqa: F401 - cli_env is a fixture
from tests.console import meeting
from tests.helpers import add_recording

pytestmark = pytest.mark.usefixtures("cli_env")


@pytest.fixture
def project(rt):  # type: ignore[no-untyped-def]
    """A fresh project keeping recordings 30 days."""
    return keys.create_project(rt, "cli-recordings-" + secrets.token_hex(3), retention_days=30)


def test_list_shows_recent_recordings_in_an_aligned_table(rt, project, capsys):
    rec_id = add_recording(rt, project.id, meeting(rt, project.id, "standup"), duration=75.0)
    code, out, _ = run(capsys, "recordings", "list", "--project", project.id)
    header, row = out.splitlines()
    assert code == 0 and header.split() == ["ID", "ROOM", "STATE", "STARTED", "DURATION", "KIND"]
    assert row.split()[:3] == [rec_id, "standup", "finished"] and row.split()[-2:] == ["1:15", "video"]
    assert header.index("STATE") == row.index("finished")


def test_list_is_newest_first_and_limited(rt, project, capsys):
    ids = [add_recording(rt, project.id, age_days=days) for days in (3, 2, 1)]
    listed = run_json(capsys, "recordings", "list", "--project", project.id, "--limit", "2")
    assert [r["id"] for r in listed] == [ids[2], ids[1]]


def test_list_filters_by_state(rt, project, capsys):
    add_recording(rt, project.id)
    failed = add_recording(rt, project.id, state="failed", error="source lost")
    listed = run_json(capsys, "recordings", "list", "--project", project.id, "--state", "failed")
    assert [r["id"] for r in listed] == [failed]


def test_list_leaves_deleted_recordings_out(rt, project, capsys):
    add_recording(rt, project.id, state="deleted")
    assert run_json(capsys, "recordings", "list", "--project", project.id) == []


def test_list_refuses_an_unknown_state(project, capsys):
    code, _, err = run(capsys, "recordings", "list", "--project", project.id, "--state", "lost")
    assert code == 2 and "state must be one of" in err


def test_list_json_names_the_kind(rt, project, capsys):
    add_recording(rt, project.id, ingest="none", duration=None, size=None)
    [listed] = run_json(capsys, "recordings", "list", "--project", project.id)
    assert listed["kind"] == "events" and listed["room"] is None


@pytest.mark.parametrize(
    ("ingest", "has_replay", "kind"),
    [
        (Ingest.PULL, False, "video"),
        (Ingest.PUSH, True, "video+replay"),
        (Ingest.NONE, True, "replay"),
        (Ingest.NONE, False, "events"),
    ],
)
def test_a_recordings_kind_is_what_it_holds(ingest, has_replay, kind):
    assert inventory.kind_of(ingest, has_replay) == kind


def test_show_prints_the_facts_an_operator_needs(rt, project, capsys):
    rec_id = add_recording(rt, project.id, meeting(rt, project.id, "board"), duration=3725.0, size=1536)
    code, out, _ = run(capsys, "recordings", "show", rec_id, "--project", project.id)
    column = out.index(rec_id)  # every value starts in the column of the first one
    facts = {line[:column].strip(): line[column:] for line in out.splitlines()}
    assert code == 0 and (facts["id"], facts["state"], facts["room"]) == (rec_id, "finished", "board")
    assert (facts["duration"], facts["size"]) == ("1:02:05 (3725.0 s)", "1.5 KiB (1536 bytes)")


def test_show_gives_the_retention_date(rt, project, capsys):
    rec_id = add_recording(rt, project.id, age_days=1)
    shown = run_json(capsys, "recordings", "show", rec_id, "--project", project.id)
    created = recordings.get(rt, project.id, rec_id).created_at
    assert shown["deletes_at"] == (created + timedelta(days=30)).isoformat()


def test_show_says_a_persisted_recording_is_never_deleted(rt, project, capsys):
    rec_id = add_recording(rt, project.id, persist=True)
    code, out, _ = run(capsys, "recordings", "show", rec_id, "--project", project.id)
    assert code == 0 and "never (persisted)" in out


def test_show_gives_the_failure_reason_and_webhook_deliveries(rt, project, capsys):
    key, raw = keys.create_key(rt, project.id)
    endpoints.register(rt, project.id, key.id, raw, "http://127.0.0.1:9/hook", ["recording_update"])
    rec_id = add_recording(rt, project.id, state="started", duration=None)
    assert recordings.fail(rt, rec_id, "the source went away")
    shown = run_json(capsys, "recordings", "show", rec_id, "--project", project.id)
    assert (shown["state"], shown["error"], shown["webhook_deliveries"]) == (
        "failed",
        "the source went away",
        1,
    )


def test_show_of_another_projects_recording_is_not_found(rt, project, capsys):
    other = keys.create_project(rt, "cli-recordings-other")
    rec_id = add_recording(rt, other.id)
    code, out, err = run(capsys, "recordings", "show", rec_id, "--project", project.id)
    assert (code, out) == (1, "") and "not found" in err


def test_show_of_an_unknown_id_fails(project, capsys):
    code, _, err = run(capsys, "recordings", "show", "no-such-recording", "--project", project.id)
    assert code == 1 and err.startswith("meetrec: ")


@pytest.mark.parametrize("command", ["list", "show"])
def test_every_recordings_command_explains_itself_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as done:
        main(["recordings", command, "--help"])
    assert done.value.code == 0
    assert "example" in capsys.readouterr().out
