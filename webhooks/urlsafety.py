"""SSRF guard for untrusted URLs (media sources, webhook endpoints).

A URL is safe when every address its host resolves to is public, or the operator's allow-list admits the
host name or address. Loopback, private, link-local (cloud metadata lives there), multicast, reserved
and unspecified addresses are refused by default. Resolve again right before connecting: DNS can change.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit


class UnsafeURL(ValueError):
    """The URL points at an address the operator has not allowed."""


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allowlist(entries: Iterable[str]) -> tuple[frozenset[str], tuple[Network, ...]]:
    """Split allow-list entries into host names and networks (CIDRs or single addresses)."""
    hosts: set[str] = set()
    nets: list[Network] = []
    for entry in entries:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry)
    return frozenset(hosts), tuple(nets)


def is_public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return is_public(addr.ipv4_mapped)
    return not (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    )


def resolve(host: str, port: int | None) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise UnsafeURL(f"host {host!r} does not resolve") from e
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def check_url(url: str, allowlist: Iterable[str] = ()) -> None:
    """Raise UnsafeURL unless every address of the URL's host is public or allow-listed.

    An allow-listed host name passes without being resolved (it may resolve only where it is used).
    """
    host = (urlsplit(url).hostname or "").lower()
    if host and host in parse_allowlist(allowlist)[0]:
        return
    checked_addresses(url, allowlist)


def checked_addresses(
    url: str, allowlist: Iterable[str] = ()
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses of the URL's host, each public or allow-listed; UnsafeURL otherwise.

    Connect to one of these (not to the name again) so that DNS cannot change between check and use.
    A host name on the allow-list is admitted whatever it resolves to.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeURL("the URL has no host")
    hosts, nets = parse_allowlist(allowlist)
    try:
        port = parts.port
    except ValueError as e:
        raise UnsafeURL("the URL has an invalid port") from e
    addresses = resolve(host, port)
    if host in hosts:
        return addresses
    for addr in addresses:
        if is_public(addr) or any(addr in net for net in nets):
            continue
        raise UnsafeURL(f"{host} resolves to {addr}, a non-public address (see MEETREC_URL_ALLOWLIST)")
    return addresses
