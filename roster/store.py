"""The roster store: engine, schema, tenancy (districts, schools, admins, channels), upload records.

SQLite (an embedded file) is the default; PostgreSQL in production.  The URL comes from
the caller, else ROSTERBOT_DATABASE_URL, else `var/rosterbot.sqlite3` under the current
directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    make_url,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError, OperationalError

from roster import schema
from roster.ids import school_id_problem
from roster.models import (
    ADDED_COLUMNS,
    Admin,
    AuditEntry,
    Base,
    District,
    LinkedChannel,
    School,
    Upload,
    utcnow,
)
from roster.private import private_dir, touch_private
from roster.states import REPORTED_STATES, UNFINISHED_STATES, FileKind, UploadState

ENROLLMENT_SOURCES = ("batch", "clever", "classlink", "gg4l")
#: the kinds of access a Slack user can hold in a district, in the order they are shown
ACCESS_KINDS = ("system", "enrollment", "support")
DEFAULT_SQLITE = Path("var") / "rosterbot.sqlite3"


class RosterError(Exception):
    """A refusal the user can act on (unknown district, bad argument...)."""


class SchemaBehind(RosterError):
    """The database is older than this code and ROSTERBOT_AUTO_UPGRADE=0."""


class UploadFinished(Exception):
    """The upload record a run was handed is already finished (applied, checked, held...):
    another run of the same job committed it first (a queued job retried after its worker
    was thought dead).  Nothing more is applied; the caller reports the stored result."""

    def __init__(self, upload_id: int) -> None:
        super().__init__(f"upload {upload_id} is already finished")
        self.upload_id = upload_id


class StoreBusy(Exception):
    """Another connection holds SQLite's write lock (an upload is running) and the caller
    chose not to wait for it."""


#: first key of the advisory lock that orders the claims of one district (PostgreSQL)
CLAIM_LOCK_SPACE = 0x726F7374  # "rost"
#: SQLite: how long a write waits for the write lock by default (seconds)
SQLITE_BUSY_TIMEOUT = 60
#: SQLite: the page cache of each connection (KiB), an upper bound: pages are cached as read
SQLITE_CACHE_KB = 64 * 1024
#: the execution option of `Store.reader`: its transactions only read
READ_ONLY = "rosterbot_read_only"


@dataclass(frozen=True)
class DistrictInfo:
    id: int
    key: str
    name: str
    enrollment_source: str
    #: the Slack workspace (team id) serving the district; None: the bot token's workspace
    team_id: str | None = None

    @property
    def third_party(self) -> bool:
        return self.enrollment_source != "batch"


@dataclass(frozen=True)
class Grant:
    district_key: str
    system: bool
    enrollment: bool
    support: bool
    #: the granted user's workspace; None: the district's workspace
    team_id: str | None = None

    @property
    def can_upload(self) -> bool:
        return self.system and self.enrollment

    @property
    def access(self) -> list[str]:
        return [kind for kind in ACCESS_KINDS if getattr(self, kind)]


@dataclass(frozen=True)
class AdminGrant:
    """One Slack user's access to a district (`rosterbot admin list`)."""

    slack_user_id: str
    system: bool
    enrollment: bool
    support: bool

    @property
    def access(self) -> list[str]:
        return [kind for kind in ACCESS_KINDS if getattr(self, kind)]


@dataclass(frozen=True)
class DistrictSummary:
    key: str
    name: str
    enrollment_source: str
    schools: int
    admins: int
    channels: int


@dataclass(frozen=True)
class AuditRecord:
    """One change to a district's set-up: who (`actor`) did `action` to `subject`, and when."""

    at: datetime
    actor: str
    action: str
    subject: str
    before: str
    after: str


def _access_text(kinds: list[str] | tuple[str, ...]) -> str:
    return ", ".join(kinds)


def database_url(url: str | None = None) -> str:
    if url:
        return url
    if os.environ.get("ROSTERBOT_DATABASE_URL"):
        return os.environ["ROSTERBOT_DATABASE_URL"]
    private_dir(DEFAULT_SQLITE.parent)
    return f"sqlite:///{DEFAULT_SQLITE}"


