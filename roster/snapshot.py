"""Load a district's RosterSnapshot in a handful of queries (no per-row round trips)."""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, Integer, select

from roster.apply import copy_out
from roster.models import Enrollment, Membership, Person, School, SchoolClass
from roster.store import DistrictInfo
from validation.snapshot import (
    CLASS_COLUMNS,
    ENROLLMENT_COLUMNS,
    PEOPLE_COLUMNS,
    RosterSnapshot,
)

_CHUNK = 5000
#: rows fetched from SQLite at a time (see _table)
_FETCH_ROWS = 50_000


def _frame(conn: Connection, stmt, columns: list[str]) -> pd.DataFrame:
    table = _table(conn, stmt, columns)
    if table.num_rows:
        return table.to_pandas()
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _rows(conn: Connection, stmt, width: int) -> pa.Table:
    """The rows of a query of (mostly) integers, as an Arrow table."""
    return _table(conn, stmt, [f"c{i}" for i in range(width)])


def _table(conn: Connection, stmt, columns: list[str]) -> pa.Table:
    """The query's rows as an Arrow table, on both databases.

    PostgreSQL: its text COPY, parsed by Arrow (roster.apply.copy_out).  SQLite: fetched
    _FETCH_ROWS rows at a time and made into Arrow columns chunk by chunk, so a million rows
    never stand in Python as one list of tuples: their objects (~200 MB for the enrollments
    of a 1,000,000-row district) would leave the heap that large for the rest of the upload."""
    if conn.dialect.name == "postgresql":
        return copy_out(conn, stmt, columns)
    types = [_arrow_type(col) for col in stmt.selected_columns]
    cursor = conn.execute(stmt).cursor
    batches = []
    while chunk := cursor.fetchmany(_FETCH_ROWS):
        arrays = [_column(chunk, i, t) for i, t in enumerate(types)]
        batches.append(pa.record_batch(arrays, names=columns))
        del chunk, arrays
    if not batches:
        return pa.table({c: pa.array([], t or pa.null()) for c, t in zip(columns, types)})
    return pa.Table.from_batches(batches).combine_chunks()


def _column(chunk: list[tuple], i: int, kind: pa.DataType | None) -> pa.Array:
    values = map(itemgetter(i), chunk)
    if kind == pa.int64():
        try:  # numpy reads Python integers several times faster than pa.array does
            return pa.array(np.fromiter(values, np.int64, len(chunk)))
        except TypeError:  # a NULL
            values = map(itemgetter(i), chunk)
    return pa.array(list(values), type=kind)


def _arrow_type(column) -> pa.DataType | None:
    """int64 for integer and boolean columns (SQLite hands back 0 and 1), text for text;
    None (inferred) for a type without a Python equivalent."""
    try:
        python = column.type.python_type
    except NotImplementedError:
        return None
    if python in (int, bool):
        return pa.int64()
    return pa.string() if python is str else None


def _by_id(frame: pd.DataFrame, column: str, ids):
    """frame[column] for each primary key in `ids` (all of them are in `frame`); taken in
    Arrow when the column is Arrow-backed text (no Python string per row)."""
    pos = pd.Index(frame["id"].to_numpy(dtype=np.int64)).get_indexer(np.asarray(ids, np.int64))
    if not len(pos):
        return np.zeros(0, dtype=object)
    values = frame[column]
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        taken = pa.array(values).take(pa.array(pos))
        return pd.Series(taken.to_pandas(), dtype=values.dtype).array
    return values.to_numpy(dtype=object).take(pos)


