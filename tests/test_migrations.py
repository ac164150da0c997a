"""Schema migrations (roster/migrations, roster.schema): databases made by earlier releases
are upgraded keeping every row, on SQLite and PostgreSQL; the revisions match the models.

Earlier databases are built here from frozen table definitions, as those releases made them:
the first release (link tables with FOREIGN KEYs, no workspace columns, a unique key on
uploads.slack_file_id, no audit trail) and the last release before migrations (revision
0001's tables, no `alembic_version`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    inspect,
    select,
    text,
)

from roster import schema
from roster.models import Base
from roster.store import SchemaBehind, Store
from tests.builders import class_of
from tests.conftest import PG_OK, PG_URL
from tests.roster_helpers import active_enrollments, upload


def _first_release() -> MetaData:
    """The tables as the first release created them."""
    m = MetaData()
    Table(
        "districts",
        m,
        Column("id", Integer, primary_key=True),
        Column("key", String(64), unique=True, nullable=False),
        Column("name", String(255), nullable=False),
        Column("enrollment_source", String(16), nullable=False),
        Column("roster_version", Integer, nullable=False),
    )
    Table(
        "schools",
        m,
        Column("id", Integer, primary_key=True),
        Column("district_id", ForeignKey("districts.id"), nullable=False),
        Column("org_sis_id", String(64), nullable=False),
        Column("name", String(255), nullable=False),
        UniqueConstraint("district_id", "org_sis_id"),
    )
    Table(
        "people",
        m,
        Column("id", Integer, primary_key=True),
        Column("district_id", ForeignKey("districts.id"), nullable=False),
        Column("user_id", String(64), nullable=False),
        Column("email", String(254), nullable=False),
        Column("email_key", String(254), unique=True, nullable=False),
        Column("first_name", String(100), nullable=False),
        Column("last_name", String(100), nullable=False),
        Column("role", String(16), nullable=False),
        Column("grade", String(8), nullable=False),
        Column("district_sis_id", String(64), nullable=False),
        Column("state_sis_id", String(64), nullable=False),
        Column("active", Boolean, nullable=False),
        UniqueConstraint("district_id", "user_id"),
    )
    Table(
        "memberships",
        m,
        Column("id", Integer, primary_key=True),
        Column("person_id", ForeignKey("people.id"), nullable=False),
        Column("school_id", ForeignKey("schools.id"), nullable=False),
        UniqueConstraint("person_id", "school_id"),
    )
    Table(
        "classes",
        m,
        Column("id", Integer, primary_key=True),
        Column("district_id", ForeignKey("districts.id"), nullable=False),
        Column("school_id", ForeignKey("schools.id"), nullable=False),
        Column("class_id", String(64), nullable=False),
        Column("name", String(255), nullable=False),
        Column("grade", String(128), nullable=False),
        Column("display_name", Text, nullable=False),
        Column("subject", Text, nullable=False),
        Column("active", Boolean, nullable=False),
        UniqueConstraint("district_id", "class_id"),
    )
    Table(
        "enrollments",
        m,
        Column("id", Integer, primary_key=True),
        Column("class_pk", ForeignKey("classes.id"), nullable=False),
        Column("person_id", ForeignKey("people.id"), nullable=False),
        Column("is_primary", Boolean, nullable=False),
        Column("active", Boolean, nullable=False),
        UniqueConstraint("class_pk", "person_id"),
        Index("ix_enrollments_person", "person_id"),
    )
    Table(
        "demographics",
        m,
        Column("person_id", ForeignKey("people.id"), primary_key=True),
        Column("values", JSON, nullable=False),
    )
    Table(
        "admins",
        m,
        Column("id", Integer, primary_key=True),
        Column("district_id", ForeignKey("districts.id"), nullable=False),
        Column("slack_user_id", String(32), nullable=False),
        Column("system", Boolean, nullable=False),
        Column("enrollment", Boolean, nullable=False),
        Column("support", Boolean, nullable=False),
        UniqueConstraint("district_id", "slack_user_id"),
    )
    Table(
        "linked_channels",
        m,
        Column("channel_id", String(32), primary_key=True),
        Column("district_id", ForeignKey("districts.id"), nullable=False),
    )
    Table(
        "uploads",
        m,
        Column("id", Integer, primary_key=True),
        Column("district_id", ForeignKey("districts.id"), nullable=True),
        Column("kind", String(16), nullable=False),
        Column("file_name", String(255), nullable=False),
        Column("file_sha256", String(64), nullable=False),
        Column("file_size", Integer, nullable=False),
        Column("actor", String(64), nullable=False),
        Column("dry_run", Boolean, nullable=False),
        Column("state", String(16), nullable=False),
        Column("status", String(32), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("finished_at", DateTime(timezone=True), nullable=True),
        Column("slack_file_id", String(32), unique=True, nullable=True),
        Column("slack_channel", String(32), nullable=False),
        Column("slack_thread_ts", String(32), nullable=False),
        Column("counts", JSON, nullable=False),
        Column("rows", JSON, nullable=False),
        Column("file_issues", JSON, nullable=False),
        Column("issues", JSON, nullable=False),
        Column("report", LargeBinary, nullable=True),
        Column("payload", LargeBinary, nullable=True),
    )
    return m


def _before_migrations() -> MetaData:
    """The tables as the last release before migrations created them (= revision 0001)."""
    script = ScriptDirectory.from_config(schema.alembic_config())
    return script.get_revision("0001").module.baseline_metadata()


NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def _rows() -> dict[str, list[dict]]:
    """A small roster in every table both earlier schemas have."""
    person = dict(
        district_id=1,
        grade="",
        district_sis_id="",
        state_sis_id="",
        active=True,
    )
    upload_row = dict(
        district_id=1,
        kind="users",
        file_sha256="ab" * 32,
        file_size=120,
        dry_run=False,
        status="completed",
        created_at=NOW,
        finished_at=NOW,
        slack_channel="",
        slack_thread_ts="",
        counts={"students": {"created": 2}},
        rows={"total": 3},
        file_issues=[],
        issues=[{"row": 4, "code": "EMAIL_INVALID"}],
        report=b"row,code\n4,EMAIL_INVALID\n",
        payload=None,
    )
    return {
        "districts": [
            dict(id=1, key="d1", name="District One", enrollment_source="batch", roster_version=3)
        ],
        "schools": [
            dict(id=1, district_id=1, org_sis_id="0101", name="Lincoln Elementary"),
            dict(id=2, district_id=1, org_sis_id="0202", name="Washington Middle"),
        ],
        "people": [
            dict(
                id=1,
                user_id="T1",
                email="t1@example.org",
                email_key="t1@example.org",
                first_name="Maria",
                last_name="Lopez",
                role="teacher",
                **person,
            ),
            dict(
                id=2,
                user_id="S1",
                email="s1@example.org",
                email_key="s1@example.org",
                first_name="Ava",
                last_name="Nguyen",
                role="student",
                **{**person, "grade": "05"},
            ),
            dict(
                id=3,
                user_id="S2",
                email="s2@example.org",
                email_key="s2@example.org",
                first_name="Ben",
                last_name="Okafor",
                role="student",
                **{**person, "grade": "05", "active": False},
            ),
        ],
        "memberships": [
            dict(id=1, person_id=1, school_id=1),
            dict(id=2, person_id=2, school_id=1),
            dict(id=3, person_id=3, school_id=2),
        ],
        "classes": [
            dict(
                id=1,
                district_id=1,
                school_id=1,
                class_id="MATH5",
                name="Math 5",
                grade="05",
                display_name="",
                subject="math",
                active=True,
            )
        ],
        "enrollments": [
            dict(id=1, class_pk=1, person_id=1, is_primary=True, active=True),
            dict(id=2, class_pk=1, person_id=2, is_primary=False, active=True),
            dict(id=3, class_pk=1, person_id=3, is_primary=False, active=False),
        ],
        "demographics": [dict(person_id=2, values={"birthDate": "2015-03-04", "sex": "F"})],
        "admins": [
            dict(
                id=1,
                district_id=1,
                slack_user_id="U1",
                system=True,
                enrollment=True,
                support=False,
            )
        ],
        "linked_channels": [dict(channel_id="C1", district_id=1)],
        "uploads": [
            dict(
                id=1,
                file_name="users.csv",
                actor="U1",
                state="applied",
                slack_file_id="F1",
                **{**upload_row, "slack_channel": "C1", "slack_thread_ts": "111.000001"},
            ),
            dict(
                id=2,
                file_name="users-fixed.csv",
                actor="cli:alice",
                state="checked",
                slack_file_id=None,
                **{**upload_row, "dry_run": True},
            ),
        ],
    }


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request, tmp_path) -> Iterator[str]:
    """The URL of an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'earlier.sqlite3'}"
        return
    if not PG_OK:
        pytest.skip("PostgreSQL not configured (set ROSTERBOT_TEST_POSTGRES_URL)")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def _make_earlier(url: str, meta: MetaData) -> dict[str, list[tuple]]:
    """Create `meta`'s tables with the rows of _rows(); returns each table's rows as read."""
    engine = create_engine(url)
    meta.create_all(engine)
    with engine.begin() as conn:
        for name, rows in _rows().items():
            if name == "uploads" and "slack_message_ts" in meta.tables[name].c:
                # that release recorded the share's message (here: the thread's)
                rows = [{**r, "slack_message_ts": r["slack_thread_ts"] or None} for r in rows]
            conn.execute(meta.tables[name].insert(), rows)
        if engine.dialect.name == "postgresql":  # ids were given: move the sequences on
            for name, table in meta.tables.items():
                if "id" in table.c:
                    conn.execute(
                        text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), 100)")
                    )
    kept = _read(engine, meta)
    engine.dispose()
    return kept


