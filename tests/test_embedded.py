"""The embedded stack: real redis-server and weed processes, real supervised children, no mocks."""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from minio import Minio
from minio.error import S3Error

from app.config import Config
from app.embedded.servers import RedisServer, S3Server, WeedPorts, port_in_use
from app.embedded.supervisor import ChildSpec, Supervisor
from app.embedded.up import CREDENTIALS_FILE, resolve_s3_credentials, run_up
from app.errors import ConfigError, MeetrecError
from tests.helpers import free_port, free_weed_ports

SUPERVISOR_LOG = "app.embedded.supervisor"


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
    return value


def python_child(name: str, code: str, stop_timeout: float = 5.0) -> ChildSpec:
    return ChildSpec(name, [sys.executable, "-c", code], stop_timeout=stop_timeout)


def is_gone(pid: int) -> bool:
    """True when `pid` no longer runs (reaped, or a zombie some other parent has yet to reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def listening_ports(pid: int) -> set[int]:
    """TCP ports `pid` listens on, read from /proc (Linux)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:  # the process closed this descriptor while we looked
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


# --- Redis -------------------------------------------------------------------------------------------


def test_redis_answers_ping_and_stop_reaps_it(tmp_path: Path) -> None:
    server = RedisServer(free_port(), tmp_path, persist=False)
    server.start()
    try:
        server.wait_ready(15)
        assert redis.Redis.from_url(server.url).ping()
    finally:
        server.stop()
    assert server.process is not None and server.process.returncode is not None


def test_redis_keeps_data_across_restart_when_persisting(tmp_path: Path) -> None:
    port = free_port()
    for expected in (None, b"kept"):
        server = RedisServer(port, tmp_path, persist=True)
        server.start()
        try:
            server.wait_ready(15)
            client = redis.Redis.from_url(server.url)
            assert client.get("k") == expected
            client.set("k", "kept")
            client.close()
        finally:
            server.stop()


def test_redis_start_failure_is_reported_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = RedisServer(taken.getsockname()[1], tmp_path, persist=False)
        server.start()
        with pytest.raises(MeetrecError, match="exited with code"):
            server.wait_ready(15)
        server.stop()


# --- S3 (SeaweedFS) ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(free_weed_ports(), tmp_path_factory.mktemp("weed"), "AKTESTKEY", "test-secret-key-123")
    server.start()
    try:
        server.wait_ready(60)
        yield server
    finally:
        server.stop()


def s3_client(server: S3Server, access_key: str, secret_key: str) -> Minio:
    return Minio(f"127.0.0.1:{server.ports.s3}", access_key, secret_key, secure=False, region="us-east-1")


def test_weed_ports_from_base_are_deterministic() -> None:
    assert WeedPorts.from_base(8333) == WeedPorts(8333, 8334, 8335, 8336, 18333, 18334, 18335, 18336)


def test_weed_ports_from_base_rejects_ports_past_the_range() -> None:
    with pytest.raises(ConfigError, match="MEETREC_S3_PORT"):
        WeedPorts.from_base(60000)


def test_weed_ports_free_are_distinct() -> None:
    assert len(set(free_weed_ports().all())) == 8


def test_s3_accepts_the_right_credentials(s3: S3Server) -> None:
    client = s3_client(s3, s3.access_key, s3.secret_key)
    client.make_bucket("accepts")
    client.put_object("accepts", "a.txt", io.BytesIO(b"hello"), 5)
    assert client.get_object("accepts", "a.txt").read() == b"hello"


@pytest.mark.parametrize(
    ("access_key", "secret_key", "code"),
    [
        ("AKTESTKEY", "wrong-secret", "SignatureDoesNotMatch"),
        ("AKUNKNOWN", "test-secret-key-123", "InvalidAccessKeyId"),
    ],
)
def test_s3_refuses_wrong_credentials(s3: S3Server, access_key: str, secret_key: str, code: str) -> None:
    with pytest.raises(S3Error) as info:
        s3_client(s3, access_key, secret_key).list_buckets()
    assert info.value.code == code


