"""Servers a hostile media source would run, on loopback, for the egress tests.

- `Listener`: a raw TCP listener (on 127.0.0.2 by default: loopback, standing for a private host) that
  notes every connection and answers nothing. A test asserts it was never reached.
- `RedirectingRtsp`: an RTSP server on 127.0.0.1 answering every request with `302 Location: <target>`.
- `TlsEcho`: a TLS server on 127.0.0.1 echoing what it reads, with the same certificate.
- `TlsDir`: a directory served over HTTPS with a certificate for `localhost` and 127.0.0.1 signed by a
  test CA (`ca_file`), made with the `openssl` command.
"""

from __future__ import annotations

import functools
import http.server
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Self

from tests.mediaservers import _QuietHandler


class Listener:
    """A TCP listener noting who connected (`connections`), closing each connection at once."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        self.sock = socket.create_server((host, 0))
        self.host, self.port = host, self.sock.getsockname()[1]
        self.connections = 0
        self._closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._closed = True
        self.sock.close()


class RedirectingRtsp:
    """RTSP on 127.0.0.1 that redirects every request to `target` (e.g. rtsp://127.0.0.2:PORT/x)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.requests: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"rtsp://127.0.0.1:{self.sock.getsockname()[1]}/stream"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            try:
                while True:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                    while b"\r\n\r\n" in data:
                        head, _, data = data.partition(b"\r\n\r\n")
                        lines = head.decode("latin-1").split("\r\n")
                        self.requests.append(lines[0])
                        cseq = next(
                            (ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("cseq")),
                            "1",
                        )
                        conn.sendall(
                            f"RTSP/1.0 302 Moved Temporarily\r\nCSeq: {cseq}\r\nLocation: {self.target}\r\n"
                            "Content-Length: 0\r\n\r\n".encode()
                        )
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


def make_ca(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key): the server's for `localhost` and 127.0.0.1."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    run = functools.partial(subprocess.run, check=True, capture_output=True)
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=meetrec test CA", "-keyout", str(ca_key), "-out", str(ca_cert)])  # fmt: skip
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", str(key),
         "-out", str(csr)])  # fmt: skip
    run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert)])  # fmt: skip
    return ca_cert, cert, key


class TlsDir:
    """A directory served over HTTPS on 127.0.0.1 (`url(name)` names it as https://localhost:PORT/)."""

    def __init__(self, root: Path, cert: Path, key: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: list[str] = []
        handler = functools.partial(_QuietHandler, directory=str(root), requests=self.requests)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]

    def url(self, name: str) -> str:
        return f"https://localhost:{self.port}/{name}"

    def __enter__(self) -> Self:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class TlsEcho:
    """A TLS server on 127.0.0.1 (certificate for `localhost`) echoing what it reads."""

    def __init__(self, cert: Path, key: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.sock = context.wrap_socket(socket.create_server(("127.0.0.1", 0)), server_side=True)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except ssl.SSLError:
                continue  # a client that did not accept the certificate
            except OSError:
                return  # closed
            with conn:
                conn.sendall(conn.recv(100))
