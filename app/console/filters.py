"""Jinja filters for the console: durations, byte sizes and moments in human form.

Every moment on a console page goes through `console_when`: relative text ("3 min ago", "in 13 days")
in a `<time>` element whose `datetime` is machine-readable and whose `title` is the absolute UTC time,
shown on hover. It takes datetimes, ISO 8601 strings and Unix times (seconds, or milliseconds with
`unit="ms"`), so no page formats a moment of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app
from markupsafe import Markup

DASH = "—"
MINUTE, HOUR, DAY = 60, 3600, 86400
# Past this, a relative figure says less than the date itself.
RELATIVE_DAYS = 45


def duration(seconds: float | None) -> str:
    """`75.9` -> `1:15`, `3725` -> `1:02:05`; an em dash when unknown."""
    if seconds is None:
        return DASH
    total = int(seconds)  # as players show it: 4.6 s is 0:04
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def size(count: int | None) -> str:
    """`1536` -> `1.5 KiB`; an em dash when unknown."""
    if count is None:
        return DASH
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def moment(value: datetime | str | float | None, unit: str = "s") -> datetime | None:
    """`value` as an aware UTC datetime: a datetime (naive ones are UTC), an ISO 8601 string, or a Unix
    time in seconds (milliseconds with `unit="ms"`); None when unset or not a moment."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        if isinstance(value, datetime):
            found = value
        elif isinstance(value, str):
            found = datetime.fromisoformat(value)
        else:
            found = datetime.fromtimestamp(float(value) / (1000 if unit == "ms" else 1), UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


def relative(at: datetime, now: datetime) -> str:
    """`at` seen from `now`: "just now", "42 s ago", "3 min ago", "in 13 days"; past RELATIVE_DAYS, the
    date."""
    delta = (at - now).total_seconds()
    gone = abs(delta)
    if gone >= RELATIVE_DAYS * DAY:
        return f"on {at:%Y-%m-%d}"
    if gone < 5:
        return "just now" if delta <= 0 else "in a moment"
    if gone < MINUTE:
        amount = f"{int(gone)} s"
    elif gone < HOUR:
        amount = f"{int(gone // MINUTE)} min"
    elif gone < DAY:
        amount = f"{int(gone // HOUR)} h"
    else:
        days = int(gone // DAY)
        amount = f"{days} day" if days == 1 else f"{days} days"
    return f"{amount} ago" if delta < 0 else f"in {amount}"


def utc(at: datetime) -> str:
    """`2025-01-31 14:05:09 UTC`."""
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def when(value: datetime | str | float | None, now: datetime, unit: str = "s") -> Markup:
    """`<time datetime="..." title="... UTC">3 min ago</time>`, or an em dash when unset."""
    at = moment(value, unit)
    if at is None:
        return Markup(DASH)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        at.isoformat(timespec="seconds"), utc(at), relative(at, now)
    )


def _when(value: datetime | str | float | None, unit: str = "s") -> Markup:
    return when(value, current_app.extensions["meetrec"].now(), unit)


def register(bp: Blueprint) -> None:
    for name, fn in (("duration", duration), ("size", size), ("when", _when)):
        bp.add_app_template_filter(fn, f"console_{name}")
