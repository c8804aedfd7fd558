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
    ],
)
def test_private_targets_are_refused_by_default(url):
    with pytest.raises(UnsafeURL):
        check_url(url)


def test_public_address_is_allowed():
    check_url("https://93.184.216.34/stream.m3u8")


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
