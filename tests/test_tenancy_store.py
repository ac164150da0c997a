"""Tenancy in the store: a database made by the earlier version opens and gains the workspace
columns and the per-share dedup; `district create --team` (on SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    inspect,
    text,
)

from roster.store import Store
from tests.conftest import PG_OK, PG_URL
from tests.test_cli import cli
from tests.test_migrations import _first_release as first_release_schema


def _earlier_schema() -> MetaData:
    """The tables as the version before tenancy created them (the first release's schema,
    which tests/test_migrations.py also upgrades)."""
    return first_release_schema()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def earlier_db(request, tmp_path) -> Iterator[str]:
    """The URL of a database holding one district, grant, link and Slack upload, made with
    the earlier schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'earlier.sqlite3'}"
        drop = None
    else:
        if not PG_OK:
            pytest.skip("PostgreSQL not configured (set ROSTERBOT_TEST_POSTGRES_URL)")
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"

        def drop() -> None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    engine = create_engine(url)
    earlier = _earlier_schema()
    earlier.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO districts (id, key, name, enrollment_source, roster_version) "
                "VALUES (1, 'd1', 'District One', 'batch', 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO admins (district_id, slack_user_id, system, enrollment, support) "
                "VALUES (1, 'U1', true, true, false)"
            )
        )
        conn.execute(text("INSERT INTO linked_channels VALUES ('C1', 1)"))
        conn.execute(
            earlier.tables["uploads"]
            .insert()
            .values(
                district_id=1,
                kind="users",
                file_name="users.csv",
                file_sha256="",
                file_size=0,
                actor="U1",
                dry_run=True,
                state="checked",
                status="completed",
                created_at=datetime.now(timezone.utc),
                slack_file_id="F1",
                slack_channel="C1",
                slack_thread_ts="111.000001",
                counts={},
                rows={},
                file_issues=[],
                issues=[],
            )
        )
    engine.dispose()
    try:
        yield url
    finally:
        if drop is not None:
            drop()


def test_a_database_of_the_earlier_version_opens_and_takes_re_shares(earlier_db):
    store = Store(earlier_db)
    try:
        assert store.get_district("d1").team_id is None  # the bot token's workspace
        assert store.grant("d1", "U1").can_upload
        assert store.channel_link("C1")[0].key == "d1"
        # the earlier record is the share of message 111.000001: a re-delivery of it is not new
        assert store.claim_slack_file("F1", "d1", "C1", "111.000001", "U1", "users.csv") is None
        # the same file shared again (another message) is a new upload
        again = store.claim_slack_file(
            "F1", "d1", "C1", "222.000001", "U1", "users.csv", message_ts="222.000001"
        )
        assert again is not None
        assert store.find_upload_by_slack_file("F1").id == again
        assert store.upload(again).slack_message_ts == "222.000001"
        # the tenancy columns work
        store.link_channel("d1", "C2", team_id="T0HOME")
        assert store.channel_link("C2")[1] == "T0HOME"
    finally:
        store.dispose()

    reopened = Store(earlier_db)  # the upgrade is idempotent
    try:
        columns = {c["name"] for c in inspect(reopened.engine).get_columns("uploads")}
        assert "slack_message_ts" in columns
        assert len(reopened.recent_uploads("d1")) == 2
        assert (
            reopened.claim_slack_file("F1", "d1", "C1", "222.000001", "U1", message_ts="222.000001")
            is None
        )
    finally:
        reopened.dispose()


def test_a_share_is_claimed_once_per_message(store):
    store.create_district("d1", "District One")
    first = store.claim_slack_file("F1", "d1", "C1", "1.1", "U1", message_ts="1.1")
    assert first is not None
    assert store.claim_slack_file("F1", "d1", "C1", "1.1", "U1", message_ts="1.1") is None
    # re-shared as a reply in the first share's thread: new message, same thread
    second = store.claim_slack_file("F1", "d1", "C1", "1.1", "U1", message_ts="1.2")
    assert second not in (None, first)


def test_district_create_takes_the_workspace(tmp_path):
    done = cli(tmp_path, "district", "create", "d1", "--name", "One")
    assert done.returncode == 0, done.stderr
    assert "served in the Slack workspace of the bot token" in done.stdout
    done = cli(tmp_path, "district", "create", "d2", "--name", "Two", "--team", "T0ABC123")
    assert done.returncode == 0, done.stderr
    assert "served in Slack workspace T0ABC123" in done.stdout
    done = cli(tmp_path, "district", "create", "d3", "--name", "Three", "--team", "not a team")
    assert done.returncode != 0 and "--team must be a Slack team id" in done.stderr
    store = Store(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    try:
        assert store.get_district("d1").team_id is None
        assert store.get_district("d2").team_id == "T0ABC123"
        assert store.get_district("d3") is None
    finally:
        store.dispose()
