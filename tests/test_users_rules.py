"""users.csv row rules (users-csv.md section 4): every row-level code, on the right cell.

Each case is a minimal file: the clean base (a primary teacher and a student in MATH5 at
school 0101) with one thing changed, optionally after a first upload that stores a roster.
The expected severities below are copied from the spec's table, not from the catalog, so a
catalog edit that changes what a user sees fails here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from roster.models import Person, SchoolClass
from roster.pipeline import FileResult, InputFile, Settings, run
from roster.store import Store
from tests.builders import SCHOOLS, class_of, row, student, teacher, users_csv
from validation.catalog import CATALOG
from validation.dictionary import CLASS_GROUP, USERS_HEADERS
from validation.templates import template_csv

# --- helpers ----------------------------------------------------------------------------------

CLASS_BLANK = dict(classId="", className="", classGrade="", primary_teacher="")


def base() -> list[dict[str, str]]:
    """Row 2: the primary teacher of MATH5; row 3: student S1 in MATH5."""
    return [teacher(), student(1)]


def upload(
    store: Store, rows, district: str = "d1", apply: bool = False, headers=USERS_HEADERS
) -> FileResult:
    data = rows if isinstance(rows, bytes) else users_csv(rows, headers)
    result = run(
        store,
        district,
        [InputFile("users.csv", data)],
        apply=apply,
        actor="test",
        settings=Settings(),
    )
    return result.files[0]


def add_district(store: Store, key: str, source: str = "batch") -> None:
    store.create_district(key, f"District {key}", source)
    for org, name in SCHOOLS:
        store.add_school(key, org, name)


def found(result: FileResult, code: str) -> list[dict]:
    return [i for i in result.issues if i["code"] == code]


def stored_people(store: Store) -> dict[str, dict]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(Person.user_id, Person.grade, Person.role, Person.email, Person.first_name)
        ).all()
    return {r.user_id: r._asdict() for r in rows}


def stored_class_grades(store: Store) -> dict[str, str]:
    with store.engine.connect() as conn:
        return dict(conn.execute(select(SchoolClass.class_id, SchoolClass.grade)).all())


# --- the table --------------------------------------------------------------------------------


@dataclass
class Case:
    code: str
    rows: list[dict[str, str]] | bytes
    #: (spreadsheet row, column) of every issue with `code` the file must produce
    expect: set[tuple[int, str | None]]
    severity: str
    #: uploaded (applied) first: (district, rows)
    stored: list[tuple[str, list[dict[str, str]]]] = field(default_factory=list)
    district: str = "d1"
    #: districts created before the stored uploads: (key, enrollment source)
    districts: list[tuple[str, str]] = field(default_factory=list)
    headers: tuple[str, ...] = USERS_HEADERS
    id: str = ""


E, W = "error", "warning"
LONG_NAME = "N" * 101
NO_CLASS_HEADERS = tuple(h for h in USERS_HEADERS if h not in CLASS_GROUP)
LONG_CLASS = "C" * 256


def _ragged_file() -> bytes:
    good = users_csv(base())
    extra = ",".join(["", "0101", "S7", "Al", "Ng", "s7@example.org", "student", "05"] + [""] * 9)
    return good + extra.encode() + b"\r\n"


CASES: list[Case] = [
    # action
    Case("ACTION_INVALID", [teacher(), student(1, action="REMOVE-CLAS")], {(3, "action")}, E),
    Case(
        "ACTION_INVALID",
        [teacher(), row(action="DELETE", userFirstName="", userLastName="", userEmail="")],
        {(3, "action")},
        E,
        id="delete",
    ),
    Case(
        "ACTION_NEEDS_CLASS",
        [teacher(), row(action="REMOVE-CLASS", classId="", className="", classGrade="")],
        {(3, "action")},
        E,
        stored=[("d1", base())],
        id="remove-class",
    ),
    Case(
        "ACTION_NEEDS_CLASS",
        [teacher(), row(action="REMOVE-ENROLLMENT", classId="")],
        {(3, "action")},
        E,
        stored=[("d1", base())],
        id="remove-enrollment",
    ),
    Case(
        "ACTION_NEEDS_CLASS",
        [teacher(), row(action="REMOVE-CLASS")],
        {(3, "action")},
        E,
        stored=[("d1", base())],
        headers=NO_CLASS_HEADERS,
        id="file-without-class-columns",
    ),
    Case(
        "ACTION_CLASS_NOT_FOUND",
        [teacher(), row(action="REMOVE-CLASS", classId="NOPE")],
        {(3, "classId")},
        E,
        stored=[("d1", base())],
    ),
    Case(
        "ACTION_USER_NOT_FOUND",
        [teacher(), row(action="DEACTIVATE-USER", userId="GHOST")],
        {(3, "userId")},
        E,
        stored=[("d1", base())],
        id="deactivate",
    ),
    Case(
        "ACTION_USER_NOT_FOUND",
        [teacher(), row(action="REMOVE-ENROLLMENT", userId="GHOST")],
        {(3, "userId")},
        E,
        stored=[("d1", base())],
        id="remove-enrollment",
    ),
    Case(
        "ACTION_ENROLLMENT_NOT_FOUND",
        [teacher(), row(action="REMOVE-ENROLLMENT", userId="S2", classId="MATH5")],
        {(3, "userId")},
        W,
        stored=[("d1", base() + [student(2, **CLASS_BLANK)])],
    ),
    # org_sis_id
    Case("ORG_REQUIRED", [teacher(), student(1, org_sis_id="")], {(3, "org_sis_id")}, E),
    Case("ORG_NOT_FOUND", [teacher(), student(1, org_sis_id="0999")], {(3, "org_sis_id")}, E),
    Case("ORG_EXCEL", [teacher(), student(1, org_sis_id="1.01E+03")], {(3, "org_sis_id")}, E),
    Case(
        "ORG_CLASS_MISMATCH",
        [teacher(), student(1, org_sis_id="0202")],
        {(2, "org_sis_id"), (3, "org_sis_id")},
        E,
        id="rows-disagree",
    ),
    Case(
        "ORG_CLASS_MISMATCH",
        [student(2, org_sis_id="0202")],
        {(2, "org_sis_id")},
        E,
        stored=[("d1", base())],
        id="stored-elsewhere",
    ),
    # userId
    Case("USERID_REQUIRED", [teacher(), student(1, userId="")], {(3, "userId")}, E),
    Case("USERID_INVALID", [teacher(), student(1, userId="S 1")], {(3, "userId")}, E, id="space"),
    Case(
        "USERID_INVALID",
        [teacher(), student(1, userId="S" * 65)],
        {(3, "userId")},
        E,
        id="too-long",
    ),
    Case(
        "USERID_INVALID",
        [teacher(), student(1, userDistrictId="D#1")],
        {(3, "userDistrictId")},
        E,
        id="districtId",
    ),
    Case("USERID_EXCEL", [teacher(), student(1, userId="1.23457E+11")], {(3, "userId")}, E),
    Case("USERID_EXCEL", [teacher(), student(1, userId="3-Aug")], {(3, "userId")}, E, id="date"),
    Case(
        "USERID_ZEROS_LOST",
        [teacher(), student(1, userId="4500")],
        {(3, "userId")},
        E,
        stored=[("d1", [teacher(), student(1, userId="004500")])],
        id="same-email",
    ),
    Case(
        "USERID_ZEROS_LOST",
        [teacher(), student(1, userId="4500", userEmail="ava.n@example.org")],
        {(3, "userId")},
        E,
        stored=[("d1", [teacher(), student(1, userId="004500")])],
        id="same-name",
    ),
    Case(
        "USERID_EXCEL",
        [teacher(), student(1, userStateId="9.87E+10")],
        {(3, "userStateId")},
        E,
        id="stateId",
    ),
    Case(
        "USER_CONFLICT",
        [teacher(), student(1), student(1, userFirstName="Eva", **CLASS_BLANK)],
        {(3, "userFirstName"), (4, "userFirstName")},
        E,
    ),
    Case(
        "USER_CONFLICT",
        [teacher(), student(1), student(1, userGrade="06", **CLASS_BLANK)],
        {(3, "userGrade"), (4, "userGrade")},
        E,
        id="grade",
    ),
    Case(
        "USERID_ROLE_CHANGE",
        [teacher(), student(1, userRole="teacher", userGrade="")],
        {(3, "userId")},
        E,
        stored=[("d1", base())],
    ),
    Case(
        "USERID_CHANGED",
        [teacher(), student(1, userId="S1-NEW")],
        {(3, "userId")},
        W,
        stored=[("d1", base())],
    ),
    # names
    Case(
        "FIRSTNAME_REQUIRED", [teacher(), student(1, userFirstName="")], {(3, "userFirstName")}, E
    ),
    Case("LASTNAME_REQUIRED", [teacher(), student(1, userLastName="")], {(3, "userLastName")}, E),
    Case(
        "NAME_TOO_LONG",
        [teacher(), student(1, userFirstName=LONG_NAME)],
        {(3, "userFirstName")},
        E,
        id="first",
    ),
    Case(
        "NAME_TOO_LONG",
        [teacher(), student(1, userLastName=LONG_NAME)],
        {(3, "userLastName")},
        E,
        id="last",
    ),
    # email
    Case("EMAIL_REQUIRED", [teacher(), student(1, userEmail="")], {(3, "userEmail")}, E),
    Case(
        "EMAIL_INVALID",
        [teacher(), student(1, userEmail="s1.example.org")],
        {(3, "userEmail")},
        E,
        id="no-at",
    ),
    Case(
        "EMAIL_INVALID",
        [teacher(), student(1, userEmail="s 1@example.org")],
        {(3, "userEmail")},
        E,
        id="space",
    ),
    Case(
        "EMAIL_INVALID",
        [teacher(), student(1, userEmail="s1@@example.org")],
        {(3, "userEmail")},
        E,
        id="two-at",
    ),
    Case(
        "EMAIL_INVALID",
        [teacher(), student(1, userEmail="s1@example")],
        {(3, "userEmail")},
        E,
        id="no-tld",
    ),
    Case(
        "EMAIL_INVALID",
        [teacher(), student(1, userEmail="s" * 243 + "@example.org")],
        {(3, "userEmail")},
        E,
        id="too-long",
    ),
    Case(
        "EMAIL_AMPLIFY_DOMAIN",
        [teacher(), student(1, userEmail="s1@amplify.com")],
        {(3, "userEmail")},
        E,
    ),
    Case(
        "EMAIL_AMPLIFY_DOMAIN",
        [teacher(), student(1, userEmail="s1@Mail.Amplify.com")],
        {(3, "userEmail")},
        E,
        id="subdomain",
    ),
    Case(
        "EMAIL_AMPLIFY_DOMAIN",
        [teacher(), student(1, userEmail="s1@amplify.org")],
        {(3, "userEmail")},
        E,
        id="amplify-dot",
    ),
    Case(
        "EMAIL_DUPLICATE",
        [teacher(), student(1), student(2, userEmail="S1@Example.org")],
        {(3, "userEmail"), (4, "userEmail")},
        E,
    ),
    Case(
        "EMAIL_TAKEN",
        [teacher(), student(1, userEmail="s9@example.org")],
        {(3, "userEmail")},
        E,
        districts=[("d2", "batch")],
        stored=[("d2", [student(9, userId="X9", classId="OTHER")])],
        id="other-district",
    ),
    Case(
        "EMAIL_TAKEN",
        [teacher(), student(2, userEmail="s1@example.org")],
        {(3, "userEmail")},
        E,
        stored=[("d1", base() + [student(2)])],
        id="same-district",
    ),
    # role
    Case("ROLE_INVALID", [teacher(), student(1, userRole="pupil")], {(3, "userRole")}, E),
    Case(
        "ROLE_NOT_ALLOWED",
        base(),
        {(3, "userRole")},
        E,
        district="d3",
        districts=[("d3", "clever")],
    ),
    # grade
    Case("USERGRADE_REQUIRED", [teacher(), student(1, userGrade="")], {(3, "userGrade")}, E),
    Case("USERGRADE_INVALID", [teacher(), student(1, userGrade="5th")], {(3, "userGrade")}, E),
    Case(
        "USERGRADE_INVALID", [teacher(), student(1, userGrade="14")], {(3, "userGrade")}, E, id="14"
    ),
    Case("USERGRADE_NORMALIZED", [teacher(), student(1, userGrade="K")], {(3, "userGrade")}, W),
    Case("USERGRADE_IGNORED", [teacher(userGrade="05"), student(1)], {(2, "userGrade")}, W),
    # classId
    Case("CLASSID_REQUIRED", [teacher(), student(1, classId="")], {(3, "classId")}, E),
    Case("CLASSID_INVALID", [teacher(), student(1, classId="MATH 5")], {(3, "classId")}, E),
    Case("CLASSID_EXCEL", [teacher(), student(1, classId="1.2E+05")], {(3, "classId")}, E),
    Case(
        "CLASSID_EXCEL",
        [teacher(classId="3-Aug"), student(1, classId="3-Aug")],
        {(2, "classId"), (3, "classId")},
        E,
        id="date",
    ),
    Case(
        "CLASSID_EXCEL",
        [teacher(classId="2024-08-03"), student(1, classId="2024-08-03")],
        {(2, "classId"), (3, "classId")},
        E,
        id="iso-date",
    ),
    Case(
        "CLASSID_ZEROS_LOST",
        [teacher(classId="42"), student(1, classId="42")],
        {(2, "classId"), (3, "classId")},
        E,
        stored=[("d1", [teacher(classId="0042"), student(1, classId="0042")])],
    ),
    # className
    Case("CLASSNAME_REQUIRED", [teacher(), student(1, className="")], {(3, "className")}, E),
    Case(
        "CLASSNAME_CONFLICT",
        [teacher(), student(1, className="Maths 5")],
        {(2, "className"), (3, "className")},
        E,
    ),
    Case(
        "CLASSNAME_TOO_LONG",
        [teacher(className=LONG_CLASS), student(1, className=LONG_CLASS)],
        {(2, "className"), (3, "className")},
        E,
    ),
    # classGrade
    Case("CLASSGRADE_REQUIRED", [teacher(), student(1, classGrade="")], {(3, "classGrade")}, E),
    Case("CLASSGRADE_INVALID", [teacher(), student(1, classGrade="14")], {(3, "classGrade")}, E),
    Case(
        "CLASSGRADE_INVALID",
        [teacher(), student(1, classGrade="03,14")],
        {(3, "classGrade")},
        E,
        id="in-list",
    ),
    Case(
        "CLASSGRADE_CONFLICT",
        [teacher(), student(1, classGrade="06")],
        {(2, "classGrade"), (3, "classGrade")},
        E,
    ),
    Case(
        "CLASSGRADE_NORMALIZED",
        [teacher(classGrade="5"), student(1, classGrade="5")],
        {(2, "classGrade"), (3, "classGrade")},
        W,
    ),
    # primary_teacher
    Case(
        "PRIMARY_TEACHER_INVALID",
        [teacher(primary_teacher="maybe"), student(1)],
        {(2, "primary_teacher")},
        E,
    ),
    Case(
        "PRIMARY_TEACHER_NOT_STAFF",
        [teacher(), student(1, primary_teacher="Y")],
        {(3, "primary_teacher")},
        E,
    ),
    Case(
        "PRIMARY_TEACHER_NO_CLASS",
        [
            teacher(),
            teacher(
                userId="T2", userEmail="t2@example.org", **{**CLASS_BLANK, "primary_teacher": "Y"}
            ),
            student(1),
        ],
        {(3, "primary_teacher")},
        W,
    ),
    # class, after apply (reported on the class's first row)
    Case(
        "CLASS_NO_PRIMARY_TEACHER", [teacher(primary_teacher="N"), student(1)], {(2, "classId")}, W
    ),
    Case(
        "CLASS_MULTIPLE_PRIMARY",
        [teacher(), student(1), teacher(userId="T2", userEmail="t2@example.org")],
        {(2, "classId")},
        W,
    ),
    Case("CLASS_SIZE", class_of(81), {(2, "classId")}, W),
    # Failed
    Case("ROW_FIELD_COUNT", _ragged_file(), {(4, None)}, E),
    Case("TEMPLATE_EXAMPLE_ROW", template_csv("users"), {(2, None), (3, None), (4, None)}, E),
]


def _case_id(case: Case) -> str:
    return case.code + (f"-{case.id}" if case.id else "")


@pytest.fixture
def roster(sqlite_store, sdistrict) -> Store:
    """A fresh store with district d1, for tests that apply or need a stored roster."""
    return sqlite_store


@pytest.fixture(scope="module")
def checker(tmp_path_factory) -> Store:
    """One store for check-only tests that need no stored people (d1, and d3 on Clever).

    Check runs commit nothing to the roster, so sharing it keeps the module fast.
    """
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('checker') / 'roster.sqlite3'}")
    add_district(store, "d1")
    add_district(store, "d3", "clever")
    yield store
    store.dispose()


def _run_case(store: Store, case: Case) -> FileResult:
    for key, source in case.districts:
        if store.get_district(key) is None:
            add_district(store, key, source)
    for key, rows in case.stored:
        first = upload(store, rows, district=key, apply=True)
        assert first.applied and first.status == "completed", first.issues
    return upload(store, case.rows, district=case.district, headers=case.headers)


def test_clean_base_has_no_issue(checker):
    result = upload(checker, base())
    assert result.issues == []
    assert result.file_issues == []
    assert result.status == "completed"
    assert result.report_bytes is None


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_rule_fires_on_its_cell(request, case):
    fresh = case.stored or any(key != "d3" for key, _ in case.districts)
    result = _run_case(request.getfixturevalue("roster" if fresh else "checker"), case)
    hits = found(result, case.code)
    where = {
        (i["row"], i["column"] if None not in {c for _, c in case.expect} else None) for i in hits
    }
    assert where == case.expect, (
        f"{case.code}: got {[(i['row'], i['column']) for i in hits]}; "
        f"all issues: {[(i['row'], i['code']) for i in result.issues]}"
    )
    for issue in hits:
        assert issue["severity"] == case.severity
        assert issue["message"] and issue["fix"], issue
        assert "{" not in issue["message"], f"unrendered template: {issue['message']}"
    # the value is what the named cell holds (trimmed), so a user can find it
    data = case.rows if isinstance(case.rows, list) else None
    if data is not None:
        for issue in hits:
            cell = data[issue["row"] - 2].get(issue["column"], "").strip()
            assert issue["value"] == cell, issue
    expected_status = "completed_with_errors" if case.severity == E else "completed"
    if case.severity == W:
        assert not [i for i in result.issues if i["severity"] == E], result.issues
    assert result.status == expected_status


def test_every_row_code_has_a_case():
    row_codes = {
        c.code
        for c in CATALOG.values()
        if c.group not in ("file", "header", "demographics") and c.code != "FAILED"
    }
    covered = {c.code for c in CASES}
    assert row_codes - covered == set(), "row codes without a test case"
    assert covered - set(CATALOG) == set(), "cases for codes the catalog does not have"


def test_spec_severities_match_catalog():
    """The table's severities come from the spec; the catalog must agree."""
    for case in CASES:
        assert str(CATALOG[case.code].severity) == case.severity, case.code


