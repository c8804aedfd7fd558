"""`meetrec keys`: list, create, revoke and rotate a project's API keys without SQL."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from app.commands import base
from app.commands.base import reported
from app.services.access.scopes import DEFAULT_SCOPES, SCOPES

if TYPE_CHECKING:
    from app.models import ApiKey

SHOWN_JSON = "print the new key as JSON, its secret in `key`"
HEADERS = ("ID", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST USED", "REVOKED", "ORIGINS")


def as_json(key: ApiKey) -> dict[str, Any]:
    """A key as `--json` prints it (never its secret: only its hash is stored)."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": sorted(key.scope_set),
        "allowed_origins": key.allowed_origins.split(),
        "public_token": key.public_token_sealed is not None,
        "created_at": base.iso(key.created_at),
        "last_used_at": base.iso(key.last_used_at),
        "revoked_at": base.iso(key.revoked_at),
    }


def _row(key: ApiKey) -> tuple[str, ...]:
    """A key as a row of `keys list`'s table."""
    return (
        key.id,
        key.name or "-",
        f"{key.prefix}…",
        ",".join(sorted(key.scope_set)),
        base.minute(key.created_at),
        base.minute(key.last_used_at, "never"),
        base.minute(key.revoked_at),
        ",".join(key.allowed_origins.split()) or "any",
    )


@reported
def cmd_list(args: argparse.Namespace) -> int:
    """`meetrec keys list`: the project's keys, live ones unless --all."""
    from app.services.access import keys

    rt = base.runtime()
    found = keys.list_keys(rt, base.project_id(rt, args.project), include_revoked=args.all)
    if args.json:
        base.print_json([as_json(k) for k in found])
    elif found:
        print(base.table(HEADERS, [_row(k) for k in found]))
    else:
        print("no keys" if args.all else "no live keys (--all shows revoked ones)")
    return 0


@reported
def cmd_create(args: argparse.Namespace) -> int:
    """`meetrec keys create`: mint a key and print its secret, this once."""
    from app.services.access import keys

    rt = base.runtime()
    scopes = tuple(args.scope or (["admin"] if args.admin else list(DEFAULT_SCOPES)))
    origins = tuple(args.origin or ())
    key, raw = keys.create_key(rt, base.project_id(rt, args.project), scopes, name=args.name, origins=origins)
    if args.json:
        base.print_json({**as_json(key), "key": raw})
    else:
        print(raw)
    return 0


@reported
def cmd_revoke(args: argparse.Namespace) -> int:
    """`meetrec keys revoke KEY_ID`: revoke one of the project's keys."""
    from app.services.access import keys
    from app.services.operations import key_admin

    rt = base.runtime()
    pid = base.project_id(rt, args.project)
    before = keys.project_key(rt, pid, args.key_id).revoked_at
    key = key_admin.revoke(rt, pid, args.key_id)
    if args.json:
        base.print_json({**as_json(key), "already_revoked": before is not None})
    elif before is not None:
        print(f"{key.id} ({key.name}) was already revoked at {base.minute(before)} UTC")
    else:
        print(f"revoked {key.id} ({key.name}, {key.prefix}…)")
    return 0


@reported
def cmd_rotate(args: argparse.Namespace) -> int:
    """`meetrec keys rotate KEY_ID`: replace a key; print the new secret, this once."""
    from app.services.operations import key_admin

    rt = base.runtime()
    new, raw = key_admin.rotate(rt, base.project_id(rt, args.project), args.key_id)
    if args.json:
        base.print_json({**as_json(new), "key": raw, "replaces": args.key_id})
        return 0
    print(raw)
    print(
        f"meetrec: revoked {args.key_id}; its replacement {new.id} is printed above, once: store it now",
        file=sys.stderr,
    )
    return 0


LIST_EPILOG = """examples:
  meetrec keys list
  meetrec keys list --all --project 3f2a9c0e1b7d4e6f8a9b0c1d
  meetrec keys list --json | jq -r '.[] | select(.last_used_at == null) | .id'

Times are UTC. LAST USED is exact to within five minutes."""
CREATE_EPILOG = """examples:
  meetrec keys create --name "meeting app"
  meetrec keys create --name shop --scope ingest --origin https://shop.example
  meetrec keys create --admin --name ops --json

The secret is printed once; only its hash is stored."""
REVOKE_EPILOG = """example:
  meetrec keys revoke 8c1d2e3f4a5b6c7d8e9f0a1b

Every API process refuses the key within 10 s (they cache keys that long); a webhook registered
with it is disabled and its pending deliveries are cancelled."""
ROTATE_EPILOG = """example:
  NEW=$(meetrec keys rotate 8c1d2e3f4a5b6c7d8e9f0a1b)

A new key with the same name, scopes and origins is minted and printed once; the old one is revoked
(as `keys revoke` does, its webhook included). The project's public token is replaced by a new one."""


def register(sub: Any) -> None:
    """Add `keys` and its subcommands to the `meetrec` command line."""
    commands = base.group(
        sub,
        "keys",
        "list, create, revoke and rotate API keys",
        "Manage the API keys of a project (the first project unless --project says).",
        "meetrec keys list",
    )
    listed = _command(commands, "list", "list the project's keys", LIST_EPILOG, cmd_list)
    listed.add_argument("--all", action="store_true", help="include revoked keys")
    create = _command(commands, "create", "mint a key and print its secret once", CREATE_EPILOG, cmd_create)
    create.add_argument("--admin", action="store_true", help="an admin key (every scope)")
    create.add_argument("--scope", action="append", help=f"a scope (repeatable; one of: {_scopes()})")
    create.add_argument("--name", default="cli", help="what the key is for (default: cli)")
    create.add_argument(
        "--origin",
        action="append",
        help="a page origin (https://shop.example) a browser may use the key from (repeatable; none: any)",
    )
    revoke = _command(commands, "revoke", "revoke a key now", REVOKE_EPILOG, cmd_revoke)
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id (see `meetrec keys list`)")
    rotate = _command(commands, "rotate", "replace a key with a new one", ROTATE_EPILOG, cmd_rotate)
    rotate.add_argument("key_id", metavar="KEY_ID", help="the key's id (see `meetrec keys list`)")


def _command(commands: Any, name: str, text: str, epilog: str, func: Any) -> argparse.ArgumentParser:
    """A `keys` subcommand with --project and --json."""
    parser = base.subcommand(commands, name, text, epilog, func)
    base.add_common(parser, SHOWN_JSON if name in ("create", "rotate") else base.LISTED_JSON)
    return parser


def _scopes() -> str:
    """Every scope a key may carry, for --scope's help."""
    return ", ".join(sorted(SCOPES))
