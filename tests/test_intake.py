"""Real exports met halfway (issue #12, users-csv.md revision 2 section 1-2): files that a
spreadsheet or an SIS writes are processed like their clean CSV twin, with a warning."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io

import pytest

from roster.pipeline import InputFile, Settings, run
from roster.store import Store
from tests.builders import student, teacher, users_csv
from tests.conftest import set_up_district
from tests.roster_helpers import roster_state
from validation.dictionary import DEMOGRAPHICS_HEADERS, USERS_HEADERS
from validation.headers import MAX_HEADER_ISSUES
from validation.reader import MAX_COLUMNS, read_table

ROWS = [
    teacher(classSubject="2/4/2019"),
    student(1, userId="004500"),
    student(2),
    student(3, classId="", className="", classGrade="", primary_teacher=""),
]


def apply(store: Store, data: bytes, name: str = "users.csv"):
    result = run(
        store, "d1", [InputFile(name, data)], apply=True, actor="test", settings=Settings()
    )
    return result.files[0]


@pytest.fixture
def twin(tmp_path):
    """The clean CSV applied to its own SQLite store: (file result, stored roster)."""
    other = Store(f"sqlite:///{tmp_path / 'twin.sqlite3'}")
    set_up_district(other)
    result = apply(other, users_csv(ROWS))
    assert result.status == "completed" and result.applied and result.file_issues == []
    yield result, roster_state(other)
    other.dispose()


def assert_like_twin(store: Store, data: bytes, twin, *warnings: str, name="users.csv"):
    result = apply(store, data, name)
    clean, state = twin
    assert [i.code for i in result.file_issues] == list(warnings)
    assert all(i.severity == "warning" for i in result.file_issues)
    assert result.applied and result.status == clean.status
    assert result.counts == clean.counts and result.rows == clean.rows
    assert roster_state(store) == state
    return result


def write_csv(headers, rows, sep=",", encoding="utf-8", above: str = "") -> bytes:
    out = io.StringIO()
    out.write(above)
    writer = csv.writer(out, delimiter=sep, lineterminator="\r\n")
    writer.writerow(headers)
    for r in rows:
        writer.writerow([r.get(h, "") for h in headers])
    return out.getvalue().encode(encoding)


# --- the twins --------------------------------------------------------------------------------


def test_a_file_without_action_is_all_add_rows(store, district, twin):
    headers = [h for h in USERS_HEADERS if h != "action"]
    assert_like_twin(store, write_csv(headers, ROWS), twin)


def test_an_extra_sis_column_is_ignored_with_a_warning(store, district, twin):
    rows = [dict(r, Notes=f"note {i}") for i, r in enumerate(ROWS)]
    result = assert_like_twin(
        store, write_csv([*USERS_HEADERS, "Notes"], rows), twin, "HEADER_UNKNOWN"
    )
    (issue,) = result.file_issues
    assert "'Notes'" in issue.message and "ignored" in issue.message


def test_userid_in_another_letter_case_is_read_as_userid(store, district, twin):
    headers = ["UserID" if h == "userId" else h for h in USERS_HEADERS]
    rows = [dict(r, UserID=r["userId"]) for r in ROWS]
    result = assert_like_twin(store, write_csv(headers, rows), twin, "HEADER_CASE")
    assert "'UserID'" in result.file_issues[0].message


def test_semicolon_separated_file(store, district, twin):
    result = assert_like_twin(
        store, write_csv(USERS_HEADERS, ROWS, sep=";"), twin, "FILE_DELIMITER"
    )
    assert "semicolons" in result.file_issues[0].message


def test_tab_separated_utf16_unicode_text(store, district, twin):
    data = codecs.BOM_UTF16_LE + write_csv(USERS_HEADERS, ROWS, sep="\t").decode().encode(
        "utf-16-le"
    )
    result = assert_like_twin(store, data, twin, "FILE_DELIMITER")
    assert "tabs" in result.file_issues[0].message


def test_two_blank_lines_above_the_headers(store, district, twin):
    data = write_csv(USERS_HEADERS, ROWS, above="\r\n,,,,\r\n")
    result = assert_like_twin(store, data, twin, "HEADER_NOT_FIRST_ROW")
    assert "row 3" in result.file_issues[0].message


def test_row_numbers_stay_the_spreadsheets_below_blank_lines(checker):
    bad = [teacher(), student(1, userEmail="not-an-email")]
    data = write_csv(USERS_HEADERS, bad, above="\r\n\r\n")
    result = run(checker, "d1", [InputFile("u.csv", data)], apply=False, settings=Settings())
    rows = {i["row"] for i in result.files[0].issues if i["code"] == "EMAIL_INVALID"}
    assert rows == {5}  # header on row 3, the student on row 5


def xlsx(rows, headers=USERS_HEADERS, title="Sheet1", extra_sheets=()) -> bytes:
    """A workbook as Excel keeps it: IDs as numbers shown with a 0000 format, a date cell."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = title
    sheet.append(list(headers))
    for r in rows:
        values = []
        for h in headers:
            v = r.get(h, "")
            if h in ("org_sis_id", "userId") and v.isdigit():
                values.append(int(v))
            elif h == "classSubject" and v == "2/4/2019":
                values.append(dt.date(2019, 2, 4))
            else:
                values.append(v or None)
        sheet.append(values)
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            h = headers[cell.column - 1]
            if h == "org_sis_id":
                cell.number_format = "0000"
            elif h == "userId" and isinstance(cell.value, int):
                cell.number_format = "000000"
            elif h == "classSubject" and cell.value is not None:
                cell.number_format = "m/d/yyyy"
    for name, content in extra_sheets:
        other = book.create_sheet(name)
        for r in content:
            other.append(r)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_is_read_as_the_spreadsheet_displays_it(store, district, twin):
    result = assert_like_twin(store, xlsx(ROWS), twin, "FILE_WORKBOOK", name="roster.csv")
    assert "'Sheet1'" in result.file_issues[0].message


