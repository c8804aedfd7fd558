"""`meetrec up`: the whole product on one machine — Redis, an S3 server, the api, workers, the scheduler.

Redis and the S3 server are embedded unless `REDIS_URL` / `S3_ENDPOINT` name external ones. Every process
is a supervised child, restarted when it exits: Redis (on its append-only file) and the S3 server (on its
volume) start first and are waited for, then the api, workers and scheduler. While Redis or the S3 server
is away the others retry or exit and are restarted too, with a backoff capped at RESTART_BACKOFF_MAX, and
the scheduler's reconciler rebuilds lost work from SQL: the stack recovers by itself. Everything listens
on ports checked before anything starts, and Ctrl-C (or SIGTERM) stops it all: the api, workers and
scheduler first, then the S3 server and Redis they depend on.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from app.config import Config
from app.embedded.servers import LOOPBACK, RedisServer, S3Server, WeedPorts, port_in_use, write_private
from app.embedded.supervisor import ChildSpec, Supervisor
from app.errors import ConfigError, MeetrecError

CREDENTIALS_FILE = "s3-credentials.json"
SECRET_KEY_FILE = "secret-key"
# A fresh weed needs ~3.5 s; a slow disk or a large Redis append-only file can take much longer.
READY_TIMEOUT = 120.0
# The longest wait before a crashed child starts again. Low, because a worker that exited while Redis was
# away should be back within seconds of Redis: recovery time is what this cap adds to an outage.
RESTART_BACKOFF_MAX = 5.0


@dataclass(frozen=True)
class Embedded:
    """Which backing services `up` runs itself: those the environment does not point elsewhere."""

    redis: bool
    s3: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Embedded:
        return cls(redis=not env.get("REDIS_URL"), s3=not env.get("S3_ENDPOINT"))


def run_up(config: Config, env: Mapping[str, str] | None = None) -> int:
    """Run the all-in-one stack until SIGINT/SIGTERM. Returns the exit status: 0 after a clean stop,
    2 when a setting or a port is unusable (nothing was started), 1 when a service failed to start."""
    env = os.environ if env is None else env
    embedded = Embedded.from_env(env)
    try:
        if embedded.s3:
            config = resolve_s3_credentials(config)
        config = resolve_secret_key(config)
        problem = port_problem(config, embedded)
    except ConfigError as e:
        return _fail(str(e), 2)
    if problem:
        return _fail(problem, 2)
    return _run(config, embedded, env)


def resolve_s3_credentials(config: Config) -> Config:
    """The config with S3 keys: its own, else those saved in the data dir, else new ones saved there 0600."""
    if config.s3_access_key or config.s3_secret_key:
        if not (config.s3_access_key and config.s3_secret_key):
            raise ConfigError("set both S3_ACCESS_KEY and S3_SECRET_KEY, or neither")
        return config
    path = Path(config.data_dir) / CREDENTIALS_FILE
    if path.exists():
        try:
            saved = json.loads(path.read_text())
            access, secret = saved["access_key"], saved["secret_key"]
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{path} is unreadable; delete it to generate new S3 keys") from e
    else:
        access, secret = secrets.token_hex(10).upper(), secrets.token_hex(20)
        write_private(path, json.dumps({"access_key": access, "secret_key": secret}))
    return replace(config, s3_access_key=access, s3_secret_key=secret)


def resolve_secret_key(config: Config) -> Config:
    """The config with MEETREC_SECRET_KEY (it seals webhook signing keys): its own, else the one saved in
    the data dir, else a new one saved there 0600. Losing it makes registered webhooks unable to sign."""
    if config.secret_key:
        return config
    path = Path(config.data_dir) / SECRET_KEY_FILE
    if path.exists():
        key = path.read_text().strip()
        if not key:
            raise ConfigError(f"{path} is empty; delete it to generate a new secret key")
    else:
        key = secrets.token_hex(32)
        write_private(path, key)
    return replace(config, secret_key=key)


def port_problem(config: Config, embedded: Embedded) -> str | None:
    """A one-line description of the first port `up` could not bind, or None when all are free."""
    wanted = [(config.host, config.port, "PORT")]
    if embedded.redis:
        wanted.append((LOOPBACK, config.embedded_redis_port, "MEETREC_REDIS_PORT"))
    if embedded.s3:
        wanted += [
            (LOOPBACK, p, "MEETREC_S3_PORT") for p in WeedPorts.from_base(config.embedded_s3_port).all()
        ]
    seen: dict[int, str] = {}
    for _, port, setting in wanted:  # a clash among our own ports is a setting to fix, whatever is running
        if port in seen:
            return (
                f"port {port} is wanted by both {seen[port]} and {setting}; set one of them to another port"
            )
        seen[port] = setting
    for host, port, setting in wanted:
        try:
            taken = port_in_use(host, port)
        except OSError as e:  # HOST does not resolve or is not an address of this machine
            return f"cannot listen on {host}:{port}: {e} (check HOST)"
        if taken:
            return f"port {port} is already in use (set {setting} to choose another)"
    return None


def backing_specs(config: Config, embedded: Embedded) -> list[ChildSpec]:
    """The embedded Redis and S3 server as supervised children, in start order (each waited for)."""
    specs = []
    if embedded.redis:
        specs.append(RedisServer(config.embedded_redis_port, config.data_dir / "redis").child_spec())
    if embedded.s3:
        specs.append(s3_server(config).child_spec())
    return specs


def s3_server(config: Config) -> S3Server:
    ports = WeedPorts.from_base(config.embedded_s3_port)
    return S3Server(ports, config.data_dir / "s3", config.s3_access_key, config.s3_secret_key)


def child_specs(config: Config, env: Mapping[str, str]) -> list[ChildSpec]:
    """The supervised children, in start order: api, capture workers, the other queues' worker, scheduler."""
    child_env = {**env, **config.child_env()}

    def spec(name: str, *args: str) -> ChildSpec:
        return ChildSpec(name, [sys.executable, "-m", "app.cli", *args], child_env)

    captures = [spec(f"capture-{i}", "worker", "capture") for i in range(1, config.capture_workers + 1)]
    return [
        spec("api", "api"),
        *captures,
        spec("media", "worker", "media", "webhooks", "default"),
        spec("scheduler", "scheduler"),
    ]