def test_s3_checks_presigned_signatures(s3: S3Server) -> None:
    client = s3_client(s3, s3.access_key, s3.secret_key)
    client.make_bucket("presigned")
    client.put_object("presigned", "p.txt", io.BytesIO(b"link"), 4)
    url = urlsplit(client.presigned_get_object("presigned", "p.txt"))
    tampered = url.query[:-1] + ("0" if url.query[-1] != "0" else "1")
    assert _get(s3, f"{url.path}?{url.query}") == 200
    assert _get(s3, f"{url.path}?{tampered}") == 403


def _get(server: S3Server, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.ports.s3, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_s3_listens_only_on_its_own_ports(s3: S3Server) -> None:
    assert s3.process is not None
    assert listening_ports(s3.process.pid) == set(s3.ports.all())


def test_s3_identities_file_is_private(s3: S3Server) -> None:
    assert stat.S_IMODE(s3.identities_path.stat().st_mode) == 0o600


# --- Supervisor --------------------------------------------------------------------------------------


def run_in_thread(supervisor: Supervisor) -> threading.Thread:
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    return thread


def restart_delays(caplog: pytest.LogCaptureFixture, name: str) -> list[float]:
    return [r.args[2] for r in caplog.records if "restarting" in r.msg and r.args[0] == name]  # type: ignore[index]


def test_supervisor_restarts_a_crashing_child_with_growing_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SUPERVISOR_LOG)
    starts = tmp_path / "starts"
    code = f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(3)"
    supervisor = Supervisor(
        [python_child("crashy", code)], backoff_initial=0.05, backoff_max=0.2, poll_interval=0.01
    )
    supervisor.start()
    thread = run_in_thread(supervisor)
    wait_for(lambda: len(restart_delays(caplog, "crashy")) >= 4, timeout=15)
    supervisor.request_stop()
    thread.join(10)
    assert restart_delays(caplog, "crashy")[:4] == [0.05, 0.1, 0.2, 0.2]
    assert "child crashy exited with code 3; restarting in 0.1s" in caplog.text
    assert len(starts.read_text()) >= 4


def test_supervisor_resets_backoff_after_a_healthy_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SUPERVISOR_LOG)
    code = "import time; time.sleep(0.3)"
    supervisor = Supervisor(
        [python_child("steady", code)], backoff_initial=0.05, healthy_after=0.2, poll_interval=0.01
    )
    supervisor.start()
    thread = run_in_thread(supervisor)
    wait_for(lambda: len(restart_delays(caplog, "steady")) >= 3, timeout=15)
    supervisor.request_stop()
    thread.join(10)
    assert restart_delays(caplog, "steady")[:3] == [0.05, 0.05, 0.05]


def test_supervisor_stop_leaves_no_child_or_grandchild(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    spawner = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    sleeper = "import time; time.sleep(60)"
    specs = [python_child("a", sleeper), python_child("spawner", spawner), python_child("c", sleeper)]
    supervisor = Supervisor(specs)
    supervisor.start()
    grandchild = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=10))
    processes = [supervisor.process(spec.name) for spec in specs]
    supervisor.stop()
    for proc in processes:
        assert proc is not None and proc.returncode == -signal.SIGTERM
        assert is_gone(proc.pid)
    wait_for(lambda: is_gone(grandchild), timeout=5)


def test_supervisor_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = (
        "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    )
    supervisor = Supervisor([python_child("stubborn", code, stop_timeout=0.5)])
    supervisor.start()
    wait_for(ready.exists, timeout=10)
    started = time.monotonic()
    supervisor.stop()
    elapsed = time.monotonic() - started
    proc = supervisor.process("stubborn")
    assert proc is not None and proc.returncode == -signal.SIGKILL
    assert 0.4 < elapsed < 5


def test_supervisor_waits_out_a_slow_orderly_stop_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SUPERVISOR_LOG)
    ready = tmp_path / "ready"
    code = (
        "import pathlib, signal, sys, time; "
        "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(2.5), sys.exit(0))); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    )
    supervisor = Supervisor([python_child("unhurried", code, stop_timeout=10)])
    supervisor.start()
    wait_for(ready.exists, timeout=10)
    supervisor.stop()
    proc = supervisor.process("unhurried")
    assert proc is not None and proc.returncode == 0
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == SUPERVISOR_LOG]
    assert said[-2][0] == "INFO" and said[-2][1].startswith("waiting for unhurried to stop (at most")
    assert not [line for level, line in said if level != "INFO"], said