def test_xlsx_with_several_filled_sheets_reads_the_users_sheet():
    data = xlsx(ROWS, title="Roster users", extra_sheets=[("Notes", [["hello"], ["world"]])])
    book = xlsx(ROWS, title="Roster users")
    # the notes sheet first: still the users sheet is read
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data))
    wb.move_sheet("Notes", offset=-1)
    out = io.BytesIO()
    wb.save(out)
    raw = read_table(out.getvalue())
    assert [i.code for i in raw.file_issues] == ["FILE_WORKBOOK"]
    assert "'Roster users'" in raw.file_issues[0].message
    assert raw.headers == list(USERS_HEADERS)
    assert raw.cells[str(USERS_HEADERS.index("org_sis_id"))].tolist()[0] == "0101"
    assert read_table(book).headers == raw.headers


def test_whole_numbers_have_no_decimal_and_formulas_give_their_cached_value():
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["userId", "birthDate", "white"])
    sheet.append([4500.0, 43500, "=TRUE()"])
    sheet["B2"].number_format = "mm/dd/yyyy"
    out = io.BytesIO()
    book.save(out)
    raw = read_table(out.getvalue())
    assert raw.cells.iloc[0].tolist()[:2] == ["4500", "02/04/2019"]


# --- every new code fires on a minimal file, and not on a clean one -------------------------


CLEAN = users_csv([teacher(), student(1)])


def codes_of(data: bytes) -> list[str]:
    return [i.code for i in read_table(data).file_issues]


@pytest.mark.parametrize(
    "code, data",
    [
        ("FILE_DELIMITER", CLEAN.replace(b",", b"|")),
        ("FILE_WORKBOOK", None),
        ("HEADER_NOT_FIRST_ROW", b"\n" + CLEAN),
        ("FILE_TOO_WIDE", b",".join(b"h%d" % i for i in range(MAX_COLUMNS + 1)) + b"\nx\n"),
        ("FILE_RAGGED", CLEAN.splitlines()[0] + b"\r\n" + b"a\r\n" * 200),
    ],
)
def test_each_new_file_code_fires_on_a_minimal_file(code, data):
    data = xlsx([teacher()]) if data is None else data
    assert code in codes_of(data)
    assert code not in codes_of(CLEAN)


def test_ragged_rows_under_half_stay_row_issues(checker):
    data = (
        CLEAN + b"a\r\n" * 150 + users_csv([student(n) for n in range(3, 200)]).split(b"\r\n", 1)[1]
    )
    result = run(checker, "d1", [InputFile("u.csv", data)], apply=False, settings=Settings())
    f = result.files[0]
    assert "FILE_RAGGED" not in [i.code for i in f.file_issues]
    assert sum(i["code"] == "ROW_FIELD_COUNT" for i in f.issues) == 150


def test_ragged_file_message_gives_counts_and_first_rows():
    data = CLEAN.splitlines()[0] + b"\r\n" + b"\r\n".join([b"x"] * 300) + b"\r\n"
    (issue,) = read_table(data).file_issues
    assert issue.code == "FILE_RAGGED" and issue.severity == "error"
    assert "300 of 300" in issue.message and "rows 2, 3, 4, 5, 6" in issue.message


@pytest.mark.parametrize(
    "data, what",
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, ".xls"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (
            b'<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n<Workbook '
            b'xmlns="urn:schemas-microsoft-com:office:spreadsheet">',
            "SpreadsheetML",
        ),
        (b"<html><body><table><tr><td>userId</td></tr></table>", "HTML"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 20, "archive"),
    ],
)
def test_formats_not_read_are_named(data, what):
    (issue,) = read_table(data).file_issues
    assert issue.code == "FILE_NOT_CSV" and what in issue.message


