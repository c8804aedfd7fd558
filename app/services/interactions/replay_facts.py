"""Facts of a web replay computed from its rrweb events, as PostHog's session recordings define them.

Pure functions, no I/O. `facts_of` reads one batch; `replays` adds its counters to the replay's
`ReplaySummary` and merges its activity intervals, pages and first Meta event into the row's under the
row's lock, so batches may arrive in any order, overlapping or not, and the counts, active time and
start URL are the whole session's (pages: see below).

The definitions (PostHog's): a click is a MouseInteraction (IncrementalSnapshot source 2) of type
Click, DblClick, ContextMenu or TouchEnd; a keypress an Input (source 5); mouse activity a MouseMove,
MouseInteraction or TouchMove (sources 1, 2, 6). Console counts come from the `rrweb/console@1` plugin
events by `payload.level`. An event is *active* when it is an IncrementalSnapshot from a user source
(MouseMove, MouseInteraction, Scroll, ViewportResize, Input, TouchMove, MediaInteraction, Drag); active
events more than ACTIVITY_GAP_MS apart start a new segment, and a segment [first, last] counts
max(1, last - first) ms. Pages are the `href`s of Meta events, distinct, in order of first appearance:
in timestamp order within a batch, and across batches in order of arrival, except that a batch whose
first Meta event is older than the stored start URL puts its pages first. So batches arriving out of
order are not always put back in timestamp order: pages A, C, B arriving in that order stay [A, C, B].

Events were checked only to have an int `type` and a numeric `timestamp`: anything else may be missing
or of any JSON type, and is then not counted. Nothing here raises on odd input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

INCREMENTAL, META, PLUGIN = 3, 4, 6
MOUSE_MOVE, MOUSE_INTERACTION, SCROLL, VIEWPORT_RESIZE, INPUT, TOUCH_MOVE, MEDIA, DRAG = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    12,
)
CLICK, CONTEXT_MENU, DBL_CLICK, TOUCH_END = 2, 3, 4, 9
CLICK_TYPES = frozenset({CLICK, DBL_CLICK, TOUCH_END, CONTEXT_MENU})
MOUSE_ACTIVITY_SOURCES = frozenset({MOUSE_MOVE, MOUSE_INTERACTION, TOUCH_MOVE})
ACTIVE_SOURCES = frozenset(
    {MOUSE_MOVE, MOUSE_INTERACTION, SCROLL, VIEWPORT_RESIZE, INPUT, TOUCH_MOVE, MEDIA, DRAG}
)
CONSOLE_PLUGIN = "rrweb/console@1"
WARN_LEVELS = frozenset({"warn", "countReset"})
ERROR_LEVELS = frozenset({"error", "assert"})
ACTIVITY_GAP_MS = 5000
MAX_INTERVALS = 1000
MAX_PAGES = 50
MAX_URL = 2000
COUNTERS = (
    "click_count",
    "keypress_count",
    "mouse_activity_count",
    "console_log_count",
    "console_warn_count",
    "console_error_count",
)
"""The ReplaySummary columns a batch adds to, as named in BatchFacts."""


@dataclass(frozen=True)
class BatchFacts:
    """What one batch of events adds to its replay: counts, activity intervals, pages, first Meta."""

    click_count: int = 0
    keypress_count: int = 0
    mouse_activity_count: int = 0
    console_log_count: int = 0
    console_warn_count: int = 0
    console_error_count: int = 0
    activity: tuple[tuple[int, int], ...] = ()  # merged [start, end] ms intervals, oldest first
    pages: tuple[str, ...] = ()  # distinct Meta hrefs in timestamp order (at most MAX_PAGES)
    first_meta: tuple[int, str] | None = None  # (timestamp, href) of the earliest Meta event

    def counters(self) -> dict[str, int]:
        """The six counts by ReplaySummary column name (COUNTERS)."""
        return {name: getattr(self, name) for name in COUNTERS}


def as_int(value: Any) -> int | None:
    """`value` as an int when it is a JSON number with an integral value (JavaScript's `=== n`), else None."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return None


def data_of(event: Any) -> dict[str, Any]:
    """The event's `data` when it is an object, else an empty one."""
    data = event.get("data") if type(event) is dict else None
    return data if type(data) is dict else {}


def console_level(data: dict[str, Any]) -> str:
    """The bucket of a console plugin event's `payload.level`: "warn", "error", or else "log"."""
    payload = data.get("payload")
    level = payload.get("level") if type(payload) is dict else None
    if type(level) is not str:
        return "log"
    if level in WARN_LEVELS:
        return "warn"
    if level in ERROR_LEVELS:
        return "error"
    return "log"


def meta_href(data: dict[str, Any]) -> str | None:
    """A Meta event's page URL (truncated to MAX_URL), or None when it has none."""
    href = data.get("href")
    return href[:MAX_URL] if type(href) is str and href else None


def facts_of(events: Iterable[Any]) -> BatchFacts:
    """The facts of one batch of events (in any order); never raises."""
    counts = {"click": 0, "keypress": 0, "mouse": 0, "log": 0, "warn": 0, "error": 0}
    active: list[int] = []
    metas: list[tuple[int, str]] = []
    for event in events:
        ts = as_int(event.get("timestamp")) if type(event) is dict else None
        if ts is None:
            continue
        kind, data = event.get("type"), data_of(event)
        if kind == INCREMENTAL:
            _count_incremental(counts, active, data, ts)
        elif kind == PLUGIN and data.get("plugin") == CONSOLE_PLUGIN:
            counts[console_level(data)] += 1
        elif kind == META and (href := meta_href(data)) is not None:
            metas.append((ts, href))
    metas.sort(key=lambda m: m[0])
    return BatchFacts(
        click_count=counts["click"],
        keypress_count=counts["keypress"],
        mouse_activity_count=counts["mouse"],
        console_log_count=counts["log"],
        console_warn_count=counts["warn"],
        console_error_count=counts["error"],
        activity=tuple((a, b) for a, b in segments(active)),
        pages=tuple(merge_pages([], [href for _, href in metas])),
        first_meta=metas[0] if metas else None,
    )


def _count_incremental(counts: dict[str, int], active: list[int], data: dict[str, Any], ts: int) -> None:
    source = as_int(data.get("source"))
    if source == MOUSE_INTERACTION and as_int(data.get("type")) in CLICK_TYPES:
        counts["click"] += 1
    if source == INPUT:
        counts["keypress"] += 1
    if source in MOUSE_ACTIVITY_SOURCES:
        counts["mouse"] += 1
    if source in ACTIVE_SOURCES:
        active.append(ts)


def segments(timestamps: Iterable[int], threshold_ms: int = ACTIVITY_GAP_MS) -> list[list[int]]:
    """[first, last] of each run of active timestamps whose consecutive gaps are at most `threshold_ms`."""
    runs: list[list[int]] = []
    for ts in sorted(timestamps):
        if runs and ts - runs[-1][1] <= threshold_ms:
            runs[-1][1] = ts
        else:
            runs.append([ts, ts])
    return runs


def merge_activity(
    existing: Iterable[Sequence[int]], new: Iterable[Sequence[int]], threshold_ms: int = ACTIVITY_GAP_MS
) -> list[list[int]]:
    """The union of two interval lists, joining intervals that overlap or are at most `threshold_ms` apart.

    Merging the segments of batches this way gives the segments of their events taken together, in
    whatever order and overlap the batches came: two active events at most `threshold_ms` apart always
    end up in one interval, two further apart with nothing active between them never do. Malformed
    entries (not two integers) are skipped.
    """
    intervals = sorted(i for i in map(_interval, [*existing, *new]) if i is not None)
    merged: list[list[int]] = []
    for start, end in intervals:
        if merged and start - merged[-1][1] <= threshold_ms:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _interval(value: Any) -> tuple[int, int] | None:
    if type(value) not in (list, tuple) or len(value) != 2:
        return None
    start, end = as_int(value[0]), as_int(value[1])
    return (start, end) if start is not None and end is not None and start <= end else None


def active_ms_of(intervals: Iterable[Sequence[int]]) -> int:
    """Active time of the intervals: each [start, end] counts max(1, end - start) ms."""
    return sum(max(1, end - start) for start, end in intervals)


def advance_activity(
    total_ms: int, kept: Iterable[Sequence[int]], new: Iterable[Sequence[int]]
) -> tuple[int, list[list[int]]]:
    """The replay's new active total and the intervals to keep, after merging a batch's intervals.

    At most MAX_INTERVALS intervals are stored; when a merge makes more, the oldest are dropped. The
    total (the `active_ms` column) is a running sum, so dropped intervals stay counted: it moves by what
    the merge changed, `total - active_ms_of(kept) + active_ms_of(merged)`, with `merged` taken before
    dropping. It is exact while a replay has at most MAX_INTERVALS separate intervals (gaps > 5 s);
    past that, a late batch reaching back before the oldest kept interval cannot join a dropped one and
    counts on its own (at most its own active time too much).
    """
    kept = list(kept)
    merged = merge_activity(kept, new)
    total = total_ms - active_ms_of(i for i in map(_interval, kept) if i is not None) + active_ms_of(merged)
    return total, merged[-MAX_INTERVALS:]


def merge_pages(
    existing: Iterable[Any], new: Iterable[Any], cap: int = MAX_PAGES, *, earlier: bool = False
) -> list[str]:
    """Distinct URLs (each truncated to MAX_URL), first seen first, at most `cap`.

    `new` goes after `existing`, or before it when `earlier` (its pages precede the stored ones: the
    batch's first Meta event is older than the replay's start URL). Non-strings are skipped.
    """
    ordered = [*new, *existing] if earlier else [*existing, *new]
    pages: dict[str, None] = {}
    for url in ordered:
        if type(url) is str and url and len(pages) < cap:
            pages.setdefault(url[:MAX_URL])
    return list(pages)


def changes(
    facts: BatchFacts, active_ms: int, activity: Any, pages: Any, start_url_at: int | None
) -> dict[str, Any]:
    """The ReplaySummary columns that change when a batch's facts merge into the replay's stored ones.

    `start_url` (with `start_url_at`) is replaced only by a Meta event older than the stored one; the
    batch's pages then go before the stored ones, otherwise after them.
    """
    found: dict[str, Any] = {}
    if facts.activity:
        found["active_ms"], found["activity"] = advance_activity(active_ms, _list(activity), facts.activity)
    earlier = facts.first_meta is not None and (start_url_at is None or facts.first_meta[0] < start_url_at)
    if facts.first_meta is not None and earlier:
        found["start_url_at"], found["start_url"] = facts.first_meta
    merged_pages = merge_pages(_list(pages), facts.pages, earlier=earlier)
    if merged_pages != _list(pages):
        found["pages"] = merged_pages
    return found


def _list(value: Any) -> list[Any]:
    return value if type(value) is list else []
