"""segments and capture leases

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 00:12:16.526554
"""

import sqlalchemy as sa
from alembic import op

import app.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("recording_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("object_key", sa.String(length=500), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("created_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recording_id", "seq", name="uq_segments_recording_seq"),
    )
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ingest", sa.String(length=8), server_default="pull", nullable=False))
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", app.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("stop_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("reconnects", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("gaps", sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column("poster_key", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("poster_key")
        batch_op.drop_column("gaps")
        batch_op.drop_column("reconnects")
        batch_op.drop_column("stop_reason")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_owner")
        batch_op.drop_column("ingest")

    op.drop_table("segments")
