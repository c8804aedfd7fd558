"""Every environment variable meetrec reads, declared once: name, variable, type, default, meaning.

`ConfigFields` are the settings of the api, workers and scheduler (`app.config.Config` adds the derived
defaults and range checks); `ServerFields` those of the serving processes, which gunicorn's master and the
CLI read before any app config exists (`app.observability.settings.ServerSettings`); `EXTERNAL` are read
by a library itself. Each field is a `setting(...)`: a typed dataclass field, so type checkers see every
attribute, carrying its variable and meaning. `SETTINGS` is the flat table; README.md's configuration
table lists exactly these (tests/test_config.py checks it). A default of "" means derived from other
settings (see `Config.resolved`).

Stdlib only, like the rest of what gunicorn's master imports before it forks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from app.errors import ConfigError

T = TypeVar("T")

_PARSERS: dict[str, Callable[[str], object]] = {
    "str": str,
    "int": int,
    "Path": Path,
    "tuple[int, ...]": lambda raw: tuple(int(part) for part in raw.split(",") if part.strip()),
    "tuple[str, ...]": lambda raw: tuple(part.strip() for part in raw.split(",") if part.strip()),
}


@dataclass(frozen=True)
class Setting:
    """One environment variable `env`: it fills attribute `name`, a `kind`, with `default` when unset."""

    name: str
    env: str
    kind: str  # the attribute's annotation, a key of _PARSERS
    default: object
    description: str

    def parse(self, raw: str) -> object:
        """`raw` as this setting's kind; ValueError when it is not one."""
        return _PARSERS[self.kind](raw)


def setting(env: str, default: T, description: str, *, secret: bool = False) -> T:
    """A dataclass field read from the variable `env`; a `secret` one stays out of repr."""
    return field(default=default, repr=not secret, metadata={"env": env, "description": description})


def table(cls: Any) -> tuple[Setting, ...]:
    """The settings the dataclass `cls` declares with `setting(...)`, in field order."""
    return tuple(
        Setting(f.name, f.metadata["env"], str(f.type), f.default, f.metadata["description"])
        for f in fields(cls)
    )


def read(
    cls: Any, env: Mapping[str, str], invalid: str = "{env}: {raw!r} is not a valid {kind}"
) -> dict[str, Any]:
    """The settings of `cls` that `env` sets (empty is unset), parsed; ConfigError(`invalid`) if bad."""
    values: dict[str, Any] = {}
    for one in table(cls):
        raw = env.get(one.env)
        if not raw:
            continue
        try:
            values[one.name] = one.parse(raw)
        except ValueError as e:
            raise ConfigError(invalid.format(env=one.env, raw=raw, kind=one.kind)) from e
    return values


