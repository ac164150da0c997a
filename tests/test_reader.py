"""Reading an upload (users-csv.md section 1): encodings, refusals, CSV shape, row numbers."""

from __future__ import annotations

import codecs

import pytest

from roster.pipeline import FileResult, InputFile, Settings, run
from roster.store import Store
from tests.builders import student, teacher, users_csv
from validation.dictionary import USERS_HEADERS
from validation.reader import read_table

HEADER = ",".join(USERS_HEADERS)


def line(**values: str) -> str:
    """One users.csv record, written by hand (so tests control quoting and line endings)."""
    cells = (
        teacher(**values)
        if values.get("userRole", "teacher") == "teacher"
        else student(1, **values)
    )
    return ",".join(cells[h] for h in USERS_HEADERS)


def text_file(*records: str, newline: str = "\r\n") -> str:
    return newline.join((HEADER, *records)) + newline


def check(store: Store, data: bytes, settings: Settings | None = None) -> FileResult:
    result = run(
        store,
        "d1",
        [InputFile("users.csv", data)],
        apply=False,
        actor="test",
        settings=settings or Settings(),
    )
    return result.files[0]


def file_codes(result_or_issues) -> list[str]:
    """Codes of a FileResult's or a RawTable's file issues."""
    issues = getattr(result_or_issues, "file_issues", result_or_issues)
    return [i.code for i in issues]


def accented_file() -> str:
    return text_file(line(userFirstName="Zoë", userLastName="Müller-Éléonore"))


# --- encodings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(lambda t: t.encode("utf-8"), id="utf-8"),
        pytest.param(lambda t: codecs.BOM_UTF8 + t.encode("utf-8"), id="utf-8-bom"),
    ],
)
def test_utf8_is_read_silently(encoded):
    raw = read_table(encoded(accented_file()))
    assert raw.file_issues == []
    assert raw.headers == list(USERS_HEADERS)  # the BOM is not part of the first header
    assert raw.cells["3"].iat[0] == "Zoë"
    assert raw.cells["4"].iat[0] == "Müller-Éléonore"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom_is_read_without_a_note(encoding):
    """A BOM says exactly what the encoding is (revision 2): nothing to warn about."""
    bom = codecs.BOM_UTF16_LE if encoding.endswith("le") else codecs.BOM_UTF16_BE
    raw = read_table(bom + accented_file().encode(encoding))
    assert raw.file_issues == []
    assert raw.encoding == "UTF-16"
    assert raw.headers == list(USERS_HEADERS)
    assert raw.cells["3"].iat[0] == "Zoë"


def test_windows_1252_is_read_with_a_note_naming_it(checker):
    result = check(checker, accented_file().encode("cp1252"))
    assert file_codes(result) == ["FILE_ENCODING_GUESSED"]
    (note,) = result.file_issues
    assert note.severity == "warning" and "Windows-1252" in note.message
    assert result.status == "completed"  # a warning never fails the file
    raw = read_table(accented_file().encode("cp1252"))
    assert raw.cells["3"].iat[0] == "Zoë" and raw.cells["4"].iat[0] == "Müller-Éléonore"


def test_windows_1252_smart_quotes_and_euro_sign():
    data = text_file(line(userLastName="O’Brien – €")).encode("cp1252")
    raw = read_table(data)
    assert raw.cells["4"].iat[0] == "O’Brien – €"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(text_file(line()).encode() + b"\x81\x8d\xff\xfe\x81", id="cp1252-undefined"),
        pytest.param(HEADER.encode() + b"\r\n\x8f\x90\x9d,\r\n", id="invalid-utf8-and-cp1252"),
    ],
)
def test_undecodable_bytes_fail_the_file(checker, data):
    result = check(checker, data)
    assert file_codes(result) == ["FILE_ENCODING"]
    assert result.status == "failed" and result.issues == []
    assert "UTF-8" in result.file_issues[0].fix


# --- refusals ---------------------------------------------------------------------------------


def test_nul_bytes_are_not_csv(checker):
    result = check(checker, text_file(line()).encode() + b"\x00\x01\x02")
    assert file_codes(result) == ["FILE_NOT_CSV"]
    assert result.status == "failed"


def test_utf16_without_bom_is_binary_not_garbage():
    raw = read_table(accented_file().encode("utf-16-le"))
    assert file_codes(raw.file_issues) == ["FILE_NOT_CSV"]


