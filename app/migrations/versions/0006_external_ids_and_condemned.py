"""recording core: project-scoped external ids, deletion claims

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("condemned_at", sa.DateTime(timezone=True), nullable=True))
    # Every existing recording is known to its clients by its own id.
    op.execute("UPDATE recordings SET external_id = id")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.alter_column("external_id", existing_type=sa.String(length=64), nullable=False)
    # Unique among live recordings: a deleted one frees its id for the client to use again.
    op.create_index(
        "uq_recordings_project_external_id",
        "recordings",
        ["project_id", "external_id"],
        unique=True,
        sqlite_where=sa.text("state != 'deleted'"),
        postgresql_where=sa.text("state != 'deleted'"),
    )


def downgrade() -> None:
    op.drop_index("uq_recordings_project_external_id", table_name="recordings")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("condemned_at")
        batch_op.drop_column("external_id")
