"""posthog dialect: computed replay facts, views, sharing, playlists, the project's public token

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 10:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_COUNTS = (
    "click_count",
    "keypress_count",
    "mouse_activity_count",
    "console_log_count",
    "console_warn_count",
    "console_error_count",
)


def _recording_fk(primary_key: bool = True, index: bool = False) -> sa.Column:
    return sa.Column(
        "recording_id",
        sa.String(32),
        sa.ForeignKey("recordings.id", ondelete="CASCADE"),
        primary_key=primary_key,
        index=index,
    )


def _project_fk() -> sa.Column:
    return sa.Column(
        "project_id",
        sa.String(32),
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )


def upgrade() -> None:
    with op.batch_alter_table("replay_summaries", schema=None) as batch_op:
        for name in _COUNTS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("active_ms", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("activity", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("pages", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("start_url", sa.String(2000), nullable=True))
        batch_op.add_column(sa.Column("start_url_at", sa.BigInteger(), nullable=True))
        # Replays stored so far get their facts from their blocks at the next `meetrec migrate` or `up`.
        batch_op.add_column(
            sa.Column("facts_complete", sa.Boolean(), nullable=False, server_default=sa.text("false"))
        )
    # The list's order (newest first, ties by id) read from the index alone, even at deep offsets.
    op.drop_index("ix_replay_summaries_project_created", table_name="replay_summaries")
    op.create_index(
        "ix_replay_summaries_project_created_id",
        "replay_summaries",
        ["project_id", "created_at", "recording_id"],
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_token_sealed", sa.Text(), nullable=True))
    op.create_table(
        "recording_views",
        _recording_fk(),
        sa.Column(
            "api_key_id", sa.String(32), sa.ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("viewed_at", _TS, nullable=False),
    )
    op.create_table(
        "sharing_configurations",
        _recording_fk(),
        _project_fk(),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("token_sealed", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "playlists",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        _project_fk(),
        sa.Column("short_id", sa.String(16), nullable=False, unique=True),
        sa.Column("name", sa.String(400), nullable=True),
        sa.Column("derived_name", sa.String(400), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(32), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_modified_at", _TS, nullable=False),
    )
    op.create_table(
        "playlist_items",
        sa.Column(
            "playlist_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("playlists.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        _recording_fk(index=True),
        sa.Column("created_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("playlist_items")
    op.drop_table("playlists")
    op.drop_table("sharing_configurations")
    op.drop_table("recording_views")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("public_token_sealed")
    op.drop_index("ix_replay_summaries_project_created_id", table_name="replay_summaries")
    op.create_index("ix_replay_summaries_project_created", "replay_summaries", ["project_id", "created_at"])
    with op.batch_alter_table("replay_summaries", schema=None) as batch_op:
        for name in (
            "facts_complete",
            "start_url_at",
            "start_url",
            "pages",
            "activity",
            "active_ms",
            *_COUNTS,
        ):
            batch_op.drop_column(name)
