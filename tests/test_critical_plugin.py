"""tests/critical.py: with MEETREC_REQUIRE_CRITICAL=1 a critical test that did not run and pass fails CI."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent

TESTS = """
import pytest

@pytest.mark.critical
def test_kept():
    pass

@pytest.mark.critical
def test_dropped():
    pass

def test_ordinary():
    pass
"""
LISTED = "test_it.py::test_kept\ntest_it.py::test_dropped\n"


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("MEETREC_REQUIRE_CRITICAL", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the plugin is imported as tests.critical
    monkeypatch.delenv("DATABASE_URL", raising=False)
    pytester.makeini("[pytest]\ncritical_list = critical.txt\n")
    pytester.makepyfile(test_it=TESTS)
    pytester.makefile(".txt", critical=LISTED)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "tests.critical", *args)


def test_all_critical_tests_passing_is_a_pass(suite):
    result = run(suite)
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*every critical test ran and passed*"])


def test_a_skipped_critical_test_fails_the_session(suite):
    suite.makeconftest(
        "import pytest\n"
        "def pytest_runtest_setup(item):\n"
        "    if item.name == 'test_dropped':\n"
        "        pytest.skip('no server here')\n"
    )
    result = run(suite)
    result.assert_outcomes(passed=2, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*critical tests that did not run and pass*", "*test_dropped: skipped*"])


@pytest.mark.parametrize(
    "narrowing", [("-k", "not dropped"), ("-m", "not critical"), ("test_it.py::test_kept",)]
)
def test_a_deselected_critical_test_fails_the_session(suite, narrowing):
    result = run(suite, *narrowing)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*test_dropped: not run*"])


def test_a_critical_test_missing_from_the_list_fails_the_session(suite):
    suite.makefile(".txt", critical="test_it.py::test_kept\n")
    result = run(suite)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*test_dropped: marked critical but not listed*"])


def test_postgresql_entries_are_required_only_on_postgresql(suite, monkeypatch):
    suite.makefile(".txt", critical=LISTED + "[postgresql]\ntest_it.py::test_on_postgres\n")
    assert run(suite).ret == 0
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1/test")
    result = run(suite)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*test_on_postgres: not run*"])


def test_without_the_variable_nothing_is_enforced(suite, monkeypatch):
    monkeypatch.delenv("MEETREC_REQUIRE_CRITICAL")
    assert run(suite, "-k", "not dropped").ret == 0
