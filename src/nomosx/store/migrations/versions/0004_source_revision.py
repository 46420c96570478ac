"""sources.revision: the library revision that last wrote each source, for incremental
index updates (everything changed since revision N)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(
            sa.Column("revision", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    # the sources already stored were all written at or before the current revision
    op.execute(
        "UPDATE sources SET revision = "
        "COALESCE((SELECT revision FROM library_state WHERE id = 1), 0)"
    )
    with op.batch_alter_table("sources") as batch:
        batch.create_index("ix_sources_revision", ["revision", "id"])


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_index("ix_sources_revision")
        batch.drop_column("revision")
