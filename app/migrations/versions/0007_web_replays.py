"""web replays: replay summaries, blocks, stream cursors, recording metadata, signing keys, key origins

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 17:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def _recording_fk() -> sa.Column:
    return sa.Column(
        "recording_id", sa.String(32), sa.ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )


def _project_fk(index: bool = False) -> sa.Column:
    return sa.Column(
        "project_id",
        sa.String(32),
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
        index=index,
    )


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("allowed_origins", sa.String(2000), nullable=False, server_default=""))
    op.create_table(
        "replay_summaries",
        _recording_fk(),
        _project_fk(),
        sa.Column("next_sequence", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("blocks", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("first_timestamp", sa.BigInteger(), nullable=True),
        sa.Column("last_timestamp", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_ingest_at", _TS, nullable=False),
    )
    op.create_index("ix_replay_summaries_project_created", "replay_summaries", ["project_id", "created_at"])
    op.create_index("ix_replay_summaries_last_ingest_at", "replay_summaries", ["last_ingest_at"])
    op.create_table(
        "replay_blocks",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column(
            "recording_id", sa.String(32), sa.ForeignKey("recordings.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("first_sequence", sa.BigInteger(), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("first_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("last_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("raw_bytes", sa.BigInteger(), nullable=False),
        sa.Column("object_key", sa.String(500), nullable=False),
        sa.Column("batch_key", sa.String(200), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("recording_id", "seq", name="uq_replay_blocks_recording_seq"),
        sa.UniqueConstraint("recording_id", "batch_key", name="uq_replay_blocks_recording_batch"),
    )
    op.create_table(
        "replay_streams",
        _recording_fk(),
        sa.Column("stream_id", sa.String(64), primary_key=True),
        sa.Column("frames", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "recording_meta",
        _recording_fk(),
        sa.Column("key", sa.String(200), primary_key=True),
        _project_fk(),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("match", sa.String(500), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_recording_meta_lookup", "recording_meta", ["project_id", "key", "match"])
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        _project_fk(index=True),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("retired_at", _TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_index("ix_recording_meta_lookup", table_name="recording_meta")
    op.drop_table("recording_meta")
    op.drop_table("replay_streams")
    op.drop_table("replay_blocks")
    op.drop_index("ix_replay_summaries_last_ingest_at", table_name="replay_summaries")
    op.drop_index("ix_replay_summaries_project_created", table_name="replay_summaries")
    op.drop_table("replay_summaries")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("allowed_origins")
