"""Identifiers and secrets."""

from __future__ import annotations

import hashlib
import secrets


def new_id() -> str:
    """A 24-hex-digit id, the shape Eyeson clients know."""
    return secrets.token_hex(12)


def new_secret(prefix: str) -> str:
    """A 256-bit random secret with a readable prefix (`mr_` for API keys, `ak_` for access keys)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_secret(raw: str) -> str:
    """SHA-256 of a secret. The secrets are 256-bit random, so a fast hash cannot be brute-forced."""
    return hashlib.sha256(raw.encode()).hexdigest()