@pytest.mark.parametrize(
    "data, what",
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, ".xls"),
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 64 + b"[Content_Types].xml", "zip"),
    ],
)
def test_formats_not_read_are_refused_with_save_as_csv_utf8(checker, data, what):
    result = check(checker, data)
    assert file_codes(result) == ["FILE_NOT_CSV"]
    (issue,) = result.file_issues
    assert issue.severity == "error" and what in issue.message
    assert "save as" in issue.fix.lower() and "csv utf-8" in issue.fix.lower()
    assert result.status == "failed" and not result.applied


@pytest.mark.parametrize(
    "data",
    [b"", b"\r\n", b"\n\n\n", b"\r\r", b"   \r\n"],
    ids=["zero-bytes", "crlf", "lf-lines", "cr-lines", "spaces"],
)
def test_empty_files(checker, data):
    result = check(checker, data)
    assert file_codes(result) == ["FILE_EMPTY"]
    assert result.status == "failed"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(HEADER.encode(), id="header-no-newline"),
        pytest.param((HEADER + "\r\n").encode(), id="header-only"),
        pytest.param(text_file(",,,,", "", ",,," + "," * 12, "  ,  ").encode(), id="blank-rows"),
    ],
)
def test_header_without_records_has_no_rows(checker, data):
    result = check(checker, data)
    assert file_codes(result) == ["FILE_NO_ROWS"]
    assert result.status == "failed"


def test_file_over_the_size_limit(checker):
    data = users_csv([teacher(), student(1)])
    result = check(checker, data, Settings(max_bytes=len(data) - 1))
    assert file_codes(result) == ["FILE_TOO_LARGE"]
    assert result.status == "failed"
    at_limit = check(checker, data, Settings(max_bytes=len(data)))
    assert at_limit.file_issues == [] and at_limit.status == "completed"


# --- CSV shape and row numbers ----------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_line_endings(checker, newline):
    data = text_file(line(), line(userRole="student", userGrade="Z"), newline=newline).encode()
    result = check(checker, data)
    assert result.file_issues == []
    assert result.rows["total"] == 2
    assert [(i["row"], i["code"]) for i in result.issues] == [(3, "USERGRADE_INVALID")]


def test_quoted_fields_keep_commas_quotes_and_newlines():
    data = text_file(line(userLastName='"Smith, ""Jr."""', className='"Math\r\nadvanced"'))
    raw = read_table(data.encode())
    assert raw.cells["4"].iat[0] == 'Smith, "Jr."'
    assert raw.cells["11"].iat[0] == "Math\r\nadvanced"
    assert list(raw.field_counts) == [len(USERS_HEADERS)]


def test_a_multiline_record_is_one_spreadsheet_row(checker):
    records = [
        line(className='"Math\nfive\nadvanced"'),  # row 2, three physical lines
        line(userRole="student", userGrade="Z", className='"Math\nfive\nadvanced"'),  # row 3
    ]
    result = check(checker, text_file(*records, newline="\n").encode())
    assert [(i["row"], i["code"]) for i in result.issues] == [(3, "USERGRADE_INVALID")]


def test_blank_rows_are_skipped_counted_and_keep_row_numbers(checker):
    records = [line(), ",,,,", "", line(userRole="student", userGrade="Z"), " , , "]
    result = check(checker, text_file(*records).encode())
    assert result.file_issues == []
    assert result.rows["blank_skipped"] == 3
    assert result.rows["total"] == 2
    # header 1, teacher 2, blanks 3 and 4, the student is row 5 as in a spreadsheet
    assert [(i["row"], i["code"]) for i in result.issues] == [(5, "USERGRADE_INVALID")]


def test_ragged_rows_are_rejected_on_their_row_only(checker):
    short = ",0101,S7,Al"
    long = line(userRole="student").replace("s1@", "s8@").replace(",S1,", ",S8,") + ",extra"
    records = [line(), short, line(userRole="student"), long]
    result = check(checker, text_file(*records).encode())
    ragged = [i for i in result.issues if i["code"] == "ROW_FIELD_COUNT"]
    assert [i["row"] for i in ragged] == [3, 5]
    assert all(i["severity"] == "error" for i in ragged)
    assert str(len(USERS_HEADERS)) in ragged[0]["message"] and "4" in ragged[0]["message"]
    assert [i["code"] for i in result.issues] == ["ROW_FIELD_COUNT"] * 2  # no other rule ran
    assert result.rows["rejected"] == 2
    assert all(c["errors"] == 0 for c in result.counts.values()), result.counts
    assert result.counts["staff"]["created"] == 1 and result.counts["student"]["created"] == 1


