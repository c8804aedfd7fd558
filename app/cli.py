"""`meetrec` command line: up, api, worker, scheduler, migrate, health, keys, signing-keys."""

from __future__ import annotations

import argparse
import sys

from app.config import Config
from app.errors import ConfigError, NotFound, Unprocessable


def _config() -> Config:
    try:
        return Config.from_env()
    except ConfigError as e:
        print(f"meetrec: {e}", file=sys.stderr)
        raise SystemExit(2) from e


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


def cmd_keys_create(args: argparse.Namespace) -> int:
    from app.runtime import Runtime
    from app.services.access import keys

    rt = Runtime(_config())
    project_id = args.project or keys.bootstrap_project_id(rt)
    scopes = tuple(args.scope or (["admin"] if args.admin else list(keys.DEFAULT_SCOPES)))
    try:
        _, raw = keys.create_key(rt, project_id, scopes, name=args.name, origins=tuple(args.origin or ()))
    except Unprocessable as e:
        print(f"meetrec: {e.message}", file=sys.stderr)
        return 2
    print(raw)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="meetrec", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run the whole product on this machine").set_defaults(func=cmd_up)
    api = sub.add_parser("api", help="serve the HTTP API under gunicorn")
    api.add_argument("--workers", type=int, help="gunicorn workers (default: MEETREC_API_WORKERS, 2)")
    api.add_argument("--threads", type=int, help="threads per worker (default: MEETREC_API_THREADS, 4)")
    api.set_defaults(func=cmd_api)
    worker = sub.add_parser("worker", help="run an RQ worker")
    worker.add_argument("queues", nargs="*", help="capture, media, webhooks, default (all by default)")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    worker.set_defaults(func=cmd_worker)
    sub.add_parser("scheduler", help="run the scheduler").set_defaults(func=cmd_scheduler)
    sub.add_parser("migrate", help="migrate the database, create the bucket").set_defaults(func=cmd_migrate)
    health = sub.add_parser("health", help="exit 0 when this role is healthy (container healthchecks)")
    health.add_argument("role", choices=["api", "worker", "scheduler"])
    health.set_defaults(func=cmd_health)
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="mint an API key and print it once")
    create.add_argument("--project", help="project id (default: the first project)")
    create.add_argument("--admin", action="store_true", help="an admin key")
    create.add_argument("--scope", action="append", help="a scope (repeatable)")
    create.add_argument("--name", default="cli")
    create.add_argument(
        "--origin",
        action="append",
        help="a page origin (https://shop.example) a browser may use the key from (repeatable; none: any)",
    )
    create.set_defaults(func=cmd_keys_create)
    signing_keys = sub.add_parser(
        "signing-keys", help="the keys presigned URLs are signed with (rotate: create, later retire the old)"
    )
    signing_sub = signing_keys.add_subparsers(dest="signing_command", required=True)
    for name, text in (("list", "list them"), ("create", "create one; new links are signed with it")):
        one = signing_sub.add_parser(name, help=text)
        one.add_argument("--project", help="project id (default: the first project)")
        one.set_defaults(func=cmd_signing_keys)
    retire = signing_sub.add_parser("retire", help="retire one: links signed with it stop working")
    retire.add_argument("key_id")
    retire.add_argument("--project", help="project id (default: the first project)")
    retire.set_defaults(func=cmd_signing_keys)
    return p


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
