"""Helpers for the command line tests: the environment `meetrec` reads, and running it in-process."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.cli import main


@pytest.fixture
def cli_env(config, monkeypatch):  # type: ignore[no-untyped-def]
    """The test session's database, Redis and secret key, as `meetrec` reads them from the environment."""
    for name, value in {
        "DATABASE_URL": config.database_url,
        "MEETREC_SECRET_KEY": config.secret_key,
        "MEETREC_DATA_DIR": str(config.data_dir),
        "REDIS_URL": config.redis_url,
    }.items():
        monkeypatch.setenv(name, value)


def run(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """Run `meetrec argv...`; returns (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str) -> Any:  # type: ignore[no-untyped-def]
    """Run `meetrec argv... --json`, which must succeed; returns the JSON it printed."""
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)
