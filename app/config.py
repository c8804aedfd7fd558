"""Configuration: one home for every setting, read from the environment.

`Config.from_env()` is the only place that reads `os.environ`; everything else receives a `Config`.
Tests build one with `Config.from_env(overrides)` so nothing leaks between test sessions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from app.errors import ConfigError


def _default_ffmpeg() -> str:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # the wheel is missing or has no binary for this platform
        return "ffmpeg"


@dataclass(frozen=True)
class Config:
    """Every setting meetrec reads, with its environment variable in `ENV_NAMES`."""

    data_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str = ""
    s3_endpoint: str = ""
    s3_public_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "meetrec"
    s3_region: str = "us-east-1"
    ffmpeg_path: str = ""
    retention_days: int = 14
    link_ttl_seconds: int = 3600
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    bootstrap_api_key: str = ""
    max_body_bytes: int = 1024 * 1024
    url_allowlist: tuple[str, ...] = ()
    synthetic_size: str = "1280x720"
    synthetic_rate: int = 30
    max_recording_seconds: int = 4 * 3600
    capture_workers: int = 2
    segment_seconds: int = 4
    capture_lease_seconds: int = 15
    max_reconnects: int = 5
    stall_seconds: int = 30
    transcode_at: str = "capture"
    transcode_profile: str = "vp8-realtime"
    max_chunk_bytes: int = 16 * 1024 * 1024
    # Interaction events: a batch's body may be this large (screenshots ride along), one screenshot this.
    max_events_body_bytes: int = 32 * 1024 * 1024
    max_screenshot_bytes: int = 5 * 1024 * 1024
    # Webhooks: seconds between delivery attempts (jittered), each attempt's timeout, and how long an
    # endpoint may fail every attempt before it is disabled.
    webhook_retry_schedule: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_timeout: int = 15
    webhook_disable_after_days: int = 5
    embedded_redis_port: int = 6390
    embedded_s3_port: int = 8333
    secret_key: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Build a Config from `env` (default `os.environ`), validating every value."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            name = ENV_NAMES[f.name]
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(name, f.type, raw)
        return cls(**values).resolved()

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
        if not 1024 <= self.max_screenshot_bytes <= self.max_events_body_bytes:
            raise ConfigError("MEETREC_MAX_SCREENSHOT_BYTES must be 1024..MEETREC_MAX_EVENTS_BODY_BYTES")
        if not 1 <= len(self.webhook_retry_schedule) <= 20 or not all(
            1 <= s <= 7 * 24 * 3600 for s in self.webhook_retry_schedule
        ):
            raise ConfigError("MEETREC_WEBHOOK_RETRY_SCHEDULE must be 1..20 delays of 1..604800 seconds")
        if not 1 <= self.webhook_timeout <= 60:
            raise ConfigError("MEETREC_WEBHOOK_TIMEOUT must be 1..60 seconds")
        if not 1 <= self.webhook_disable_after_days <= 60:
            raise ConfigError("MEETREC_WEBHOOK_DISABLE_AFTER_DAYS must be 1..60")
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

    def child_env(self) -> dict[str, str]:
        """This config as environment variables, for child processes."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = ",".join(str(v) for v in value)
            out[ENV_NAMES[f.name]] = str(value)
        return out


ENV_NAMES: dict[str, str] = {
    "data_dir": "MEETREC_DATA_DIR",
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "s3_endpoint": "S3_ENDPOINT",
    "s3_public_endpoint": "S3_PUBLIC_ENDPOINT",
    "s3_access_key": "S3_ACCESS_KEY",
    "s3_secret_key": "S3_SECRET_KEY",
    "s3_bucket": "S3_BUCKET",
    "s3_region": "S3_REGION",
    "ffmpeg_path": "FFMPEG_PATH",
    "retention_days": "MEETREC_RETENTION_DAYS",
    "link_ttl_seconds": "MEETREC_LINK_TTL",
    "host": "HOST",
    "port": "PORT",
    "public_url": "MEETREC_PUBLIC_URL",
    "bootstrap_api_key": "MEETREC_API_KEY",
    "max_body_bytes": "MEETREC_MAX_BODY_BYTES",
    "url_allowlist": "MEETREC_URL_ALLOWLIST",
    "synthetic_size": "MEETREC_SYNTHETIC_SIZE",
    "synthetic_rate": "MEETREC_SYNTHETIC_RATE",
    "max_recording_seconds": "MEETREC_MAX_RECORDING_SECONDS",
    "capture_workers": "MEETREC_CAPTURE_WORKERS",
    "segment_seconds": "MEETREC_SEGMENT_SECONDS",
    "capture_lease_seconds": "MEETREC_CAPTURE_LEASE_SECONDS",
    "max_reconnects": "MEETREC_MAX_RECONNECTS",
    "stall_seconds": "MEETREC_STALL_SECONDS",
    "transcode_at": "MEETREC_TRANSCODE_AT",
    "transcode_profile": "MEETREC_TRANSCODE_PROFILE",
    "max_chunk_bytes": "MEETREC_MAX_CHUNK_BYTES",
    "max_events_body_bytes": "MEETREC_MAX_EVENTS_BODY_BYTES",
    "max_screenshot_bytes": "MEETREC_MAX_SCREENSHOT_BYTES",
    "webhook_retry_schedule": "MEETREC_WEBHOOK_RETRY_SCHEDULE",
    "webhook_timeout": "MEETREC_WEBHOOK_TIMEOUT",
    "webhook_disable_after_days": "MEETREC_WEBHOOK_DISABLE_AFTER_DAYS",
    "embedded_redis_port": "MEETREC_REDIS_PORT",
    "embedded_s3_port": "MEETREC_S3_PORT",
    "secret_key": "MEETREC_SECRET_KEY",
}


def _sqlalchemy_url(url: str) -> str:
    """`postgres://` and `postgresql://` mean psycopg 3, the driver meetrec ships with."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _parse(name: str, type_: object, raw: str) -> object:
    kind = str(type_)
    try:
        if kind == "int":
            return int(raw)
        if kind == "Path":
            return Path(raw)
        if kind.startswith("tuple[int"):
            return tuple(int(part) for part in raw.split(",") if part.strip())
        if kind.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw
    except ValueError as e:
        raise ConfigError(f"{name}: {raw!r} is not a valid {kind}") from e