# --- every rule on every row ------------------------------------------------------------------


def test_blank_user_id_row_still_gets_its_email_issue(checker):
    result = upload(checker, [teacher(), student(1, userId="", userEmail="not-an-email")])
    on_row = {(i["code"], i["column"]) for i in result.issues if i["row"] == 3}
    assert ("USERID_REQUIRED", "userId") in on_row
    assert ("EMAIL_INVALID", "userEmail") in on_row


def test_unknown_action_row_still_gets_value_issues(checker):
    result = upload(checker, [teacher(), student(1, action="ADD", userGrade="99")])
    on_row = {i["code"] for i in result.issues if i["row"] == 3}
    assert {"ACTION_INVALID", "USERGRADE_INVALID"} <= on_row


def test_blank_school_row_still_gets_its_name_issue(checker):
    result = upload(checker, [teacher(), student(1, org_sis_id="", userLastName="")])
    on_row = {i["code"] for i in result.issues if i["row"] == 3}
    assert {"ORG_REQUIRED", "LASTNAME_REQUIRED"} <= on_row


def test_one_row_gets_every_issue_that_applies(checker):
    bad = student(
        1,
        userFirstName="",
        userEmail="a b@x",
        userGrade="Z",
        classGrade="99",
        primary_teacher="maybe",
    )
    result = upload(checker, [teacher(), bad])
    on_row = [(i["code"], i["column"]) for i in result.issues if i["row"] == 3]
    assert set(on_row) == {
        ("FIRSTNAME_REQUIRED", "userFirstName"),
        ("EMAIL_INVALID", "userEmail"),
        ("USERGRADE_INVALID", "userGrade"),
        ("CLASSGRADE_INVALID", "classGrade"),
        ("PRIMARY_TEACHER_INVALID", "primary_teacher"),
    }
    # issues of a row are listed in the file's column order
    columns = [c for _, c in on_row]
    assert columns == sorted(columns, key=USERS_HEADERS.index)
    assert result.rows["rejected"] == 1


