"""First-run preparation shared by `meetrec up` and `meetrec migrate`: schema, bucket, admin key."""

from __future__ import annotations

from app import migrate
from app.config import Config
from app.runtime import Runtime
from app.services.access import keys


def bootstrap(config: Config) -> str | None:
    """Migrate the database, create the bucket, ensure an admin key; return a newly minted key or None."""
    migrate.upgrade(config.database_url)
    rt = Runtime(config)
    rt.storage.ensure_bucket()
    try:
        return keys.bootstrap_admin(rt, config.bootstrap_api_key)
    finally:
        rt.db.engine.dispose()
