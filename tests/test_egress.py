"""The egress guard: ffmpeg reaches a pull source only at an address meetrec checked, whatever the source
says (redirects, playlist entries, other protocols), and only through meetrec's gateway or relay.

The allow-list here admits 127.0.0.1 and `localhost` only; 127.0.0.2 (loopback too, so it needs no
network) stands for a private address the source must not lead ffmpeg to, with a listener on it that
notes every connection.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app.media.commands import relay_reader_argv, segment_capture_argv
from app.media.egress import Egress
from app.media.http_gateway import HttpGateway, ffmpeg_url, rewrite_https, tls_context
from app.media.runner import FfmpegProcess
from app.media.segments import SegmentList
from app.media.sources import parse_source
from app.media.tcp_relay import PinnedRelay, Refused, RtspGuard
from tests.helpers import wait_for
from tests.hostile import Listener, RedirectingRtsp, TlsDir, TlsEcho, make_ca
from tests.mediaservers import FFMPEG, H264_AAC, HlsServer, HttpDir, RtmpServer, live_pattern
from webhooks.urlsafety import UnsafeURL

ALLOWED = ("127.0.0.1", "localhost")


@pytest.fixture
def private() -> Iterator[Listener]:
    listener = Listener("127.0.0.2")
    yield listener
    listener.close()


@pytest.fixture
def gateway() -> Iterator[HttpGateway]:
    with HttpGateway(ALLOWED) as guard:
        yield guard


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def ts_segments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 1-second MPEG-TS segments (H.264 + AAC) to serve as an HLS VOD."""
    root = tmp_path_factory.mktemp("vod")
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", *live_pattern("320x240", 15)[1:], "-t", "3", *H264_AAC,
         "-g", "15", "-f", "segment", "-segment_time", "1", "-segment_format", "mpegts",
         str(root / "seg-%d.ts")],
        check=True,
    )  # fmt: skip
    return root


def capture_through(egress: Egress, spool: Path) -> FfmpegProcess:
    spool.mkdir(parents=True, exist_ok=True)
    argv = segment_capture_argv(
        FFMPEG, egress.source, spool, mode="copy", segment_seconds=1, start_number=0, size="320x240", rate=15,
        max_seconds=30,
    )  # fmt: skip
    return FfmpegProcess().start(argv, env=egress.env)


def read_once(url: str, spool: Path, allowlist: tuple[str, ...] = ALLOWED, ca_file: str = "") -> list[str]:
    """Capture `url` through an Egress until ffmpeg gives up (at most 20 s); the refusals."""
    with Egress(parse_source(url), allowlist, ca_file) as egress:
        process = capture_through(egress, spool)
        try:
            process.wait(timeout=20)
        finally:
            process.kill()
        return egress.refusals


def playlist(*uris: str) -> str:
    entries = "".join(f"#EXTINF:1.0,\n{uri}\n" for uri in uris)
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n{entries}#EXT-X-ENDLIST\n"


# -- the HTTP gateway ------------------------------------------------------------------------------------


def test_a_request_to_an_allowed_host_is_relayed(gateway, tmp_path):
    with HttpDir(tmp_path) as www:
        (www.root / "hello.txt").write_text("hello")
        answer = requests.get(www.url("hello.txt"), proxies={"http": gateway.url}, timeout=10)
    assert answer.status_code == 200 and answer.text == "hello"
    assert gateway.refusals == []


def test_a_request_to_a_host_off_the_allowlist_is_refused(gateway, private):
    url = f"http://127.0.0.2:{private.port}/latest/meta-data"
    answer = requests.get(url, proxies={"http": gateway.url}, timeout=10)
    assert answer.status_code == 403
    assert private.connections == 0
    assert "127.0.0.2" in gateway.refusals[0]


def test_a_tunnel_is_refused_even_to_an_allowed_host(gateway, tmp_path):
    with (
        HttpDir(tmp_path) as www,
        socket.create_connection(("127.0.0.1", _port(gateway.url)), timeout=10) as conn,
    ):
        conn.sendall(f"CONNECT 127.0.0.1:{www.httpd.server_address[1]} HTTP/1.1\r\n\r\n".encode())
        assert conn.recv(100).startswith(b"HTTP/1.1 405")