def test_issues_come_in_row_order(checker):
    rows = [teacher(), student(1, userGrade="Z"), student(2), student(3, userEmail="")]
    result = upload(checker, rows)
    assert [i["row"] for i in result.issues] == [3, 5]


# --- suggestions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("REMOVE-CLAS", "REMOVE-CLASS"),
        ("remove enrollment", "REMOVE-ENROLLMENT"),
        ("DEACTIVATE", "DEACTIVATE-USER"),
    ],
)
def test_invalid_action_suggests_the_closest(checker, typed, meant):
    result = upload(checker, [teacher(), student(1, action=typed)])
    (issue,) = found(result, "ACTION_INVALID")
    assert issue["value"] == typed
    assert f"did you mean {meant}?" in issue["message"]


def test_invalid_action_without_a_close_match_has_no_suggestion(checker):
    result = upload(checker, [teacher(), student(1, action="xyz")])
    (issue,) = found(result, "ACTION_INVALID")
    assert "did you mean" not in issue["message"]


def test_action_is_case_insensitive(roster):
    upload(roster, base() + [student(2)], apply=True)
    result = upload(roster, [teacher(), row(action="deactivate-user", userId="S2")])
    assert result.issues == []
    assert result.counts["student"]["removed"] == 1


def test_school_without_leading_zeros_suggests_the_stored_id(checker):
    result = upload(checker, [teacher(), student(1, org_sis_id="101")])
    (issue,) = found(result, "ORG_NOT_FOUND")
    assert issue["value"] == "101"
    assert "0101" in issue["message"]
    assert "leading zero" in issue["message"]


