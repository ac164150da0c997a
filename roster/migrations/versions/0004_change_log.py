"""The change log (issue 15): one row per change an applied upload made, and `uploads.undo_of`.

`changes` is what the changes file, `rosterbot history` and `rosterbot undo` read
(roster/changes.py, roster/undo.py).  Idempotent: databases started between the change log
and this revision already have the table and the column (they were created on start then).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    found = sa.inspect(op.get_bind())
    if "undo_of" not in {c["name"] for c in found.get_columns("uploads")}:
        op.add_column("uploads", sa.Column("undo_of", sa.Integer, nullable=True))
    if found.has_table("changes"):
        return
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("upload_id", sa.Integer, nullable=False),
        sa.Column("district_id", sa.Integer, nullable=False),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("key", sa.String(140), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("before", sa.Text, nullable=False),
        sa.Column("after", sa.Text, nullable=False),
        sa.Column("row_number", sa.Integer, nullable=True),
        sa.Column("person_pk", sa.Integer, nullable=True),
        sa.Column("class_pk", sa.Integer, nullable=True),
    )
    op.create_index("ix_changes_upload", "changes", ["upload_id"])
    for name, column in (("ix_changes_person", "person_pk"), ("ix_changes_class", "class_pk")):
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(name, "changes", [column], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    op.drop_table("changes")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("undo_of")