def test_an_https_source_is_read_over_verified_tls(gateway, tls_files, tmp_path):
    ca, cert, key = tls_files
    with TlsDir(tmp_path, cert, key) as www, HttpGateway(ALLOWED, str(ca)) as trusting:
        (www.root / "hello.txt").write_text("hello")
        answer = requests.get(ffmpeg_url(www.url("hello.txt")), proxies={"http": trusting.url}, timeout=10)
        untrusted = requests.get(ffmpeg_url(www.url("hello.txt")), proxies={"http": gateway.url}, timeout=10)
    assert answer.status_code == 200 and answer.text == "hello"
    assert untrusted.status_code == 502, "a certificate from an unknown CA is not accepted"


def test_https_uris_in_manifests_and_locations_are_rewritten_for_the_gateway():
    text = b'#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example.com/k"\nhttps://cdn.example.com:8443/a.ts\n'
    rewritten = rewrite_https(text)
    assert b"http://keys.example.com.tls.meetrec.invalid:443/k" in rewritten
    assert b"http://cdn.example.com.tls.meetrec.invalid:8443/a.ts" in rewritten
    assert b"https://" not in rewritten
    assert (
        ffmpeg_url("https://[2001:db8::1]/live.m3u8")
        == "http://2001-db8--1.v6.tls.meetrec.invalid:443/live.m3u8"
    )
    assert ffmpeg_url("http://example.com/a") == "http://example.com/a"


def record_segments(egress: Egress, spool: Path, count: int) -> None:
    """Capture through `egress` until `count` segments closed (at most 20 s); fail saying why if fewer."""
    process = capture_through(egress, spool)
    listing = SegmentList(spool)
    try:
        wait_for(lambda: len(listing.closed()) >= count or not process.alive, timeout=20, interval=0.1)
    finally:
        process.stop()
    assert len(listing.closed()) >= count, process.stderr_tail()


def test_an_hls_source_records_through_the_gateway(tmp_path):
    with HlsServer() as hls, Egress(parse_source(hls.url), ALLOWED) as egress:
        record_segments(egress, tmp_path, 2)
        assert egress.refusals == []
    assert "-http_proxy" in egress.source.input_options


def test_an_https_hls_source_with_absolute_segment_uris_records(tls_files, ts_segments, tmp_path):
    """ffmpeg speaks plain HTTP to the gateway, which speaks TLS to the source and rewrites the
    playlist's absolute https URIs so that ffmpeg asks the gateway for them too."""
    ca, cert, key = tls_files
    with TlsDir(ts_segments, cert, key) as www:
        (www.root / "vod.m3u8").write_text(playlist(*(www.url(f"seg-{n}.ts") for n in range(3))))
        with Egress(parse_source(www.url("vod.m3u8")), ALLOWED, str(ca)) as egress:
            process = capture_through(egress, tmp_path / "spool")
            process.wait(timeout=30)
            assert egress.refusals == []
    assert www.requests[:2] == ["/vod.m3u8", "/seg-0.ts"], process.stderr_tail()
    assert len(SegmentList(tmp_path / "spool").closed()) >= 2, process.stderr_tail()


def test_an_hls_playlist_cannot_lead_ffmpeg_to_a_private_host(private, tmp_path):
    with HttpDir(tmp_path / "www") as www:
        (www.root / "evil.m3u8").write_text(playlist(f"http://127.0.0.2:{private.port}/seg.ts"))
        refusals = read_once(www.url("evil.m3u8"), tmp_path / "spool")
    assert private.connections == 0
    assert any("127.0.0.2" in r for r in refusals)


@pytest.mark.parametrize(
    "uri",
    [
        "httpproxy://127.0.0.2:{port}/x.ts",
        "tcp://127.0.0.2:{port}",
        "tls://127.0.0.2:{port}",
        "https://127.0.0.2:{port}/x.ts",
        "crypto+tcp://127.0.0.2:{port}",
        "crypto+http://127.0.0.2:{port}/x.ts",
        "httpproxy://127.0.0.2:{port}/",
    ],
)
def test_no_protocol_in_a_playlist_reaches_a_private_host(private, tmp_path, uri):
    with HttpDir(tmp_path / "www") as www:
        (www.root / "evil.m3u8").write_text(playlist(uri.format(port=private.port)))
        read_once(www.url("evil.m3u8"), tmp_path / "spool")
    assert private.connections == 0


