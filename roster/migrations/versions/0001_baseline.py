"""The roster schema as of the first release with migrations.

Reached from an empty database (every table created) or from a database made by any earlier
release, which had no migrations and no `alembic_version` table: the tables it lacks are
created, the columns later releases added are added (the former `models.ADDED_COLUMNS`), and
the old one-column unique key on `uploads.slack_file_id` (a re-shared file looked like a
re-delivery) becomes the (file id, message ts) key.  Every row is kept.

The tables are written out here, not taken from roster.models: a revision is a fixed point,
the models move on.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: Columns earlier releases lacked, added to such a database by this revision: (table, column).
_ADDED_BEFORE_MIGRATIONS = (
    ("districts", "team_id"),
    ("admins", "team_id"),
    ("linked_channels", "team_id"),
    ("uploads", "slack_message_ts"),
)


def baseline_metadata() -> sa.MetaData:
    """The schema this revision creates (and the models held when it was written)."""
    m = sa.MetaData()
    fk = sa.ForeignKey
    sa.Table(
        "districts",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("enrollment_source", sa.String(16), nullable=False),
        sa.Column("roster_version", sa.Integer, nullable=False),
        sa.Column("team_id", sa.String(32), nullable=True),
    )
    sa.Table(
        "schools",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("district_id", sa.Integer, fk("districts.id"), nullable=False),
        sa.Column("org_sis_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.UniqueConstraint("district_id", "org_sis_id"),
    )
    sa.Table(
        "people",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("district_id", sa.Integer, fk("districts.id"), nullable=False),
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
    sa.Table(
        "memberships",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.Integer, nullable=False),
        sa.Column("school_id", sa.Integer, nullable=False),
        sa.UniqueConstraint("person_id", "school_id"),
    )
    sa.Table(
        "classes",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("district_id", sa.Integer, fk("districts.id"), nullable=False),
        sa.Column("school_id", sa.Integer, fk("schools.id"), nullable=False),
        sa.Column("class_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("grade", sa.String(128), nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.UniqueConstraint("district_id", "class_id"),
    )
    sa.Table(
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
    sa.Table(
        "demographics",
        m,
        sa.Column("person_id", sa.Integer, fk("people.id"), primary_key=True),
        sa.Column("values", sa.JSON, nullable=False),
    )
    sa.Table(
        "admins",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("district_id", sa.Integer, fk("districts.id"), nullable=False),
        sa.Column("slack_user_id", sa.String(32), nullable=False),
        sa.Column("system", sa.Boolean, nullable=False),
        sa.Column("enrollment", sa.Boolean, nullable=False),
        sa.Column("support", sa.Boolean, nullable=False),
        sa.Column("team_id", sa.String(32), nullable=True),
        sa.UniqueConstraint("district_id", "slack_user_id"),
    )
    sa.Table(
        "linked_channels",
        m,
        sa.Column("channel_id", sa.String(32), primary_key=True),
        sa.Column("district_id", sa.Integer, fk("districts.id"), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=True),
    )
    sa.Table(
        "audit_entries",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("district_id", sa.Integer, fk("districts.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("before", sa.Text, nullable=False),
        sa.Column("after", sa.Text, nullable=False),
        sa.Index("ix_audit_entries_district", "district_id", "id"),
    )
    sa.Table(
        "uploads",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("district_id", sa.Integer, fk("districts.id"), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("file_size", sa.Integer, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("slack_file_id", sa.String(32), nullable=True),
        sa.Column("slack_message_ts", sa.String(32), nullable=True),
        sa.Column("slack_channel", sa.String(32), nullable=False),
        sa.Column("slack_thread_ts", sa.String(32), nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("rows", sa.JSON, nullable=False),
        sa.Column("file_issues", sa.JSON, nullable=False),
        sa.Column("issues", sa.JSON, nullable=False),
        sa.Column("report", sa.LargeBinary, nullable=True),
        sa.Column("payload", sa.LargeBinary, nullable=True),
        sa.UniqueConstraint("slack_file_id", "slack_message_ts"),
    )
    return m


def upgrade() -> None:
    bind = op.get_bind()
    baseline = baseline_metadata()
    found = sa.inspect(bind)
    existing = set(found.get_table_names())
    # An empty database: every table.  An earlier release's: the tables it lacks.
    baseline.create_all(bind, checkfirst=True)
    for table, column in _ADDED_BEFORE_MIGRATIONS:
        if table in existing and column not in {c["name"] for c in found.get_columns(table)}:
            # every column added then is nullable (a new column of existing rows)
            op.add_column(table, sa.Column(column, baseline.tables[table].c[column].type))
            if (table, column) == ("uploads", "slack_message_ts"):
                # Each earlier record was the one share of its file: its message is its thread.
                op.execute(
                    "UPDATE uploads SET slack_message_ts = slack_thread_ts "
                    "WHERE slack_file_id IS NOT NULL AND slack_message_ts IS NULL"
                )
    if "uploads" in existing:
        old_unique = [
            u["name"]
            for u in found.get_unique_constraints("uploads")
            if list(u["column_names"]) == ["slack_file_id"]
        ]
        if old_unique and bind.dialect.name == "sqlite":
            # SQLite cannot drop a constraint: copy the table into the baseline's definition.
            with op.batch_alter_table(
                "uploads", recreate="always", copy_from=baseline.tables["uploads"]
            ):
                pass
        else:
            for name in old_unique:
                op.drop_constraint(name, "uploads", type_="unique")
            if old_unique:
                op.create_unique_constraint(
                    "uq_uploads_slack_share", "uploads", ["slack_file_id", "slack_message_ts"]
                )


def downgrade() -> None:
    raise NotImplementedError("the baseline is not downgraded: restore the backup taken before")
