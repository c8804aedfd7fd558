"""What a web replay shows, by fixed rules: a summary of its events and a profile to compare replays by.

Pure, no I/O, no language model: the same events always give the same summary. `summarize` streams
over the events once (a replay may hold 100k+), in chunks of CHUNK events, keeping at most CAP items
of each list; its counts and active time are `replay_facts`' (PostHog's definitions), computed the
way ingest computes them, so they agree with the replay's `ReplaySummary`.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app.services.interactions import replay_facts as rf

CAP = 50  # key actions, errors, rage clicks and pages kept
CHUNK = 5000  # events read at a time
RAGE_CLICKS, RAGE_MS, RAGE_PX = 3, 1000, 30.0
MAX_MESSAGE = 500
CUSTOM = 5  # rrweb's Custom event type
_CLICK_WORDS = {rf.CLICK: "Clicked", rf.DBL_CLICK: "Double-clicked", rf.CONTEXT_MENU: "Right-clicked"}
_COUNT_NAMES = ("click", "keypress", "mouse_activity", "console_log", "console_warn", "console_error")


def iso(ms: float) -> str:
    """Unix ms as ISO 8601 UTC with milliseconds and a Z."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Earliest:
    """At most `cap` (timestamp, item) pairs, the earliest; memory stays O(cap) however many are added."""

    cap: int = CAP
    heap: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    added: int = 0

    def add(self, ts: float, item: dict[str, Any]) -> None:
        self.added += 1
        entry = (-ts, -self.added, item)  # a max-heap of the kept ones: the latest is dropped first
        if len(self.heap) < self.cap:
            heapq.heappush(self.heap, entry)
        elif entry > self.heap[0]:
            heapq.heapreplace(self.heap, entry)

    def items(self) -> list[dict[str, Any]]:
        return [item for _, _, item in sorted(self.heap, key=lambda e: (-e[0], -e[1]))]