def load_snapshot(
    conn: Connection, district: DistrictInfo, emails: Iterable[str] = ()
) -> RosterSnapshot:
    """Everything the checks and the plan need, for `district`.

    `emails` (lower-cased) are the file's emails: only those are looked up in other districts.
    """
    did = district.id
    schools = conn.execute(select(School.org_sis_id).where(School.district_id == did)).scalars()
    people = _people(conn, did)
    classes = _classes(conn, did)
    memberships = _memberships(conn, did, people)
    enrollments = _enrollments(conn, did, people, classes)
    foreign = _foreign_emails(conn, did, people, emails)
    for frame in (people, classes, enrollments):
        if "active" in frame:
            frame["active"] = frame["active"].astype(bool)
    if len(enrollments):
        enrollments["is_primary"] = enrollments["is_primary"].astype(bool)
    if conn.dialect.name == "sqlite":
        # the pages this read brought into the connection's cache (up to SQLITE_CACHE_KB,
        # 64 MB, for a big district) are not read again: let them go before the check
        conn.exec_driver_sql("PRAGMA shrink_memory")
    return RosterSnapshot(
        enrollment_source=district.enrollment_source,
        schools=frozenset(schools),
        people=people,
        memberships=memberships,
        classes=classes,
        enrollments=enrollments,
        foreign_emails=foreign,
    )


def _people(conn: Connection, did: int) -> pd.DataFrame:
    return _frame(
        conn,
        select(
            Person.id,
            Person.user_id,
            Person.email,
            Person.first_name,
            Person.last_name,
            Person.role,
            Person.grade,
            Person.district_sis_id,
            Person.state_sis_id,
            Person.active,
        ).where(Person.district_id == did),
        PEOPLE_COLUMNS,
    )


def _classes(conn: Connection, did: int) -> pd.DataFrame:
    return _frame(
        conn,
        select(
            SchoolClass.id,
            SchoolClass.class_id,
            School.org_sis_id,
            SchoolClass.name,
            SchoolClass.grade,
            SchoolClass.display_name,
            SchoolClass.subject,
            SchoolClass.active,
        )
        .join(School, School.id == SchoolClass.school_id)
        .where(SchoolClass.district_id == did),
        CLASS_COLUMNS,
    )


# The two big link tables come back as integers only and are given their text keys by
# position (a numpy take), which is far cheaper than a million joined text rows.


def _memberships(conn: Connection, did: int, people: pd.DataFrame) -> pd.DataFrame:
    link = _rows(
        conn,
        select(Membership.person_id, School.org_sis_id)
        .join(School, School.id == Membership.school_id)
        .where(School.district_id == did),
        2,
    )
    person_ids, orgs = link.column(0).to_numpy(), link.column(1).to_numpy()
    return pd.DataFrame(
        {
            "user_id": _by_id(people, "user_id", person_ids),
            "org_sis_id": np.asarray(orgs, dtype=object),
        }
    )


def _enrollments(
    conn: Connection, did: int, people: pd.DataFrame, classes: pd.DataFrame
) -> pd.DataFrame:
    rows = _rows(
        conn,
        select(
            Enrollment.id,
            Enrollment.class_pk,
            Enrollment.person_id,
            Enrollment.is_primary.cast(Integer),
            Enrollment.active.cast(Integer),
        )
        .join(SchoolClass, SchoolClass.id == Enrollment.class_pk)
        .where(SchoolClass.district_id == did),
        5,
    )
    ints = np.column_stack([c.to_numpy() for c in rows.columns]).reshape(-1, 5)
    return pd.DataFrame(
        {
            "id": ints[:, 0],
            "class_id": _by_id(classes, "class_id", ints[:, 1]),
            "user_id": _by_id(people, "user_id", ints[:, 2]),
            "is_primary": ints[:, 3].astype(bool),
            "active": ints[:, 4].astype(bool),
        },
        columns=ENROLLMENT_COLUMNS,
    )


def _foreign_emails(
    conn: Connection, did: int, people: pd.DataFrame, emails: Iterable[str]
) -> frozenset[str]:
    """Which of the file's emails another district already uses (chunked IN queries)."""
    foreign: set[str] = set()
    others = conn.execute(select(Person.id).where(Person.district_id != did).limit(1)).first()
    wanted = []
    if others:  # only a multi-district store needs the cross-district email lookup
        emails = pd.Index(list(emails), dtype=object)
        own = people["email"].str.lower() if len(people) else []
        wanted = sorted(emails[~emails.isin(own) & (emails != "")])
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        foreign.update(
            conn.execute(
                select(Person.email_key).where(
                    Person.email_key.in_(chunk), Person.district_id != did
                )
            ).scalars()
        )
    return frozenset(foreign)