def test_values_are_trimmed(checker):
    padded = line(
        userRole="student",
        userId="  S1 ",
        userEmail=" s1@example.org\t",
        userGrade=" 05 ",
        org_sis_id=" 0101",
    )
    result = check(checker, text_file(line(), padded).encode())
    assert result.issues == []


def test_values_stay_text():
    data = text_file(
        line(
            org_sis_id="0101",
            userId="000123",
            userStateId="1.50",
            userDistrictId="1e5",
            classGrade="05",
        )
    )
    raw = read_table(data.encode())
    row = dict(zip(raw.headers, (raw.cells[str(j)].iat[0] for j in range(len(raw.headers)))))
    assert (
        row["org_sis_id"],
        row["userId"],
        row["userStateId"],
        row["userDistrictId"],
        row["classGrade"],
    ) == ("0101", "000123", "1.50", "1e5", "05")
    assert all(isinstance(v, str) for v in row.values())


def test_leading_zeros_make_a_different_school(checker):
    result = check(checker, text_file(line(org_sis_id="101")).encode())
    assert [i["code"] for i in result.issues if i["column"] == "org_sis_id"] == ["ORG_NOT_FOUND"]


@pytest.mark.parametrize(
    "escaped, read",
    [
        ("'=SUM(A1)", "=SUM(A1)"),
        ("'+1", "+1"),
        ("'-x", "-x"),
        ("'@me", "@me"),
        ("'\tx", "\tx"),
        ("'\rx", "\rx"),
        ("'plain", "'plain"),
        ("''=x", "''=x"),
        ("=x", "=x"),
    ],
)
def test_formula_escape_is_stripped_once_on_read(escaped, read):
    quoted = '"' + escaped.replace('"', '""') + '"'
    raw = read_table(text_file(line(classDisplayName=quoted)).encode())
    assert raw.cells[str(USERS_HEADERS.index("classDisplayName"))].iat[0] == read


# --- the reader agrees with an RFC 4180 reading of tricky files -------------------------------


def oracle(text: str) -> tuple[list[str], list[tuple[int, int, list[str]]], int]:
    """What the file says, read record by record with Python's csv module (the reference):
    header, [(spreadsheet row, field count, fields padded/cut to the header)], blank rows."""
    import csv as pycsv
    import io as pyio

    records = list(pycsv.reader(pyio.StringIO(text, newline="")))
    header, width = records[0], len(records[0])
    rows, blank = [], 0
    for number, fields in enumerate(records[1:], start=2):
        if all(not f.strip() for f in fields):
            blank += 1
            continue
        cells = [
            f[1:] if f.startswith("'") and f[1:2] in ("=", "+", "-", "@", "\t", "\r") else f
            for f in (fields + [""] * width)[:width]
        ]
        rows.append((number, len(fields), cells))
    return header, rows, blank


TRICKY = {
    "stray-quote-in-unquoted-field": text_file(line(userLastName='O"Brien'), line(userId="T2")),
    "quoted-crlf-inside": text_file(line(className='"a\r\nb"'), line(userId="T2")),
    "quoted-cr-inside-cr-file": text_file(
        line(className='"a\rb"'), line(userId="T2"), newline="\r"
    ),
    "quoted-lf-inside-crlf-file": text_file(line(className='"a\nb,c"'), line(userId="T2")),
    "escaped-quotes-and-commas": text_file(line(className='"x "",y"" z"'), line(userId="T2")),
    "no-final-newline": HEADER + "\r\n" + line() + "\r\n" + line(userId="T2"),
    "blank-and-ragged-mix": text_file(
        line(),
        "",
        ",,,",
        "x,y",
        line(userId="T2"),
        "   ",
        '""',
        line(userId="T3") + ",extra",
        ",,,," + "," * 11,
    ),
    "quoted-empty-fields": text_file(",".join('""' for _ in USERS_HEADERS), line()),
    "formula-escapes": text_file(
        line(className="'=1", classSubject="'-x", classDisplayName="'plain")
    ),
    "empty-line-between-multiline": text_file(line(className='"a\n\nb"'), "", line(userId="T2")),
}


@pytest.mark.parametrize("text", list(TRICKY.values()), ids=list(TRICKY))
def test_reader_matches_rfc4180_reading(text):
    header, expected, blank = oracle(text)
    raw = read_table(text.encode("utf-8"))
    assert [i.code for i in raw.file_issues] == []
    assert raw.headers == header
    got = [
        (int(n), int(c), [raw.cells[str(j)].iat[k] for j in range(len(header))])
        for k, (n, c) in enumerate(zip(raw.row_numbers, raw.field_counts))
    ]
    assert got == expected
    assert raw.blank_skipped == blank


