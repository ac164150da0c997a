"""Write an UploadPlan inside the caller's transaction, with bulk statements only.

Each kind of change is one executemany (or a chunked `IN` update); new rows come back
with their keys through RETURNING, so no per-row round trip is ever made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
from sqlalchemy import Connection, bindparam, insert, select, update

from roster.models import District, Enrollment, Membership, Person, School, SchoolClass
from roster.plan import UploadPlan
from validation.snapshot import RosterSnapshot

_CHUNK = 5000


def lock_district(conn: Connection, district_id: int) -> None:
    """Serialise uploads of one district: a row lock on PostgreSQL.

    On SQLite every transaction already began with BEGIN IMMEDIATE (the write lock).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(District.id).where(District.id == district_id).with_for_update())


def _records(frame: pd.DataFrame, renames: dict[str, str] | None = None) -> list[dict]:
    if renames:
        frame = frame.rename(columns=renames)
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _chunks(items: Sequence, size: int = _CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _update_many(conn: Connection, table, rows: list[dict], fields: Sequence[str]) -> None:
    if not rows:
        return
    stmt = (update(table).where(table.c.id == bindparam("_id"))
            .values({f: bindparam(f"_{f}") for f in fields}))
    conn.execute(stmt, [{f"_{k}": v for k, v in row.items()} for row in rows])


def _deactivate(conn: Connection, table, ids: list[int]) -> None:
    for chunk in _chunks(ids):
        conn.execute(update(table).where(table.c.id.in_(chunk)).values(active=False))


def apply_plan(conn: Connection, district_id: int, plan: UploadPlan, snap: RosterSnapshot,
               id_changes: dict[str, str]) -> None:
    people_t, classes_t = Person.__table__, SchoolClass.__table__
    enroll_t = Enrollment.__table__
    school_pk = dict(conn.execute(select(School.org_sis_id, School.id)
                                  .where(School.district_id == district_id)).all())

    # people: stored keys (an ID change keeps the stored person under its new userId)
    person_pk = dict(zip(snap.people["user_id"], snap.people["id"].astype("int64")))
    for new, old in id_changes.items():
        if old in person_pk:
            person_pk[new] = person_pk[old]
    if len(plan.people_new):
        rows = _records(plan.people_new)
        for row in rows:
            row.update(district_id=district_id, email_key=row["email"].lower(), active=True)
        result = conn.execute(insert(Person).returning(Person.id, Person.user_id,
                                                       sort_by_parameter_order=True), rows)
        person_pk.update({user_id: pk for pk, user_id in result.all()})
    if len(plan.people_changed):
        rows = _records(plan.people_changed)
        for row in rows:
            row.update(email_key=row["email"].lower(), active=True)
        _update_many(conn, people_t, rows, [k for k in rows[0] if k != "id"])
    if len(plan.memberships_new):
        conn.execute(insert(Membership), [
            {"person_id": person_pk[u], "school_id": school_pk[o]}
            for u, o in zip(plan.memberships_new["user_id"], plan.memberships_new["org_sis_id"])
        ])

    # classes
    class_pk = dict(zip(snap.classes["class_id"], snap.classes["id"].astype("int64")))
    if len(plan.classes_new):
        rows = _records(plan.classes_new)
        for row in rows:
            row.update(district_id=district_id, school_id=school_pk[row.pop("org_sis_id")],
                       active=True)
        result = conn.execute(insert(SchoolClass).returning(
            SchoolClass.id, SchoolClass.class_id, sort_by_parameter_order=True), rows)
        class_pk.update({class_id: pk for pk, class_id in result.all()})
    if len(plan.classes_changed):
        rows = _records(plan.classes_changed.drop(columns="class_id"))
        for row in rows:
            row["active"] = True
        _update_many(conn, classes_t, rows, [k for k in rows[0] if k != "id"])

    # enrollments
    if len(plan.enrollments_new):
        conn.execute(insert(Enrollment), [
            {"class_pk": class_pk[c], "person_id": person_pk[u], "is_primary": bool(p),
             "active": True}
            for c, u, p in zip(plan.enrollments_new["class_id"], plan.enrollments_new["user_id"],
                               plan.enrollments_new["is_primary"])
        ])
    if len(plan.enrollments_changed):
        rows = [{"id": int(i), "is_primary": bool(p), "active": True}
                for i, p in zip(plan.enrollments_changed["id"], plan.enrollments_changed["is_primary"])]
        _update_many(conn, enroll_t, rows, ["is_primary", "active"])

    # removals (after adds: a file that adds and removes the same thing ends with it removed)
    _deactivate(conn, classes_t, plan.classes_removed)
    _deactivate(conn, people_t, plan.people_removed)
    _deactivate(conn, enroll_t, plan.enrollments_removed)
    conn.execute(update(District).where(District.id == district_id)
                 .values(roster_version=District.roster_version + 1))
