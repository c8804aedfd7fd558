"""Export session recordings through PostHog's API: written against PostHog, run against meetrec.

    python examples/posthog_export.py --host http://localhost:8080 --key <KEY> --out exports/ \\
        [--playlist "Exported"] [--share <session id>]

Nothing here knows meetrec: it finds the project with `GET /api/projects/`, walks
`session_recordings/` by its `next` links, loads each recording's snapshot sources and then each
`blob_v2` source (JSON lines of `[windowId, event]`), and writes one `<session id>.jsonl` of rrweb
events per recording. `--playlist` collects the exported recordings in a new playlist; `--share` turns
on a recording's public link and prints it. It prints a JSON report on stdout. Needs `requests`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import requests


class PostHog:
    """The few calls of PostHog's recordings API this script makes."""

    def __init__(self, host: str, key: str):
        self.host = host.rstrip("/")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def get(self, url: str, **params: Any) -> requests.Response:
        response = self.http.get(
            url if url.startswith("http") else self.host + url, params=params, timeout=60
        )
        response.raise_for_status()
        return response

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, self.host + path, json=body, timeout=60)
        response.raise_for_status()
        return response.json() if response.content else None

    def project_id(self) -> str:
        return str(self.get("/api/projects/").json()["results"][0]["id"])

    def recordings(self, project: str, page_size: int = 100) -> list[dict[str, Any]]:
        found, url = [], f"{self.host}/api/projects/{project}/session_recordings/?limit={page_size}"
        while url:
            page = self.get(url).json()
            found += page["results"]
            url = page["next"]
        return found

    def events(self, project: str, session_id: str) -> list[dict[str, Any]]:
        base = f"/api/projects/{project}/session_recordings/{session_id}/snapshots/"
        events: list[dict[str, Any]] = []
        for source in self.get(base).json()["sources"]:
            if source["source"] != "blob_v2":
                continue
            key = source["blob_key"]
            text = self.get(base, source="blob_v2", start_blob_key=key, end_blob_key=key).text
            events += [json.loads(line)[1] for line in text.splitlines() if line]
        return sorted(events, key=lambda e: e["timestamp"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--key", required=True, help="a personal API key")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--playlist", help="collect the exported recordings in a new playlist of this name")
    parser.add_argument("--share", help="turn on the public link of this session and print it")
    args = parser.parse_args(argv)
    posthog = PostHog(args.host, args.key)
    project = posthog.project_id()
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"project": project, "recordings": []}
    for recording in posthog.recordings(project):
        events = posthog.events(project, recording["id"])
        lines = "".join(json.dumps(e) + "\n" for e in events)
        (args.out / f"{recording['id']}.jsonl").write_text(lines)
        report["recordings"].append(
            {
                "id": recording["id"],
                "events": len(events),
                "duration": recording["recording_duration"],
                "clicks": recording["click_count"],
                "start_url": recording["start_url"],
            }
        )
    if args.playlist:
        playlists = f"/api/projects/{project}/session_recording_playlists/"
        playlist = posthog.send("POST", playlists, {"name": args.playlist, "type": "collection"})
        for recording in report["recordings"]:
            posthog.send("POST", f"{playlists}{playlist['short_id']}/recordings/{recording['id']}/")
        report["playlist"] = playlist["short_id"]
    if args.share:
        sharing = f"/api/projects/{project}/session_recordings/{args.share}/sharing/"
        token = posthog.send("PATCH", sharing, {"enabled": True})["access_token"]
        report["shared"] = (
            f"{posthog.host}/api/projects/{project}/session_recordings/{args.share}/?sharing_access_token={token}"
        )
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