# --- the fast path gives exactly what the exact parser gives ----------------------------------
#
# read_table parses with pyarrow, aligned to spreadsheet rows by byte arithmetic, and falls back
# to Python's csv module whenever the two might disagree.  These tests generate messy files and
# check the fast path, whenever it answers, against the exact parser, field for field.

import csv as pycsv  # noqa: E402
import io as pyio  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from validation import reader as rd  # noqa: E402

DIFF = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=400,
    suppress_health_check=list(HealthCheck),
)


def exact(text: str):
    return rd._to_table(list(pycsv.reader(pyio.StringIO(text, newline=""))))


def assert_same_table(got, want) -> None:
    assert got.headers == want.headers
    pd.testing.assert_frame_equal(got.cells, want.cells, check_index_type=True)
    assert list(got.cells.dtypes) == list(want.cells.dtypes)
    assert got.row_numbers.dtype == want.row_numbers.dtype == np.int64
    assert got.field_counts.dtype == want.field_counts.dtype == np.int64
    assert got.row_numbers.tolist() == want.row_numbers.tolist()
    assert got.field_counts.tolist() == want.field_counts.tolist()
    assert got.blank_skipped == want.blank_skipped
    assert [(i.code, i.severity, i.message) for i in got.file_issues] == [
        (i.code, i.severity, i.message) for i in want.file_issues
    ]


def fast_matches_exact(text: str) -> bool:
    """Assert the fast path agrees with the exact parser; True when it answered at all."""
    fast = rd._parse_fast(text.encode("utf-8"))
    if fast is None:
        return False
    assert_same_table(fast, exact(text))
    return True


MESSY_CHARS = st.sampled_from(
    [
        "a",
        "b",
        "é",
        " ",
        ",",
        '"',
        '""',
        "\n",
        "\r",
        "\r\n",
        "'",
        "'=",
        "'-",
        "=",
        "\t",
        "😀",
        "\x0c",
        "\x85",
        "\u2028",
    ]
)
FIELD = st.lists(MESSY_CHARS, max_size=4).map("".join)
ENDING = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def messy_csv(draw) -> str:
    """A CSV file as users write them: quoting done right or wrong, blank, whitespace-only and
    ragged lines, mixed line endings, with or without a final line break."""
    width = draw(st.integers(1, 5))
    same_ending = draw(st.booleans())
    ending = draw(ENDING)
    quoting = draw(st.sampled_from([pycsv.QUOTE_MINIMAL, pycsv.QUOTE_ALL]))
    header = [f"h{j}" for j in range(width)]
    if draw(st.booleans()):
        header[0] = draw(st.sampled_from(['"h,0"', '"h""0"', '"h\n0"', "'=h0", " h0 "]))
    lines = [",".join(header)]
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(
            st.sampled_from(["proper"] * 5 + ["raw", "blank", "space", "commas", "empty-quoted"])
        )
        if kind in ("proper", "raw"):
            n = width + draw(st.sampled_from([0] * 6 + [-2, -1, 1, 2]))
            fields = draw(st.lists(FIELD, min_size=max(n, 0), max_size=max(n, 0)))
            if kind == "raw":  # written by hand: stray quotes, breaks and commas as they come
                record = ",".join(fields)
            else:
                out = pyio.StringIO()
                pycsv.writer(out, quoting=quoting, lineterminator="").writerow(fields)
                record = out.getvalue()
        else:
            record = {
                "blank": "",
                "space": draw(st.sampled_from([" ", "\t", "  \t "])),
                "commas": "," * draw(st.integers(0, width + 1)),
                "empty-quoted": '""',
            }[kind]
        lines.append(record + (ending if same_ending else draw(ENDING)))
    text = "".join(lines[:1]) + (ending if len(lines) > 1 else "") + "".join(lines[1:])
    if draw(st.booleans()):  # no final line break
        text = text.rstrip("\r\n") if draw(st.booleans()) else text + draw(FIELD)
    return text


@given(text=messy_csv())
@DIFF
def test_fast_path_equals_exact_parser(text):
    answered = fast_matches_exact(text)
    event("fast path answered" if answered else "exact parser")