def test_unknown_school_without_a_near_match_has_no_suggestion(checker):
    result = upload(checker, [teacher(), student(1, org_sis_id="0999")])
    (issue,) = found(result, "ORG_NOT_FOUND")
    assert "did you mean" not in issue["message"]


def test_district_with_no_schools_yet_rejects_every_row_with_org_not_found(sqlite_store):
    # a district just created, before its schools are added: a clear error per row, no crash
    sqlite_store.create_district("d9", "District d9", "batch")
    result = upload(sqlite_store, base(), district="d9")
    assert [(i["row"], i["code"]) for i in result.issues] == [
        (2, "ORG_NOT_FOUND"),
        (3, "ORG_NOT_FOUND"),
    ]
    assert all("did you mean" not in i["message"] for i in result.issues)


def test_ids_are_text_so_123_is_not_0123(checker):
    result = upload(checker, [teacher(org_sis_id="202", **CLASS_BLANK), student(1)])
    assert [i["code"] for i in result.issues if i["row"] == 2] == ["ORG_NOT_FOUND"]


# --- grades -----------------------------------------------------------------------------------


GRADE_ALIASES = [
    ("K", "KG"),
    ("k", "KG"),
    ("Kindergarten", "KG"),
    ("1", "01"),
    ("5", "05"),
    ("9", "09"),
    ("Pre-K", "PK"),
    ("PreK", "PK"),
]


