"""Small builders for users.csv content in tests."""

from __future__ import annotations

import csv
import io

from validation.dictionary import USERS_HEADERS

SCHOOLS = (("0101", "Lincoln Elementary"), ("0202", "Washington Middle"))


def row(**values: str) -> dict[str, str]:
    """A valid add row for a student in MATH5 at 0101, overridden by `values`."""
    base = {
        "action": "",
        "org_sis_id": "0101",
        "userId": "S1",
        "userFirstName": "Ava",
        "userLastName": "Nguyen",
        "userEmail": "s1@example.org",
        "userRole": "student",
        "userGrade": "05",
        "userDistrictId": "",
        "userStateId": "",
        "classId": "MATH5",
        "className": "Math 5",
        "classGrade": "05",
        "primary_teacher": "N",
        "classDisplayName": "",
        "classSubject": "",
    }
    base.update(values)
    return base


def teacher(**values: str) -> dict[str, str]:
    base = dict(
        userId="T1",
        userFirstName="Maria",
        userLastName="Lopez",
        userEmail="t1@example.org",
        userRole="teacher",
        userGrade="",
        primary_teacher="Y",
    )
    base.update(values)
    return row(**base)


def student(n: int, **values: str) -> dict[str, str]:
    base = dict(userId=f"S{n}", userEmail=f"s{n}@example.org", userFirstName=f"First{n}")
    base.update(values)
    return row(**base)


def users_csv(
    rows: list[dict[str, str]],
    headers: tuple[str, ...] | list[str] = USERS_HEADERS,
    encoding: str = "utf-8",
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    for r in rows:
        writer.writerow([r.get(h, "") for h in headers])
    return out.getvalue().encode(encoding)


def class_of(n_students: int, class_id: str = "MATH5", **values: str) -> list[dict[str, str]]:
    """A teacher and n students in one class."""
    rows = [teacher(classId=class_id, **values)]
    rows += [student(i, classId=class_id, **values) for i in range(1, n_students + 1)]
    return rows
