"""`meetrec` command line: up, api, worker, scheduler, migrate, health, keys, recordings, signing-keys."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.commands import keys as keys_commands
from app.commands import recordings as recordings_commands
from app.commands.base import RAW, group, subcommand
from app.commands.base import config as _config
from app.errors import ConfigError, NotFound


def cmd_up(args: argparse.Namespace) -> int:
    from app.embedded.up import run_up

    return run_up(_config())


def cmd_api(args: argparse.Namespace) -> int:
    from app.wsgi import serve

    serve(_config(), workers=args.workers, threads=args.threads)
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from app.observability import probes

    config = _config()
    if args.role == "api":
        problem = probes.api(config)
    else:
        from app.runtime import Runtime

        rt = Runtime(config)
        try:
            problem = probes.worker(rt) if args.role == "worker" else probes.scheduler(rt)
        except Exception as e:  # noqa: BLE001 - Redis unreachable is unhealthy, not a crash
            problem = f"{type(e).__name__}: {e}"
    if problem:
        print(f"meetrec {args.role}: unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.worker import run_worker

    return run_worker(_config(), args.queues or ["capture", "media", "webhooks", "default"], burst=args.burst)


def cmd_scheduler(args: argparse.Namespace) -> int:
    from workers.scheduler import run_scheduler

    return run_scheduler(_config())


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.bootstrap import bootstrap, hand_over

    config = _config()
    minted = bootstrap(config)
    if minted:  # shown on an interactive stderr or written to a 0600 file; never on stdout, the log
        print(hand_over(config, minted, sys.stderr), flush=True)
    return 0


def cmd_signing_keys(args: argparse.Namespace) -> int:
    from app.runtime import Runtime
    from app.services.access import keys, signing

    rt = Runtime(_config())
    project_id = args.project or keys.bootstrap_project_id(rt)
    if args.signing_command == "create":
        signing.create_key(rt, project_id)
    elif args.signing_command == "retire":
        try:
            signing.retire_key(rt, project_id, args.key_id)
        except NotFound as e:
            print(f"meetrec: {e.message}", file=sys.stderr)
            return 1
    found = signing.keys_of(rt, project_id)
    current = next((k.id for k in found if k.retired_at is None), None)
    for key in found:
        state = "current" if key.id == current else ("retired" if key.retired_at else "verifies")
        print(f"{key.id}\t{state}\tcreated {key.created_at:%Y-%m-%d %H:%M}")
    return 0


EXAMPLES = """examples:
  meetrec up                        everything on this machine
  meetrec keys list                 the first project's API keys
  meetrec recordings list --json    its recent recordings, for scripts

Run `meetrec COMMAND --help` for each command."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="meetrec", description=__doc__, epilog=EXAMPLES, formatter_class=RAW)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(sub, "up", "run the whole product on this machine", "meetrec up", cmd_up)
    api = _command(sub, "api", "serve the HTTP API under gunicorn", "meetrec api --workers 4", cmd_api)
    api.add_argument("--workers", type=int, help="gunicorn workers (default: MEETREC_API_WORKERS, 2)")
    api.add_argument("--threads", type=int, help="threads per worker (default: MEETREC_API_THREADS, 4)")
    worker = _command(sub, "worker", "run an RQ worker", "meetrec worker capture", cmd_worker)
    worker.add_argument("queues", nargs="*", help="capture, media, webhooks, default (all by default)")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    _command(sub, "scheduler", "run the scheduler", "meetrec scheduler", cmd_scheduler)
    _command(sub, "migrate", "migrate the database, create the bucket", "meetrec migrate", cmd_migrate)
    health = _command(
        sub,
        "health",
        "exit 0 when this role is healthy (container healthchecks)",
        "meetrec health worker || echo unhealthy",
        cmd_health,
    )
    health.add_argument("role", choices=["api", "worker", "scheduler"])
    keys_commands.register(sub)
    recordings_commands.register(sub)
    signing_sub = group(
        sub,
        "signing-keys",
        "the keys presigned URLs are signed with (rotate: create, later retire the old)",
        "Manage the keys presigned download links are signed with.",
        "meetrec signing-keys create && meetrec signing-keys list",
        dest="signing_command",
    )
    for name, text in (("list", "list them"), ("create", "create one; new links are signed with it")):
        one = _command(signing_sub, name, text, f"meetrec signing-keys {name}", cmd_signing_keys)
        one.add_argument("--project", help="project id (default: the first project)")
    retire = _command(
        signing_sub,
        "retire",
        "retire one: links signed with it stop working",
        "meetrec signing-keys retire 4e5f6a7b8c9d0e1f2a3b4c5d",
        cmd_signing_keys,
    )
    retire.add_argument("key_id")
    retire.add_argument("--project", help="project id (default: the first project)")
    return p


def _command(sub: Any, name: str, text: str, example: str, func: Any) -> argparse.ArgumentParser:
    """A subcommand whose epilog is one example."""
    return subcommand(sub, name, text, f"example:\n  {example}", func)


def main(argv: list[str] | None = None) -> int:
    from app.observability import logs
    from app.observability.settings import ServerSettings

    try:
        server = ServerSettings.from_env()
    except ConfigError as e:
        print(f"meetrec: {e}", file=sys.stderr)
        return 2
    logs.configure(server.log_format, server.log_level)  # JSON lines unless on a terminal
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
