"""users, api_keys, dead_letters; the owner of briefs and runs; the user of LLM calls

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("limits", JsonType, nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("brief_id", sa.String(36), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.String(36)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dead_letters_brief_id", "dead_letters", ["brief_id"])
    op.create_index("ix_dead_letters_created_at", "dead_letters", ["created_at"])
    with op.batch_alter_table("briefs") as batch:
        batch.add_column(sa.Column("owner_id", sa.String(36)))
        batch.create_index("ix_briefs_owner_id", ["owner_id"])
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.add_column(sa.Column("owner_id", sa.String(36)))
    with op.batch_alter_table("llm_calls") as batch:
        batch.add_column(sa.Column("user_id", sa.String(36)))
        batch.create_index("ix_llm_calls_user_created", ["user_id", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("llm_calls") as batch:
        batch.drop_index("ix_llm_calls_user_created")
        batch.drop_column("user_id")
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.drop_column("owner_id")
    with op.batch_alter_table("briefs") as batch:
        batch.drop_index("ix_briefs_owner_id")
        batch.drop_column("owner_id")
    op.drop_table("dead_letters")
    op.drop_table("api_keys")
    op.drop_table("users")
