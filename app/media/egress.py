"""Egress: how one capture attempt's ffmpeg reaches a pull source, checked now and pinned to what was checked.

The API checks a media source's host when recording starts, but a capture may run hours later (a resume
after a crash, a reconnect) and DNS may answer differently by then, and ffmpeg follows what a source
tells it (redirects, playlist entries). So each attempt opens an `Egress` and gives ffmpeg
`egress.source` instead of the source, with `egress.env` added to its environment:

- http(s): every request goes through the `HttpGateway`, which checks each host ffmpeg asks for, TLS
  included (ffmpeg may open only `http,tcp,crypto`);
- rtmp(s), rtsp(s): the host is checked now and ffmpeg connects to a loopback `PinnedRelay` that joins it
  to the checked address (TLS on the relay's side for the `s` schemes; RTSP redirects refused). RTMP
  keeps the server's view of the URL through `-rtmp_tcurl`;
- srt: the host is checked now and the checked address is written into the URL (libsrt then connects
  there; SRT has no redirects).

Opening raises `UnsafeURL` when the host is not allowed (any more) or does not resolve. What was refused
while the attempt ran is in `refusals`.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import replace
from urllib.parse import urlsplit

from app.media.http_gateway import HttpGateway, ffmpeg_url, tls_context
from app.media.sources import MediaSource
from app.media.tcp_relay import PinnedRelay, RtspGuard
from webhooks.urlsafety import checked_addresses

DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443, "rtsp": 554, "rtsps": 322}


class Egress:
    """`with Egress(source, allowlist) as egress:` run ffmpeg on `egress.source` with `egress.env`."""

    def __init__(self, source: MediaSource, allowlist: Iterable[str] = (), ca_file: str = "") -> None:
        self.original = source
        self.allowlist = tuple(allowlist)
        self.ca_file = ca_file
        self.source = source
        self.env: dict[str, str] = {}
        self._guards: list[HttpGateway | PinnedRelay] = []
        self._stack = ExitStack()

    @property
    def refusals(self) -> list[str]:
        return [reason for guard in self._guards for reason in guard.refusals]

    def __enter__(self) -> Egress:
        with ExitStack() as stack:
            self.source = self._open(stack)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _open(self, stack: ExitStack) -> MediaSource:
        source, scheme = self.original, self.original.scheme
        if source.kind != "pull":
            return source
        if scheme in ("http", "https"):
            gateway = stack.enter_context(HttpGateway(self.allowlist, self.ca_file))
            self._guards.append(gateway)
            self.env = {"http_proxy": gateway.url}
            return replace(
                source, url=ffmpeg_url(source.url), scheme="http", input_options=("-http_proxy", gateway.url)
            )
        addresses = checked_addresses(source.url, self.allowlist)  # UnsafeURL: refused or unresolvable
        parts = urlsplit(source.url)
        if scheme == "srt":
            return replace(source, url=_with_authority(source.url, _bracketed(str(addresses[0])), parts.port))
        host = parts.hostname or ""
        secure = scheme.endswith("s")
        relay = stack.enter_context(
            PinnedRelay(
                addresses,
                parts.port or DEFAULT_PORTS[scheme],
                tls_host=host if secure else None,
                context=tls_context(self.ca_file) if secure else None,
                guard=RtspGuard if scheme.startswith("rtsp") else None,
            )
        )
        self._guards.append(relay)
        plain = scheme.rstrip("s")
        url = plain + _with_authority(source.url, "127.0.0.1", relay.port)[len(scheme) :]
        options: tuple[str, ...] = ()
        if plain == "rtmp":
            options = ("-rtmp_tcurl", _tc_url(source.url))
        return replace(source, url=url, scheme=plain, input_options=options)


def _with_authority(url: str, host: str, port: int | None) -> str:
    """`url` with its host and port replaced (its user info, path and query kept)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    authority = f"{userinfo + '@' if userinfo else ''}{host}{f':{port}' if port else ''}"
    return url[: len(parts.scheme) + 3] + authority + url[len(parts.scheme) + 3 + len(parts.netloc) :]


def _tc_url(url: str) -> str:
    """RTMP's tcUrl as ffmpeg would send it for `url` (scheme, host, port and application, no user info)."""
    parts = urlsplit(url)
    app = parts.path.lstrip("/").split("/", 1)[0]
    host = _bracketed(parts.hostname or "")
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}/{app}"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
