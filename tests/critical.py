"""A pytest plugin: with MEETREC_REQUIRE_CRITICAL=1 (CI), every critical test must run and pass.

The critical tests (faults, drills, crash recovery) are slow and need real servers, so they are the ones
a skip, a `-k`/`-m` or a narrowed path would quietly drop. A skip is visible in the reports; a deselected
or never collected test is not, so the list `tests/critical.txt` names them, one node id a line, and the
session fails (exit status 1, the missing ones listed) when any listed test did not run and pass.

The list stays honest the other way too: a collected test marked `critical` that the list does not name
fails the session, and every listed test is marked `critical` when collected. Entries under a
`[postgresql]` line are required only when DATABASE_URL names a PostgreSQL on loopback (the PostgreSQL
drill is collected only there); `#` starts a comment.

Loaded from tests/conftest.py (`pytest_plugins`); the ini option `critical_list` points elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ENV = "MEETREC_REQUIRE_CRITICAL"
DEFAULT_LIST = Path(__file__).with_name("critical.txt")


def _on_loopback_postgresql() -> bool:
    """DATABASE_URL names a PostgreSQL on this machine: tests/test_drills.py restarts it only there."""
    url = urlsplit(os.environ.get("DATABASE_URL", ""))
    return url.scheme.startswith("postgres") and url.hostname in ("127.0.0.1", "localhost", "::1")


SECTIONS = {"postgresql": _on_loopback_postgresql}


@dataclass
class Required:
    """The critical tests of this session and how each one ended."""

    listed: dict[str, bool]  # node id -> required in this environment
    marked: set[str] = field(default_factory=set)  # collected node ids marked critical
    outcomes: dict[str, str] = field(default_factory=dict)  # node id -> "passed" / "skipped: ..." / ...

    def problems(self) -> list[str]:
        found = [
            f"{node}: marked critical but not listed in tests/critical.txt"
            for node in sorted(self.marked - self.listed.keys())
        ]
        for node, required in self.listed.items():
            outcome = self.outcomes.get(node, "not run (deselected, filtered out or not collected)")
            if outcome != "passed" and (required or outcome.startswith("failed")):
                found.append(f"{node}: {outcome}")
        return found


def read_list(path: Path) -> dict[str, bool]:
    """The node ids in `path`, each with whether this environment requires it."""
    listed: dict[str, bool] = {}
    required = True
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            if section not in SECTIONS:
                raise pytest.UsageError(f"{path}: unknown section [{section}]")
            required = SECTIONS[section]()
            continue
        listed[line] = required
    return listed


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("critical_list", "node ids of the critical tests (default tests/critical.txt)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "critical: a test CI must run and pass (see tests/critical.txt)")
    if os.environ.get(ENV) != "1" or config.option.collectonly:
        return
    name = config.getini("critical_list")
    path = Path(config.rootpath, name) if name else DEFAULT_LIST
    config.pluginmanager.register(Enforcer(read_list(path)), "meetrec-critical")


class Enforcer:
    """The hooks that watch this session's critical tests (one instance per pytest run)."""

    def __init__(self, listed: dict[str, bool]):
        self.required = Required(listed)
        self.problems: list[str] | None = None

    @pytest.hookimpl(tryfirst=True)  # before -k and -m deselect anything
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            if item.nodeid in self.required.listed:
                item.add_marker(pytest.mark.critical)
            if item.get_closest_marker("critical") is not None:
                self.required.marked.add(item.nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.required.listed:
            return
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            outcome = f"skipped ({reason})"
        elif report.failed:
            outcome = f"failed in {report.when}"
        elif report.when == "call":
            outcome = "passed"
        else:
            return
        if self.required.outcomes.get(report.nodeid, "passed") == "passed":  # the first non-pass sticks
            self.required.outcomes[report.nodeid] = outcome

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.problems = self.required.problems()
        if self.problems and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        if self.problems is None:
            return
        if not self.problems:
            terminalreporter.write_line(f"{ENV}: every critical test ran and passed")
            return
        terminalreporter.section(f"{ENV}: critical tests that did not run and pass", sep="=", red=True)
        for line in self.problems:
            terminalreporter.write_line(line, red=True)