def _read(engine, meta: MetaData) -> dict[str, list[tuple]]:
    """Every row of `meta`'s tables (its columns only), in primary-key order."""
    with engine.connect() as conn:
        return {
            name: [
                tuple(r)
                for r in conn.execute(
                    select(*table.c).order_by(*(table.primary_key.columns or table.c))
                )
            ]
            for name, table in meta.tables.items()
        }


def _interim() -> tuple[set[str], set[tuple[str, str]]]:
    """Tables and columns of the models that no revision makes yet: the start-up adds them
    (models.ADDED_COLUMNS, create_all) until a revision does (docs/deploy.md)."""
    engine = create_engine("sqlite://")
    schema.upgrade(engine, from_revisions=True)
    found = inspect(engine)
    tables = set(found.get_table_names())
    columns = {(t, c) for t in tables for c in (col["name"] for col in found.get_columns(t))}
    engine.dispose()
    models = Base.metadata
    return (
        set(models.tables) - tables,
        {(t.name, c.name) for t in models.tables.values() for c in t.c} - columns,
    )


def _about(diff) -> tuple[str, set[str]]:
    """The table and the columns one compare_metadata difference is about."""
    diff = diff[0] if isinstance(diff, list) else diff
    kind, obj = diff[0], diff[1]
    if kind.endswith("_table"):
        return obj.name, set()
    if kind.endswith("_column"):
        return diff[2], {diff[3].name}
    if kind.startswith("modify_"):
        return diff[2], {diff[3]}
    return obj.table.name, {c.name for c in obj.columns}


