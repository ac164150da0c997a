"""The roster store's schema version: Alembic migrations (roster/migrations), run from here.

`upgrade(engine)` brings any database to the newest revision in one transaction: an empty
one, one made by a release before migrations (no `alembic_version` table: revision 0001
adopts it, keeping every row), or one a few revisions behind.  Two processes upgrading at
once do not both run a revision: on PostgreSQL the transaction takes an advisory lock first,
on SQLite it starts with BEGIN IMMEDIATE (roster.store), which holds the write lock.

`rosterbot db upgrade` calls it; so does every `Store(...)` unless ROSTERBOT_AUTO_UPGRADE=0
(then a database behind the code is refused: roster.store.SchemaBehind).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The newest revision in migrations/versions (tests/test_migrations.py checks it).  Written
#: here so that opening a database already at it needs neither Alembic nor the revision
#: files: every CLI command opens the store.
HEAD = "0007"
#: pg_advisory_xact_lock key of schema upgrades (any fixed number; "rostersc" in ASCII)
UPGRADE_LOCK = 0x726F737465727363


def alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this code knows."""
    return HEAD


def target_metadata() -> list:
    """What the newest revision's schema must equal: the models, and slack-sdk's OAuth
    store tables (installs, states; revision 0003)."""
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
    from sqlalchemy import MetaData

    from roster.models import Base

    slack = MetaData()
    SQLAlchemyInstallationStore.build_installations_table(slack, "slack_installations")
    SQLAlchemyInstallationStore.build_bots_table(slack, "slack_bots")
    SQLAlchemyOAuthStateStore.build_oauth_states_table(slack, "slack_oauth_states")
    return [Base.metadata, slack]


def current(engine_or_conn: Engine | Connection) -> str | None:
    """The revision the database is at (None: empty, or made before migrations)."""
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            return current(conn)
    if not inspect(engine_or_conn).has_table("alembic_version"):
        return None
    found = engine_or_conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return next(iter(found), None)


def known(revision: str | None) -> bool:
    """Whether this code knows a revision (None, a database without one, counts)."""
    if revision is None or revision == HEAD:
        return True
    from alembic.script import ScriptDirectory

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic.util.CommandError: a newer release's revision
        return False


def upgrade(engine: Engine, *, from_revisions: bool = False) -> tuple[str | None, str | None]:
    """Upgrade to the newest revision; returns (revision before, revision now).

    An empty database gets the newest schema in one step -- the tables of
    `target_metadata()`, stamped at HEAD (Alembic's "create_all, then stamp"; a fresh SQLite
    file per CLI run or test needs no Alembic import) -- unless `from_revisions`, which runs
    every revision from nothing (tests/test_migrations.py checks both give the same schema).
    A database a newer release has already upgraded (a revision this code does not know,
    e.g. during a rolling deploy) is left as it is.
    """
    before = current(engine)
    if before == head() or not known(before):
        return before, before
    with engine.connect() as conn, _sqlite_foreign_keys_off(conn), conn.begin():
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({UPGRADE_LOCK})")
        before = current(conn)  # another process may have upgraded while we waited
        if before == head():
            return before, before
        if before is None and not from_revisions and not inspect(conn).get_table_names():
            _create_newest(conn)
        else:
            from alembic import command

            command.upgrade(alembic_config(conn), "head")
            if conn.dialect.name == "sqlite":  # what the copies of tables kept must still hold
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the upgrade would break foreign keys: {broken[:5]}")
    return before, head()


@contextmanager
def _sqlite_foreign_keys_off(conn: Connection) -> Iterator[None]:
    """SQLite: foreign keys not enforced while the revisions run, on this connection only.

    A revision that must change a table SQLite cannot alter copies it and drops the original
    (0007: people, which demographics refers to); with enforcement on, dropping a referenced
    table fails.  The pragma works only outside a transaction, hence before `conn.begin()`,
    on the driver's connection (SQLAlchemy's own statement would begin one); `upgrade` checks
    every foreign key before it commits."""
    if conn.dialect.name != "sqlite":
        yield
        return
    dbapi = conn.connection.dbapi_connection
    dbapi.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        dbapi.execute("PRAGMA foreign_keys=ON")


def _create_newest(conn: Connection) -> None:
    from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table

    for metadata in target_metadata():
        metadata.create_all(conn)
    version = Table(  # as Alembic makes it
        "alembic_version",
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    version.create(conn)
    conn.execute(version.insert().values(version_num=HEAD))


def behind(engine: Engine) -> str | None:
    """Why the database is behind this code (None: it is not)."""
    at = current(engine)
    if at != head() and known(at):
        return (
            f"the roster database is at schema revision {at or 'none'}, this rosterbot needs "
            f"{head()}: run `rosterbot db upgrade` first (docs/deploy.md)"
        )
    return None
