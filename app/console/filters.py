"""Jinja filters for the console: durations, byte sizes and UTC timestamps in human form."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint


def duration(seconds: float | None) -> str:
    """`75.9` -> `1:15`, `3725` -> `1:02:05`; an em dash when unknown."""
    if seconds is None:
        return "—"
    total = int(seconds)  # as players show it: 4.6 s is 0:04
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def size(count: int | None) -> str:
    """`1536` -> `1.5 KiB`; an em dash when unknown."""
    if count is None:
        return "—"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def utc(ts: datetime | None) -> str:
    """A timestamp as `2025-01-31 14:05:09 UTC`; an em dash when unset."""
    if ts is None:
        return "—"
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def unix_ms(ms: int | None) -> str:
    """An event's Unix-ms timestamp as `utc` shows it, with milliseconds; an em dash when unset or
    past what a date can hold."""
    if ms is None:
        return "—"
    try:
        moment = datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return "—"
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d} UTC"


def iso(ts: datetime | None) -> str:
    """A timestamp for `<time datetime=...>`."""
    return ts.isoformat(timespec="seconds") if ts else ""


def register(bp: Blueprint) -> None:
    for name, fn in (("duration", duration), ("size", size), ("utc", utc), ("ms", unix_ms), ("iso", iso)):
        bp.add_app_template_filter(fn, f"console_{name}")