@dataclass(frozen=True)
class ConfigFields:
    """The settings of the api, workers and scheduler; `app.config.Config` is built on them."""

    data_dir: Path = setting(
        "MEETREC_DATA_DIR", Path("var"), "SQLite file, spool, embedded Redis and S3 data"
    )
    database_url: str = setting("DATABASE_URL", "", "SQLAlchemy URL; postgresql:// uses psycopg 3")
    redis_url: str = setting("REDIS_URL", "", "your Redis; unset, `meetrec up` runs its own")
    s3_endpoint: str = setting(
        "S3_ENDPOINT", "", "internal S3 endpoint (path-style); unset: the embedded one"
    )
    s3_public_endpoint: str = setting("S3_PUBLIC_ENDPOINT", "", "the endpoint download links are signed for")
    s3_access_key: str = setting("S3_ACCESS_KEY", "", "S3 access key")
    s3_secret_key: str = setting("S3_SECRET_KEY", "", "S3 secret key")
    s3_bucket: str = setting("S3_BUCKET", "meetrec", "bucket, created at start")
    s3_region: str = setting("S3_REGION", "us-east-1", "region used for signing")
    s3_timeout: int = setting(
        "MEETREC_S3_TIMEOUT", 15, "seconds an S3 request may wait for the server to answer"
    )
    s3_retries: int = setting("MEETREC_S3_RETRIES", 2, "retries of an S3 request that failed or got a 5xx")
    ffmpeg_path: str = setting("FFMPEG_PATH", "", "the ffmpeg binary; unset: imageio-ffmpeg's")
    retention_days: int = setting("MEETREC_RETENTION_DAYS", 14, "days until a recording is destroyed")
    link_ttl_seconds: int = setting("MEETREC_LINK_TTL", 3600, "seconds a download link stays valid")
    link_reuse_seconds: int = setting(
        "MEETREC_LINK_REUSE",
        60,
        "window in which a read hands out the same link again; 0: a new one each read",
    )
    host: str = setting("HOST", "127.0.0.1", "where the API listens")
    port: int = setting("PORT", 8080, "the API's port")
    public_url: str = setting("MEETREC_PUBLIC_URL", "", "base of links.self and room links")
    bootstrap_api_key: str = setting("MEETREC_API_KEY", "", "bootstrap admin key; unset: one is minted")
    max_body_bytes: int = setting("MEETREC_MAX_BODY_BYTES", 1024 * 1024, "larger request bodies answer 413")
    url_allowlist: tuple[str, ...] = setting("MEETREC_URL_ALLOWLIST", (), "private hosts and CIDRs allowed")
    source_ca_file: str = setting(
        "MEETREC_SOURCE_CA_FILE", "", "extra CA certificates trusted for https/rtmps/rtsps media sources"
    )
    synthetic_size: str = setting("MEETREC_SYNTHETIC_SIZE", "1280x720", "picture of the synthetic meeting")
    synthetic_rate: int = setting("MEETREC_SYNTHETIC_RATE", 30, "frame rate of the synthetic meeting")
    max_recording_seconds: int = setting("MEETREC_MAX_RECORDING_SECONDS", 4 * 3600, "a capture's longest run")
    capture_workers: int = setting("MEETREC_CAPTURE_WORKERS", 2, "capture worker processes `meetrec up` runs")
    segment_seconds: int = setting("MEETREC_SEGMENT_SECONDS", 4, "length of a capture's uploaded segments")
    capture_lease_seconds: int = setting(
        "MEETREC_CAPTURE_LEASE_SECONDS", 15, "a capture's lease on its recording"
    )
    max_reconnects: int = setting("MEETREC_MAX_RECONNECTS", 5, "reconnects of a dropped pull source")
    stall_seconds: int = setting("MEETREC_STALL_SECONDS", 30, "ffmpeg without progress this long fails")
    transcode_at: str = setting("MEETREC_TRANSCODE_AT", "capture", "where non-WebM sources become VP8/Opus")
    transcode_profile: str = setting(
        "MEETREC_TRANSCODE_PROFILE", "vp8-realtime", "encoder profile at finalize"
    )
    max_chunk_bytes: int = setting("MEETREC_MAX_CHUNK_BYTES", 16 * 1024 * 1024, "largest pushed media chunk")
    # A batch of events may be this large (screenshots ride along), one screenshot the next one.
    max_events_body_bytes: int = setting(
        "MEETREC_MAX_EVENTS_BODY_BYTES", 32 * 1024 * 1024, "largest events body"
    )
    max_ingest_body_bytes: int = setting(
        "MEETREC_MAX_INGEST_BODY_BYTES", 5 * 1024 * 1024, "largest web replay batch or frame, as sent"
    )
    max_inflated_bytes: int = setting(
        "MEETREC_MAX_INFLATED_BYTES", 32 * 1024 * 1024, "largest web replay batch once decompressed"
    )
    replay_idle_seconds: int = setting(
        "MEETREC_REPLAY_IDLE_SECONDS", 1800, "a web replay without ingest this long is finished"
    )
    max_screenshot_bytes: int = setting("MEETREC_MAX_SCREENSHOT_BYTES", 5 * 1024 * 1024, "largest screenshot")
    max_frame_grabs: int = setting(
        "MEETREC_MAX_FRAME_GRABS", 200, "frames finalize grabs for a recording's events, at most"
    )
    compose_part_bytes: int = setting(
        "MEETREC_COMPOSE_PART_BYTES",
        8 * 1024 * 1024,
        "bytes of captured media packed into each part of the final file while recording",
    )
    webhook_retry_schedule: tuple[int, ...] = setting(
        "MEETREC_WEBHOOK_RETRY_SCHEDULE",
        (5, 300, 1800, 7200, 18000, 36000, 36000),
        "seconds before each retry of a failed webhook (jittered)",
    )
    webhook_timeout: int = setting("MEETREC_WEBHOOK_TIMEOUT", 15, "seconds one delivery attempt may take")
    webhook_disable_after_days: int = setting(
        "MEETREC_WEBHOOK_DISABLE_AFTER_DAYS",
        5,
        "an endpoint whose every attempt failed this long is disabled",
    )
    embedded_redis_port: int = setting("MEETREC_REDIS_PORT", 6390, "port of the embedded redis-server")
    embedded_s3_port: int = setting("MEETREC_S3_PORT", 8333, "port of the embedded S3 server")
    secret_key: str = setting("MEETREC_SECRET_KEY", "", "seals webhook signing keys at rest", secret=True)


@dataclass(frozen=True)
class ServerFields:
    """The settings of gunicorn, the logs and /metrics; `app.observability.settings.ServerSettings`."""

    api_workers: int = setting("MEETREC_API_WORKERS", 2, "gunicorn worker processes of `meetrec api`")
    api_threads: int = setting("MEETREC_API_THREADS", 4, "threads per gunicorn worker")
    api_timeout: int = setting("MEETREC_API_TIMEOUT", 60, "seconds a request may run")
    api_graceful_timeout: int = setting("MEETREC_API_GRACEFUL_TIMEOUT", 20, "seconds to finish after SIGTERM")
    api_keepalive: int = setting("MEETREC_API_KEEPALIVE", 5, "seconds an idle keep-alive connection lives")
    # A worker's boot costs ~1.3 s of CPU (imports, the app): replaced every 10,000 requests, that was
    # ~130 us a request at full load, and its open WebSockets were closed every few seconds.
    api_max_requests: int = setting(
        "MEETREC_API_MAX_REQUESTS", 100_000, "requests before a worker is replaced"
    )
    api_max_requests_jitter: int = setting("MEETREC_API_MAX_REQUESTS_JITTER", 10000, "jitter of that")
    log_format: str = setting("MEETREC_LOG_FORMAT", "auto", "json, text, or auto (text on a terminal)")
    log_level: str = setting("MEETREC_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR")
    metrics_token: str = setting("MEETREC_METRICS_TOKEN", "", "when set, /metrics needs this bearer token")


# Read by prometheus_client itself: where gunicorn's workers share their metric files (see gunicorn_conf).
PROMETHEUS_MULTIPROC = Setting(
    "prometheus_multiproc_dir",
    "PROMETHEUS_MULTIPROC_DIR",
    "str",
    "",
    "where the api's gunicorn workers share their metrics; unset: a fresh temporary directory",
)
EXTERNAL: tuple[Setting, ...] = (PROMETHEUS_MULTIPROC,)

SETTINGS: tuple[Setting, ...] = table(ConfigFields) + table(ServerFields) + EXTERNAL
