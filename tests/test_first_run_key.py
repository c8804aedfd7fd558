"""The admin key a first run mints reaches whoever ran it, never a log: `meetrec migrate` and `meetrec up`
show it on a terminal or write it to a file only its owner reads."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.bootstrap import ADMIN_KEY_FILE, hand_over
from app.config import Config
from app.embedded.up import Embedded, _print_banner
from app.runtime import Runtime
from app.services.access import keys

ROOT = Path(__file__).resolve().parent.parent


class Terminal(io.StringIO):
    """What an interactive command writes to: a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def migrated(config: Config, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`meetrec migrate` run once, with its output captured (as a container's log is), on a fresh
    database without MEETREC_API_KEY: its output and its config."""
    base = tmp_path_factory.mktemp("first-run")
    env = {
        **config.child_env(),
        "DATABASE_URL": f"sqlite:///{base / 'meetrec.db'}",
        "MEETREC_DATA_DIR": str(base / "data"),
        "MEETREC_API_KEY": "",
        "MEETREC_LOG_FORMAT": "json",
    }
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return {"run": run, "config": Config.from_env(env)}


def key_file(config: Config) -> Path:
    return Path(config.data_dir) / ADMIN_KEY_FILE


def test_migrate_output_does_not_contain_the_admin_key_it_minted(migrated):
    minted = key_file(migrated["config"]).read_text().strip()
    assert minted
    assert minted not in migrated["run"].stdout + migrated["run"].stderr


def test_migrate_says_where_the_minted_key_is(migrated):
    assert str(key_file(migrated["config"])) in migrated["run"].stdout


def test_migrate_writes_the_minted_key_readable_by_its_owner_only(migrated):
    assert stat.S_IMODE(key_file(migrated["config"]).stat().st_mode) == 0o600


def test_the_key_migrate_minted_is_an_admin_key(migrated):
    rt = Runtime(migrated["config"])
    try:
        key = keys.authenticate(rt, key_file(migrated["config"]).read_text().strip())
        assert key is not None and keys.has_scope(key, "admin")
    finally:
        rt.db.engine.dispose()


def test_a_terminal_is_shown_the_minted_key_once_and_no_file_is_written(tmp_path):
    here = Config.from_env({"MEETREC_DATA_DIR": str(tmp_path)})
    terminal = Terminal()
    said = hand_over(here, "mr_minted_for_the_terminal", terminal)
    assert terminal.getvalue().count("mr_minted_for_the_terminal") == 1
    assert "mr_minted_for_the_terminal" not in said
    assert not key_file(here).exists()


def test_up_banner_without_a_terminal_does_not_contain_the_minted_key(tmp_path, capsys):
    here = Config.from_env({"MEETREC_DATA_DIR": str(tmp_path)})
    _print_banner(here, Embedded(redis=True, s3=True), "mr_minted_for_the_banner")
    assert "mr_minted_for_the_banner" not in capsys.readouterr().out
    assert key_file(here).read_text().strip() == "mr_minted_for_the_banner"
