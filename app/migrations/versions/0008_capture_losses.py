"""reliability: lost captures counted apart from capture runs

`capture_attempts` now counts every capture job that recorded a recording (a handover or a resume
after a crash is a second one); `capture_losses` counts the captures the reconciler found lost and
resumed, which is what its give-up limit is about.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 00:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("capture_losses", sa.Integer(), server_default="0", nullable=False))
    # Until now capture_attempts counted only the reconciler's resumes.
    op.execute("UPDATE recordings SET capture_losses = capture_attempts")


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("capture_losses")
