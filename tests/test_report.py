"""The error report users-errors.csv (users-csv.md section 7) and uploading it again."""

from __future__ import annotations

import codecs
import csv
import io

import pytest

from roster.pipeline import FileResult, InputFile, Settings, run
from roster.store import Store
from tests.builders import student, teacher, users_csv
from validation.dictionary import USERS_HEADERS
from validation.report import escape_cell

REPORT_HEAD = ["row_number", "status"]
REPORT_TAIL = ["issues", "details", "how_to_fix"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NO_CLASS = dict(classId="", className="", classGrade="", primary_teacher="")


def check(store: Store, data: bytes, **kwargs) -> FileResult:
    return run(
        store,
        "d1",
        [InputFile("users.csv", data)],
        apply=False,
        actor="test",
        settings=Settings(),
        **kwargs,
    ).files[0]


def read_report(data: bytes) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a report as a spreadsheet would read them (raw cells, no unescape)."""
    assert data.startswith(codecs.BOM_UTF8), "the report must start with a UTF-8 BOM"
    records = list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))
    return records[0], records[1:]


def unescape(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell


# Rows 2-3 are clean; each later row has a different outcome.  No row of the report carries
# a valid class, so the report re-uploaded on its own raises exactly the same issues.
SCENARIO = [
    teacher(),  # 2 clean
    student(1),  # 3 clean
    student(2, userGrade="K", userLastName="+Plus", **NO_CLASS),  # 4 warning
    student(3, classGrade="14"),  # 5 person applied, class not
    student(
        4,
        userId="  S4 ",
        userFirstName="\tTab",
        userLastName="\rReturn",
        userEmail="s4 at example.org",
        **NO_CLASS,
    ),  # 6 rejected
    student(
        5,
        userFirstName='=HYPERLINK("http://evil","x")',
        userLastName="@home",
        userEmail="-bad",
        userGrade="",
        **NO_CLASS,
    ),  # 7 rejected
]
#: a check's report: nothing was applied, so "applicable" (users-csv.md section 7)
STATUSES = {4: "applicable with warnings", 5: "partly applicable", 6: "rejected", 7: "rejected"}


@pytest.fixture(scope="module")
def scenario(checker) -> FileResult:
    return check(checker, users_csv(SCENARIO))


def test_report_columns_and_order(scenario):
    header, _ = read_report(scenario.report_bytes)
    assert header == REPORT_HEAD + list(USERS_HEADERS) + REPORT_TAIL


def test_report_keeps_the_file_s_own_columns_in_their_order(checker):
    headers = (
        "userEmail",
        "userId",
        "action",
        "userLastName",
        "org_sis_id",
        "userRole",
        "userFirstName",
        "userGrade",
    )
    result = check(checker, users_csv([teacher(), student(1, userGrade="Z")], headers))
    header, rows = read_report(result.report_bytes)
    assert header == REPORT_HEAD + list(headers) + REPORT_TAIL
    assert rows[0][2 : 2 + len(headers)] == [student(1, userGrade="Z")[h] for h in headers]


def test_one_line_per_row_with_an_issue_in_row_order(scenario):
    _, rows = read_report(scenario.report_bytes)
    assert [int(r[0]) for r in rows] == sorted({i["row"] for i in scenario.issues})
    assert [int(r[0]) for r in rows] == [4, 5, 6, 7]


def test_statuses(scenario):
    _, rows = read_report(scenario.report_bytes)
    assert {int(r[0]): r[1] for r in rows} == STATUSES
    assert (
        scenario.rows["rejected"],
        scenario.rows["partly_applied"],
        scenario.rows["with_warnings"],
    ) == (2, 1, 1)


def test_original_text_is_kept(scenario):
    header, rows = read_report(scenario.report_bytes)
    for r in rows:
        original = SCENARIO[int(r[0]) - 2]
        cells = dict(zip(header, r))
        assert {h: unescape(cells[h]) for h in USERS_HEADERS} == original
    assert dict(zip(header, rows[2]))["userId"] == "  S4 "  # not trimmed in the report


def test_issues_details_and_fixes_follow_the_row_issues(scenario):
    header, rows = read_report(scenario.report_bytes)
    for r in rows:
        cells = dict(zip(header, r))
        mine = [i for i in scenario.issues if i["row"] == int(r[0])]
        assert cells["issues"] == "; ".join(i["code"] for i in mine)
        for issue in mine:
            assert issue["message"] in unescape(cells["details"])
            assert issue["fix"] in unescape(cells["how_to_fix"])
    row7 = dict(zip(header, rows[3]))
    assert row7["issues"].split("; ") == ["EMAIL_INVALID", "USERGRADE_REQUIRED"]


def test_formula_cells_are_escaped(scenario):
    header, rows = read_report(scenario.report_bytes)
    escaped = []
    for r in rows:
        for name, cell in zip(header, r):
            assert not cell.startswith(FORMULA_STARTS), (name, cell)
            if cell.startswith("'"):
                escaped.append(cell)
    assert sorted(escaped) == sorted(
        ["'+Plus", "'\tTab", "'\rReturn", '\'=HYPERLINK("http://evil","x")', "'@home", "'-bad"]
    )


def test_no_message_starts_with_a_quoted_value():
    """A details cell starting with "'-x'..." would lose its quote when read back, and looks
    like an escaped cell; messages therefore start with words."""
    from validation.catalog import CATALOG

    assert [c.code for c in CATALOG.values() if c.message.startswith(("'", "{value}"))] == []


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_escape_cell(value):
    assert escape_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["", "plain", "'=already", "a=b", " =x"])
def test_escape_cell_leaves_other_text(value):
    assert escape_cell(value) == value


def test_clean_file_has_no_report(checker, tmp_path):
    result = run(
        checker,
        "d1",
        [InputFile("users.csv", users_csv([teacher(), student(1)]))],
        apply=False,
        report_dir=tmp_path,
        settings=Settings(),
    ).files[0]
    assert result.report_bytes is None and result.error_report is None
    assert not (tmp_path / "users-errors.csv").exists()


def test_report_is_written_to_the_report_dir(checker, tmp_path):
    result = run(
        checker,
        "d1",
        [InputFile("users.csv", users_csv(SCENARIO))],
        apply=False,
        report_dir=tmp_path,
        settings=Settings(),
    ).files[0]
    path = tmp_path / "users-errors.csv"
    assert result.error_report == str(path.resolve())
    assert path.read_bytes() == result.report_bytes


def test_warnings_alone_make_a_report(checker):
    result = check(checker, users_csv([teacher(), student(1, userGrade="K")]))
    _, rows = read_report(result.report_bytes)
    assert [(r[0], r[1]) for r in rows] == [("3", "applicable with warnings")]


def test_ragged_row_is_rejected_in_the_report(checker):
    data = users_csv([teacher(), student(1)]) + b",0101,S9,Short\r\n"
    result = check(checker, data)
    header, rows = read_report(result.report_bytes)
    (r,) = rows
    cells = dict(zip(header, r))
    assert (r[0], r[1], cells["issues"]) == ("4", "rejected", "ROW_FIELD_COUNT")
    assert (cells["org_sis_id"], cells["userId"], cells["userFirstName"]) == ("0101", "S9", "Short")


# --- uploading the report again ---------------------------------------------------------------


def test_report_reuploads_without_header_failures_and_same_issues(checker, scenario):
    again = check(checker, scenario.report_bytes)
    assert again.file_issues == []  # no HEADER_*, no encoding note: it is UTF-8 with BOM
    assert sorted(again.dropped_report_columns) == sorted(REPORT_HEAD + REPORT_TAIL)
    _, rows = read_report(scenario.report_bytes)
    original_row = {k + 2: int(r[0]) for k, r in enumerate(rows)}  # report row -> file row

    def per_row(result, mapping=None):
        out: dict[int, list[tuple]] = {}
        for i in result.issues:
            row = mapping[i["row"]] if mapping else i["row"]
            out.setdefault(row, []).append((i["code"], i["column"], i["value"], i["severity"]))
        return out

    assert per_row(again, original_row) == per_row(scenario)
    # the report of the report has the same layout and the same statuses
    header, rows2 = read_report(again.report_bytes)
    assert header == REPORT_HEAD + list(USERS_HEADERS) + REPORT_TAIL
    assert [r[1] for r in rows2] == [r[1] for r in rows]
    assert [r[2:] for r in rows2] == [r[2:] for r in rows]
