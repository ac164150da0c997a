"""The roster store's tables (SQLAlchemy 2, typed).  Same schema on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from roster.states import FileKind, UploadState


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class District(Base):
    __tablename__ = "districts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    enrollment_source: Mapped[str] = mapped_column(String(16), default="batch")
    #: bumped by every applied upload; also the row the per-district upload lock is taken on
    roster_version: Mapped[int] = mapped_column(Integer, default=0)
    #: the Slack workspace (team id, T...) the district is served in; NULL means the one
    #: workspace the bot token belongs to (auth.test), which keeps single-workspace setups easy
    team_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class School(Base):
    __tablename__ = "schools"
    __table_args__ = (UniqueConstraint("district_id", "org_sis_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    org_sis_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))


class Person(Base):
    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("district_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No FOREIGN KEY to districts: people grow with the file like the link tables (see the
    # note above Membership; 1.9 s of a 1,000,000-row upload on PostgreSQL); districts are
    # never deleted, and the one writer sets the district of the upload it holds the lock of.
    district_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(254))
    #: lower-cased email; unique across ALL districts
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    grade: Mapped[str] = mapped_column(String(8), default="")
    district_sis_id: Mapped[str] = mapped_column(String(64), default="")
    state_sis_id: Mapped[str] = mapped_column(String(64), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


# Why memberships and enrollments have no FOREIGN KEY constraints.  They are the two tables
# that grow with the file (a 1,000,000-row users.csv writes ~1,000,000 enrollments), and a
# foreign key is checked row by row: on PostgreSQL each inserted row fires two referential
# triggers, which took 11 of the 16 seconds of writing that file.  Their integrity is kept
# by the one code path that writes them, roster.apply.apply_plan: it resolves every id from
# the district's own rows inside the upload's transaction, under the district's upload lock,
# and fails the whole upload if one is missing; people, classes and schools are never
# deleted (removal deactivates).  tests/test_integrity.py checks that no link row dangles after
# uploads, removals and ID changes, on SQLite and PostgreSQL.  people.district_id has none
# either (revision 0007): a person row is written only by that same path, with the district of
# the upload, and districts are never deleted; the same test checks it.


class Membership(Base):
    """A person at a school."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("person_id", "school_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No FOREIGN KEY constraints on the two link tables (see the note above Membership).
    person_id: Mapped[int] = mapped_column(Integer)
    school_id: Mapped[int] = mapped_column(Integer)


