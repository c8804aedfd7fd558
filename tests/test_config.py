"""Configuration from the environment."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from app.config import Config
from app.errors import ConfigError
from app.settings import SETTINGS

README = Path(__file__).resolve().parent.parent / "README.md"


def test_defaults_are_the_documented_ones():
    cfg = Config.from_env({})
    assert cfg.retention_days == 14
    assert cfg.link_ttl_seconds == 3600
    assert cfg.port == 8080
    assert cfg.database_url.startswith("sqlite:///")
    assert cfg.redis_url == "redis://127.0.0.1:6390/0"
    assert cfg.s3_public_endpoint == cfg.s3_endpoint


def test_public_endpoint_can_differ_from_internal():
    cfg = Config.from_env({"S3_ENDPOINT": "http://minio:9000", "S3_PUBLIC_ENDPOINT": "https://files.example"})
    assert cfg.s3_public_endpoint == "https://files.example"


def test_postgres_urls_use_psycopg3():
    assert (
        Config.from_env({"DATABASE_URL": "postgresql://u@h/db"}).database_url == "postgresql+psycopg://u@h/db"
    )


def test_allowlist_is_split_on_commas():
    assert Config.from_env({"MEETREC_URL_ALLOWLIST": "127.0.0.1/8, localhost"}).url_allowlist == (
        "127.0.0.1/8",
        "localhost",
    )


@pytest.mark.parametrize(
    "env",
    [
        {"PORT": "http"},
        {"PORT": "70000"},
        {"MEETREC_RETENTION_DAYS": "0"},
        {"MEETREC_LINK_TTL": "5"},
        {"MEETREC_MAX_FRAME_GRABS": "-1"},
    ],
)
def test_invalid_values_raise_config_error(env):
    with pytest.raises(ConfigError):
        Config.from_env(env)


def test_frame_grabs_are_bounded_by_default():
    assert Config.from_env({}).max_frame_grabs == 200


STRONG_SECRET = secrets.token_hex(32)
STRONG_API_KEY = "mr_" + secrets.token_urlsafe(32)


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("MEETREC_API_KEY", "mr_demo_key", "too short"),
        ("MEETREC_API_KEY", "mr_demo_key_for_the_readme_example", "placeholder"),
        ("MEETREC_API_KEY", "a" * 40, "too few characters"),
        ("MEETREC_SECRET_KEY", "secret", "too short"),
        ("MEETREC_SECRET_KEY", STRONG_SECRET[:31], "too short"),
        ("MEETREC_SECRET_KEY", "ab" * 32, "too few characters"),
        ("MEETREC_SECRET_KEY", "change-me-to-a-long-random-value-please", "placeholder"),
    ],
)
def test_a_weak_key_is_refused_naming_the_variable_and_why(variable, value, reason):
    with pytest.raises(ConfigError) as refused:
        Config.from_env({variable: value})
    assert variable in str(refused.value) and reason in str(refused.value)


def test_a_weak_key_is_refused_without_repeating_it():
    with pytest.raises(ConfigError) as refused:
        Config.from_env({"MEETREC_SECRET_KEY": "hunter2hunter2"})
    assert "hunter2" not in str(refused.value)


def test_random_keys_are_accepted():
    cfg = Config.from_env({"MEETREC_SECRET_KEY": STRONG_SECRET, "MEETREC_API_KEY": STRONG_API_KEY})
    assert (cfg.secret_key, cfg.bootstrap_api_key) == (STRONG_SECRET, STRONG_API_KEY)


def test_unset_keys_are_accepted():
    cfg = Config.from_env({})
    assert (cfg.secret_key, cfg.bootstrap_api_key) == ("", "")


def test_child_env_round_trips():
    cfg = Config.from_env({"PORT": "9999", "MEETREC_URL_ALLOWLIST": "a,b"})
    assert Config.from_env(cfg.child_env()) == cfg


def readme_variables() -> set[str]:
    """The variables named in the first column of README.md's configuration table."""
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in rows for name in re.findall(r"`(\w+)`", cell)}


def test_readme_documents_exactly_the_settings_table():
    assert readme_variables() == {setting.env for setting in SETTINGS}