def test_grade_aliases_are_normalised_and_stored_normalised(roster):
    """One student and one class per alias (rows 3..): a warning each, stored as the code."""
    rows = [teacher(**CLASS_BLANK)]
    for n, (typed, _) in enumerate(GRADE_ALIASES, start=1):
        rows.append(student(n, userGrade=typed, classId=f"C{n}", classGrade=typed))
        rows.append(
            teacher(
                userId=f"T{n}", userEmail=f"t{n}@example.org", classId=f"C{n}", classGrade=typed
            )
        )
    result = upload(roster, rows, apply=True)
    assert result.status == "completed" and result.applied
    assert not [i for i in result.issues if i["severity"] == E]
    people, classes = stored_people(roster), stored_class_grades(roster)
    for n, (typed, code) in enumerate(GRADE_ALIASES, start=1):
        student_row = 1 + 2 * n
        notes = [i for i in result.issues if i["row"] == student_row]
        assert [(i["code"], i["value"], i["severity"]) for i in notes] == [
            ("USERGRADE_NORMALIZED", typed, W),
            ("CLASSGRADE_NORMALIZED", typed, W),
        ], typed
        assert all(f"'{code}'" in i["message"] for i in notes), notes
        assert [i["code"] for i in result.issues if i["row"] == student_row + 1] == [
            "CLASSGRADE_NORMALIZED"
        ], typed
        assert people[f"S{n}"]["grade"] == code, typed
        assert classes[f"C{n}"] == code, typed