class _Signals:
    """SIGINT/SIGTERM while starting interrupt the start (KeyboardInterrupt); while supervising they ask
    the supervisor to stop; while stopping they are ignored, so a second Ctrl-C cannot orphan a service."""

    def __init__(self) -> None:
        self.on_signal: Callable[[], None] = self._interrupt
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python only delivers signals to the main thread; an embedding caller handles them
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, lambda *_: self.on_signal())

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    @staticmethod
    def _interrupt() -> None:
        raise KeyboardInterrupt


def _run(config: Config, embedded: Embedded, env: Mapping[str, str]) -> int:
    signals = _Signals()
    backing = backing_specs(config, embedded)
    supervisor = Supervisor([*backing, *child_specs(config, env)], backoff_max=RESTART_BACKOFF_MAX)
    signals.install()
    try:
        Path(config.data_dir).mkdir(parents=True, exist_ok=True)
        supervisor.start([spec.name for spec in backing], READY_TIMEOUT)
        from app.bootstrap import bootstrap  # imported late: it pulls in the database layer

        minted = bootstrap(config)
        supervisor.start()
        signals.on_signal = supervisor.request_stop
        _print_banner(config, embedded, minted)
        supervisor.run()
    except KeyboardInterrupt:
        pass  # interrupted while starting: fall through to the orderly stop
    except MeetrecError as e:
        return _fail(str(e), 1)
    finally:
        signals.on_signal = lambda: None
        supervisor.stop()
        if embedded.s3:
            s3_server(config).remove_local_sockets()
        signals.restore()
    return 0


def _print_banner(config: Config, embedded: Embedded, minted: str | None) -> None:
    lines = [f"meetrec is up at {config.public_url}"]
    if minted:
        from app.bootstrap import hand_over

        lines.append(hand_over(config, minted, sys.stdout))
    elif config.bootstrap_api_key:
        lines.append("admin API key: the value of MEETREC_API_KEY")
    else:
        lines.append("API keys were created on the first run; `meetrec keys create` mints another.")
    sqlite = config.database_url.startswith("sqlite")
    stores = ["the database"] * sqlite + ["Redis"] * embedded.redis + ["S3 objects"] * embedded.s3
    lines.append(f"data ({', '.join(stores)}): {config.data_dir}")
    lines.append("Ctrl-C stops everything.")
    print("\n".join(lines), flush=True)


def _fail(message: str, status: int) -> int:
    print(f"meetrec: {message}", file=sys.stderr)
    return status