@dataclass
class _Reader:
    """The state `summarize` carries from event to event."""

    first: float | None = None
    last: float | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNT_NAMES, 0))
    active_ms: int = 0
    activity: list[list[int]] = field(default_factory=list)
    visits: list[list[Any]] = field(default_factory=list)  # [url, entered at, left at] of the first CAP
    visited: int = 0  # visits seen, kept or not
    url: str | None = None  # the page being visited
    actions: _Earliest = field(default_factory=_Earliest)
    errors: _Earliest = field(default_factory=_Earliest)
    rages: _Earliest = field(default_factory=_Earliest)
    typing: tuple[int, dict[str, Any]] | None = None  # (node id, action) of the run of inputs going on
    clicks: list[tuple[float, float, float]] = field(default_factory=list)  # the rage candidate run

    def chunk(self, events: list[dict[str, Any]]) -> None:
        facts = rf.facts_of(events)
        for name in _COUNT_NAMES:
            self.counts[name] += getattr(facts, f"{name}_count")
        self.active_ms, self.activity = rf.advance_activity(self.active_ms, self.activity, facts.activity)
        for event in events:
            self.event(event)

    def event(self, event: dict[str, Any]) -> None:
        ts = rf.as_int(event.get("timestamp")) if type(event) is dict else None
        if ts is None:
            return
        self.first = ts if self.first is None else min(self.first, ts)
        self.last = ts if self.last is None else max(self.last, ts)
        kind, data = event.get("type"), rf.data_of(event)
        if kind == rf.META:
            self.meta(ts, rf.meta_href(data))
        elif kind == rf.INCREMENTAL and rf.as_int(data.get("source")) == rf.MOUSE_INTERACTION:
            self.interaction(ts, data)
        elif kind == rf.INCREMENTAL and rf.as_int(data.get("source")) == rf.INPUT:
            self.input(ts, data)
        elif kind == rf.PLUGIN and data.get("plugin") == rf.CONSOLE_PLUGIN:
            self.console(ts, data)
        elif kind == CUSTOM:
            tag = data.get("tag")
            self.action(ts, "custom", f"Custom event {tag if type(tag) is str else '(untagged)'}"[:200])

    def action(self, ts: float, kind: str, description: str) -> dict[str, Any]:
        self.typing = None
        item = {"timestamp": iso(ts), "kind": kind, "description": description}
        self.actions.add(ts, item)
        return item

    def meta(self, ts: float, url: str | None) -> None:
        if url is None or url == self.url:
            return
        self.close_page(ts)
        self.visited, self.url = self.visited + 1, url
        if self.visited <= CAP:
            self.visits.append([url, ts, ts])
        self.action(ts, "navigation", f"Opened {url}")

    def close_page(self, ts: float) -> None:
        if self.visits and self.visited <= CAP:
            self.visits[-1][2] = max(self.visits[-1][1], ts)

    def interaction(self, ts: float, data: dict[str, Any]) -> None:
        kind = rf.as_int(data.get("type"))
        if kind not in rf.CLICK_TYPES:
            return
        point = _point(data)
        where = f" at ({point[0]:g}, {point[1]:g})" if point else ""
        self.action(ts, "click", f"{_CLICK_WORDS.get(kind, 'Tapped')} element {_node(data)}{where}")
        if kind == rf.CLICK and point:
            self.click(ts, *point)

    def click(self, ts: float, x: float, y: float) -> None:
        """Grow the run of clicks close in time (to the previous) and space (to the first), or restart it."""
        run = self.clicks
        if run and ts - run[-1][0] <= RAGE_MS and math.dist((x, y), run[0][1:]) <= RAGE_PX:
            run.append((ts, x, y))
        else:
            self.end_rage()
            self.clicks = [(ts, x, y)]

    def end_rage(self) -> None:
        if len(self.clicks) >= RAGE_CLICKS:
            ts, x, y = self.clicks[0]
            self.rages.add(ts, {"timestamp": iso(ts), "x": x, "y": y, "clicks": len(self.clicks)})
        self.clicks = []

    def input(self, ts: float, data: dict[str, Any]) -> None:
        node = rf.as_int(data.get("id"))
        if self.typing is not None and node is not None and self.typing[0] == node:
            self.typing[1]["description"] = _typed(node, data)  # the run's action shows its last state
            return
        item = self.action(ts, "input", _typed(node, data))
        self.typing = (node, item) if node is not None else None

    def console(self, ts: float, data: dict[str, Any]) -> None:
        if rf.console_level(data) != "error":
            return
        payload = data.get("payload")
        message = _message(payload.get("payload") if type(payload) is dict else None)
        self.errors.add(ts, {"timestamp": iso(ts), "message": message})
        self.action(ts, "error", f"Console error: {message}"[:MAX_MESSAGE])

    def result(self) -> dict[str, Any]:
        self.end_rage()
        if self.last is not None:
            self.close_page(self.last)
        duration = (
            (self.last - self.first) / 1000 if self.last is not None and self.first is not None else 0.0
        )
        active = min(self.active_ms / 1000, duration) if duration else self.active_ms / 1000
        pages = [
            {"url": url, "entered_at": iso(at), "seconds": round((left - at) / 1000, 3)}
            for url, at, left in self.visits
        ]
        found = {
            "pages": pages,
            "key_actions": self.actions.items(),
            "errors": self.errors.items(),
            "rage_clicks": self.rages.items(),
            "active_seconds": round(active, 3),
            "inactive_seconds": round(max(0.0, duration - active), 3),
            "duration_seconds": round(duration, 3),
            "counts": dict(self.counts),
        }
        return {"summary": _sentences(found), **found}


