"""`meetrec recordings`: a project's recent recordings, and what an operator wants to know about one."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from app.commands import base
from app.commands.base import reported

if TYPE_CHECKING:
    from app.services.operations import inventory

HEADERS = ("ID", "ROOM", "STATE", "STARTED", "DURATION", "KIND")
RECENT = 20


def as_json(listed: inventory.Listed) -> dict[str, Any]:
    """A listed recording as `--json` prints it."""
    rec = listed.recording
    return {
        "id": rec.id,
        "external_id": rec.external_id,
        "room": listed.room,
        "state": rec.state.value,
        "kind": listed.kind,
        "created_at": base.iso(rec.created_at),
        "duration": rec.duration,
        "size": rec.size,
    }


def facts_json(found: inventory.Facts) -> dict[str, Any]:
    """One recording's facts as `recordings show --json` prints them."""
    rec = found.recording
    return {
        **as_json(found),
        "stopped_at": base.iso(rec.stopped_at),
        "finished_at": base.iso(rec.finished_at),
        "sha256": rec.sha256,
        "error": rec.error,
        "stop_reason": rec.stop_reason,
        "persist": rec.persist,
        "legal_hold": rec.legal_hold,
        "deletes_at": base.iso(found.deletes_at),
        "webhook_deliveries": found.deliveries,
    }


@reported
def cmd_list(args: argparse.Namespace) -> int:
    """`meetrec recordings list`: the project's recent recordings."""
    from app.services.operations import inventory

    rt = base.runtime()
    found = inventory.recent(rt, base.project_id(rt, args.project), args.limit, args.state)
    if args.json:
        base.print_json([as_json(r) for r in found])
    elif found:
        print(base.table(HEADERS, [_row(r) for r in found]))
    else:
        print("no recordings")
    return 0


@reported
def cmd_show(args: argparse.Namespace) -> int:
    """`meetrec recordings show ID`: one recording's facts."""
    from app.services.operations import inventory

    rt = base.runtime()
    found = inventory.facts(rt, base.project_id(rt, args.project), args.recording_id)
    if args.json:
        base.print_json(facts_json(found))
    else:
        print(base.fields(_facts(found)))
    return 0


def _row(listed: inventory.Listed) -> tuple[str, ...]:
    """A recording as a row of `recordings list`'s table."""
    from app.console.filters import duration

    rec = listed.recording
    played = duration(rec.duration) if rec.duration is not None else "-"
    return (rec.id, listed.room or "-", rec.state.value, base.minute(rec.created_at), played, listed.kind)


def _facts(found: inventory.Facts) -> list[tuple[str, str]]:
    """A recording's facts as `recordings show` prints them, in order."""
    from app.console.filters import duration, size

    rec = found.recording
    exempt = "never (legal hold)" if rec.legal_hold else "never (persisted)"
    stored = f"{size(rec.size)} ({rec.size} bytes)" if rec.size is not None else "-"
    played = f"{duration(rec.duration)} ({rec.duration:.1f} s)" if rec.duration is not None else "-"
    return [
        ("id", rec.id),
        ("external id", rec.external_id),
        ("room", found.room or "-"),
        ("kind", found.kind),
        ("state", rec.state.value),
        ("started", _utc(rec.created_at)),
        ("stopped", _utc(rec.stopped_at)),
        ("finished", _utc(rec.finished_at)),
        ("duration", played),
        ("size", stored),
        ("sha256", rec.sha256 or "-"),
        ("stop reason", rec.stop_reason or "-"),
        ("failure", rec.error or "-"),
        ("deleted on", _utc(found.deletes_at) if found.deletes_at else exempt),
        ("webhook deliveries", str(found.deliveries)),
    ]


def _utc(ts: Any) -> str:
    """A timestamp to the second, in UTC; a dash when unset."""
    return f"{ts:%Y-%m-%d %H:%M:%S} UTC" if ts else "-"


LIST_HELP = "the project's recent recordings, newest first (deleted ones left out)"
SHOW_HELP = "one recording: state, times, duration, size, failure, retention date, webhook deliveries"
LIST_EPILOG = """examples:
  meetrec recordings list
  meetrec recordings list --state failed --limit 50
  meetrec recordings list --json | jq -r '.[] | select(.state == "finished") | .id'

STARTED is when the recording was started (UTC); KIND is video, replay (a web replay), video+replay
or events (an interaction session without media)."""
SHOW_EPILOG = """example:
  meetrec recordings show 5b0e3c1f9a2d4e7b8c6d0f1a

Unknown, deleted and other projects' ids exit with status 1."""


def register(sub: Any) -> None:
    """Add `recordings` and its subcommands to the `meetrec` command line."""
    commands = base.group(
        sub,
        "recordings",
        "list recordings and show one",
        "Read a project's recordings (the first project unless --project says).",
        "meetrec recordings list",
    )
    listed = base.subcommand(commands, "list", LIST_HELP, LIST_EPILOG, cmd_list)
    listed.add_argument("--limit", type=base.positive, default=RECENT, help=f"how many (default: {RECENT})")
    listed.add_argument("--state", help="only recordings in this state: started, stopped, finished or failed")
    base.add_common(listed)
    show = base.subcommand(commands, "show", SHOW_HELP, SHOW_EPILOG, cmd_show)
    show.add_argument("recording_id", metavar="ID", help="the recording's id (see `meetrec recordings list`)")
    base.add_common(show)
