"""Flask's context proxies read once: `behind(request)` is the request object itself.

A proxy resolves the current context on every attribute access; the per-request machinery (auth, request
ids, the access line) reads `request`, `g` and `current_app` a few times each, and one lookup costs a
sixth of a proxy's attribute access.
"""

from __future__ import annotations

from typing import Any


def behind(proxy: Any) -> Any:
    """The object behind a Flask context proxy (`request`, `g`, `current_app`) in the current context."""
    return proxy._get_current_object()
