"""security: the webhook of a key revoked before this release is disabled

Revoking a key now disables its webhook in the same transaction
(`app.services.operations.revocation`); keys revoked earlier get the same here, so a disabled endpoint is
the one rule fan-out and delivery follow.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:50:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import app.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

REASON = "its API key was revoked"


def upgrade() -> None:
    keys = sa.table("api_keys", sa.column("id"), sa.column("revoked_at"))
    endpoints = sa.table(
        "webhook_endpoints",
        sa.column("id"),
        sa.column("api_key_id"),
        sa.column("disabled_at", app.models.UTCDateTime(timezone=True)),
        sa.column("disabled_reason"),
    )
    deliveries = sa.table(
        "webhook_deliveries", sa.column("endpoint_id"), sa.column("state"), sa.column("error")
    )
    revoked = sa.select(keys.c.id).where(keys.c.revoked_at.is_not(None))
    stopping = sa.select(endpoints.c.id).where(
        endpoints.c.disabled_at.is_(None), endpoints.c.api_key_id.in_(revoked)
    )
    op.execute(
        deliveries.update()
        .where(deliveries.c.state == "pending", deliveries.c.endpoint_id.in_(stopping))
        .values(state="cancelled", error=f"endpoint disabled: {REASON}")
    )
    op.execute(
        endpoints.update()
        .where(endpoints.c.disabled_at.is_(None), endpoints.c.api_key_id.in_(revoked))
        .values(disabled_at=datetime.now(UTC), disabled_reason=REASON)
    )


def downgrade() -> None:
    pass  # disabled endpoints stay disabled: registering again enables one
