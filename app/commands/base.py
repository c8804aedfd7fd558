"""What every operator command shares: the runtime, the project it acts on, how refusals are reported
(a `meetrec: ...` line on stderr and a non-zero exit) and how results are printed.

The command line builds every parser on each run (`meetrec health` in a container healthcheck too), so
these modules import the database layer only inside the commands that use it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import wraps
from typing import TYPE_CHECKING, Any

from app.config import Config
from app.errors import ConfigError, DomainError, NotFound, Unprocessable

if TYPE_CHECKING:
    from app.runtime import Runtime

RAW = argparse.RawDescriptionHelpFormatter  # keeps the examples in an epilog as written
LISTED_JSON = "print JSON (for scripts) instead of text"
NOT_FOUND, INVALID = 1, 2  # exit codes: unknown id or wrong state; bad input (as argparse's usage errors)


def config() -> Config:
    """The configuration from the environment; exit 2 with the reason when it is invalid."""
    try:
        return Config.from_env()
    except ConfigError as e:
        print(f"meetrec: {e}", file=sys.stderr)
        raise SystemExit(INVALID) from e


def runtime() -> Runtime:
    """A runtime for one command, from the environment's configuration."""
    from app.runtime import Runtime

    return Runtime(config())


def project_id(rt: Runtime, given: str | None) -> str:
    """`--project` when it names a project; without it the first project (made as "default" if none)."""
    from app.services.access import keys
    from app.services.interactions import catalog

    if not given:
        return keys.bootstrap_project_id(rt)
    try:
        return catalog.project(rt, given).id
    except NotFound:
        raise NotFound(f"no project {given}") from None


def reported(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Decorate a command: a service's refusal becomes `meetrec: <message>` on stderr and exit 2 for
    invalid input, 1 for anything else (unknown id, wrong state)."""

    @wraps(command)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except DomainError as e:
            print(f"meetrec: {e.message}", file=sys.stderr)
            return INVALID if isinstance(e, Unprocessable) else NOT_FOUND

    return wrapper


def subcommand(commands: Any, name: str, text: str, epilog: str, func: Any) -> argparse.ArgumentParser:
    """A subcommand with its one-line help (its description too), an epilog of examples kept as written,
    and the function that runs it."""
    description = text[0].upper() + text[1:] + "."
    parser = commands.add_parser(name, help=text, description=description, epilog=epilog, formatter_class=RAW)
    parser.set_defaults(func=func)
    return parser


def group(sub: Any, name: str, text: str, description: str, example: str, dest: str = "") -> Any:
    """A command made of subcommands (`meetrec keys ...`), the chosen one in `args.<dest>`
    (`<name>_command` by default); returns what the subcommands are added to."""
    epilog = f"example:\n  {example}\n\nRun `meetrec {name} COMMAND --help` for each command."
    parser = sub.add_parser(name, help=text, description=description, epilog=epilog, formatter_class=RAW)
    return parser.add_subparsers(dest=dest or f"{name}_command", required=True, metavar="COMMAND")


def add_common(parser: argparse.ArgumentParser, json_help: str = LISTED_JSON) -> None:
    """The options every operator command takes: `--project` and `--json`."""
    parser.add_argument("--project", metavar="ID", help="project id (default: the first project)")
    parser.add_argument("--json", action="store_true", help=json_help)


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text}")
    return int(text)


def print_json(value: Any) -> None:
    """Print `value` as indented JSON on stdout."""
    print(json.dumps(value, indent=2))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned on the widest cell, two spaces apart; the last column is not padded."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def fields(pairs: Sequence[tuple[str, str]]) -> str:
    """`name  value` lines, the values aligned."""
    width = max(len(name) for name, _ in pairs)
    return "\n".join(f"{name.ljust(width)}  {value}".rstrip() for name, value in pairs)


def iso(ts: datetime | None) -> str | None:
    """A timestamp for JSON output (ISO 8601 with its offset), None when unset."""
    return ts.isoformat() if ts else None


def minute(ts: datetime | None, unset: str = "-") -> str:
    """A UTC timestamp to the minute for a table cell; `unset` when there is none."""
    return ts.strftime("%Y-%m-%d %H:%M") if ts else unset