def _private_sqlite_file(url: str) -> None:
    """Create a SQLite database file owner-only before SQLite creates it with the umask's
    mode; its -wal and -shm files take the database file's mode."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:") or Path(path).exists():
        return
    private_dir(Path(path).parent)
    touch_private(Path(path))


def _sqlite_setup(engine: Engine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.

    Every transaction starts with BEGIN IMMEDIATE, i.e. takes SQLite's write lock up front,
    which is how uploads of a district are serialised on SQLite.  Except on `Store.reader`:
    a read-only transaction begins deferred and, in WAL mode, reads the last committed state
    without waiting for a writer (a running upload never keeps `status` from answering).
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):  # pragma: no cover - trivial
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000}")
        # a page cache that holds the indexes an upload inserts into (the 2 MB default makes
        # every random insert into a big index re-read its pages): memory used only as needed
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KB}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # pragma: no cover - trivial
        read_only = conn.get_execution_options().get(READ_ONLY)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class Store:
    def __init__(self, url: str | None = None, create: bool = True) -> None:
        self.url = database_url(url)
        kwargs: dict = {}
        if self.url.startswith("sqlite"):
            _private_sqlite_file(self.url)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False}
        self.engine = create_engine(self.url, **kwargs)
        #: the same engine for transactions that only read (never wait for SQLite's writer)
        self.reader = self.engine.execution_options(**{READ_ONLY: True})
        if self.engine.dialect.name == "sqlite":
            _sqlite_setup(self.engine)
        if create:
            prepare_schema(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self, wait: float | None = None) -> Iterator[Connection]:
        """A write transaction.  On SQLite, `wait` is how long to wait for the write lock
        (None: SQLITE_BUSY_TIMEOUT), raising StoreBusy past it."""
        if wait is None or self.dialect != "sqlite":
            with self.engine.begin() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            dbapi.execute(f"PRAGMA busy_timeout={max(1, int(wait * 1000))}")
            try:
                try:
                    trans = conn.begin()
                except OperationalError as exc:
                    if "locked" in str(exc) or "busy" in str(exc):
                        raise StoreBusy from None
                    raise
                with trans:
                    yield conn
            finally:
                dbapi.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000}")

    def write_lock_free(self, wait: float = 0.0) -> bool:
        """Whether a write could start now (waiting at most `wait` seconds): always on
        PostgreSQL, whose locks are per district; on SQLite, whether no other connection
        holds the one write lock."""
        if self.dialect != "sqlite":
            return True
        try:
            with self.transaction(wait=wait):
                return True
        except StoreBusy:
            return False

    # --- districts and schools -----------------------------------------------------------------
    def create_district(
        self, key: str, name: str, enrollment_source: str = "batch", team_id: str | None = None
    ) -> DistrictInfo:
        """`team_id`: the Slack workspace serving the district; None (the usual case) means the
        one workspace the bot token belongs to."""
        if enrollment_source not in ENROLLMENT_SOURCES:
            raise RosterError(f"enrollment source must be one of {', '.join(ENROLLMENT_SOURCES)}")
        try:
            with self.transaction() as conn:
                conn.execute(
                    insert(District).values(
                        key=key,
                        name=name,
                        enrollment_source=enrollment_source,
                        roster_version=0,
                        team_id=team_id or None,
                    )
                )
        except IntegrityError:
            raise RosterError(f"district '{key}' already exists") from None
        return self.district(key)

    def get_district(self, key: str) -> DistrictInfo | None:
        with self.reader.connect() as conn:
            row = conn.execute(select(*_DISTRICT_COLUMNS).where(District.key == key)).first()
        return DistrictInfo(*row) if row else None

    def districts_named(self, words: set[str]) -> list[DistrictInfo]:
        """The districts whose key is one of `words` (compared case-insensitively).

        Districts are few and a message may hold thousands of words, so the keys are
        matched here rather than sent as query parameters."""
        wanted = {w.casefold() for w in words}
        if not wanted:
            return []
        with self.reader.connect() as conn:
            rows = conn.execute(select(*_DISTRICT_COLUMNS).order_by(District.key)).all()
        return [DistrictInfo(*r) for r in rows if r.key.casefold() in wanted]

    def district(self, key: str) -> DistrictInfo:
        found = self.get_district(key)
        if found is None:
            raise RosterError(
                f"no district '{key}'; create it with `rosterbot district create {key} --name NAME`"
            )
        return found

    def districts(self) -> list[DistrictSummary]:
        """Every district with how many schools, administrators and linked channels it has."""

        def count(model) -> object:
            return (
                select(func.count())
                .select_from(model)
                .where(model.district_id == District.id)
                .scalar_subquery()
            )

        with self.reader.connect() as conn:
            rows = conn.execute(
                select(
                    District.key,
                    District.name,
                    District.enrollment_source,
                    count(School),
                    count(Admin),
                    count(LinkedChannel),
                ).order_by(District.key)
            ).all()
        return [DistrictSummary(*r) for r in rows]

    def add_school(self, district_key: str, org_sis_id: str, name: str, actor: str = "") -> None:
        problem = school_id_problem(org_sis_id)
        if problem:
            raise RosterError(problem)
        if not name.strip():
            raise RosterError("a school needs a name (--name)")
        district = self.district(district_key)
        try:
            with self.transaction() as conn:
                conn.execute(
                    insert(School).values(district_id=district.id, org_sis_id=org_sis_id, name=name)
                )
                self._audit(conn, district.id, actor, "school_add", org_sis_id, "", name)
        except IntegrityError:
            raise RosterError(f"school '{org_sis_id}' already exists in '{district_key}'") from None

    def rename_school(self, district_key: str, org_sis_id: str, name: str, actor: str = "") -> str:
        """Give a school a new name; returns the name it had."""
        if not name.strip():
            raise RosterError("a school needs a name (--name)")
        district = self.district(district_key)
        with self.transaction() as conn:
            before = conn.execute(
                select(School.name).where(
                    School.district_id == district.id, School.org_sis_id == org_sis_id
                )
            ).scalar()
            if before is not None and before != name:
                conn.execute(
                    update(School)
                    .where(School.district_id == district.id, School.org_sis_id == org_sis_id)
                    .values(name=name)
                )
                self._audit(conn, district.id, actor, "school_rename", org_sis_id, before, name)
        if before is None:
            raise RosterError(self._no_school(district_key, org_sis_id))
        return before

    def _no_school(self, district_key: str, org_sis_id: str) -> str:
        known = [org for org, _ in self.schools(district_key)]
        near = [
            k
            for k in known
            if k.casefold() == org_sis_id.casefold() or k.lstrip("0") == org_sis_id.lstrip("0")
        ]
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        return (
            f"no school '{org_sis_id}' in '{district_key}'{hint}; "
            f"`rosterbot school list {district_key}` lists its schools"
        )

    def schools(self, district_key: str) -> list[tuple[str, str]]:
        district = self.district(district_key)
        with self.reader.connect() as conn:
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
        team_id: str | None = None,
        actor: str = "",
    ) -> Grant:
        """Add access (what the user already holds is kept); returns the access they now hold.
        `team_id`: the granted user's Slack workspace (None: the district's workspace)."""
        district = self.district(district_key)
        adding = dict(system=system, enrollment=enrollment, support=support)
        if not any(adding.values()):
            raise RosterError("give at least one kind of access: system, enrollment or support")
        with self.transaction() as conn:
            found = conn.execute(
                select(Admin.id, Admin.system, Admin.enrollment, Admin.support).where(
                    Admin.district_id == district.id, Admin.slack_user_id == slack_user_id
                )
            ).first()
            held = (
                dict(zip(ACCESS_KINDS, found[1:])) if found else dict.fromkeys(ACCESS_KINDS, False)
            )
            now = {k: held[k] or adding[k] for k in ACCESS_KINDS}
            if found:
                conn.execute(
                    update(Admin).where(Admin.id == found[0]).values(**now, team_id=team_id or None)
                )
            else:
                conn.execute(
                    insert(Admin).values(
                        district_id=district.id,
                        slack_user_id=slack_user_id,
                        team_id=team_id or None,
                        **now,
                    )
                )
            if now != held:
                self._audit(
                    conn,
                    district.id,
                    actor,
                    "grant",
                    slack_user_id,
                    _access_text([k for k in ACCESS_KINDS if held[k]]),
                    _access_text([k for k in ACCESS_KINDS if now[k]]),
                )
        return Grant(district_key, **now, team_id=team_id or None)

    def revoke_admin(
        self,
        district_key: str,
        slack_user_id: str,
        system: bool = False,
        enrollment: bool = False,
        support: bool = False,
        actor: str = "",
    ) -> tuple[Grant, Grant | None]:
        """Take access away (no kind given: all of it); returns the access before and after
        (None: no access left).  The last system administrator of a district keeps system
        access: somebody must be able to manage the district from Slack."""
        district = self.district(district_key)
        removing = dict(system=system, enrollment=enrollment, support=support)
        if not any(removing.values()):
            removing = dict.fromkeys(ACCESS_KINDS, True)
        with self.transaction() as conn:
            # Lock the district's system administrators: two of them revoking each other at
            # once must not leave the district with none (SQLite: BEGIN IMMEDIATE already).
            system_admins = (
                conn.execute(
                    select(Admin.slack_user_id)
                    .where(Admin.district_id == district.id, Admin.system.is_(True))
                    .with_for_update()
                )
                .scalars()
                .all()
            )
            found = conn.execute(
                select(Admin.id, Admin.system, Admin.enrollment, Admin.support).where(
                    Admin.district_id == district.id, Admin.slack_user_id == slack_user_id
                )
            ).first()
            if found is None:
                raise RosterError(f"{slack_user_id} has no access to '{district_key}'")
            held = dict(zip(ACCESS_KINDS, found[1:]))
            taken = [k for k in ACCESS_KINDS if removing[k] and held[k]]
            if not taken:
                asked = [k for k in ACCESS_KINDS if removing[k]]
                raise RosterError(
                    f"{slack_user_id} has no {' or '.join(asked)} access to '{district_key}' "
                    f"(they have {_access_text([k for k in ACCESS_KINDS if held[k]])}); "
                    "nothing changed"
                )
            if "system" in taken and list(system_admins) == [slack_user_id]:
                raise RosterError(
                    f"{slack_user_id} is the last system administrator of '{district_key}'; "
                    "grant system access to someone else first, then revoke it"
                )
            now = {k: held[k] and k not in taken for k in ACCESS_KINDS}
            if any(now.values()):
                conn.execute(update(Admin).where(Admin.id == found[0]).values(**now))
            else:
                conn.execute(delete(Admin).where(Admin.id == found[0]))
            self._audit(
                conn,
                district.id,
                actor,
                "revoke",
                slack_user_id,
                _access_text([k for k in ACCESS_KINDS if held[k]]),
                _access_text([k for k in ACCESS_KINDS if now[k]]),
            )
        before = Grant(district_key, **held)
        return before, (Grant(district_key, **now) if any(now.values()) else None)

    def admins(self, district_key: str) -> list[AdminGrant]:
        district = self.district(district_key)
        with self.reader.connect() as conn:
            rows = conn.execute(
                select(Admin.slack_user_id, Admin.system, Admin.enrollment, Admin.support)
                .where(Admin.district_id == district.id)
                .order_by(Admin.slack_user_id)
            ).all()
        return [AdminGrant(*r) for r in rows]

    def system_admins(self, district_key: str) -> list[str]:
        """The Slack users who can grant access to a district."""
        return [a.slack_user_id for a in self.admins(district_key) if a.system]

    def grants_for(self, slack_user_id: str) -> list[Grant]:
        with self.reader.connect() as conn:
            rows = conn.execute(
                select(District.key, Admin.system, Admin.enrollment, Admin.support, Admin.team_id)
                .join(District, District.id == Admin.district_id)
                .where(Admin.slack_user_id == slack_user_id)
            ).all()
        return [Grant(*r) for r in rows]

    def grant(self, district_key: str, slack_user_id: str) -> Grant | None:
        return next(
            (g for g in self.grants_for(slack_user_id) if g.district_key == district_key), None
        )

    def link_channel(
        self, district_key: str, channel_id: str, team_id: str | None = None, actor: str = ""
    ) -> str | None:
        """Link a channel to a district; returns the key of the district it was linked to
        before (None: it was not linked, or already to this district).  `team_id`: the
        workspace the link was made from (None: the district's workspace)."""
        district = self.district(district_key)
        with self.transaction() as conn:
            before = conn.execute(
                select(District.key, District.id)
                .join(LinkedChannel, LinkedChannel.district_id == District.id)
                .where(LinkedChannel.channel_id == channel_id)
            ).first()
            if before is not None and before[1] == district.id:
                return None
            conn.execute(delete(LinkedChannel).where(LinkedChannel.channel_id == channel_id))
            conn.execute(
                insert(LinkedChannel).values(
                    channel_id=channel_id, district_id=district.id, team_id=team_id or None
                )
            )
            self._audit(
                conn,
                district.id,
                actor,
                "link",
                channel_id,
                before[0] if before else "",
                district.key,
            )
            if before is not None:  # the district it was taken from sees it in its trail too
                self._audit(conn, before[1], actor, "unlink", channel_id, before[0], district.key)
        return before[0] if before else None

    def unlink_channel(self, district_key: str, channel_id: str, actor: str = "") -> None:
        district = self.district(district_key)
        with self.transaction() as conn:
            gone = conn.execute(
                delete(LinkedChannel).where(
                    LinkedChannel.channel_id == channel_id,
                    LinkedChannel.district_id == district.id,
                )
            ).rowcount
            if not gone:
                current = conn.execute(
                    select(District.key)
                    .join(LinkedChannel, LinkedChannel.district_id == District.id)
                    .where(LinkedChannel.channel_id == channel_id)
                ).scalar()
                where = f"it is linked to '{current}'" if current else "it is not linked"
                raise RosterError(
                    f"channel {channel_id} is not linked to '{district_key}' ({where})"
                )
            self._audit(conn, district.id, actor, "unlink", channel_id, district.key, "")

    def channels(self, district_key: str) -> list[str]:
        district = self.district(district_key)
        with self.reader.connect() as conn:
            return list(
                conn.execute(
                    select(LinkedChannel.channel_id)
                    .where(LinkedChannel.district_id == district.id)
                    .order_by(LinkedChannel.channel_id)
                ).scalars()
            )

    def district_for_channel(self, channel_id: str) -> DistrictInfo | None:
        link = self.channel_link(channel_id)
        return link[0] if link else None

    def channel_link(self, channel_id: str) -> tuple[DistrictInfo, str | None] | None:
        """The district a channel is linked to, and the workspace the link was made from."""
        with self.reader.connect() as conn:
            row = conn.execute(
                select(*_DISTRICT_COLUMNS, LinkedChannel.team_id)
                .join(LinkedChannel, LinkedChannel.district_id == District.id)
                .where(LinkedChannel.channel_id == channel_id)
            ).first()
        return (DistrictInfo(*row[:-1]), row[-1]) if row else None

    # --- the set-up audit trail ----------------------------------------------------------------
    @staticmethod
    def _audit(
        conn: Connection,
        district_id: int,
        actor: str,
        action: str,
        subject: str,
        before: str,
        after: str,
    ) -> None:
        conn.execute(
            insert(AuditEntry).values(
                district_id=district_id,
                at=utcnow(),
                actor=actor,
                action=action,
                subject=subject,
                before=before,
                after=after,
            )
        )

    def audit_trail(self, district_key: str, limit: int = 10) -> list[AuditRecord]:
        """The district's latest set-up changes (access, channels, schools), newest first."""
        district = self.district(district_key)
        with self.reader.connect() as conn:
            rows = conn.execute(
                select(
                    AuditEntry.at,
                    AuditEntry.actor,
                    AuditEntry.action,
                    AuditEntry.subject,
                    AuditEntry.before,
                    AuditEntry.after,
                )
                .where(AuditEntry.district_id == district.id)
                .order_by(AuditEntry.id.desc())
                .limit(limit)
            ).all()
        return [AuditRecord(*r) for r in rows]

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
        message_ts: str | None = None,
        wait: float | None = None,
    ) -> int | None:
        """Record one share of a Slack file as received; None when that share was already
        claimed (Slack re-delivered the event).

        A share is the file id *and* the ts of the message that shared it (`message_ts`,
        default `thread_ts`): Slack keeps a file's id when it is shared again, and sharing it
        again ("check" first, then the same file to apply) is a new upload.
        `wait`: see transaction() (StoreBusy when another upload holds SQLite's write lock).
        """
        district = self.get_district(district_key) if district_key else None
        try:
            with self.transaction(wait=wait) as conn:
                return conn.execute(
                    insert(Upload)
                    .values(
                        district_id=district.id if district else None,
                        slack_file_id=slack_file_id,
                        slack_message_ts=message_ts or thread_ts,
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

    def claim_slack_files(
        self,
        files: list[tuple[str, str]],
        district_key: str,
        channel: str,
        thread_ts: str,
        actor: str,
        dry_run: bool,
        message_ts: str,
        then: Callable[[Connection, list[tuple[str, int]]], None],
    ) -> list[tuple[str, int]]:
        """PostgreSQL: claim each share of (Slack file id, name) in ONE transaction and call
        `then(conn, [(file id, upload id) claimed])` in it before it commits (the job queue defers the
        upload's job there, so a claimed file always has its job).  [] when every file was
        claimed before (a re-delivered event); `then` is not called.

        Claims of one district are serialised by an advisory lock (not the district row,
        which a running upload holds for minutes), so upload ids, job ids and commits of a
        district come in the same order: the order its uploads are applied in.
        """
        district = self.district(district_key)
        with self.engine.begin() as conn:
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:space, :district)"),
                {"space": CLAIM_LOCK_SPACE, "district": district.id},
            )
            claimed = []
            for file_id, name in files:
                upload_id = conn.execute(
                    pg_insert(Upload)
                    .values(
                        district_id=district.id,
                        slack_file_id=file_id,
                        slack_message_ts=message_ts,
                        slack_channel=channel,
                        slack_thread_ts=thread_ts,
                        actor=actor,
                        file_name=name,
                        dry_run=dry_run,
                        state=UploadState.RECEIVED,
                        created_at=utcnow(),
                    )
                    .on_conflict_do_nothing(index_elements=["slack_file_id", "slack_message_ts"])
                    .returning(Upload.id)
                ).scalar()
                if upload_id is not None:
                    claimed.append((file_id, upload_id))
            if claimed:
                then(conn, claimed)
        return claimed

    def reclaim_held(
        self, upload_ids: list[int], then: Callable[[Connection, list[int]], None] | None = None
    ) -> list[int]:
        """The Confirm button: move held records back to `received`, in one conditional
        update, and return the ids this call moved (none when another press, on any
        process, took them first).  `then(conn, ids)` runs in the same transaction."""
        with self.transaction() as conn:
            taken = list(
                conn.execute(
                    update(Upload)
                    .where(Upload.id.in_(upload_ids), Upload.state == UploadState.HELD)
                    .values(state=UploadState.RECEIVED)
                    .returning(Upload.id)
                ).scalars()
            )
            if taken and then is not None:
                then(conn, taken)
        return sorted(taken)

    def hold_again(self, upload_ids: list[int]) -> None:
        """A confirmed re-run that did not start (the file changed since it was reviewed):
        the records are held again, so the button can be pressed on the reviewed file."""
        with self.transaction() as conn:
            conn.execute(
                update(Upload)
                .where(Upload.id.in_(upload_ids), Upload.state == UploadState.RECEIVED)
                .values(state=UploadState.HELD)
            )

    def finished_uploads(self, district_key: str, upload_ids: list[int]) -> list[Upload]:
        """Of these records, the finished ones, read under the district's upload lock (so a
        run of the same upload that is committing right now is waited for)."""
        from sqlalchemy.orm import Session

        from roster.apply import lock_district

        district = self.district(district_key)
        # SQLite: one writer at a time already; a read does not wait for the write lock
        begin = self.reader.connect if self.dialect == "sqlite" else self.transaction
        with begin() as conn:
            lock_district(conn, district.id)
            with Session(bind=conn, expire_on_commit=False) as session:
                return list(
                    session.scalars(
                        select(Upload)
                        .where(Upload.id.in_(upload_ids), Upload.state.notin_(UNFINISHED_STATES))
                        .order_by(Upload.id)
                    )
                )

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

        with Session(self.reader, expire_on_commit=False) as session:
            return session.get(Upload, upload_id)

    def find_upload_by_slack_file(self, slack_file_id: str) -> Upload | None:
        """The latest share of a Slack file."""
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

        with Session(self.reader, expire_on_commit=False) as session:
            found = session.scalars(
                select(Upload)
                .where(
                    Upload.slack_channel == channel,
                    Upload.slack_thread_ts == thread_ts,
                    Upload.state.in_(REPORTED_STATES),
                )
                .order_by(Upload.id)
            )
            latest = {
                f"{u.slack_file_id}:{u.district_id}" if u.slack_file_id else f"id:{u.id}": u
                for u in found
            }
        return list(latest.values())

    def district_key_of(self, upload: Upload) -> str | None:
        if upload.district_id is None:
            return None
        with self.reader.connect() as conn:
            return conn.execute(
                select(District.key).where(District.id == upload.district_id)
            ).scalar()

    def recent_uploads(self, district_key: str, limit: int = 10) -> list[Upload]:
        from sqlalchemy.orm import Session

        district = self.district(district_key)
        with Session(self.reader, expire_on_commit=False) as session:
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

        with Session(self.reader, expire_on_commit=False) as session:
            return list(
                session.scalars(
                    select(Upload).where(Upload.state.in_(UNFINISHED_STATES)).order_by(Upload.id)
                )
            )

    def _one_upload(self, *where) -> Upload | None:
        from sqlalchemy.orm import Session

        with Session(self.reader, expire_on_commit=False) as session:
            return session.scalars(
                select(Upload).where(*where).order_by(Upload.id.desc()).limit(1)
            ).first()