@pytest.mark.parametrize("typed", ["KG", "05", "10", "PK", "Other", "UG"])
def test_grade_code_is_accepted_without_note(checker, typed):
    result = upload(
        checker, [teacher(classGrade=typed), student(1, userGrade=typed, classGrade=typed)]
    )
    assert result.issues == []


def test_class_grade_list_is_accepted(roster):
    result = upload(
        roster, [teacher(classGrade="03,04"), student(1, classGrade="03,04")], apply=True
    )
    assert result.issues == []
    assert stored_class_grades(roster)["MATH5"] == "03,04"


def test_class_grade_list_with_aliases_is_normalised(roster):
    result = upload(roster, [teacher(classGrade="3,4"), student(1, classGrade="3,4")], apply=True)
    notes = found(result, "CLASSGRADE_NORMALIZED")
    assert {i["row"] for i in notes} == {2, 3}
    assert "03,04" in notes[0]["message"]
    assert stored_class_grades(roster)["MATH5"] == "03,04"


def test_class_grade_list_names_the_bad_part(checker):
    result = upload(checker, [teacher(classGrade="03,14"), student(1, classGrade="03,14")])
    issues = found(result, "CLASSGRADE_INVALID")
    assert {i["row"] for i in issues} == {2, 3}
    assert all("14" in i["message"] and i["value"] == "03,14" for i in issues)