def _model_differences(engine) -> list:
    """What the database and the models (and the Slack install tables) disagree on, leaving
    out what models.ADDED_COLUMNS and tables without a revision yet add at start-up."""
    tables, columns = _interim()
    with engine.connect() as conn:
        found = compare_metadata(MigrationContext.configure(conn), schema.target_metadata())
    return [
        d
        for d in found
        if (about := _about(d))[0] not in tables
        and not any((about[0], c) in columns for c in about[1])
    ]


@pytest.mark.parametrize("earlier", ["first_release", "before_migrations"])
def test_an_earlier_database_is_upgraded_keeping_every_row(backend, earlier):
    meta = _first_release() if earlier == "first_release" else _before_migrations()
    before = _make_earlier(backend, meta)
    engine = create_engine(backend)
    assert bool(inspect(engine).get_foreign_keys("enrollments")) == (earlier == "first_release")
    assert inspect(engine).get_foreign_keys("people") != []  # what 0007 drops
    engine.dispose()

    store = Store(backend)  # the embedded default upgrades itself on start
    try:
        assert schema.current(store.engine) == schema.head()
        assert _read(store.engine, meta) == before  # every row, every value
        found = inspect(store.engine)
        # the link tables lost their foreign keys, and people the one to districts (0007,
        # SQLite's copy of the table kept demographics' rows and its key to people); the
        # rest kept theirs
        assert found.get_foreign_keys("memberships") == []
        assert found.get_foreign_keys("enrollments") == []
        assert found.get_foreign_keys("people") == []
        assert [k["referred_table"] for k in found.get_foreign_keys("demographics")] == ["people"]
        assert found.get_foreign_keys("classes") != []
        assert "ix_enrollments_person" in {i["name"] for i in found.get_indexes("enrollments")}
        assert _model_differences(store.engine) == []

        # what the upgrade added works: workspaces, re-shares, the audit trail
        assert store.get_district("d1").team_id is None
        assert store.grant("d1", "U1").can_upload
        assert store.claim_slack_file("F1", "d1", "C1", "111.000001", "U1") is None
        assert store.claim_slack_file("F1", "d1", "C1", "2.2", "U1", message_ts="2.2") > 2
        store.rename_school("d1", "0202", "Washington Middle School", actor="cli:test")
        assert store.audit_trail("d1")[0].action == "school_rename"
        # and an upload applies on the kept roster (T1 and S1 known, the link tables written)
        done = upload(store, class_of(3))
        assert done.applied and done.issues == []
        assert active_enrollments(store, "MATH5") == {
            ("MATH5", user) for user in ("T1", "S1", "S2", "S3")
        }
    finally:
        store.dispose()

    again = Store(backend)  # idempotent: a second start changes nothing
    try:
        assert schema.current(again.engine) == schema.head()
        assert ("MATH5", "S1") in active_enrollments(again, "MATH5")
    finally:
        again.dispose()


