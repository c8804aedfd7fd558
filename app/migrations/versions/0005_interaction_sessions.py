"""interaction sessions: description, event store, video timeline and frame grabs

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 07:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.alter_column("media_source", existing_type=sa.String(length=2000), nullable=True)
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("event_count", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("timeline", sa.JSON(), nullable=True))

    op.create_table(
        "session_events",
        sa.Column(
            "pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("recording_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("screenshot_key", sa.String(length=300), nullable=True),
        sa.Column("wants_frame", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("recording_id", "event_id", name="uq_session_events_recording_event"),
    )
    op.create_index("ix_session_events_recording_ts", "session_events", ["recording_id", "ts", "pk"])


def downgrade() -> None:
    op.drop_index("ix_session_events_recording_ts", table_name="session_events")
    op.drop_table("session_events")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("timeline")
        batch_op.drop_column("event_count")
        batch_op.drop_column("description")
        batch_op.alter_column("media_source", existing_type=sa.String(length=2000), nullable=False)
