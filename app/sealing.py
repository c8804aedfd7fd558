"""Secrets meetrec must use again later, sealed at rest with MEETREC_SECRET_KEY (AES-256-GCM).

Webhook signing needs two secrets in the clear at every delivery: the Eyeson API key (Eyeson signs with
it; API keys are otherwise stored only hashed) and the endpoint's `whsec_` secret. They are stored
sealed: a database dump alone reveals neither. `context` binds a sealed value to its row and column, so
a value copied into another row does not open. Losing or changing MEETREC_SECRET_KEY makes the sealed
values unreadable: their endpoints must be registered again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from Crypto.Cipher import AES

from app.errors import ConfigError, SealError

VERSION = "v1"
_NONCE_BYTES = 12
_TAG_BYTES = 16


def _key(secret_key: str) -> bytes:
    if not secret_key:
        raise ConfigError("MEETREC_SECRET_KEY is not set; webhook signing keys cannot be stored")
    return hmac.new(secret_key.encode(), b"meetrec sealing v1", hashlib.sha256).digest()


def seal(secret_key: str, plaintext: str, context: str) -> str:
    """Encrypt and authenticate `plaintext`; the result is printable and starts with `v1.`."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    cipher = AES.new(_key(secret_key), AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
    cipher.update(context.encode())
    body, tag = cipher.encrypt_and_digest(plaintext.encode())
    return f"{VERSION}.{base64.urlsafe_b64encode(nonce + body + tag).decode()}"


def unseal(secret_key: str, sealed: str, context: str) -> str:
    """The plaintext of a value `seal` made with the same key and context; SealError otherwise."""
    version, _, data = sealed.partition(".")
    if version != VERSION:
        raise SealError(f"unknown sealing version {version!r}")
    try:
        raw = base64.urlsafe_b64decode(data)
        nonce, body, tag = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:-_TAG_BYTES], raw[-_TAG_BYTES:]
        cipher = AES.new(_key(secret_key), AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
        cipher.update(context.encode())
        return cipher.decrypt_and_verify(body, tag).decode()
    except (ValueError, UnicodeDecodeError) as e:
        raise SealError("the sealed value does not open with MEETREC_SECRET_KEY") from e
