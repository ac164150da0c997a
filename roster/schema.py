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

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: pg_advisory_xact_lock key of schema upgrades (any fixed number; "rostersc" in ASCII)
UPGRADE_LOCK = 0x726F737465727363


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def head() -> str:
    """The newest revision this code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


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
            return MigrationContext.configure(conn).get_current_revision()
    return MigrationContext.configure(engine_or_conn).get_current_revision()


def known(revision: str | None) -> bool:
    """Whether this code knows a revision (None, a database without one, counts)."""
    if revision is None:
        return True
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic.util.CommandError: a newer release's revision
        return False


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Upgrade to the newest revision; returns (revision before, revision now).

    A database a newer release has already upgraded (a revision this code does not know,
    e.g. during a rolling deploy) is left as it is.
    """
    before = current(engine)
    if before == head() or not known(before):
        return before, before
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({UPGRADE_LOCK})")
        before = current(conn)  # another process may have upgraded while we waited
        if before != head():
            command.upgrade(alembic_config(conn), "head")
    return before, head()


def behind(engine: Engine) -> str | None:
    """Why the database is behind this code (None: it is not)."""
    at = current(engine)
    if at != head() and known(at):
        return (
            f"the roster database is at schema revision {at or 'none'}, this rosterbot needs "
            f"{head()}: run `rosterbot db upgrade` first (docs/deploy.md)"
        )
    return None
