"""retention exemptions (persist, legal hold), reconciler capture attempts, the link issuance log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 01:32:11.362684
"""

import sqlalchemy as sa
from alembic import op

import app.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC = app.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "link_issuances",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("recording_id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("api_key_id", sa.String(length=32), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("issued_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_link_issuances_project_id", "link_issuances", ["project_id"])
    op.create_index("ix_link_issuances_recording_issued", "link_issuances", ["recording_id", "issued_at"])

    # Server defaults, so rows that exist already get a value on every backend.
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("capture_attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("persist", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("legal_hold", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("legal_hold")
        batch_op.drop_column("persist")
        batch_op.drop_column("capture_attempts")

    op.drop_table("link_issuances")
