"""Object storage: one narrow port over S3-compatible servers (see `objects.py`)."""

from app.storage.objects import ObjectStore, StoredObject

__all__ = ["ObjectStore", "StoredObject"]
