"""Helpers for tests that go through the store: run an upload, read the roster back."""

from __future__ import annotations

from sqlalchemy import select

from roster.models import Enrollment, Membership, Person, School, SchoolClass
from roster.pipeline import FileResult, InputFile, Settings, run
from roster.store import Store
from tests.builders import users_csv


def upload(
    store: Store, rows, apply: bool = True, district: str = "d1", name: str = "users.csv", **kwargs
) -> FileResult:
    data = rows if isinstance(rows, bytes) else users_csv(rows)
    kwargs.setdefault("settings", Settings())
    result = run(store, district, [InputFile(name, data)], apply=apply, actor="test", **kwargs)
    return result.files[0]


def codes(result: FileResult) -> list[str]:
    return [i["code"] for i in result.issues]


def issues_by_row(result: FileResult) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for i in result.issues:
        out.setdefault(i["row"], []).append(i["code"])
    return out


def roster_state(store: Store) -> dict[str, list[tuple]]:
    """Every roster table as sorted tuples: equal states mean nothing changed."""
    with store.engine.connect() as conn:
        people = conn.execute(
            select(
                Person.user_id,
                Person.email,
                Person.first_name,
                Person.last_name,
                Person.role,
                Person.grade,
                Person.district_sis_id,
                Person.state_sis_id,
                Person.active,
            )
        ).all()
        members = conn.execute(
            select(Person.user_id, School.org_sis_id)
            .select_from(Membership)
            .join(Person, Person.id == Membership.person_id)
            .join(School, School.id == Membership.school_id)
        ).all()
        classes = conn.execute(
            select(
                SchoolClass.class_id,
                School.org_sis_id,
                SchoolClass.name,
                SchoolClass.grade,
                SchoolClass.display_name,
                SchoolClass.subject,
                SchoolClass.active,
            ).join(School, School.id == SchoolClass.school_id)
        ).all()
        enrollments = conn.execute(
            select(SchoolClass.class_id, Person.user_id, Enrollment.is_primary, Enrollment.active)
            .select_from(Enrollment)
            .join(SchoolClass, SchoolClass.id == Enrollment.class_pk)
            .join(Person, Person.id == Enrollment.person_id)
        ).all()
    return {
        name: sorted(tuple(r) for r in rows)
        for name, rows in (
            ("people", people),
            ("memberships", members),
            ("classes", classes),
            ("enrollments", enrollments),
        )
    }


def person(store: Store, user_id: str) -> dict | None:
    state = roster_state(store)["people"]
    keys = (
        "user_id",
        "email",
        "first_name",
        "last_name",
        "role",
        "grade",
        "district_sis_id",
        "state_sis_id",
        "active",
    )
    found = [dict(zip(keys, p)) for p in state if p[0] == user_id]
    return found[0] if found else None


def active_enrollments(store: Store, class_id: str | None = None) -> set[tuple[str, str]]:
    return {
        (c, u)
        for c, u, _p, active in roster_state(store)["enrollments"]
        if active and (class_id is None or c == class_id)
    }
