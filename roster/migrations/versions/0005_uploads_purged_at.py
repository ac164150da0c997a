"""Retention: `uploads.purged_at`, when the purge removed an upload's report, issue values
and file bytes (roster/retention.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("uploads")}
    if "purged_at" not in columns:  # idempotent: a start-up of this branch may have added it
        op.add_column("uploads", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("purged_at")