def summarize(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A deterministic summary of a replay's events (in sequence order), read once in chunks.

    Key actions are clicks, inputs, navigations (a Meta event to another URL), Custom events and
    console errors: the CAP earliest, chronological; consecutive inputs on one node (with no other key
    action between them) make one action. Errors are console errors (levels error and assert) with
    their arguments joined. A rage click is a run of RAGE_CLICKS+ clicks, each at most RAGE_MS after the
    previous one and at most RAGE_PX from the run's first. Pages are visits, in order: a page lasts until
    the next Meta event with another URL or the last event.
    """
    reader = _Reader()
    for chunk in _chunks(iter(events)):
        reader.chunk(chunk)
    return reader.result()


def _chunks(events: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(islice(events, CHUNK)):
        yield chunk


def _point(data: dict[str, Any]) -> tuple[float, float] | None:
    """A mouse interaction's (x, y), when both are finite numbers."""
    x, y = data.get("x"), data.get("y")
    if isinstance(x, int | float) and isinstance(y, int | float) and not isinstance(x, bool):
        if not isinstance(y, bool) and math.isfinite(x) and math.isfinite(y):
            return float(x), float(y)
    return None


def _node(data: dict[str, Any]) -> str:
    node = rf.as_int(data.get("id"))
    return f"#{node}" if node is not None else "(unknown)"


def _typed(node: int | None, data: dict[str, Any]) -> str:
    """What an input did, without the text (it may be private): its length, or that it checked a box.

    rrweb sends `isChecked` false for every text field, so only a true one tells a checkbox or radio.
    """
    target = f"field #{node}" if node is not None else "a field"
    if data.get("isChecked") is True:
        return f"Checked {target}"
    text = data.get("text")
    length = len(text) if type(text) is str else 0
    return f"Typed into {target} ({length} characters)"


def _message(args: Any) -> str:
    """The console arguments as one line: the plugin sends each as a string, strings JSON-quoted."""
    if type(args) is not list:
        return ""
    parts = [_unquoted(a) for a in args[:20] if type(a) is str]
    return " ".join(parts)[:MAX_MESSAGE]


def _unquoted(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            value = json.loads(text)
        except ValueError:
            return text
        return value if type(value) is str else text
    return text


def _sentences(found: dict[str, Any]) -> str:
    """A few plain sentences from the summary's numbers."""
    counts, pages = found["counts"], found["pages"]
    said = [
        f"The session lasted {_span(found['duration_seconds'])}, active for {_span(found['active_seconds'])}."
    ]
    if pages:
        said.append(f"It visited {len(pages)} page{'s' * (len(pages) != 1)}, starting at {pages[0]['url']}.")
    said.append(
        f"The user clicked {_times(counts['click'])} and made {counts['keypress']} input"
        f"{'s' * (counts['keypress'] != 1)}."
    )
    if counts["console_error"]:
        first = found["errors"][0]["message"] if found["errors"] else ""
        said.append(f"The console logged {_times(counts['console_error'], 'error')}; the first: {first!r}.")
    if found["rage_clicks"]:
        said.append(f"There {_were(len(found['rage_clicks']), 'rage click')}.")
    return " ".join(said)


def _span(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def _times(n: int, noun: str = "time") -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def _were(n: int, noun: str) -> str:
    return f"{'was' if n == 1 else 'were'} {_times(n, noun)}"


@dataclass(frozen=True)
class Profile:
    """What a replay did, to compare by `similarity`: the pages it visited and its action rates.

    `pages`: each URL without query and fragment (scheme, host and path kept). `actions`: clicks,
    keypresses, mouse activity and console errors per minute of the replay's duration (at least one
    second), then the fraction of the duration that was active (0..1).
    """

    pages: frozenset[str]
    actions: tuple[float, ...]


def profile_of(
    click_count: int,
    keypress_count: int,
    mouse_activity_count: int,
    console_error_count: int,
    active_ms: int,
    duration_ms: int,
    pages: Iterable[Any],
) -> Profile:
    """The profile of a replay from its ReplaySummary facts (non-strings among `pages` are skipped)."""
    minutes = max(duration_ms, 1000) / 60_000
    rates = [c / minutes for c in (click_count, keypress_count, mouse_activity_count, console_error_count)]
    active = min(1.0, active_ms / duration_ms) if duration_ms > 0 else float(active_ms > 0)
    return Profile(frozenset(page_key(p) for p in pages if type(p) is str), (*rates, active))


def page_key(url: str) -> str:
    """A URL without its query and fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def similarity(a: Profile, b: Profile) -> float:
    """How alike two replays are, from 0 to 1: 0.5 x Jaccard(pages) + 0.5 x cosine(actions).

    Jaccard(pages) = |A ∩ B| / |A ∪ B| of the two sets of page URLs (1 when both are empty). cosine(actions)
    = a·b / (|a| |b|) of the two action vectors (per-minute rates of clicks, keypresses, mouse activity and
    console errors, and the active fraction); all are non-negative, so it lies in 0..1; two all-zero
    vectors count 1, one all-zero vector 0. Symmetric; identical profiles score 1.
    """
    union = a.pages | b.pages
    jaccard = len(a.pages & b.pages) / len(union) if union else 1.0
    return min(1.0, max(0.0, 0.5 * jaccard + 0.5 * _cosine(a.actions, b.actions)))


def _cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    norm_a, norm_b = math.hypot(*a), math.hypot(*b)
    if norm_a == 0 or norm_b == 0:
        return 1.0 if norm_a == norm_b else 0.0
    return sum(x * y for x, y in zip(a, b, strict=False)) / (norm_a * norm_b)