class SchoolClass(Base):
    __tablename__ = "classes"
    __table_args__ = (UniqueConstraint("district_id", "class_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"))
    class_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    grade: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("class_pk", "person_id"),
        Index("ix_enrollments_person", "person_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No FOREIGN KEY constraints on the two link tables (see the note above Membership).
    class_pk: Mapped[int] = mapped_column(Integer)
    person_id: Mapped[int] = mapped_column(Integer)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Demographics(Base):
    __tablename__ = "demographics"
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    values: Mapped[dict] = mapped_column(JSON, default=dict)


class Admin(Base):
    """A Slack user's access to one district."""

    __tablename__ = "admins"
    __table_args__ = (UniqueConstraint("district_id", "slack_user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    slack_user_id: Mapped[str] = mapped_column(String(32))
    system: Mapped[bool] = mapped_column(Boolean, default=False)
    enrollment: Mapped[bool] = mapped_column(Boolean, default=False)
    support: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the workspace of the Slack user granted (NULL: the district's workspace)
    team_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class LinkedChannel(Base):
    __tablename__ = "linked_channels"
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    #: the workspace the link was made from (NULL: linked by the CLI, the district's workspace)
    team_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


#: Interim: columns added to the models that no Alembic revision adds yet, for `Store` to add
#: to an existing database on start (roster.store.prepare_schema): (table, column).  The
#: schema is versioned by roster/migrations now; write a revision instead (docs/deploy.md
#: "Adding a table or a column").  The first four are in revision 0001 (a no-op here).
ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("districts", "team_id"),
    ("admins", "team_id"),
    ("linked_channels", "team_id"),
    ("uploads", "slack_message_ts"),
)


class AuditEntry(Base):
    """One change to a district's set-up (access, channels, schools): who did what, when.

    `actor` is a Slack user id (a change made in Slack) or `cli:LOGIN` (the operator's shell).
    """

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_district", "district_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64), default="")
    #: grant | revoke | link | unlink | school_add | school_rename
    action: Mapped[str] = mapped_column(String(32))
    #: whom or what it changed: a Slack user id, a channel id or an org_sis_id
    subject: Mapped[str] = mapped_column(String(64))
    before: Mapped[str] = mapped_column(Text, default="")
    after: Mapped[str] = mapped_column(Text, default="")


class Upload(Base):
    """One processed (or refused, or unfinished) file: the audit trail and triage record."""

    __tablename__ = "uploads"
    # One record per share of a Slack file: Slack keeps a file's id when it is shared again,
    # so a re-share (another message ts) is a new upload and a re-delivered event is not.
    __table_args__ = (UniqueConstraint("slack_file_id", "slack_message_ts"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default=FileKind.USERS)
    file_name: Mapped[str] = mapped_column(String(255), default="")
    file_sha256: Mapped[str] = mapped_column(String(64), default="")
    file_size: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(64), default="")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    #: received -> processing -> applied | checked | failed | held | abandoned (UploadState)
    state: Mapped[str] = mapped_column(String(16), default=UploadState.RECEIVED)
    status: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    slack_file_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: ts of the message that shared the file (the share's identity, with the file id)
    slack_message_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    slack_channel: Mapped[str] = mapped_column(String(32), default="")
    slack_thread_ts: Mapped[str] = mapped_column(String(32), default="")
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    rows: Mapped[dict] = mapped_column(JSON, default=dict)
    file_issues: Mapped[list] = mapped_column(JSON, default=list)
    issues: Mapped[list] = mapped_column(JSON, default=list)
    report: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: the uploaded bytes, kept until the upload is finished so an interrupted one can be rerun
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: the upload this record undid (`rosterbot undo`); NULL for a file
    undo_of: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: when the retention purge removed the report, issue values and bytes (roster/retention.py)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Change(Base):
    """One change an applied upload made to the roster (product.md "Changes file").

    Written in bulk in the upload's own transaction (roster/changes.py).  `entity`, `key`,
    `change`, `field`, `before`, `after`, `row_number` are what the changes file shows;
    `person_pk` / `class_pk` name the stored rows it touched (people and classes are never
    deleted, so they stay valid), which is what history and undo follow across ID changes.
    No FOREIGN KEY on them, for the reason given above Membership: this table grows with the file.

    A run of rows one upload created (people, classes or enrollments, inserted in one
    statement with consecutive ids) is one line: `entity` "person", "class" or "enrollment",
    `change` "created", `first_id` / `last_id` the ids of its first and last row in that table
    (the district's rows between them are exactly the run), `row_numbers` each row's spreadsheet
    row (little-endian int32, -1 for none, in id order); `key`, `person_pk`, `class_pk` blank.
    Reading the log (roster/undo.py) turns it back into one line per row, each key as it was
    then; a million created rows are then one short line, not a million indexed ones.
    """

    __tablename__ = "changes"
    __table_args__ = (
        Index("ix_changes_upload", "upload_id"),
        # partial: a line names a person, a class, or both (an enrollment)
        Index(
            "ix_changes_person",
            "person_pk",
            sqlite_where=text("person_pk IS NOT NULL"),
            postgresql_where=text("person_pk IS NOT NULL"),
        ),
        Index(
            "ix_changes_class",
            "class_pk",
            sqlite_where=text("class_pk IS NOT NULL"),
            postgresql_where=text("class_pk IS NOT NULL"),
        ),
        # the runs of created rows (a few lines per upload), which history searches by id
        Index(
            "ix_changes_run",
            "first_id",
            sqlite_where=text("first_id IS NOT NULL"),
            postgresql_where=text("first_id IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upload_id: Mapped[int] = mapped_column(Integer)
    district_id: Mapped[int] = mapped_column(Integer)
    #: school | staff | student | class | enrollment | demographics
    entity: Mapped[str] = mapped_column(String(16))
    #: org_sis_id, userId, classId or classId/userId (after the upload)
    key: Mapped[str] = mapped_column(String(140))
    #: created | updated | removed | reactivated
    change: Mapped[str] = mapped_column(String(16))
    field: Mapped[str] = mapped_column(String(32), default="")
    before: Mapped[str] = mapped_column(Text, default="")
    after: Mapped[str] = mapped_column(Text, default="")
    row_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    person_pk: Mapped[int | None] = mapped_column(Integer, nullable=True)
    class_pk: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: a run of created rows (see above): its first and last id, and its rows' row numbers
    first_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    row_numbers: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
