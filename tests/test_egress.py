"""The egress guard: every host ffmpeg reaches over http(s) is checked, redirects and HLS segments too.

The allow-list here admits 127.0.0.1 only; 127.0.0.2 (loopback too, so it needs no network) stands
for a private address the source must not lead ffmpeg to, with a server on it that notes every visit.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from app.media.commands import segment_capture_argv
from app.media.egress import EgressProxy
from app.media.runner import FfmpegProcess
from app.media.segments import SegmentList
from app.media.sources import parse_source
from tests.helpers import wait_for
from tests.mediaservers import FFMPEG, HlsServer, HttpDir

ALLOWED = ("127.0.0.1",)


class Visited(http.server.ThreadingHTTPServer):
    """An HTTP server on 127.0.0.2 that answers anything and keeps the paths asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.paths.append(self.path)
                body = b"#EXTM3U\n" if self.path.endswith(".m3u8") else b"G" * 188 * 50
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.2", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.2:{self.server_address[1]}/{path}"


@pytest.fixture
def private() -> Iterator[Visited]:
    server = Visited()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy() -> Iterator[EgressProxy]:
    with EgressProxy(ALLOWED) as guard:
        yield guard


def capture_through(proxy: EgressProxy, url: str, spool: Path) -> FfmpegProcess:
    spool.mkdir(parents=True, exist_ok=True)
    source = replace(parse_source(url), http_proxy=proxy.url)
    argv = segment_capture_argv(
        FFMPEG, source, spool, mode="copy", segment_seconds=1, start_number=0, size="320x240", rate=15,
        max_seconds=30,
    )  # fmt: skip
    return FfmpegProcess().start(argv)


def test_a_request_to_an_allowed_host_is_relayed(proxy, tmp_path):
    with HttpDir(tmp_path) as www:
        (www.root / "hello.txt").write_text("hello")
        answer = requests.get(www.url("hello.txt"), proxies={"http": proxy.url}, timeout=10)
    assert answer.status_code == 200 and answer.text == "hello"
    assert proxy.refusals == []


def test_a_request_to_a_host_off_the_allowlist_is_refused(proxy, private):
    answer = requests.get(private.url("latest/meta-data"), proxies={"http": proxy.url}, timeout=10)
    assert answer.status_code == 403
    assert private.paths == []
    assert "127.0.0.2" in proxy.refusals[0]


def test_a_tunnel_to_a_host_off_the_allowlist_is_refused(proxy, private):
    port = int(proxy.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"CONNECT 127.0.0.2:{private.server_address[1]} HTTP/1.1\r\n\r\n".encode())
        assert conn.recv(100).startswith(b"HTTP/1.1 403")
    assert proxy.refusals


def test_an_hls_source_records_through_the_proxy(proxy, tmp_path):
    with HlsServer() as hls:
        hls.wait_ready()
        process = capture_through(proxy, hls.url, tmp_path)
        listing = SegmentList(tmp_path)
        try:
            wait_for(lambda: len(listing.closed()) >= 2 or not process.alive, timeout=20, interval=0.1)
        finally:
            process.stop()
    assert len(listing.closed()) >= 2, process.stderr_tail()
    assert proxy.refusals == []


def test_an_hls_playlist_cannot_lead_ffmpeg_to_a_private_host(proxy, private, tmp_path):
    with HttpDir(tmp_path / "www") as www:
        playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{}\n#EXT-X-ENDLIST\n"
        (www.root / "evil.m3u8").write_text(playlist.format(private.url("seg.ts")))
        process = capture_through(proxy, www.url("evil.m3u8"), tmp_path / "spool")
        process.wait(timeout=20)
    assert private.paths == []
    assert any("127.0.0.2" in r for r in proxy.refusals)


def test_a_redirect_cannot_lead_ffmpeg_to_a_private_host(proxy, private, tmp_path):
    target = private.url("latest/meta-data/stream.ts")

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
        url = f"http://127.0.0.1:{server.server_address[1]}/stream.ts"
        process = capture_through(proxy, url, tmp_path)
        process.wait(timeout=20)
    finally:
        server.shutdown()
        server.server_close()
    assert private.paths == []
    assert any("127.0.0.2" in r for r in proxy.refusals)


def test_a_capture_led_to_a_private_host_fails_and_says_why(rt, private, tmp_path):
    """Through the capture service: the recording fails, naming the refused host, and the private
    server never sees a request."""
    from app.models import Recording, utcnow
    from app.services.access import keys
    from app.services.core import recordings
    from app.services.ids import new_id
    from app.services.pipeline import capture

    with HttpDir(tmp_path / "www") as www:
        playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{}\n#EXT-X-ENDLIST\n"
        (www.root / "evil.m3u8").write_text(playlist.format(private.url("seg.ts")))
        recording_id = new_id()
        with rt.db.transaction() as s:
            s.add(
                Recording(
                    id=recording_id,
                    project_id=keys.create_project(rt, "egress").id,
                    state="started",
                    media_source=www.url("evil.m3u8"),
                    created_at=utcnow(),
                )
            )
        result = capture.capture(rt, recording_id)
    assert result.startswith("failed"), result
    assert "not allowed" in recordings.load(rt, recording_id).error
    assert private.paths == []
