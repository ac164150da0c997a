"""memberships and enrollments without FOREIGN KEY constraints, on databases that have them.

Releases before "no FOREIGN KEY on the link tables" created memberships (person_id ->
people, school_id -> schools) and enrollments (class_pk -> classes, person_id -> people)
with foreign keys; a database made then still checks them row by row on every upload (on
PostgreSQL, 11 of the 16 seconds of writing a 1,000,000-row file).  roster/models.py says
why they are not needed.  A database made later has none, and this revision changes nothing.
The rows, the unique keys and ix_enrollments_person stay.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LINK_TABLES = ("memberships", "enrollments")


def _without_foreign_keys(name: str) -> sa.Table:
    """The link table as 0001 defines it (no foreign keys), for SQLite's table copy."""
    m = sa.MetaData()
    if name == "memberships":
        return sa.Table(
            "memberships",
            m,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("person_id", sa.Integer, nullable=False),
            sa.Column("school_id", sa.Integer, nullable=False),
            sa.UniqueConstraint("person_id", "school_id"),
        )
    return sa.Table(
        "enrollments",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("class_pk", sa.Integer, nullable=False),
        sa.Column("person_id", sa.Integer, nullable=False),
        sa.Column("is_primary", sa.Boolean, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.UniqueConstraint("class_pk", "person_id"),
        sa.Index("ix_enrollments_person", "person_id"),
    )


def upgrade() -> None:
    bind = op.get_bind()
    found = sa.inspect(bind)
    for table in LINK_TABLES:
        keys = found.get_foreign_keys(table)
        if not keys:
            continue
        if bind.dialect.name == "sqlite":
            # SQLite's foreign keys have no names and cannot be dropped: copy the table.
            with op.batch_alter_table(
                table, recreate="always", copy_from=_without_foreign_keys(table)
            ):
                pass
        else:
            for key in keys:
                op.drop_constraint(key["name"], table, type_="foreignkey")


def downgrade() -> None:
    # The foreign keys are not put back: nothing in the code relies on them.
    pass
