"""Download: the stored roster as a users.csv that re-uploads with no changes (product.md).

All sixteen users.csv headers in dictionary order, `action` blank, UTF-8 with BOM, every
value as stored (text, so IDs keep their leading zeros).  One row per active person x
school x active class they are actively enrolled in, plus one row with the class columns
blank for each person-school with no active class.  Three queries and pandas; no per-row
round trips.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, select

from roster.models import Enrollment, Membership, Person, School, SchoolClass
from roster.store import DistrictInfo, RosterError, Store
from validation import dictionary as d
from validation.snapshot import THIRD_PARTY_NAMES

#: download kind -> the stored roles it selects
KINDS: dict[str, tuple[str, ...]] = {
    "all": d.ROLES,
    "students": ("student",),
    "staff": ("teacher", "administrator"),
    "admins": ("administrator",),
}
_ROLE_ORDER = {"administrator": 0, "teacher": 1, "student": 2}
#: what the reader strips again: a leading quote before a formula-looking start
_NEEDS_QUOTE = r"^'?[=+\-@\t\r]"


def check_allowed(district: DistrictInfo, kind: str) -> None:
    """Raise RosterError with the reason when `kind` may not be downloaded for `district`."""
    if kind not in KINDS:
        raise RosterError(f"cannot download '{kind}': choose one of {', '.join(KINDS)}")
    if district.third_party and "student" in KINDS[kind]:
        source = THIRD_PARTY_NAMES.get(district.enrollment_source, district.enrollment_source)
        raise RosterError(
            f"district '{district.key}' gets its students from {source}, so only staff and "
            f"admins can be downloaded here; download students from {source} instead"
        )


def download_csv(store: Store, district_key: str, kind: str, school: str | None = None) -> bytes:
    """The roster slice `kind` (all | students | staff | admins) of a district as users.csv bytes.

    Refusals (unknown district or school, a third-party district asking for students or
    all, an unknown kind) raise roster.store.RosterError with the reason.
    """
    district = store.district(district_key)
    check_allowed(district, kind)
    with store.reader.connect() as conn:  # a read: never waits for a running upload
        schools = dict(
            conn.execute(
                select(School.id, School.org_sis_id).where(School.district_id == district.id)
            ).all()
        )
        school_pk = _school_pk(schools, school, district_key)
        person_filter = [
            Person.district_id == district.id,
            Person.active.is_(True),
            Person.role.in_(KINDS[kind]),
        ]
        people = _people(conn, person_filter)
        members, enrolled = _links(conn, district, person_filter, school_pk)
    return _to_csv(_rows(people, members, enrolled, schools))


def _school_pk(schools: dict[int, str], school: str | None, district_key: str) -> int | None:
    """The primary key of the school asked for (None for the whole district)."""
    if school is None:
        return None
    school_pk = next((pk for pk, org in schools.items() if org == school), None)
    if school_pk is None:
        known = ", ".join(sorted(schools.values())) or "none set up yet"
        raise RosterError(
            f"no school '{school}' in district '{district_key}' (its schools: {known})"
        )
    return school_pk


def _people(conn: Connection, person_filter: list) -> pd.DataFrame:
    return _frame(
        conn.execute(
            select(
                Person.id,
                Person.user_id,
                Person.first_name,
                Person.last_name,
                Person.email,
                Person.role,
                Person.grade,
                Person.district_sis_id,
                Person.state_sis_id,
            ).where(*person_filter)
        ).all(),
        [
            "person_id",
            "userId",
            "userFirstName",
            "userLastName",
            "userEmail",
            "userRole",
            "userGrade",
            "userDistrictId",
            "userStateId",
        ],
    )


def _links(
    conn: Connection, district: DistrictInfo, person_filter: list, school_pk: int | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The selected people's memberships and active enrollments (with their classes)."""
    member_stmt = (
        select(Membership.person_id, Membership.school_id)
        .join(Person, Person.id == Membership.person_id)
        .where(*person_filter)
    )
    enroll_stmt = (
        select(
            Enrollment.person_id,
            SchoolClass.school_id,
            SchoolClass.class_id,
            SchoolClass.name,
            SchoolClass.grade,
            Enrollment.is_primary,
            SchoolClass.display_name,
            SchoolClass.subject,
        )
        .join(SchoolClass, SchoolClass.id == Enrollment.class_pk)
        .join(Person, Person.id == Enrollment.person_id)
        .where(
            *person_filter,
            Enrollment.active.is_(True),
            SchoolClass.active.is_(True),
            SchoolClass.district_id == district.id,
        )
    )
    if school_pk is not None:
        member_stmt = member_stmt.where(Membership.school_id == school_pk)
        enroll_stmt = enroll_stmt.where(SchoolClass.school_id == school_pk)
    members = _frame(conn.execute(member_stmt).all(), ["person_id", "school_id"])
    enrolled = _frame(
        conn.execute(enroll_stmt).all(),
        [
            "person_id",
            "school_id",
            "classId",
            "className",
            "classGrade",
            "is_primary",
            "classDisplayName",
            "classSubject",
        ],
    )
    return members, enrolled


def _frame(rows: list, columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=columns)
    return frame.astype(object) if not rows else frame


def _rows(
    people: pd.DataFrame, members: pd.DataFrame, enrolled: pd.DataFrame, schools: dict[int, str]
) -> pd.DataFrame:
    """person x school x class rows (class columns blank where the person has no class)."""
    # a person-school comes from a membership or from a class there (normally both)
    pairs = pd.concat([members, enrolled[["person_id", "school_id"]]]).drop_duplicates()
    rows = pairs.merge(enrolled, on=["person_id", "school_id"], how="left")
    rows = rows.merge(people, on="person_id", how="inner")
    rows["org_sis_id"] = rows["school_id"].map(schools)
    staff = rows["userRole"] != "student"
    has_class = rows["classId"].notna()
    primary = rows["is_primary"].fillna(False).astype(bool)
    rows["primary_teacher"] = ""
    rows.loc[staff & has_class, "primary_teacher"] = primary[staff & has_class].map(
        {True: "Y", False: "N"}
    )
    rows["action"] = ""
    rows = rows.assign(
        _role=rows["userRole"].map(_ROLE_ORDER),
        _noclass=~has_class,
    ).sort_values(
        ["org_sis_id", "_noclass", "classId", "_role", "userId"], kind="stable", na_position="last"
    )
    return rows[list(d.USERS_HEADERS)]


def _to_csv(rows: pd.DataFrame) -> bytes:
    out = rows.astype(object).where(rows.notna(), "").astype(str)
    for name in out.columns:
        col = out[name]
        risky = col.str.contains(_NEEDS_QUOTE, regex=True)
        if risky.any():  # the report's formula escape; the reader strips it on re-upload
            out[name] = col.where(~risky, "'" + col)
    text = out.to_csv(index=False, lineterminator="\r\n")
    return "\ufeff".encode() + text.encode("utf-8")