@given(
    rows=st.lists(
        st.lists(st.sampled_from(["a", "0101", " x ", "'=1", "é", ""]), min_size=3, max_size=3),
        min_size=1,
        max_size=12,
    ),
    ending=ENDING,
    final=st.booleans(),
    blank_every=st.integers(0, 4),
    ragged_every=st.integers(0, 5),
)
@DIFF
def test_fast_path_answers_and_agrees_on_plain_files(
    rows, ending, final, blank_every, ragged_every
):
    """No quote at all (LF, CRLF or CR, blank lines, ragged rows): the fast path must answer."""
    lines = ["x,y,z"]
    for k, fields in enumerate(rows):
        if blank_every and k % blank_every == 0:
            lines.append("")
        if ragged_every and k % ragged_every == 1:
            fields = fields[:1] if k % 2 else fields + ["extra"]
        lines.append(",".join(fields))
    text = ending.join(lines) + (ending if final else "")
    assert fast_matches_exact(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a,b\nx,y\n", id="no-quote-lf"),
        pytest.param("a,b\r\nx,y\r\n\r\n1,2", id="no-quote-crlf-blank"),
        pytest.param("a,b\rx,y\r\r1,2\r", id="no-quote-cr"),
        pytest.param('a,b\n"x\n\ny",z\n\n"1,""2""",3\n', id="quoted-newlines-no-cr"),
        pytest.param('a,b\r\n"x\r\ny",z\r\n   \r\n"1,""2""",3', id="quoted-crlf"),
        pytest.param("a,b,c\nx\n1,2,3\n4,5,6,7\n,,\n  \n", id="ragged-no-quote"),
        pytest.param('a,b,c\n"x,y"\n1,"2\n2",3\n4,5,6,"7\n"\n""\n', id="ragged-quoted"),
        pytest.param("a,b\n'=1,'-x\n'plain,'@\n", id="formula-escapes"),
    ],
)
def test_fast_path_answers_on_tricky_but_valid_files(text):
    assert fast_matches_exact(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('a,b\nO"Brien,x\n1,2\n', id="stray-quote"),
        pytest.param('a,b\nO"Br,ien",x\n1,2\n', id="stray-quotes-same-line"),
        pytest.param('a,b\nx"y,"z\nw"\n\n1,2\n', id="stray-quote-then-quoted-newline"),
        pytest.param('a,b\na"b,c\n\n"x\ny",z\n', id="stray-quote-blank-line-quoted-newline"),
        pytest.param('a,b\n"ab"cd,x\n', id="text-after-closing-quote"),
        pytest.param('a,b\nx,"y\n', id="unterminated-quote"),
    ],
)
def test_fast_path_never_disagrees_on_malformed_quoting(text):
    fast_matches_exact(text)  # it may decline (None); when it answers it must agree


def exact_read(data: bytes):
    """read_table as it was before the fast path: decode, find the header line, then the
    csv module (all of it in memory)."""
    if rd.sniff(data).refused or rd.sniff(data).workbook:
        return rd.read_table(data)  # not what these tests are about
    text, encoding, notes = rd.decode(data)
    if text is None:
        return rd._failed(*notes)
    if not rd._CONTENT.search(text):
        return rd._failed(*notes, rd.file_issue("FILE_EMPTY"))
    start = rd.locate_header(text.encode("utf-8"))
    if start.failed:
        return rd._failed(*notes, *start.issues)
    body = text.encode("utf-8")[start.offset :].decode("utf-8")
    table = rd._to_table(list(pycsv.reader(pyio.StringIO(body, newline=""), delimiter=start.sep)))
    table.row_numbers += start.skipped_lines
    table.encoding = encoding
    table.file_issues = notes + start.issues + table.file_issues
    return table


ALMOST_NOTHING = st.text(
    alphabet=[
        " ",
        ",",
        '"',
        "'",
        "\n",
        "\r",
        "\t",
        "\x0b",
        "\x1c",
        "\xa0",
        "\u2003",
        "\x85",
        "\ufeff",
        "a",
    ],
    max_size=10,
)


@given(
    text=st.one_of(messy_csv(), ALMOST_NOTHING),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
    noise=st.one_of(
        st.none(), st.tuples(st.integers(0, 10_000), st.binary(min_size=1, max_size=4))
    ),
)
@DIFF
def test_read_table_equals_decode_then_exact_parser(text, encoding, noise):
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    if noise is not None:  # stray bytes: invalid UTF-8, lone surrogates, NULs...
        at, junk = noise
        at %= len(data) + 1
        data = data[:at] + junk + data[at:]
    if not data:
        return
    got, want = rd.read_table(data), exact_read(data)
    assert got.encoding == want.encoding or want.failed
    assert [(i.code, i.message) for i in got.file_issues] == [
        (i.code, i.message) for i in want.file_issues
    ]
    if not want.failed:
        assert_same_table(got, want)