@pytest.mark.slow  # weed's orderly stop takes about 15 s
def test_a_clean_stop_lets_the_s3_server_exit_by_itself_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SUPERVISOR_LOG)
    server = S3Server(free_weed_ports(), tmp_path, "AKTESTKEY", "test-secret-key-123")
    supervisor = Supervisor([server.child_spec()])
    supervisor.start(ready_timeout=60)
    try:
        client = s3_client(server, server.access_key, server.secret_key)
        client.make_bucket("used")
        client.put_object("used", "a.txt", io.BytesIO(b"hello"), 5)
        weed = supervisor.process("weed")
        supervisor.stop()
    finally:
        server.remove_local_sockets()
    assert weed is not None and weed.returncode == 0  # its own orderly exit, not a SIGKILL
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_supervisor_run_returns_and_stops_children_when_asked_from_another_thread() -> None:
    supervisor = Supervisor([python_child("sleeper", "import time; time.sleep(60)")], poll_interval=0.01)
    supervisor.start()
    thread = run_in_thread(supervisor)
    supervisor.request_stop()
    thread.join(10)
    proc = supervisor.process("sleeper")
    assert not thread.is_alive()
    assert proc is not None and proc.returncode is not None


# --- ports and `meetrec up` --------------------------------------------------------------------------


def test_port_in_use_detects_a_listening_socket() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
    assert not port_in_use("127.0.0.1", port)


def test_run_up_refuses_a_taken_api_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        config = Config(data_dir=tmp_path, port=port).resolved()
        assert run_up(config, env={}) == 2
    assert capsys.readouterr().err == f"meetrec: port {port} is already in use (set PORT to choose another)\n"


def test_run_up_refuses_an_api_port_the_s3_server_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Config(data_dir=tmp_path, port=30001, embedded_s3_port=30000).resolved()
    assert run_up(config, env={}) == 2
    assert "wanted by both PORT and MEETREC_S3_PORT" in capsys.readouterr().err


def test_s3_credentials_are_generated_once_and_kept_private(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path).resolved()
    first = resolve_s3_credentials(config)
    second = resolve_s3_credentials(config)
    assert first.s3_access_key and first.s3_secret_key
    assert (second.s3_access_key, second.s3_secret_key) == (first.s3_access_key, first.s3_secret_key)
    path = tmp_path / CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["secret_key"] == first.s3_secret_key


def test_explicit_s3_credentials_win_and_must_come_in_pairs(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path, s3_access_key="AK", s3_secret_key="SK").resolved()
    assert resolve_s3_credentials(config) == config
    assert not (tmp_path / CREDENTIALS_FILE).exists()
    with pytest.raises(ConfigError, match="both"):
        resolve_s3_credentials(Config(data_dir=tmp_path, s3_access_key="AK").resolved())


def test_supervisor_waits_for_each_ready_child_before_starting_the_next(tmp_path: Path) -> None:
    flag, order = tmp_path / "ready", tmp_path / "order"
    first = f"import pathlib, time; time.sleep(0.5); pathlib.Path({str(flag)!r}).touch(); time.sleep(60)"
    second = f"open({str(order)!r}, 'w').write(str(__import__('os').path.exists({str(flag)!r}))); "
    second += "__import__('time').sleep(60)"
    slow = ChildSpec("slow", [sys.executable, "-c", first], stop_timeout=5, ready=flag.exists)
    supervisor = Supervisor([slow, python_child("next", second)])
    try:
        supervisor.start()
        assert wait_for(lambda: order.exists() and order.read_text(), timeout=10) == "True"
    finally:
        supervisor.stop()


