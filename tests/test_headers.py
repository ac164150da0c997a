"""users.csv headers (users-csv.md sections 1-2): every header problem at once, nothing applied."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from roster.models import Person, SchoolClass
from roster.pipeline import InputFile, RunResult, Settings, run
from roster.store import Store
from tests.builders import SCHOOLS, student, teacher, users_csv
from validation.dictionary import CLASS_GROUP, CLASS_GROUP_REQUIRED, REPORT_COLUMNS, USERS_HEADERS

NO_CLASS = tuple(h for h in USERS_HEADERS if h not in CLASS_GROUP)
NO_GRADE = tuple(h for h in USERS_HEADERS if h != "userGrade")


def csv_bytes(headers: list[str], rows: list[dict[str, str]]) -> bytes:
    """A file with exactly these header cells; each row gives the value of its header name
    (a misspelt or repeated header reads the value of the header it stands for)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    for r in rows:
        writer.writerow([r.get(_meant(h), "") for h in headers])
    return out.getvalue().encode()


def _meant(header: str) -> str:
    folded = header.strip().casefold()
    return next((h for h in USERS_HEADERS if h.casefold() == folded), header)


def go(store: Store, data: bytes, apply: bool = False) -> RunResult:
    return run(
        store, "d1", [InputFile("users.csv", data)], apply=apply, actor="test", settings=Settings()
    )


def header_issues(result: RunResult) -> list[tuple[str, str]]:
    return sorted((i.code, i.column) for i in result.files[0].file_issues)


BASE_ROWS = [teacher(), student(1)]


def test_the_dictionary_headers_pass(checker):
    result = go(checker, users_csv(BASE_ROWS))
    assert result.files[0].file_issues == [] and result.exit_code == 0


def test_column_order_is_free(checker):
    result = go(checker, users_csv(BASE_ROWS, tuple(reversed(USERS_HEADERS))))
    assert result.files[0].file_issues == [] and result.files[0].issues == []


def test_every_header_problem_is_reported_in_one_pass(checker):
    headers = [h for h in USERS_HEADERS if h != "userLastName"]  # missing
    headers[headers.index("userEmail")] = "UserEmail"  # case
    headers += ["favouriteColour", "userId", ""]  # unknown, duplicate, blank (trailing comma)
    result = go(checker, csv_bytes(headers, BASE_ROWS))
    assert header_issues(result) == sorted(
        [
            ("HEADER_MISSING", "userLastName"),
            ("HEADER_CASE", "userEmail"),
            ("HEADER_UNKNOWN", "favouriteColour"),
            ("HEADER_DUPLICATE", "userId"),
            ("HEADER_BLANK", ""),
        ]
    )
    severities = {i.code: i.severity for i in result.files[0].file_issues}
    assert severities == {
        "HEADER_MISSING": "error",
        "HEADER_CASE": "warning",
        "HEADER_UNKNOWN": "warning",
        "HEADER_DUPLICATE": "error",
        "HEADER_BLANK": "error",
    }
    assert all(i.message and i.fix for i in result.files[0].file_issues)
    assert result.files[0].status == "failed"
    assert result.files[0].issues == []  # rows are not checked against a broken header


@pytest.mark.parametrize(
    "written", ["UserEmail", "useremail", " userEmail", "userEmail ", " USEREMAIL "]
)
def test_wrong_case_or_spaces_is_a_header_case_warning_and_the_column_is_read(checker, written):
    headers = [written if h == "userEmail" else h for h in USERS_HEADERS]
    result = go(checker, csv_bytes(headers, BASE_ROWS))
    (issue,) = result.files[0].file_issues
    assert (issue.code, issue.column, issue.severity) == ("HEADER_CASE", "userEmail", "warning")
    assert "'userEmail'" in issue.message and f"'{written}'" in issue.message
    assert result.files[0].status == "completed"
    assert result.files[0].issues == []  # the emails were read: no EMAIL_REQUIRED


def test_unknown_header_suggests_the_closest(checker):
    headers = [("usrEmail" if h == "userEmail" else h) for h in USERS_HEADERS]
    result = go(checker, csv_bytes(headers, BASE_ROWS))
    by_code = {i.code: i for i in result.files[0].file_issues}
    assert "did you mean userEmail?" in by_code["HEADER_UNKNOWN"].message
    assert "usrEmail" in by_code["HEADER_UNKNOWN"].message
    assert by_code["HEADER_UNKNOWN"].severity == "error"  # its data would be lost
    assert result.files[0].status == "failed"
    assert by_code["HEADER_MISSING"].column == "userEmail"


@pytest.mark.parametrize(
    ("sep", "named"), [(";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")]
)
def test_a_header_of_two_headers_joined_by_another_separator_is_told_to_save_as_comma_csv(
    checker, sep, named
):
    """Three dictionary headers make the reader take the delimiter (FILE_DELIMITER); a header
    cell holding two joined ones still gets the hint."""
    headers = [h for h in USERS_HEADERS if h not in ("userFirstName", "userLastName")]
    headers.append(f"userFirstName{sep}userLastName")
    result = go(checker, csv_bytes(headers, BASE_ROWS))
    f = result.files[0]
    assert f.status == "failed" and not f.applied
    unknown = [i for i in f.file_issues if i.code == "HEADER_UNKNOWN"]
    assert len(unknown) == 1
    assert f"separated by {named}" in unknown[0].message
    assert "CSV UTF-8 (Comma delimited)" in unknown[0].message
    assert "did you mean" not in unknown[0].message


