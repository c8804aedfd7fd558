"""A script written against PostHog's recordings API (examples/posthog_export.py) lists, reads, exports
the snapshots of, playlists and shares meetrec's recordings with only its host and key changed: run as
a separate process against the api on a real loopback HTTP server."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import requests

from app.services.access import keys
from tests import rrweb_session
from tests.browser import live_server

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "posthog_export.py"


def test_a_posthog_export_script_works_against_meetrec(app, rt, tmp_path):
    project = keys.create_project(rt, "script-" + secrets.token_hex(3))
    public = keys.create_key(rt, project.id, ("ingest",))[1]
    private = keys.create_key(rt, project.id, ("recording:read", "recording:write"), name="exporter")[1]
    events = rrweb_session.load()
    sessions = [f"tab-{i}-{secrets.token_hex(3)}" for i in range(3)]
    with live_server(app) as base:
        for session in sessions:
            for batch in (events[:40], events[40:]):  # two blocks each
                resp = requests.post(
                    f"{base}/rrweb/recordings/{session}/ingest",
                    json=batch,
                    headers={"Authorization": f"Bearer {public}"},
                    timeout=30,
                )
                assert resp.status_code == 204
        done = subprocess.run(
            [
                sys.executable,
                str(SCRIPT),
                "--host",
                base,
                "--key",
                private,
                "--out",
                str(tmp_path / "out"),
                "--playlist",
                "Exported",
                "--share",
                sessions[0],
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["project"] == project.id
        assert sorted(r["id"] for r in report["recordings"]) == sorted(sessions)
        assert all(r["events"] == len(events) for r in report["recordings"])
        assert all(r["clicks"] == rrweb_session.FACTS["click_count"] for r in report["recordings"])
        exported = (tmp_path / "out" / f"{sessions[1]}.jsonl").read_text().splitlines()
        assert [json.loads(line) for line in exported] == sorted(events, key=lambda e: e["timestamp"])
        playlist = requests.get(
            f"{base}/api/projects/@current/session_recording_playlists/{report['playlist']}/recordings/",
            headers={"Authorization": f"Bearer {private}"},
            timeout=30,
        ).json()
        assert sorted(r["id"] for r in playlist["results"]) == sorted(sessions)
        shared = requests.get(report["shared"], timeout=30)  # no key: the link alone
        assert shared.status_code == 200 and shared.json()["id"] == sessions[0]