_DISTRICT_COLUMNS = (
    District.id,
    District.key,
    District.name,
    District.enrollment_source,
    District.team_id,
)


def auto_upgrade() -> bool:
    """Whether a process upgrades the schema on start (ROSTERBOT_AUTO_UPGRADE, default on)."""
    return os.environ.get("ROSTERBOT_AUTO_UPGRADE", "1").strip().lower() not in ("0", "no", "false")


def prepare_schema(engine: Engine) -> None:
    """Bring the database to this code's schema on start (see roster.schema).

    The Alembic revisions first (or, with ROSTERBOT_AUTO_UPGRADE=0, a refusal when the
    database is behind: deployments run `rosterbot db upgrade`).  Then, until they get a
    revision of their own, tables of the models no revision creates yet and the columns of
    models.ADDED_COLUMNS (docs/deploy.md "Adding a table or a column" says how to turn them
    into a revision).
    """
    if auto_upgrade():
        schema.upgrade(engine)
    elif (why := schema.behind(engine)) is not None:
        raise SchemaBehind(why)
    if set(Base.metadata.tables) - set(inspect(engine).get_table_names()):
        Base.metadata.create_all(engine)
    _add_missing_columns(engine)


def _add_missing_columns(engine: Engine) -> None:
    """The columns of models.ADDED_COLUMNS a database lacks, added idempotently.

    Looked at once without a transaction (the usual case: nothing to do), then again inside
    the one that changes the schema, so two processes starting together do not both add a
    column.
    """
    if not _missing_columns(inspect(engine)):
        return
    with engine.begin() as conn:
        for table, column in _missing_columns(inspect(conn)):
            kind = Base.metadata.tables[table].c[column].type.compile(engine.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _missing_columns(found: Any) -> list[tuple[str, str]]:
    tables = set(found.get_table_names())
    return [
        (table, column)
        for table, column in ADDED_COLUMNS
        if table in tables and column not in {c["name"] for c in found.get_columns(table)}
    ]