@pytest.mark.parametrize(
    "location", ["http://127.0.0.2:{port}/s.ts", "tcp://127.0.0.2:{port}", "httpproxy://127.0.0.2:{port}/"]
)
def test_a_redirect_cannot_lead_ffmpeg_to_a_private_host(private, tmp_path, location):
    target = location.format(port=private.port)

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        read_once(f"http://127.0.0.1:{server.server_address[1]}/stream.ts", tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert private.connections == 0


# -- pinned relays: rtsp, rtmp, srt ------------------------------------------------------------------------


def test_ffmpeg_alone_follows_an_rtsp_redirect(private):
    """The threat, shown once: without the relay, ffmpeg connects where the redirect says."""
    server = RedirectingRtsp(f"rtsp://127.0.0.2:{private.port}/x")
    try:
        subprocess.run(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-timeout", "3000000",
             "-i", server.url, "-f", "null", "-"],
            capture_output=True, timeout=30,
        )  # fmt: skip
    finally:
        server.close()
    assert private.connections >= 1


def test_an_rtsp_redirect_is_refused_by_the_relay(private, tmp_path):
    server = RedirectingRtsp(f"rtsp://127.0.0.2:{private.port}/x")
    try:
        refusals = read_once(server.url, tmp_path)
    finally:
        server.close()
    assert server.requests, "ffmpeg reached the source through the relay"
    assert private.connections == 0
    assert any("redirect" in r for r in refusals)


def test_the_rtsp_guard_passes_frames_and_bodies_split_anywhere():
    stream = (
        b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 5\r\n\r\nv=0\r\n"
        + b"$\x00\x00\x03abc"
        + b"RTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n"
    )
    guard = RtspGuard()
    passed = b"".join(guard.feed(stream[i : i + 3]) for i in range(0, len(stream), 3))
    assert passed == stream


def test_the_rtsp_guard_refuses_a_redirect_inside_an_interleaved_stream():
    guard = RtspGuard()
    guard.feed(b"$\x01\x00\x02ok")
    with pytest.raises(Refused, match="redirected to rtsp://10.0.0.5/"):
        guard.feed(b"RTSP/1.0 301 Moved\r\nCSeq: 4\r\nLocation: rtsp://10.0.0.5/\r\n\r\n")


def test_an_rtmp_source_is_read_through_a_pinned_relay(tmp_path):
    """ffmpeg is given 127.0.0.1 and the relay's port, never the host name, so DNS cannot change the
    address between the check and the connection; the server still sees its own URL as tcUrl."""
    with RtmpServer() as server:
        source = parse_source(server.url.replace("127.0.0.1", "localhost"))
        with Egress(source, ALLOWED) as egress:
            argv = relay_reader_argv(FFMPEG, egress.source)
            record_segments(egress, tmp_path, 1)
    url = argv[argv.index("-i") + 1]
    assert url.startswith("rtmp://127.0.0.1:") and "localhost" not in url
    assert argv[argv.index("-rtmp_tcurl") + 1] == f"rtmp://localhost:{server.port}/live"


def echo_through(relay: PinnedRelay) -> bytes:
    with relay, socket.create_connection(("127.0.0.1", relay.port), timeout=10) as conn:
        conn.sendall(b"ping")
        try:
            return conn.recv(100)
        except OSError:
            return b""


def test_a_pinned_relay_speaks_verified_tls_for_rtmps_and_rtsps(tls_files):
    ca, cert, key = tls_files
    echo = TlsEcho(cert, key)
    try:
        trusted = PinnedRelay(["127.0.0.1"], echo.port, tls_host="localhost", context=tls_context(str(ca)))
        untrusted = PinnedRelay(["127.0.0.1"], echo.port, tls_host="localhost", context=tls_context())
        assert echo_through(trusted) == b"ping"
        assert echo_through(untrusted) == b"", "a certificate from an unknown CA is not accepted"
    finally:
        echo.sock.close()