def test_head_is_the_newest_revision():
    assert schema.head() == ScriptDirectory.from_config(schema.alembic_config()).get_current_head()


def test_a_fresh_database_matches_the_models(store):
    assert schema.current(store.engine) == schema.head()
    assert _model_differences(store.engine) == []


def test_the_revisions_from_nothing_make_the_same_schema(backend):
    """A fresh database is created in one step; the revisions run from an empty one give
    the same schema (what an earlier database is upgraded through)."""
    engine = create_engine(backend)
    assert schema.upgrade(engine, from_revisions=True) == (None, schema.head())
    assert _model_differences(engine) == []
    engine.dispose()


def test_the_revisions_alone_make_the_models_schema():
    """Every table and column of the models is made by a revision, except those still added
    the interim way (listed here: give them a revision, docs/deploy.md)."""
    tables, columns = _interim()
    assert (tables, columns) == (set(), set()), (
        f"tables {sorted(tables)} and columns {sorted(columns)} of roster/models.py have no "
        "Alembic revision: write one (idempotent, see docs/deploy.md 'Adding a table or a "
        "column') and drop them from models.ADDED_COLUMNS"
    )


def test_a_database_behind_the_code_is_refused_without_auto_upgrade(backend, monkeypatch):
    _make_earlier(backend, _before_migrations())
    monkeypatch.setenv("ROSTERBOT_AUTO_UPGRADE", "0")
    with pytest.raises(SchemaBehind, match="rosterbot db upgrade"):
        Store(backend)
    monkeypatch.delenv("ROSTERBOT_AUTO_UPGRADE")
    before, now = schema.upgrade(create_engine(backend))
    assert (before, now) == (None, schema.head())
    monkeypatch.setenv("ROSTERBOT_AUTO_UPGRADE", "0")
    Store(backend).dispose()  # at head: opens


def test_db_upgrade_verb(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    _make_earlier(url, _first_release())
    run = [sys.executable, "-m", "bot.cli", "--db", url, "db", "upgrade"]
    env = {**os.environ, "ROSTERBOT_AUTO_UPGRADE": "0"}
    done = subprocess.run(run, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert f"upgraded from none to {schema.head()}" in done.stdout
    engine = create_engine(url)
    assert inspect(engine).get_foreign_keys("memberships") == []
    engine.dispose()
    done = subprocess.run(run, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"already at {schema.head()}" in done.stdout
