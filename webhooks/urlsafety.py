"""SSRF guard for untrusted URLs (media sources, webhook endpoints).

A URL is safe when every address its host resolves to is globally routable, or the operator's allow-list
admits the host name or address. Loopback, private, shared (CGNAT), link-local (cloud metadata lives
there), multicast, reserved, unspecified and IPv4-embedding IPv6 addresses are refused by default (see
`is_public`). Resolve again right before connecting, and connect to what was checked: DNS can change.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit


class UnsafeURL(ValueError):
    """The URL points at an address the operator has not allowed (`unresolvable`: its host has none)."""

    def __init__(self, message: str, *, unresolvable: bool = False) -> None:
        super().__init__(message)
        self.unresolvable = unresolvable


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
    """Whether `addr` is globally routable: not private, shared (CGNAT, 100.64.0.0/10, where some clouds
    keep their metadata service), loopback, link-local, reserved or a relay/translation prefix that can
    lead to an IPv4 address of any kind (6to4, NAT64, IPv4-compatible)."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return is_public(addr.ipv4_mapped)
        if any(addr in net for net in _TUNNELS_V6):
            return False
    elif any(addr in net for net in _NOT_GLOBAL_V4):
        return False
    return addr.is_global and not addr.is_multicast


# What Python 3.11's `is_global` still counts as global but must not be reached: the 6to4 relay anycast
# and the IETF protocol assignments (192.0.0.0/24: 192.0.0.8 and friends), and IPv6 prefixes that embed an
# IPv4 address (6to4, NAT64 well-known and local-use, the deprecated IPv4-compatible ::/96).
_NOT_GLOBAL_V4 = tuple(ipaddress.IPv4Network(n) for n in ("192.88.99.0/24", "192.0.0.0/24"))
_TUNNELS_V6 = tuple(
    ipaddress.IPv6Network(n) for n in ("2002::/16", "64:ff9b::/96", "64:ff9b:1::/48", "::/96")
)


def resolve(host: str, port: int | None) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise UnsafeURL(f"host {host!r} does not resolve", unresolvable=True) from e
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
