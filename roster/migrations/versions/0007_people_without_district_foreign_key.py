"""people without the FOREIGN KEY from district_id to districts, on databases that have it.

Every person an upload creates fired PostgreSQL's referential trigger on `districts`: 1.9 of
the 5.3 seconds the server took to COPY the 322,000 people of the 1,000,000-row benchmark
file (bench/README.md, "Round 6").  roster/models.py says why it is not needed (the note
above Membership).  The rows, the primary key and both unique keys stay; `demographics` keeps
its foreign key to `people`.

SQLite cannot drop a foreign key: the table is copied without it, which roster.schema allows
by switching SQLite's foreign-key enforcement off around the upgrade (and checking every
foreign key before it commits).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _people() -> sa.Table:
    """people as 0001 defines it, without the foreign key (for SQLite's table copy)."""
    return sa.Table(
        "people",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("district_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("email_key", sa.String(254), nullable=False, unique=True),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("grade", sa.String(8), nullable=False),
        sa.Column("district_sis_id", sa.String(64), nullable=False),
        sa.Column("state_sis_id", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.UniqueConstraint("district_id", "user_id"),
    )


def upgrade() -> None:
    bind = op.get_bind()
    keys = [
        k for k in sa.inspect(bind).get_foreign_keys("people") if k["referred_table"] == "districts"
    ]
    if not keys:
        return
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table("people", recreate="always", copy_from=_people()):
            pass
    else:
        for key in keys:
            op.drop_constraint(key["name"], "people", type_="foreignkey")


def downgrade() -> None:
    # The foreign key is not put back: nothing in the code relies on it.
    pass