def test_staff_grade_is_ignored_not_stored(roster):
    result = upload(roster, [teacher(userGrade="05"), student(1)], apply=True)
    assert [i["code"] for i in result.issues] == ["USERGRADE_IGNORED"]
    assert stored_people(roster)["T1"]["grade"] == ""


# --- remove rows ------------------------------------------------------------------------------


def test_remove_rows_validate_only_their_columns(roster):
    upload(roster, base() + [student(2)], apply=True)
    junk = dict(
        userFirstName="",
        userLastName="",
        userEmail="not an email",
        userRole="pupil",
        userGrade="99",
        className="",
        classGrade="bad",
        primary_teacher="maybe",
        userDistrictId="bad id!",
        userStateId="1E+5",
    )
    rows = [
        row(action="DEACTIVATE-USER", userId="S2", classId="bad id!", **junk),
        row(action="REMOVE-ENROLLMENT", userId="S1", classId="MATH5", **junk),
        row(action="REMOVE-CLASS", userId="who? not read", classId="MATH5", **junk),
    ]
    result = upload(roster, rows)
    assert result.issues == []
    assert result.status == "completed"
    assert (result.counts["student"]["removed"], result.counts["class"]["removed"]) == (1, 1)


def test_remove_row_still_checks_its_school(roster):
    upload(roster, base(), apply=True)
    result = upload(roster, [teacher(), row(action="DEACTIVATE-USER", userId="S1", org_sis_id="")])
    assert [(i["row"], i["code"]) for i in result.issues] == [(3, "ORG_REQUIRED")]


# --- primary_teacher and classId --------------------------------------------------------------


def test_primary_teacher_alone_never_requires_a_class_id(checker):
    rows = [teacher(**{**CLASS_BLANK, "primary_teacher": "Y"}), student(1, **CLASS_BLANK)]
    result = upload(checker, rows)
    assert [(i["row"], i["code"]) for i in result.issues] == [(2, "PRIMARY_TEACHER_NO_CLASS")]


BOOLEANS = {
    "Y": True,
    "yes": True,
    "TRUE": True,
    "1": True,
    "n": False,
    "No": False,
    "false": False,
    "0": False,
    "": False,
}


def test_primary_teacher_booleans(checker):
    """Per value, a class whose second teacher says it: true values make two primaries."""
    rows = []
    for n, value in enumerate(BOOLEANS, start=1):
        rows.append(teacher(classId=f"C{n}"))
        rows.append(
            teacher(
                userId=f"T{n}x",
                userEmail=f"t{n}x@example.org",
                classId=f"C{n}",
                primary_teacher=value,
            )
        )
    result = upload(checker, rows)
    assert not found(result, "PRIMARY_TEACHER_INVALID")
    multiple = {i["value"] for i in found(result, "CLASS_MULTIPLE_PRIMARY")}
    assert multiple == {f"C{n}" for n, v in enumerate(BOOLEANS, start=1) if BOOLEANS[v]}


# --- rows that disagree -----------------------------------------------------------------------


def test_user_conflict_ignores_email_case_and_blanks(checker):
    rows = [
        teacher(),
        student(1),
        student(1, userEmail="S1@EXAMPLE.ORG", userStateId="", **CLASS_BLANK),
        student(1, userDistrictId="D1", **CLASS_BLANK),
    ]
    result = upload(checker, rows)
    assert not found(result, "USER_CONFLICT")


def test_user_conflict_rejects_all_rows_of_the_person(roster):
    rows = [teacher(), student(1), student(1, userLastName="Other", **CLASS_BLANK)]
    result = upload(roster, rows, apply=True)
    assert {i["row"] for i in found(result, "USER_CONFLICT")} == {3, 4}
    assert "S1" not in stored_people(roster)
    assert result.counts["student"]["errors"] == 1


