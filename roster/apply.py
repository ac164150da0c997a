"""Write an UploadPlan inside the caller's transaction, with bulk statements only.

Rows go to the database driver as plain tuples: COPY on PostgreSQL, executemany on SQLite.
Keys of new rows are read back with one query per table, never one per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Table, select, update

from roster.models import District, Enrollment, Membership, Person, School, SchoolClass
from roster.plan import UploadPlan

_CHUNK = 5000


def lock_district(conn: Connection, district_id: int) -> None:
    """Serialise uploads of one district: a row lock on PostgreSQL.

    On SQLite every transaction already began with BEGIN IMMEDIATE (the write lock).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(District.id).where(District.id == district_id).with_for_update())


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[tuple]
) -> None:
    """Bulk insert of tuples in `columns` order, through the driver itself."""
    cols = ", ".join(columns)
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        with dbapi.cursor() as cur, cur.copy(f"COPY {table.name} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    cur = dbapi.cursor()
    try:
        cur.executemany(f"INSERT INTO {table.name} ({cols}) VALUES ({marks})", rows)
    finally:
        cur.close()


def update_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[tuple]
) -> None:
    """Bulk UPDATE by primary key; each tuple is (*values in `columns` order, id)."""
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    sets = ", ".join(f"{c} = {mark}" for c in columns)
    dbapi = conn.connection.dbapi_connection
    cur = dbapi.cursor()
    try:
        cur.executemany(f"UPDATE {table.name} SET {sets} WHERE id = {mark}", list(rows))
    finally:
        cur.close()


def _deactivate(conn: Connection, table: Table, ids: list[int]) -> None:
    for start in range(0, len(ids), _CHUNK):
        conn.execute(
            update(table).where(table.c.id.in_(ids[start : start + _CHUNK])).values(active=False)
        )


def _tuples(frame: pd.DataFrame, columns: Sequence[str], **constants) -> Iterable[tuple]:
    """Rows of `frame` (plus constant columns) as plain Python tuples."""
    arrays = [
        frame[c].astype(object).tolist() if c in frame else [constants[c]] * len(frame)
        for c in columns
    ]
    return zip(*arrays)


def _keys(conn: Connection, column, key, district_id_column, district_id: int) -> pd.Series:
    """The district's key -> primary key map, in one query."""
    rows = conn.execute(
        select(key, column).where(district_id_column == district_id)
    ).cursor.fetchall()
    keys, ids = zip(*rows) if rows else ((), ())
    return pd.Series(np.asarray(ids, dtype=np.int64), index=pd.Index(keys, dtype=object))


def _pk(keys: pd.Series, values: pd.Series) -> list[int]:
    pos = keys.index.get_indexer(values.astype(object))
    if (pos < 0).any():
        raise LookupError("a planned row refers to a key that was not saved")
    return keys.to_numpy()[pos].tolist()


_PERSON_FIELDS = (
    "user_id",
    "email",
    "first_name",
    "last_name",
    "role",
    "grade",
    "district_sis_id",
    "state_sis_id",
)
_CLASS_FIELDS = ("name", "grade", "display_name", "subject")


def apply_plan(conn: Connection, district_id: int, plan: UploadPlan) -> None:
    schools = _keys(conn, School.id, School.org_sis_id, School.district_id, district_id)
    _apply_people(conn, district_id, plan)
    people = None
    if len(plan.memberships_new) or len(plan.enrollments_new):
        people = _keys(conn, Person.id, Person.user_id, Person.district_id, district_id)
    if len(plan.memberships_new):
        m = plan.memberships_new
        insert_rows(
            conn,
            Membership.__table__,
            ("person_id", "school_id"),
            zip(_pk(people, m["user_id"]), _pk(schools, m["org_sis_id"])),
        )
    _apply_classes(conn, district_id, plan, schools)
    _apply_enrollments(conn, district_id, plan, people)
    # removals (after adds: a file that adds and removes the same thing ends with it removed)
    _deactivate(conn, SchoolClass.__table__, plan.classes_removed)
    _deactivate(conn, Person.__table__, plan.people_removed)
    _deactivate(conn, Enrollment.__table__, plan.enrollments_removed)
    _leave_schools(conn, plan, schools)
    conn.execute(
        update(District)
        .where(District.id == district_id)
        .values(roster_version=District.roster_version + 1)
    )


def _leave_schools(conn: Connection, plan: UploadPlan, schools: pd.Series) -> None:
    """Full sync: people who keep another school leave the ones the file no longer has them at."""
    gone = plan.memberships_removed
    if not len(gone):
        return
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    cur = conn.connection.dbapi_connection.cursor()
    try:
        cur.executemany(
            f"DELETE FROM memberships WHERE person_id = {mark} AND school_id = {mark}",
            list(zip(gone["person_pk"].astype(int).tolist(), _pk(schools, gone["org_sis_id"]))),
        )
    finally:
        cur.close()


def _apply_people(conn: Connection, district_id: int, plan: UploadPlan) -> None:
    """People (an ID change keeps the stored row and gives it the new userId)."""
    people_t = Person.__table__
    if len(plan.people_changed):
        changed = plan.people_changed.assign(email_key=plan.people_changed["email"].str.lower())
        update_rows(
            conn,
            people_t,
            (*_PERSON_FIELDS, "email_key", "active"),
            _tuples(changed, (*_PERSON_FIELDS, "email_key", "active", "id"), active=True),
        )
    if len(plan.people_new):
        new = plan.people_new.assign(email_key=plan.people_new["email"].str.lower())
        columns = ("district_id", *_PERSON_FIELDS, "email_key", "active")
        # `active` False: a person the same file adds and then deactivates
        insert_rows(
            conn, people_t, columns, _tuples(new, columns, district_id=district_id, active=True)
        )


def _apply_classes(
    conn: Connection, district_id: int, plan: UploadPlan, schools: pd.Series
) -> None:
    classes_t = SchoolClass.__table__
    if len(plan.classes_changed):
        update_rows(
            conn,
            classes_t,
            (*_CLASS_FIELDS, "active"),
            _tuples(plan.classes_changed, (*_CLASS_FIELDS, "active", "id"), active=True),
        )
    if len(plan.classes_new):
        c = plan.classes_new.assign(school_id=_pk(schools, plan.classes_new["org_sis_id"]))
        columns = ("district_id", "school_id", "class_id", *_CLASS_FIELDS, "active")
        insert_rows(
            conn, classes_t, columns, _tuples(c, columns, district_id=district_id, active=True)
        )


def _apply_enrollments(
    conn: Connection, district_id: int, plan: UploadPlan, people: pd.Series | None
) -> None:
    enroll_t = Enrollment.__table__
    if len(plan.enrollments_changed):
        e = plan.enrollments_changed
        update_rows(
            conn,
            enroll_t,
            ("is_primary", "active"),
            zip(
                e["is_primary"].astype(bool).tolist(), [True] * len(e), e["id"].astype(int).tolist()
            ),
        )
    if len(plan.enrollments_new):
        classes = _keys(
            conn, SchoolClass.id, SchoolClass.class_id, SchoolClass.district_id, district_id
        )
        e = plan.enrollments_new
        insert_rows(
            conn,
            enroll_t,
            ("class_pk", "person_id", "is_primary", "active"),
            zip(
                _pk(classes, e["class_id"]),
                _pk(people, e["user_id"]),
                e["is_primary"].astype(bool).tolist(),
                e["active"].astype(bool).tolist() if "active" in e else [True] * len(e),
            ),
        )