@given(
    data=st.one_of(
        st.binary(max_size=16),
        st.lists(
            st.sampled_from(
                [
                    b"a",
                    b"\xc2",
                    b"\xa0",
                    b"\xed",
                    b"\xa0\x80",
                    b"\x9f\xbf",
                    b"\xf4",
                    b"\x90",
                    b"\x8f",
                    b"\xbf",
                    b"\xe0",
                    b"\x80",
                    b"\xf0",
                    b"\xc0",
                    b"\xef\xbb\xbf",
                    b"\xff",
                    b"\xf8",
                ]
            ),
            max_size=8,
        ).map(b"".join),
    )
)
@settings(DIFF, max_examples=2000)
def test_utf8_check_is_exactly_what_python_decodes(data):
    try:
        data.decode("utf-8")
        ok = True
    except UnicodeDecodeError:
        ok = False
    assert rd._is_utf8(data) is ok


def test_wide_file_blank_rows_and_escapes():
    """Past the first few columns, blank rows and escapes are still found (one kernel call)."""
    width = 12
    header = ",".join(f"h{j}" for j in range(width))
    rows = [
        "," * (width - 1),
        "," * (width - 1) + "x",
        " ," * (width - 1) + "'=1",
        "",
        "," * 5 + " " + "," * (width - 6),
    ]
    text = "\n".join([header, *rows]) + "\n"
    assert fast_matches_exact(text)
    raw = rd.read_table(text.encode())
    assert raw.row_numbers.tolist() == [3, 4] and raw.blank_skipped == 3
    assert raw.cells[str(width - 1)].tolist() == ["x", "=1"]


@given(
    text=messy_csv(),
    find_limit=st.sampled_from([0, 1, 3, 100_000]),
    scan_limit=st.sampled_from([0, 4, 1_000_000]),
)
@DIFF
def test_fast_path_same_whichever_way_positions_are_found(text, find_limit, scan_limit):
    """Byte positions by find() calls or by numpy, stray quotes sorted out or not: same result."""
    from unittest import mock

    with (
        mock.patch.object(rd, "_FIND_LIMIT", find_limit),
        mock.patch.object(rd, "_MAX_QUOTE_SCAN", scan_limit),
    ):
        data = text.encode()
        for byte in (34, 39, 13, 10):
            assert rd._positions(data, byte).tolist() == [
                i for i, c in enumerate(data) if c == byte
            ]
        fast_matches_exact(text)


@given(text=messy_csv(), sep=st.sampled_from([",", ";", "\t"]))
@DIFF
def test_streaming_exact_parser_equals_the_reference(text, sep):
    """The bounded-memory exact parser (two passes, Arrow chunks) reads what csv.reader does."""
    from unittest import mock

    text = text.replace(",", sep)
    with mock.patch.object(rd, "_EXACT_CHUNK", 3):  # several chunks even on a small file
        got = rd._parse_exact(text, sep)
    want = rd._to_table(list(pycsv.reader(pyio.StringIO(text, newline=""), delimiter=sep)))
    if want.failed:
        assert [i.message for i in got.file_issues] == [i.message for i in want.file_issues]
    else:
        assert_same_table(got, want)


@given(text=messy_csv())
@DIFF
def test_fast_path_same_when_it_counts_fields_before_pyarrow_skips_them(text):
    """Past a few skipped rows the fast path counts fields in arrays first: same table."""
    from unittest import mock

    with mock.patch.object(rd, "_SKIPS_BEFORE_COUNTING", 0):
        fast_matches_exact(text)


def test_many_ragged_rows_fail_the_file_in_both_parsers():
    header = ",".join(USERS_HEADERS)
    text = header + "\n" + "a\n" * 150 + (line() + "\n") * 149
    for table in (rd._parse_fast(text.encode()), rd._parse_exact(text)):
        assert [i.code for i in table.file_issues] == ["FILE_RAGGED"]
        assert "150 of 299" in table.file_issues[0].message
    fewer = header + "\n" + "a\n" * 150 + (line() + "\n") * 150  # exactly half: row issues
    for table in (rd._parse_fast(fewer.encode()), rd._parse_exact(fewer)):
        assert table.file_issues == [] and (table.field_counts == 1).sum() == 150