def test_email_taken_in_another_district_is_not_applied(roster):
    add_district(roster, "d2")
    upload(roster, [student(9, userId="X9", classId="OTHER")], district="d2", apply=True)
    result = upload(roster, [teacher(), student(1, userEmail="S9@example.org")], apply=True)
    (issue,) = found(result, "EMAIL_TAKEN")
    assert issue["row"] == 3
    assert "S1" not in stored_people(roster)


def test_id_change_keeps_the_person(roster):
    upload(roster, base(), apply=True)
    result = upload(roster, [teacher(), student(1, userId="S1-NEW")], apply=True)
    (note,) = found(result, "USERID_CHANGED")
    assert "S1" in note["message"] and "S1-NEW" in note["message"]
    assert not found(result, "EMAIL_TAKEN")
    people = stored_people(roster)
    assert "S1-NEW" in people and "S1" not in people


def test_third_party_district_applies_staff_rejects_students(roster):
    add_district(roster, "d3", "clever")
    result = upload(roster, base(), district="d3", apply=True)
    (issue,) = found(result, "ROLE_NOT_ALLOWED")
    assert issue["row"] == 3 and "Clever" in issue["message"]
    people = stored_people(roster)
    assert "T1" in people and "S1" not in people


def test_invalid_id_says_what_is_wrong_with_it(checker):
    result = upload(
        checker,
        [teacher(), student(1, userId="S" * 70), student(2, userId="S 2", classId="MATH#5")],
    )
    messages = {
        (i["row"], i["column"]): i["message"]
        for i in result.issues
        if i["code"] in ("USERID_INVALID", "CLASSID_INVALID")
    }
    assert set(messages) == {(3, "userId"), (4, "userId"), (4, "classId")}
    assert "longer than 64 characters" in messages[3, "userId"]
    assert "characters other than letters" in messages[4, "userId"]
    assert "characters other than letters" in messages[4, "classId"]


@pytest.mark.parametrize(
    "email", ["s1@notamplify.com", "s1@amplifyschools.org", "s1@mail.notamplify.com"]
)
def test_lookalike_domains_are_not_amplify(checker, email):
    result = upload(checker, [teacher(), student(1, userEmail=email)])
    assert not found(result, "EMAIL_AMPLIFY_DOMAIN")


def test_mismatch_and_taken_messages_name_the_class_school_and_owner(roster):
    upload(roster, base() + [student(2)], apply=True)
    moved = upload(roster, [student(3, org_sis_id="0202")])  # MATH5 is stored at 0101
    (issue,) = found(moved, "ORG_CLASS_MISMATCH")
    assert "Class 'MATH5' belongs to school '0101'" in issue["message"]
    # S4 uses the email of S2, who stays in the file (so it is not an ID change)
    taken = upload(roster, [student(2), student(4, userEmail="s2@example.org")])
    (issue,) = found(taken, "EMAIL_TAKEN")
    assert "(userId S2)" in issue["message"]
    split = upload(roster, [teacher(classId="NEW1"), student(5, classId="NEW1", org_sis_id="0202")])
    assert {i["row"] for i in found(split, "ORG_CLASS_MISMATCH")} == {2, 3}
    assert all(
        "Rows for class 'NEW1' give more than one org_sis_id" in i["message"]
        for i in found(split, "ORG_CLASS_MISMATCH")
    )


@pytest.mark.parametrize("typed", ["DELETE", "delete", "Remove", "DROP"])
def test_a_remove_like_action_is_one_error_with_the_closest_action(checker, typed):
    """A DELETE row names a person to take away: it is not read as an add row (no "name
    required" or "email required" errors on top), and the message points to DEACTIVATE-USER."""
    bare = row(
        action=typed, userFirstName="", userLastName="", userEmail="", userRole="", userGrade=""
    )
    result = upload(checker, [teacher(), bare | CLASS_BLANK])
    on_row = [i for i in result.issues if i["row"] == 3]
    assert [i["code"] for i in on_row] == ["ACTION_INVALID"], on_row
    assert "did you mean DEACTIVATE-USER?" in on_row[0]["message"]
    assert result.counts["student"]["created"] == 0


def test_an_add_like_action_says_to_leave_it_blank(checker):
    result = upload(checker, [teacher(), student(1, action="ADD")])
    (issue,) = found(result, "ACTION_INVALID")
    assert "leave it blank to add or update" in issue["message"]