@pytest.mark.parametrize(
    "members, what",
    [
        (
            {"content.xml": "x", "mimetype": "application/vnd.oasis.opendocument.spreadsheet"},
            ".ods",
        ),
        ({"Index/Document.iwa": "x"}, ".numbers"),
        ({"xl/workbook.bin": "x", "[Content_Types].xml": "x"}, ".xlsb"),
        ({"notes.txt": "x"}, "zip"),
    ],
)
def test_zip_based_formats_are_named(members, what):
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)
    (issue,) = read_table(out.getvalue()).file_issues
    assert issue.code == "FILE_NOT_CSV" and what in issue.message


def test_demographics_are_read_the_same_way():
    text = "\n\n" + ";".join(DEMOGRAPHICS_HEADERS[:4]) + "\nS1;2012-05-01;F;N\n"
    raw = read_table(text.encode())
    assert [i.code for i in raw.file_issues] == ["HEADER_NOT_FIRST_ROW", "FILE_DELIMITER"]
    assert raw.headers == list(DEMOGRAPHICS_HEADERS[:4])
    assert raw.row_numbers.tolist() == [4]


# --- headers: capped, misspellings stay errors ------------------------------------------------


def test_header_issues_are_capped_with_one_more_saying_how_many(checker):
    extra = [f"sis_extra_{i}" for i in range(120)]
    data = users_csv([teacher()], [*USERS_HEADERS, *extra])
    result = run(checker, "d1", [InputFile("u.csv", data)], apply=False, settings=Settings())
    issues = result.files[0].file_issues
    assert len(issues) == MAX_HEADER_ISSUES + 1
    assert {i.code for i in issues} == {"HEADER_UNKNOWN"}
    assert "70 more" in issues[-1].message
    assert result.files[0].status == "completed"  # warnings only


# --- memory shapes (issue #13): each ends with a bounded, right file issue ----------------------

SHAPES = {
    "300k-commas-line": (b"," * 300_000, ["FILE_EMPTY"]),
    "1m-commas-line": (b"," * 1_000_000, ["FILE_EMPTY"]),
    "300k-column-header": (b"a," * 300_000 + b"\n", ["FILE_TOO_WIDE"]),
    "16k-column-header": (
        b",".join(b"c%d" % i for i in range(16_000)) + b"\n" + b"," * 15_999 + b"x\n",
        ["FILE_TOO_WIDE"],
    ),
    "1m-rows-of-a": (
        ",".join(USERS_HEADERS).encode() + b"\n" + b"a\n" * 1_000_000,
        ["FILE_RAGGED"],
    ),
}


@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
def test_malformed_shapes_end_with_one_file_issue(checker, shape):
    data, expected = SHAPES[shape]
    result = run(checker, "d1", [InputFile("u.csv", data)], apply=False, settings=Settings())
    f = result.files[0]
    assert [i.code for i in f.file_issues] == expected
    assert f.status == "failed" and f.issues == [] and f.report_bytes is None
    assert all(len(i.message) < 500 for i in f.file_issues)


# --- demographics.csv: the same reading -------------------------------------------------------


def demographics_workbook(rows: list[dict[str, str]]) -> bytes:
    """Demographics as a workbook: dates as date cells, booleans as TRUE/FALSE cells, two
    blank rows above the headers, a filled notes sheet beside the demographics sheet."""
    from openpyxl import Workbook

    book = Workbook()
    notes = book.active
    notes.title = "Read me"
    notes.append(["exported from the SIS"])
    sheet = book.create_sheet("Demographics 2026")
    sheet.append([])
    sheet.append([])
    sheet.append(list(DEMOGRAPHICS_HEADERS))
    for r in rows:
        cells = []
        for h in DEMOGRAPHICS_HEADERS:
            v = r.get(h, "")
            if h == "birthDate" and v:
                cells.append(dt.date.fromisoformat(v))
            elif v in ("Y", "N"):
                cells.append(v == "Y")
            else:
                cells.append(v or None)
        sheet.append(cells)
    for row in sheet.iter_rows(min_row=4):
        row[DEMOGRAPHICS_HEADERS.index("birthDate")].number_format = "yyyy-mm-dd"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_demographics_workbook_is_stored_like_its_csv(store, district, tmp_path):
    from tests.builders import class_of
    from tests.test_demographics import clean, demo_csv, stored_values

    rows = [clean("S1"), clean("S2", birthDate="2013-12-31", white="N", asian="Y")]
    twin_store = Store(f"sqlite:///{tmp_path / 'twin.sqlite3'}")
    set_up_district(twin_store)
    for s in (store, twin_store):
        assert apply(s, users_csv(class_of(3))).applied
    clean_result = apply(twin_store, demo_csv(rows), "demographics.csv")
    result = apply(store, demographics_workbook(rows), "demographics.xlsx")
    assert [i.code for i in result.file_issues] == ["FILE_WORKBOOK", "HEADER_NOT_FIRST_ROW"]
    assert "'Demographics 2026'" in result.file_issues[0].message
    assert "row 3" in result.file_issues[1].message
    assert result.applied and result.counts == clean_result.counts
    assert stored_values(store) == stored_values(twin_store)
    twin_store.dispose()
