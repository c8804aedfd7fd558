"""Console views, one module per section; importing this package registers every route on `bp`."""

from app.console.blueprint import bp
from app.console.views import capture, keys, recordings, rooms, signin, system, webhooks

__all__ = ["bp", "capture", "keys", "recordings", "rooms", "signin", "system", "webhooks"]
