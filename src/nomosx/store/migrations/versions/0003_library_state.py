"""library_state: a revision counter bumped by every change to the library; runs by brief

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "library_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("sources", sa.Integer(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_library_state_single_row"),
    )
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.create_index("ix_pipeline_runs_brief_id", ["brief_id"])
    op.execute(
        "INSERT INTO library_state (id, revision, sources) "
        "SELECT 1, CASE WHEN COUNT(*) > 0 THEN 1 ELSE 0 END, COUNT(*) FROM sources"
    )


def downgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.drop_index("ix_pipeline_runs_brief_id")
    op.drop_table("library_state")