def test_supervisor_start_reports_a_child_that_dies_before_it_is_ready(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    code = "print('cannot bind'); raise SystemExit(4)"
    spec = ChildSpec("doomed", [sys.executable, "-c", code], log_path=log, ready=lambda: False)
    supervisor = Supervisor([spec])
    with pytest.raises(MeetrecError, match="doomed exited with code 4 while starting:\ncannot bind"):
        supervisor.start()
    supervisor.stop()


def test_supervisor_stops_backing_children_after_the_others_exited(tmp_path: Path) -> None:
    """A worker still draining (it takes a while after SIGTERM) can use Redis and S3 until it is done."""
    events = tmp_path / "events"
    backing = (
        "import signal, sys, time; "
        f"signal.signal(signal.SIGTERM, lambda *_: (open({str(events)!r}, 'a').write('backing\\n'), "
        "sys.exit(0))); time.sleep(60)"
    )
    draining = (
        "import signal, sys, time; "
        f"signal.signal(signal.SIGTERM, lambda *_: (time.sleep(0.5), open({str(events)!r}, 'a')"
        ".write('worker\\n'), sys.exit(0))); time.sleep(60)"
    )
    specs = [
        ChildSpec("redis", [sys.executable, "-c", backing], backing=True),
        python_child("worker", draining),
    ]
    supervisor = Supervisor(specs)
    supervisor.start()
    time.sleep(0.5)  # both have installed their handlers
    supervisor.stop()
    assert events.read_text().split() == ["worker", "backing"]


def test_supervisor_kills_a_grandchild_that_left_the_childs_process_group(tmp_path: Path) -> None:
    """RQ's work horse moves to a process group of its own (setpgrp); it must not outlive its worker."""
    pid_file = tmp_path / "horse.pid"
    worker = (
        "import os, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.setpgrp(); time.sleep(60); os._exit(0)\n"
        f"open({str(pid_file)!r}, 'w').write(str(pid)); time.sleep(60)\n"
    )
    supervisor = Supervisor([python_child("worker", worker)], poll_interval=0.01)
    supervisor.start()
    thread = run_in_thread(supervisor)
    try:
        horse = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=10))
        first = supervisor.process("worker")
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)  # the worker dies; its horse would live on as an orphan
        wait_for(lambda: is_gone(horse), timeout=5)
    finally:
        supervisor.request_stop()
        thread.join(10)


def test_supervised_redis_comes_back_with_its_data_after_a_kill(tmp_path: Path) -> None:
    server = RedisServer(free_port(), tmp_path)
    supervisor = Supervisor([server.child_spec()], backoff_initial=0.1, poll_interval=0.01)
    supervisor.start()
    thread = run_in_thread(supervisor)
    try:
        client = redis.Redis.from_url(server.url, socket_timeout=2)
        client.set("k", "kept")
        time.sleep(1.5)  # appendfsync everysec: on disk within a second
        first = supervisor.process("redis-server")
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)
        wait_for(server.ready, timeout=30, interval=0.1)
        assert client.get("k") == b"kept"
        client.close()
    finally:
        supervisor.request_stop()
        thread.join(20)


def test_supervised_s3_server_comes_back_with_its_objects_after_a_kill(tmp_path: Path) -> None:
    server = S3Server(free_weed_ports(), tmp_path, "AKTESTKEY", "test-secret-key-123")
    supervisor = Supervisor([server.child_spec()], backoff_initial=0.1, poll_interval=0.01)
    supervisor.start(ready_timeout=60)
    thread = run_in_thread(supervisor)
    try:
        client = s3_client(server, server.access_key, server.secret_key)
        client.make_bucket("kept")
        client.put_object("kept", "a.txt", io.BytesIO(b"hello"), 5)
        first = supervisor.process("weed")
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)
        wait_for(lambda: first.poll() is not None and server.ready(), timeout=60, interval=0.1)
        got = wait_for(lambda: _read_or_none(client, "kept", "a.txt"), timeout=30, interval=0.2)
        assert got == b"hello"
    finally:
        supervisor.request_stop()
        thread.join(20)
        server.remove_local_sockets()


def _read_or_none(client: Minio, bucket: str, key: str) -> bytes | None:
    try:
        return client.get_object(bucket, key).read()
    except (S3Error, OSError):  # the gateway answers before its filer is back
        return None
