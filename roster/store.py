"""The roster store: engine, schema, tenancy (districts, schools, admins, channels), upload records.

SQLite (an embedded file) is the default; PostgreSQL in production.  The URL comes from
the caller, else ROSTERBOT_DATABASE_URL, else `var/rosterbot.sqlite3` under the current
directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, insert, select, update
from sqlalchemy.exc import IntegrityError

from roster.models import Admin, Base, District, LinkedChannel, School, Upload, utcnow
from roster.states import REPORTED_STATES, UNFINISHED_STATES, FileKind, UploadState

ENROLLMENT_SOURCES = ("batch", "clever", "classlink", "gg4l")
DEFAULT_SQLITE = Path("var") / "rosterbot.sqlite3"


class RosterError(Exception):
    """A refusal the user can act on (unknown district, bad argument...)."""


@dataclass(frozen=True)
class DistrictInfo:
    id: int
    key: str
    name: str
    enrollment_source: str

    @property
    def third_party(self) -> bool:
        return self.enrollment_source != "batch"


@dataclass(frozen=True)
class Grant:
    district_key: str
    system: bool
    enrollment: bool
    support: bool

    @property
    def can_upload(self) -> bool:
        return self.system and self.enrollment


def database_url(url: str | None = None) -> str:
    if url:
        return url
    if os.environ.get("ROSTERBOT_DATABASE_URL"):
        return os.environ["ROSTERBOT_DATABASE_URL"]
    DEFAULT_SQLITE.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_SQLITE}"


def _sqlite_setup(engine: Engine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.

    Every transaction starts with BEGIN IMMEDIATE, i.e. takes SQLite's write lock up front,
    which is how uploads of a district are serialised on SQLite.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):  # pragma: no cover - trivial
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # pragma: no cover - trivial
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    def __init__(self, url: str | None = None, create: bool = True) -> None:
        self.url = database_url(url)
        kwargs: dict = {}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
        self.engine = create_engine(self.url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            _sqlite_setup(self.engine)
        if create:
            Base.metadata.create_all(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # --- districts and schools -----------------------------------------------------------------
    def create_district(
        self, key: str, name: str, enrollment_source: str = "batch"
    ) -> DistrictInfo:
        if enrollment_source not in ENROLLMENT_SOURCES:
            raise RosterError(f"enrollment source must be one of {', '.join(ENROLLMENT_SOURCES)}")
        try:
            with self.transaction() as conn:
                conn.execute(
                    insert(District).values(
                        key=key, name=name, enrollment_source=enrollment_source, roster_version=0
                    )
                )
        except IntegrityError:
            raise RosterError(f"district '{key}' already exists") from None
        return self.district(key)

    def get_district(self, key: str) -> DistrictInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(District.id, District.key, District.name, District.enrollment_source).where(
                    District.key == key
                )
            ).first()
        return DistrictInfo(*row) if row else None

    def district(self, key: str) -> DistrictInfo:
        found = self.get_district(key)
        if found is None:
            raise RosterError(
                f"no district '{key}'; create it with `rosterbot district create {key} --name NAME`"
            )
        return found

    def add_school(self, district_key: str, org_sis_id: str, name: str) -> None:
        district = self.district(district_key)
        try:
            with self.transaction() as conn:
                conn.execute(
                    insert(School).values(district_id=district.id, org_sis_id=org_sis_id, name=name)
                )
        except IntegrityError:
            raise RosterError(f"school '{org_sis_id}' already exists in '{district_key}'") from None

    def schools(self, district_key: str) -> list[tuple[str, str]]:
        district = self.district(district_key)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(School.org_sis_id, School.name)
                .where(School.district_id == district.id)
                .order_by(School.org_sis_id)
            ).all()
        return [tuple(r) for r in rows]

    # --- Slack tenancy -------------------------------------------------------------------------
    def grant_admin(
        self,
        district_key: str,
        slack_user_id: str,
        system: bool = False,
        enrollment: bool = False,
        support: bool = False,
    ) -> Grant:
        district = self.district(district_key)
        with self.transaction() as conn:
            found = conn.execute(
                select(Admin.id).where(
                    Admin.district_id == district.id, Admin.slack_user_id == slack_user_id
                )
            ).first()
            values = dict(system=system, enrollment=enrollment, support=support)
            if found:
                conn.execute(update(Admin).where(Admin.id == found[0]).values(**values))
            else:
                conn.execute(
                    insert(Admin).values(
                        district_id=district.id, slack_user_id=slack_user_id, **values
                    )
                )
        return Grant(district_key, system, enrollment, support)

    def grants_for(self, slack_user_id: str) -> list[Grant]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(District.key, Admin.system, Admin.enrollment, Admin.support)
                .join(District, District.id == Admin.district_id)
                .where(Admin.slack_user_id == slack_user_id)
            ).all()
        return [Grant(*r) for r in rows]

    def grant(self, district_key: str, slack_user_id: str) -> Grant | None:
        return next(
            (g for g in self.grants_for(slack_user_id) if g.district_key == district_key), None
        )

    def link_channel(self, district_key: str, channel_id: str) -> None:
        district = self.district(district_key)
        with self.transaction() as conn:
            conn.execute(
                LinkedChannel.__table__.delete().where(LinkedChannel.channel_id == channel_id)
            )
            conn.execute(
                insert(LinkedChannel).values(channel_id=channel_id, district_id=district.id)
            )

    def district_for_channel(self, channel_id: str) -> DistrictInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(District.id, District.key, District.name, District.enrollment_source)
                .join(LinkedChannel, LinkedChannel.district_id == District.id)
                .where(LinkedChannel.channel_id == channel_id)
            ).first()
        return DistrictInfo(*row) if row else None

    # --- upload records ------------------------------------------------------------------------
    def claim_slack_file(
        self,
        slack_file_id: str,
        district_key: str | None,
        channel: str,
        thread_ts: str,
        actor: str,
        file_name: str = "",
        dry_run: bool = False,
    ) -> int | None:
        """Record a Slack file as received; None when it was already claimed (a re-delivery)."""
        district = self.get_district(district_key) if district_key else None
        try:
            with self.transaction() as conn:
                return conn.execute(
                    insert(Upload)
                    .values(
                        district_id=district.id if district else None,
                        slack_file_id=slack_file_id,
                        slack_channel=channel,
                        slack_thread_ts=thread_ts,
                        actor=actor,
                        file_name=file_name,
                        dry_run=dry_run,
                        state=UploadState.RECEIVED,
                        created_at=utcnow(),
                    )
                    .returning(Upload.id)
                ).scalar_one()
        except IntegrityError:
            return None

    def new_upload(
        self,
        district_key: str,
        file_name: str,
        actor: str,
        dry_run: bool,
        kind: str = FileKind.USERS,
    ) -> int:
        district = self.district(district_key)
        with self.transaction() as conn:
            return conn.execute(
                insert(Upload)
                .values(
                    district_id=district.id,
                    file_name=file_name,
                    actor=actor,
                    dry_run=dry_run,
                    kind=kind,
                    state=UploadState.RECEIVED,
                    created_at=utcnow(),
                )
                .returning(Upload.id)
            ).scalar_one()

    def update_upload(self, upload_id: int, conn: Connection | None = None, **values) -> None:
        stmt = update(Upload).where(Upload.id == upload_id).values(**values)
        if conn is not None:
            conn.execute(stmt)
            return
        with self.transaction() as own:
            own.execute(stmt)

    def upload(self, upload_id: int) -> Upload | None:
        from sqlalchemy.orm import Session

        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Upload, upload_id)

    def find_upload_by_slack_file(self, slack_file_id: str) -> Upload | None:
        return self._one_upload(Upload.slack_file_id == slack_file_id)

    def find_upload_by_thread(self, channel: str, thread_ts: str) -> Upload | None:
        """The latest finished upload posted in a Slack thread (for "row 14" / "summary")."""
        return self._one_upload(
            Upload.slack_channel == channel,
            Upload.slack_thread_ts == thread_ts,
            Upload.state.in_(REPORTED_STATES),
        )

    def uploads_in_thread(self, channel: str, thread_ts: str) -> list[Upload]:
        """Every finished upload of a Slack thread, oldest first; the latest run of each file.

        (A users.csv and a demographics.csv shared in one message share a thread; a confirmed
        re-run of a held upload replaces the held one.)
        """
        from sqlalchemy.orm import Session

        with Session(self.engine, expire_on_commit=False) as session:
            found = session.scalars(
                select(Upload)
                .where(
                    Upload.slack_channel == channel,
                    Upload.slack_thread_ts == thread_ts,
                    Upload.state.in_(REPORTED_STATES),
                )
                .order_by(Upload.id)
            )
            latest = {u.slack_file_id or f"id:{u.id}": u for u in found}
        return list(latest.values())

    def district_key_of(self, upload: Upload) -> str | None:
        if upload.district_id is None:
            return None
        with self.engine.connect() as conn:
            return conn.execute(
                select(District.key).where(District.id == upload.district_id)
            ).scalar()

    def recent_uploads(self, district_key: str, limit: int = 10) -> list[Upload]:
        from sqlalchemy.orm import Session

        district = self.district(district_key)
        with Session(self.engine, expire_on_commit=False) as session:
            return list(
                session.scalars(
                    select(Upload)
                    .where(Upload.district_id == district.id)
                    .order_by(Upload.id.desc())
                    .limit(limit)
                )
            )

    def unfinished_uploads(self) -> list[Upload]:
        from sqlalchemy.orm import Session

        with Session(self.engine, expire_on_commit=False) as session:
            return list(
                session.scalars(
                    select(Upload).where(Upload.state.in_(UNFINISHED_STATES)).order_by(Upload.id)
                )
            )

    def _one_upload(self, *where) -> Upload | None:
        from sqlalchemy.orm import Session

        with Session(self.engine, expire_on_commit=False) as session:
            return session.scalars(
                select(Upload).where(*where).order_by(Upload.id.desc()).limit(1)
            ).first()