def test_a_header_with_a_semicolon_in_it_is_not_taken_for_a_separator(checker):
    result = go(checker, csv_bytes([*USERS_HEADERS, "notes; internal"], BASE_ROWS))
    (issue,) = result.files[0].file_issues
    assert issue.code == "HEADER_UNKNOWN" and "separated by" not in issue.message


def test_unknown_header_without_a_close_match_has_no_suggestion(checker):
    result = go(checker, csv_bytes([*USERS_HEADERS, "favouriteColour"], BASE_ROWS))
    (issue,) = result.files[0].file_issues
    assert issue.code == "HEADER_UNKNOWN" and "did you mean" not in issue.message


def test_duplicate_header(checker):
    result = go(checker, csv_bytes([*USERS_HEADERS, "userEmail"], BASE_ROWS))
    (issue,) = result.files[0].file_issues
    assert (issue.code, issue.column) == ("HEADER_DUPLICATE", "userEmail")
    assert "userEmail" in issue.message


def test_trailing_comma_is_a_blank_header_naming_the_column(checker):
    result = go(checker, csv_bytes([*USERS_HEADERS, ""], BASE_ROWS))
    (issue,) = result.files[0].file_issues
    assert issue.code == "HEADER_BLANK"
    assert "Q" in issue.message  # the 17th column, as a spreadsheet letters it


def test_every_missing_required_header_is_its_own_issue(checker):
    headers = [h for h in USERS_HEADERS if h not in ("action", "org_sis_id", "userRole")]
    result = go(checker, csv_bytes(headers, BASE_ROWS))
    assert header_issues(result) == [  # action is optional
        ("HEADER_MISSING", "org_sis_id"),
        ("HEADER_MISSING", "userRole"),
    ]


# --- conditional headers ----------------------------------------------------------------------


def test_user_grade_is_not_needed_without_students(checker):
    result = go(
        checker,
        users_csv(
            [teacher(), teacher(userId="T2", userEmail="t2@example.org", primary_teacher="N")],
            NO_GRADE,
        ),
    )
    assert result.files[0].file_issues == []
    assert result.files[0].status == "completed"


def test_user_grade_is_missing_when_a_student_row_exists(checker):
    result = go(checker, users_csv([teacher(), student(1, userRole="Student")], NO_GRADE))
    (issue,) = result.files[0].file_issues
    assert (issue.code, issue.column) == ("HEADER_MISSING", "userGrade")
    assert "student" in issue.message


def test_no_class_columns_at_all_is_fine(checker):
    result = go(checker, users_csv(BASE_ROWS, NO_CLASS))
    assert result.files[0].file_issues == [] and result.files[0].issues == []


@pytest.mark.parametrize("trigger", CLASS_GROUP)
def test_any_class_column_requires_the_class_group(checker, trigger):
    result = go(checker, users_csv(BASE_ROWS, (*NO_CLASS, trigger)))
    missing = {i.column for i in result.files[0].file_issues if i.code == "HEADER_MISSING"}
    assert missing == set(CLASS_GROUP_REQUIRED) - {trigger}
    assert all(i.code == "HEADER_MISSING" for i in result.files[0].file_issues)
    assert result.files[0].status == "failed"


# --- report columns ---------------------------------------------------------------------------


def test_report_columns_are_dropped_without_issue(checker):
    headers = ["row_number", "status", *USERS_HEADERS, "issues", "details", "how_to_fix"]
    rows = [
        dict(
            r,
            row_number="2",
            status="rejected",
            issues="EMAIL_INVALID",
            details="'x' is not valid",
            how_to_fix="Fix it",
        )
        for r in BASE_ROWS
    ]
    result = go(checker, csv_bytes(headers, rows))
    f = result.files[0]
    assert f.file_issues == [] and f.issues == []
    assert f.status == "completed"
    assert sorted(f.dropped_report_columns) == sorted(REPORT_COLUMNS)


# --- a header failure applies nothing ---------------------------------------------------------


def test_header_failure_applies_nothing(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'roster.sqlite3'}")
    try:
        store.create_district("d1", "District One")
        for org, name in SCHOOLS:
            store.add_school("d1", org, name)
        headers = [("usrEmail" if h == "userEmail" else h) for h in USERS_HEADERS]
        result = go(store, csv_bytes(headers, BASE_ROWS), apply=True)
        f = result.files[0]
        assert f.status == "failed" and not f.applied
        assert result.exit_code == 2
        assert result.to_json()["files"][0]["applied"] is False
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Person)).scalar_one() == 0
            assert conn.execute(select(func.count()).select_from(SchoolClass)).scalar_one() == 0
        assert all(c == 0 for counts in f.counts.values() for c in counts.values())
    finally:
        store.dispose()
