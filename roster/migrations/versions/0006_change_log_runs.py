"""The change log stores a run of created rows as one line (issue 15's cost): `changes.first_id`,
`changes.last_id`, `changes.row_numbers` and the partial index `ix_changes_run`.

Lines written before stay as they are (one per change, first_id NULL): history and undo read
both (roster/undo.py).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("changes")}
    for name, kind in (
        ("first_id", sa.Integer),
        ("last_id", sa.Integer),
        ("row_numbers", sa.LargeBinary),
    ):
        if name not in columns:
            op.add_column("changes", sa.Column(name, kind, nullable=True))
    where = sa.text("first_id IS NOT NULL")
    op.create_index(
        "ix_changes_run",
        "changes",
        ["first_id"],
        sqlite_where=where,
        postgresql_where=where,
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_changes_run", "changes")
    with op.batch_alter_table("changes") as batch:
        for name in ("row_numbers", "last_id", "first_id"):
            batch.drop_column(name)
