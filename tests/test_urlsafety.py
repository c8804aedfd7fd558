"""The SSRF guard for untrusted URLs."""

from __future__ import annotations

import pytest

from webhooks.urlsafety import UnsafeURL, check_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8080/",
        "srt://10.0.0.5:9000",
        "rtmp://192.168.1.2/live",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "https://172.16.0.1/",
        "http://100.100.100.200/latest/meta-data/",  # shared address space (CGNAT): Alibaba's metadata
        "http://100.64.0.1/",
        "http://192.88.99.1/",  # 6to4 relay anycast
        "http://192.0.0.8/",  # IETF protocol assignments
        "http://[2002:a00:5::1]/",  # 6to4 of 10.0.0.5
        "http://[64:ff9b::a00:5]/",  # NAT64 of 10.0.0.5
        "http://[64:ff9b:1::a00:5]/",  # local-use NAT64
        "http://[::a00:5]/",  # IPv4-compatible
        "http://224.0.0.1/",
        "http://198.18.0.1/",  # benchmarking
        "http://240.0.0.1/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
    ],
)
def test_private_targets_are_refused_by_default(url):
    with pytest.raises(UnsafeURL):
        check_url(url)


def test_public_address_is_allowed():
    check_url("https://93.184.216.34/stream.m3u8")


def test_public_ipv6_address_is_allowed():
    check_url("https://[2001:4860:4860::8888]/stream.m3u8")


def test_allowlisted_network_admits_loopback():
    check_url("http://127.0.0.1:9/x", ["127.0.0.0/8"])


def test_allowlisted_host_name_admits_it():
    check_url("http://localhost:9/x", ["localhost"])


def test_url_without_host_is_refused():
    with pytest.raises(UnsafeURL):
        check_url("http:///nohost")


def test_unresolvable_host_is_refused():
    with pytest.raises(UnsafeURL):
        check_url("http://no-such-host.invalid/")