def test_an_srt_source_is_given_to_ffmpeg_at_its_checked_address():
    with Egress(parse_source("srt://localhost:9000?streamid=room&latency=200000"), ALLOWED) as egress:
        assert egress.source.url in (
            "srt://127.0.0.1:9000?streamid=room&latency=200000",
            "srt://[::1]:9000?streamid=room&latency=200000",
        )


@pytest.mark.parametrize("scheme", ["rtmp", "rtsp", "srt", "rtmps", "rtsps"])
def test_a_host_off_the_allowlist_is_refused_before_ffmpeg_starts(scheme):
    with pytest.raises(UnsafeURL), Egress(parse_source(f"{scheme}://127.0.0.2:9000/live/x"), ALLOWED):
        pass


def test_an_unresolvable_host_is_a_retryable_refusal():
    with pytest.raises(UnsafeURL) as refused, Egress(parse_source("rtmp://nowhere.invalid/live/x"), ALLOWED):
        pass
    assert refused.value.unresolvable


# -- ffmpeg's environment ----------------------------------------------------------------------------------


def test_ffmpeg_gets_none_of_the_workers_environment(monkeypatch):
    monkeypatch.setenv("MEETREC_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("no_proxy", "*")
    process = FfmpegProcess().start(["env"], pass_stdout=True, env={"http_proxy": "http://127.0.0.1:1"})
    seen = process.stdout.read().decode()
    process.wait(timeout=10)
    names = {line.split("=", 1)[0] for line in seen.splitlines()}
    assert names <= {"PATH", "LANG", "http_proxy"}, names
    assert "http_proxy=http://127.0.0.1:1" in seen.splitlines()
    assert os.environ["MEETREC_SECRET_KEY"] not in seen


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


# -- through the capture service ---------------------------------------------------------------------------


def started_recording(rt, media_source: str, **fields: object) -> str:
    from app.models import Recording, utcnow
    from app.services.access import keys
    from app.services.ids import new_id

    recording_id = new_id()
    with rt.db.transaction() as s:
        s.add(
            Recording(
                id=recording_id,
                project_id=keys.create_project(rt, "egress").id,
                state="started",
                media_source=media_source,
                created_at=utcnow(),
                **fields,
            )
        )
    return recording_id


def test_a_capture_led_to_a_private_host_fails_and_says_why(rt, private, tmp_path):
    from app.services.core import recordings
    from app.services.pipeline import capture

    with HttpDir(tmp_path / "www") as www:
        (www.root / "evil.m3u8").write_text(playlist(f"http://127.0.0.2:{private.port}/seg.ts"))
        recording_id = started_recording(rt, www.url("evil.m3u8"))
        result = capture.capture(rt, recording_id)
    assert result.startswith("failed"), result
    assert "not allowed" in recordings.load(rt, recording_id).error
    assert private.connections == 0


def test_a_capture_redirected_by_an_rtsp_server_fails_without_following(rt, private):
    from app.services.core import recordings
    from app.services.pipeline import capture

    server = RedirectingRtsp(f"rtsp://127.0.0.2:{private.port}/x")
    try:
        recording_id = started_recording(rt, server.url)
        result = capture.capture(rt, recording_id)
    finally:
        server.close()
    assert result.startswith("failed"), result
    assert "redirect" in recordings.load(rt, recording_id).error
    assert private.connections == 0


def test_a_resumed_capture_checks_the_host_again(rt):
    """A capture that continues a recording hours later re-checks its host: an address the operator no
    longer allows is not connected to, and the recording fails saying why."""
    from dataclasses import replace

    from app.runtime import Runtime
    from app.services.core import recordings
    from app.services.pipeline import capture

    source = Listener("127.0.0.1")
    strict = Runtime(replace(rt.config, url_allowlist=()))
    try:
        recording_id = started_recording(rt, f"rtmp://127.0.0.1:{source.port}/live/x", capture_attempts=1)
        result = capture.capture(strict, recording_id)
    finally:
        source.close()
    assert result.startswith("failed"), result
    assert "not allowed" in recordings.load(rt, recording_id).error
    assert source.connections == 0
