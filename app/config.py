"""Configuration of the api, workers and scheduler, read from the environment.

Its settings (name, variable, type, default) are declared in `app.settings.ConfigFields`;
`Config.from_env()` is the only place that reads `os.environ` for them, and everything else receives a
`Config`. Tests build one
with `Config.from_env(overrides)` so nothing leaks between test sessions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from app.errors import ConfigError
from app.settings import ConfigFields, read, table

# Secrets an operator chooses are refused at start when guessable: too short, too few different
# characters ("aaaa...", "abab..."), or a placeholder left in from an example.
MIN_SECRET_KEY_CHARS = 32
MIN_API_KEY_CHARS = 24
MIN_DISTINCT_CHARS = 8
PLACEHOLDERS = (
    "changeme", "change-me", "change_me", "replace", "placeholder", "example", "password", "mr_demo",
    "demo_key", "demo-key",
)  # fmt: skip


def weak_secret_key(value: str) -> str | None:
    """Why MEETREC_SECRET_KEY `value` is too weak, or None (also when unset)."""
    how = "make one with: openssl rand -hex 32"
    return _weakness("MEETREC_SECRET_KEY", value, MIN_SECRET_KEY_CHARS, how) if value else None


def weak_api_key(value: str) -> str | None:
    """Why MEETREC_API_KEY `value` is too weak, or None (also when unset: one is minted)."""
    how = "make one with: python3 -c 'import secrets; print(\"mr_\" + secrets.token_urlsafe(32))'"
    return _weakness("MEETREC_API_KEY", value, MIN_API_KEY_CHARS, how) if value else None


def _weakness(variable: str, value: str, minimum: int, how: str) -> str | None:
    """Why `value` (of `variable`) is too weak to use, or None; the message never repeats the value."""
    if len(value) < minimum:
        return f"{variable} is too short ({len(value)} characters, at least {minimum}); {how}"
    if len(set(value)) < MIN_DISTINCT_CHARS:
        return f"{variable} repeats too few characters to be random; {how}"
    lowered = value.lower()
    if any(word in lowered for word in PLACEHOLDERS):
        return f"{variable} looks like a placeholder, not a random value; {how}"
    return None


def _default_ffmpeg() -> str:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # the wheel is missing or has no binary for this platform
        return "ffmpeg"


@dataclass(frozen=True)
class Config(ConfigFields):
    """Every setting the api, workers and scheduler read (fields: `app.settings.ConfigFields`)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Build a Config from `env` (default `os.environ`), validating every value."""
        return cls(**read(cls, os.environ if env is None else env)).resolved()

    def resolved(self) -> Config:
        """Fill the defaults that derive from other settings and check ranges."""
        data_dir = Path(self.data_dir).resolve()
        port = self.port
        if not 1 <= port <= 65535:
            raise ConfigError(f"PORT must be 1..65535, got {port}")
        if not 1 <= self.retention_days <= 3650:
            raise ConfigError("MEETREC_RETENTION_DAYS must be 1..3650")
        if not 60 <= self.link_ttl_seconds <= 7 * 24 * 3600:
            raise ConfigError("MEETREC_LINK_TTL must be 60..604800 seconds")
        if not 0 <= self.link_reuse_seconds <= min(3600, 7 * 24 * 3600 - self.link_ttl_seconds):
            raise ConfigError("MEETREC_LINK_REUSE must be 0..3600, and MEETREC_LINK_TTL + it at most 604800")
        if not 1 <= self.segment_seconds <= 60:
            raise ConfigError("MEETREC_SEGMENT_SECONDS must be 1..60")
        if not 3 <= self.capture_lease_seconds <= 600:
            raise ConfigError("MEETREC_CAPTURE_LEASE_SECONDS must be 3..600")
        if not 5 <= self.stall_seconds <= 3600:
            raise ConfigError("MEETREC_STALL_SECONDS must be 5..3600")
        if not 0 <= self.max_reconnects <= 1000:
            raise ConfigError("MEETREC_MAX_RECONNECTS must be 0..1000")
        if self.transcode_at not in ("capture", "finalize"):
            raise ConfigError("MEETREC_TRANSCODE_AT must be capture or finalize")
        if not 64 * 1024 <= self.max_chunk_bytes <= 1 << 30:
            raise ConfigError("MEETREC_MAX_CHUNK_BYTES must be 65536..1073741824")
        if not 64 * 1024 <= self.max_events_body_bytes <= 1 << 30:
            raise ConfigError("MEETREC_MAX_EVENTS_BODY_BYTES must be 65536..1073741824")
        if not 64 * 1024 <= self.max_ingest_body_bytes <= self.max_inflated_bytes <= 1 << 30:
            raise ConfigError(
                "MEETREC_MAX_INGEST_BODY_BYTES must be 65536..MEETREC_MAX_INFLATED_BYTES (at most 1 GiB)"
            )
        if not 10 <= self.replay_idle_seconds <= 7 * 24 * 3600:
            raise ConfigError("MEETREC_REPLAY_IDLE_SECONDS must be 10..604800")
        if not 1024 <= self.max_screenshot_bytes <= self.max_events_body_bytes:
            raise ConfigError("MEETREC_MAX_SCREENSHOT_BYTES must be 1024..MEETREC_MAX_EVENTS_BODY_BYTES")
        if not 5 * 1024 * 1024 <= self.compose_part_bytes <= 1024 * 1024 * 1024:
            raise ConfigError("MEETREC_COMPOSE_PART_BYTES must be 5 MiB..1 GiB (S3's smallest part is 5 MiB)")
        if not 0 <= self.max_frame_grabs <= 100_000:
            raise ConfigError("MEETREC_MAX_FRAME_GRABS must be 0..100000")
        if not 1 <= len(self.webhook_retry_schedule) <= 20 or not all(
            1 <= s <= 7 * 24 * 3600 for s in self.webhook_retry_schedule
        ):
            raise ConfigError("MEETREC_WEBHOOK_RETRY_SCHEDULE must be 1..20 delays of 1..604800 seconds")
        if not 1 <= self.webhook_timeout <= 60:
            raise ConfigError("MEETREC_WEBHOOK_TIMEOUT must be 1..60 seconds")
        if not 1 <= self.webhook_disable_after_days <= 60:
            raise ConfigError("MEETREC_WEBHOOK_DISABLE_AFTER_DAYS must be 1..60")
        if not 1 <= self.s3_timeout <= 600:
            raise ConfigError("MEETREC_S3_TIMEOUT must be 1..600 seconds")
        if not 0 <= self.s3_retries <= 10:
            raise ConfigError("MEETREC_S3_RETRIES must be 0..10")
        weak = weak_secret_key(self.secret_key) or weak_api_key(self.bootstrap_api_key)
        if weak:
            raise ConfigError(weak)
        s3_endpoint = self.s3_endpoint or f"http://127.0.0.1:{self.embedded_s3_port}"
        return replace(
            self,
            data_dir=data_dir,
            database_url=_sqlalchemy_url(self.database_url) or f"sqlite:///{data_dir / 'meetrec.db'}",
            redis_url=self.redis_url or f"redis://127.0.0.1:{self.embedded_redis_port}/0",
            s3_endpoint=s3_endpoint,
            s3_public_endpoint=self.s3_public_endpoint or s3_endpoint,
            ffmpeg_path=self.ffmpeg_path or _default_ffmpeg(),
            public_url=(self.public_url or f"http://{self.host}:{port}").rstrip("/"),
        )

    @property
    def spool_dir(self) -> Path:
        return Path(self.data_dir) / "spool"

    @property
    def largest_body_bytes(self) -> int:
        """The largest request body any route takes (a route's own limit, or the default one)."""
        return max(
            self.max_body_bytes, self.max_chunk_bytes, self.max_events_body_bytes, self.max_ingest_body_bytes
        )

    def child_env(self) -> dict[str, str]:
        """This config as environment variables, for child processes."""
        out: dict[str, str] = {}
        for setting in table(self):
            value = getattr(self, setting.name)
            if isinstance(value, tuple):
                value = ",".join(str(v) for v in value)
            out[setting.env] = str(value)
        return out


def _sqlalchemy_url(url: str) -> str:
    """`postgres://` and `postgresql://` mean psycopg 3, the driver meetrec ships with."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
