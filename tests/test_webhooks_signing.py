"""Webhook signing (both schemes), the retry policy and sealed secrets: pure units."""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Mapping

import pytest
import standardwebhooks

from app import sealing
from app.errors import ConfigError
from webhooks import policy, signing

BODY = b'{"type":"recording_update","recording":{"id":"abc"}}'
TOLERANCE = 300  # seconds a receiver accepts between our clock and its own


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float) -> None:
    """Check a Standard Webhooks request as a receiver would; SignatureError when it does not verify."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, given = (lowered.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and stamp and given):
        raise signing.SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError as e:
        raise signing.SignatureError("webhook-timestamp is not an integer") from e
    if abs(now - timestamp) > TOLERANCE:
        raise signing.SignatureError("webhook-timestamp is outside the tolerance")
    expected = signing.sign(secret, msg_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in given.split()):
        raise signing.SignatureError("no matching v1 signature")


def verify_eyeson(api_key: str, signature: str, body: bytes) -> None:
    """Check `X-Eyeson-Signature` as a receiver would; SignatureError when it does not match."""
    if not hmac.compare_digest(signing.eyeson_signature(api_key, body), signature.strip().lower()):
        raise signing.SignatureError("X-Eyeson-Signature does not match")


def test_eyeson_signature_is_the_hex_hmac_of_the_body_keyed_with_the_api_key():
    expected = hmac.new(b"mr_key", BODY, hashlib.sha256).hexdigest()
    assert signing.eyeson_signature("mr_key", BODY) == expected


def test_eyeson_verification_refuses_another_body():
    sig = signing.eyeson_signature("mr_key", BODY)
    verify_eyeson("mr_key", sig, BODY)
    with pytest.raises(signing.SignatureError):
        verify_eyeson("mr_key", sig, BODY + b" ")


def test_new_secrets_are_whsec_and_differ():
    a, b = signing.new_secret(), signing.new_secret()
    assert a.startswith("whsec_") and a != b


def test_standard_headers_verify_with_the_standardwebhooks_package():
    secret, now = signing.new_secret(), int(time.time())
    headers = signing.standard_headers("evt1", now, BODY, [secret])
    assert standardwebhooks.Webhook(secret).verify(BODY, headers)["type"] == "recording_update"
    assert headers["webhook-id"] == "evt1"
    assert headers["webhook-timestamp"] == str(now)


def test_during_a_rotation_both_secrets_verify():
    old, new, now = signing.new_secret(), signing.new_secret(), int(time.time())
    headers = signing.standard_headers("evt1", now, BODY, [new, old])
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        standardwebhooks.Webhook(secret).verify(BODY, headers)
        verify(secret, headers, BODY, now=now)


def test_another_secret_does_not_verify():
    headers = signing.standard_headers("evt1", int(time.time()), BODY, [signing.new_secret()])
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(signing.new_secret()).verify(BODY, headers)


@pytest.mark.parametrize(
    "change",
    [
        {"body": BODY.replace(b"abc", b"abd")},
        {"headers": {"webhook-id": "evt2"}},
        {"headers": {"webhook-timestamp": "1000"}},
    ],
)
def test_tampering_is_detected(change):
    secret, now = signing.new_secret(), int(time.time())
    headers = {**signing.standard_headers("evt1", now, BODY, [secret]), **change.get("headers", {})}
    with pytest.raises(signing.SignatureError):
        verify(secret, headers, change.get("body", BODY), now=now)


def test_signing_needs_a_secret():
    with pytest.raises(signing.SignatureError):
        signing.standard_headers("evt1", 1, BODY, [])


def test_default_schedule_spans_more_than_a_day():
    assert sum(policy.DEFAULT_SCHEDULE) >= 24 * 3600


def test_delays_follow_the_schedule_within_the_jitter():
    retry = policy.RetryPolicy((10, 100), jitter=0.2)
    rng = random.Random(7)
    delays = [retry.delay_after(1, rng) for _ in range(200)]
    assert all(8 <= d <= 12 for d in delays)
    assert len({round(d, 3) for d in delays}) > 100  # jittered, not constant
    assert 80 <= retry.delay_after(2, rng) <= 120


def test_no_delay_after_the_last_attempt():
    assert policy.RetryPolicy((10, 100)).delay_after(3) is None


@pytest.mark.parametrize(
    ("status", "ok"),
    [(200, True), (204, True), (299, True), (301, False), (404, False), (500, False), (None, False)],
)
def test_only_2xx_is_success(status, ok):
    assert policy.is_success(status) is ok


def test_only_410_disables():
    assert policy.disables_endpoint(410)
    assert not policy.disables_endpoint(404)


def test_sealed_values_open_with_the_same_key_and_context_only():
    sealed = sealing.seal("k1", "mr_secret", "ep1:eyeson")
    assert "mr_secret" not in sealed
    assert sealing.unseal("k1", sealed, "ep1:eyeson") == "mr_secret"
    for key, context in (("k2", "ep1:eyeson"), ("k1", "ep2:eyeson")):
        with pytest.raises(sealing.SealError):
            sealing.unseal(key, sealed, context)


def test_sealing_needs_a_secret_key():
    with pytest.raises(ConfigError):
        sealing.seal("", "x", "ctx")
