"""Bytes -> a table of text, exactly as a spreadsheet would show it.

Decoding (UTF-8 with or without BOM, UTF-16 with BOM, Windows-1252 fallback), .xlsx
workbooks (validation/workbook.py), refusal of every other format, blank lines above the
header, the delimiter (comma, or `;` / tab / `|` when the header says so), the width limit
(decided before anything is parsed), RFC 4180 parsing with quoted newlines, spreadsheet row
numbers, blank rows, ragged rows (a file mostly made of them fails as a whole) and the
report's formula escape.  Nothing here knows what the columns mean beyond the dictionary's
header names, which only tell a delimiter apart.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from array import array
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pv

from validation.dictionary import DEMOGRAPHICS_HEADERS, USERS_HEADERS
from validation.issues import FileIssue, file_issue
from validation.workbook import TooLarge, WorkbookError, sniff, workbook_to_csv

#: 250 MB: a 1,000,000-row users.csv (about 180 MB) is read with the default settings.
DEFAULT_MAX_BYTES = 250 * 1024 * 1024
#: More columns than this is FILE_TOO_WIDE, decided from the header line before parsing.
MAX_COLUMNS = 1_000
#: FILE_RAGGED: more than half of the records, and at least this many, have the wrong width.
RAGGED_MIN_ROWS = 100
#: How many of the ragged rows FILE_RAGGED names.
_RAGGED_EXAMPLES = 5
#: Other delimiters, tried when the header line has no comma, with how a person calls them.
DELIMITERS = {";": "semicolons (;)", "\t": "tabs", "|": "vertical bars (|)"}
#: How many dictionary headers a split header line must show to be read with that delimiter.
_DELIMITER_MIN_HEADERS = 3
_KNOWN_HEADERS = frozenset(h.casefold() for h in (*USERS_HEADERS, *DEMOGRAPHICS_HEADERS))

#: The report escapes formula-looking cells with a leading quote; reading strips it again.
_FORMULA_ESCAPE = re.compile(r"^'(?=[=+\-@\t\r])")
_CONTENT = re.compile(r"[^\s,\"']")
#: The first byte that is not a separator, a space or a line break: its line is the header
#: (lines above it hold nothing, like Excel's `,,,,`).  A plain character class: linear, no
#: backtracking, whatever the number of blank lines.
_FIRST_CONTENT = re.compile(rb"[^ \t\x0b\x0c\x1c-\x1f,;|\r\n]")

csv.field_size_limit(1 << 30)


@dataclass
class RawTable:
    """What the file says, before any rule: headers, cells, row numbers."""

    headers: list[str]
    #: one column per header position ("0", "1", ...), text exactly as in the file
    cells: pd.DataFrame
    #: spreadsheet row number of each record in `cells` (the header is row 1)
    row_numbers: np.ndarray
    #: number of fields each record really had (differs from len(headers) on ragged rows)
    field_counts: np.ndarray
    blank_skipped: int = 0
    encoding: str = "utf-8"
    file_issues: list[FileIssue] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(i.severity == "error" for i in self.file_issues)


def _failed(*issues: FileIssue) -> RawTable:
    return RawTable(
        [],
        pd.DataFrame(),
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.int64),
        file_issues=list(issues),
    )


def _human_size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def decode(data: bytes) -> tuple[str | None, str, list[FileIssue]]:
    """Return (text, encoding name, issues); text is None when the file cannot be read."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            return None, "", [file_issue("FILE_ENCODING")]
        if "\x00" in text:
            return None, "", [file_issue("FILE_NOT_CSV", detail="binary data")]
        return text, "UTF-16", []  # exact: a BOM says what it is
    if b"\x00" in data:
        return None, "", [file_issue("FILE_NOT_CSV", detail="binary data (it contains NUL bytes)")]
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None, "", [file_issue("FILE_ENCODING")]
    return text, "Windows-1252", [file_issue("FILE_ENCODING_GUESSED", detail="Windows-1252")]


def _is_utf8(data: bytes) -> bool:
    """Whether `data` decodes as strict UTF-8 (exactly what bytes.decode("utf-8") accepts).

    pyarrow's validator over a zero-copy view: ~20x faster than decoding into a str we may
    never need (the fast path parses the bytes themselves).
    """
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    view = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        view.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


#: An ASCII byte that _CONTENT matches in the decoded text (anything else: ask the text).
_CONTENT_BYTE = re.compile(rb"[^\t\n\x0b\x0c\r\x1c-\x1f ,\"'\x80-\xff]")


def read_table(
    data: bytes,
    max_bytes: int = DEFAULT_MAX_BYTES,
    prefer_sheets: tuple[str, ...] = ("users", "demographics"),
) -> RawTable:
    """Read an upload (CSV text or an .xlsx workbook).  File-level problems come back in
    `file_issues`, never raised.  `prefer_sheets`: which sheet of a workbook with several
    filled sheets is read (the first whose name contains one of these words)."""
    if len(data) == 0:
        return _failed(file_issue("FILE_EMPTY"))
    if len(data) > max_bytes:
        return _too_large(len(data), max_bytes)
    kind = sniff(data)
    if kind.refused:
        return _failed(file_issue("FILE_NOT_CSV", detail=kind.refused))
    notes: list[FileIssue] = []
    if kind.workbook:
        try:
            sheet = workbook_to_csv(data, prefer_sheets, max_bytes)
        except WorkbookError as exc:
            return _failed(file_issue("FILE_NOT_CSV", detail=str(exc)))
        except TooLarge:
            return _too_large(len(data), max_bytes, "once its sheet is written out as text")
        data = sheet.csv
        notes.append(file_issue("FILE_WORKBOOK", value=sheet.name))
        if not data:
            return _failed(*notes, file_issue("FILE_EMPTY"))
    table = _read_text(data)
    table.file_issues = notes + table.file_issues
    return table


def _too_large(size: int, max_bytes: int, how: str = "") -> RawTable:
    detail = f"{_human_size(size)}{' ' + how if how else ''} (limit {_human_size(max_bytes)})"
    return _failed(file_issue("FILE_TOO_LARGE", detail=detail))


def _read_text(data: bytes) -> RawTable:
    """CSV bytes (any accepted encoding) -> RawTable."""
    utf8 = data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data
    text: str | None = None
    if (
        not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        and b"\x00" not in utf8
        and _is_utf8(utf8)
    ):
        encoding, notes = "utf-8", []  # what decode() says, without building the str
    else:
        text, encoding, notes = decode(data)
        if text is None:
            return _failed(*notes)
        if encoding != "utf-8":
            utf8 = text.encode("utf-8")
            text = None
    if not _CONTENT_BYTE.search(utf8):  # almost always found at the first byte
        if not _CONTENT.search(utf8.decode("utf-8")):
            return _failed(*notes, file_issue("FILE_EMPTY"))
    start = locate_header(utf8)
    if start.issues and start.failed:
        return _failed(*notes, *start.issues)
    body = utf8[start.offset :] if start.offset else utf8
    table = _parse_fast(body, start.sep)
    if table is None:  # the exact (slower) parser for anything the fast path is not sure of
        table = _parse_exact(body.decode("utf-8"), start.sep)
    if start.skipped_lines:
        table.row_numbers += start.skipped_lines
    table.encoding = encoding
    table.file_issues = notes + start.issues + table.file_issues
    return table


@dataclass
class HeaderStart:
    """Where the header line is and how the file is delimited (read before any parsing)."""

    offset: int = 0
    skipped_lines: int = 0
    sep: str = ","
    issues: list[FileIssue] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(i.severity == "error" for i in self.issues)


def locate_header(data: bytes) -> HeaderStart:
    """Skip blank lines above the header, pick the delimiter, and refuse a header line over
    the width limit: all from the header line alone, before the file is parsed (a 1 MB line
    of commas must never become a million-column table)."""
    start = HeaderStart()
    first = _FIRST_CONTENT.search(data)
    line_start = (
        max(data.rfind(b"\n", 0, first.start()), data.rfind(b"\r", 0, first.start())) + 1
        if first
        else 0
    )
    if line_start:
        prefix = data[:line_start]
        start.offset = line_start
        start.skipped_lines = prefix.count(b"\n") + prefix.count(b"\r") - prefix.count(b"\r\n")
        start.issues.append(file_issue("HEADER_NOT_FIRST_ROW", value=str(start.skipped_lines + 1)))
    line = _first_line(data, start.offset)
    if b"," not in line:
        for sep, name in DELIMITERS.items():
            parts = line.decode("utf-8", "replace").split(sep)
            known = sum(p.strip().strip('"').strip().casefold() in _KNOWN_HEADERS for p in parts)
            if known >= _DELIMITER_MIN_HEADERS:
                start.sep = sep
                start.issues.append(file_issue("FILE_DELIMITER", value=name))
                break
    width = _line_width(line, start.sep)
    if width > MAX_COLUMNS:
        start.issues.append(_too_wide(width))
    return start


def _too_wide(width: int) -> FileIssue:
    return file_issue("FILE_TOO_WIDE", value=f"{width:,}", detail=f"{MAX_COLUMNS:,}")


def _first_line(data: bytes, offset: int) -> bytes:
    ends = [i for i in (data.find(b"\n", offset), data.find(b"\r", offset)) if i >= 0]
    return data[offset : min(ends)] if ends else data[offset:]


def _line_width(line: bytes, sep: str) -> int:
    """Fields in one line: separators outside quotes + 1 (array arithmetic, no parsing)."""
    b = np.frombuffer(line, dtype=np.uint8)
    seps = np.flatnonzero(b == ord(sep))
    quotes = np.flatnonzero(b == 34)
    if len(quotes):
        seps = seps[np.searchsorted(quotes, seps) % 2 == 0]
    return len(seps) + 1


def _to_table(records: list[list[str]]) -> RawTable:
    """Records already split (header first) -> RawTable: the reference the fast path and the
    streaming exact parser are tested against."""
    header = records[0] if records else []
    if not any(h.strip() for h in header):
        return _failed(file_issue("FILE_EMPTY", detail="the first line is empty"))
    if len(header) > MAX_COLUMNS:
        return _failed(_too_wide(len(header)))
    width = len(header)
    body = records[1:]
    counts = np.fromiter(map(len, body), dtype=np.int64, count=len(body))
    content = np.fromiter((any(f.strip() for f in r) for r in body), dtype=bool, count=len(body))
    ragged = _ragged_failure(counts, content, width, np.arange(2, len(body) + 2))
    if ragged:
        return _failed(ragged)
    for i in np.flatnonzero(counts != width):  # few rows: pad or cut to line up with the header
        body[i] = (body[i] + [""] * (width - len(body[i])))[:width]
    columns = list(zip(*body)) if body else [()] * width
    cells = pd.DataFrame(
        {str(j): pd.array(col, dtype="str") for j, col in enumerate(columns)},
        index=pd.RangeIndex(len(body)),
    )
    return _assemble(header, cells, np.arange(2, len(body) + 2, dtype=np.int64), counts, 0)


def _ragged_failure(
    counts: np.ndarray, content: np.ndarray, width: int, row_numbers: np.ndarray
) -> FileIssue | None:
    """FILE_RAGGED when more than half of the records with content (and at least
    RAGGED_MIN_ROWS) do not have the header's width: the file is not the table its header
    describes, and one ROW_FIELD_COUNT per row would only bury that."""
    wrong = (counts != width) & content
    n_wrong, n_records = int(wrong.sum()), int(content.sum())
    if n_wrong < RAGGED_MIN_ROWS or n_wrong * 2 <= n_records:
        return None
    return _ragged_issue(n_wrong, n_records, width, row_numbers[wrong][:_RAGGED_EXAMPLES])


def _ragged_issue(n_wrong: int, n_records: int, width: int, examples) -> FileIssue:
    rows = ", ".join(str(int(r)) for r in examples)
    return file_issue(
        "FILE_RAGGED",
        value=f"{n_wrong:,} of {n_records:,}",
        detail=f"{width:,} (the first are rows {rows})",
    )


#: Rows the streaming exact parser collects before turning them into Arrow arrays.
_EXACT_CHUNK = 65_536


def _parse_exact(text: str, sep: str = ",") -> RawTable:
    """The csv module's reading (the exact RFC 4180 reference), in bounded memory.

    Two passes over the text: the first only counts fields, so a file made mostly of ragged
    rows fails (FILE_RAGGED) before anything is stored; the second keeps the rows, a chunk
    of Python lists at a time turned into Arrow arrays.  Same result as _to_table.
    """

    def records():
        return csv.reader(io.StringIO(text, newline=""), delimiter=sep)

    it = records()
    header = next(it, [])
    if not any(h.strip() for h in header):
        return _failed(file_issue("FILE_EMPTY", detail="the first line is empty"))
    width = len(header)
    if width > MAX_COLUMNS:
        return _failed(_too_wide(width))
    n_wrong = n_records = 0
    examples: list[int] = []
    for number, fields in enumerate(it, start=2):
        if any(f.strip() for f in fields):
            n_records += 1
            if len(fields) != width:
                n_wrong += 1
                if len(examples) < _RAGGED_EXAMPLES:
                    examples.append(number)
    if n_wrong >= RAGGED_MIN_ROWS and n_wrong * 2 > n_records:
        return _failed(_ragged_issue(n_wrong, n_records, width, examples))

    chunks: list[list[pa.Array]] = [[] for _ in range(width)]
    pending: list[list[str]] = []
    numbers, counts = array("q"), array("q")
    empty_lines = 0

    def flush() -> None:
        for j, col in enumerate(zip(*pending) if pending else ()):
            chunks[j].append(pa.array(col, type=pa.string()))
        pending.clear()

    it = records()
    next(it)
    for number, fields in enumerate(it, start=2):
        if not fields:  # an empty line: nothing to store
            empty_lines += 1
            continue
        n = len(fields)
        if n != width:  # few rows (FILE_RAGGED otherwise): pad or cut to the header
            fields = (fields + [""] * (width - n))[:width]
        counts.append(n)
        numbers.append(number)
        pending.append(fields)
        if len(pending) >= _EXACT_CHUNK:
            flush()
    flush()
    cells = pd.DataFrame(
        {
            str(j): pd.array(pa.chunked_array(chunks[j], type=pa.string()), dtype="str")
            for j in range(width)
        },
        index=pd.RangeIndex(len(numbers)),
    )
    return _assemble(
        header,
        cells,
        np.frombuffer(numbers, dtype=np.int64).copy(),
        np.frombuffer(counts, dtype=np.int64).copy(),
        empty_lines,
    )


def _assemble(
    header: list[str],
    cells: pd.DataFrame,
    row_numbers: np.ndarray,
    counts: np.ndarray,
    blank_lines: int,
    escapes: bool = True,
    order: np.ndarray | None = None,
) -> RawTable:
    """Drop blank rows, strip the report's formula escape, and wrap up.

    `escapes=False` promises that no cell can start with the formula escape (the caller saw
    no quote followed by = + - @ tab or CR anywhere in the file), which skips that test.
    `order`, if given, is the order the rows (with their row numbers and counts) should be
    in: applied here in the same copy as dropping the blank rows.
    """
    header = [_FORMULA_ESCAPE.sub("", h) for h in header]
    # All columns as one pyarrow array, so that each test is ONE kernel call (the kernels
    # pandas' str methods use): a per-column pandas loop took 20+ s on a 10,000-column file.
    n_rows, n_cols = len(cells), len(cells.columns)
    arrays = [pa.array(col.array) for _, col in cells.items()]
    blank = _blank_rows(arrays, n_rows)
    if escapes and n_cols:
        quoted = _per_cell(
            _every(arrays, None), n_cols, n_rows, lambda every: pc.starts_with(every, "'")
        ).any(axis=1)
    else:
        quoted = np.zeros(n_cols, dtype=bool)
    if order is not None:
        rows = order[~blank[order]]
        cells = cells.iloc[rows].reset_index(drop=True)
        row_numbers, counts = row_numbers[rows], counts[rows]
    elif blank.any():
        keep = ~blank
        cells = cells.loc[keep].reset_index(drop=True)
        row_numbers, counts = row_numbers[keep], counts[keep]
    for name in cells.columns[np.flatnonzero(quoted)]:
        cells[name] = cells[name].str.replace(_FORMULA_ESCAPE, "", regex=True)
    table = RawTable(
        header, cells, row_numbers, counts, blank_skipped=int(blank.sum()) + blank_lines
    )
    if len(cells) == 0:
        table.file_issues.append(file_issue("FILE_NO_ROWS"))
    return table


def _every(arrays: list, rows: np.ndarray | None) -> pa.ChunkedArray:
    """The given columns (only `rows` of each, if given) end to end, as ONE large_string array."""
    if rows is not None:
        arrays = [arr.take(rows) for arr in arrays]
    return pa.chunked_array(
        [
            chunk.cast(pa.large_string())
            for arr in arrays
            for chunk in (arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr])
        ],
        type=pa.large_string(),
    )


def _per_cell(every: pa.ChunkedArray, n_cols: int, n_rows: int, test) -> np.ndarray:
    """A (columns, rows) boolean matrix: `test` on each cell, a null cell is False."""
    flat = pc.fill_null(test(every), False).to_numpy(zero_copy_only=False)
    return flat.astype(bool).reshape(n_cols, n_rows)


def _is_blank(every):
    return pc.or_(pc.equal(every, ""), pc.utf8_is_space(every))


def _blank_rows(arrays: list, n_rows: int) -> np.ndarray:
    """Rows whose every cell is empty or white space.

    Column by column on the rows still in doubt for the first few columns (most rows prove
    they are not blank in the first column or two), then all remaining columns of the rows
    still in doubt in one kernel call (a per-column loop is slow on very wide files).
    """
    if not arrays:
        return np.ones(n_rows, dtype=bool)
    doubt: np.ndarray | None = None  # None: every row
    for arr in arrays[:_PROGRESSIVE_COLUMNS]:
        if doubt is not None and len(doubt) == 0:
            break
        mask = _per_cell(
            _every([arr], doubt), 1, n_rows if doubt is None else len(doubt), _is_blank
        )[0]
        doubt = np.flatnonzero(mask) if doubt is None else doubt[mask]
    rest = arrays[_PROGRESSIVE_COLUMNS:]
    if rest and len(doubt):
        rows = None if len(doubt) == n_rows else doubt
        doubt = doubt[_per_cell(_every(rest, rows), len(rest), len(doubt), _is_blank).all(axis=0)]
    blank = np.zeros(n_rows, dtype=bool)
    blank[doubt] = True
    return blank


_PROGRESSIVE_COLUMNS = 4


def _may_have_escapes(data: bytes) -> bool:
    """Whether a quote followed by = + - @ tab or CR occurs anywhere in the file."""
    at = _positions(data, 39)  # '
    at = at[at + 1 < len(data)]
    return bool(len(at)) and bool(
        np.isin(np.frombuffer(data, dtype=np.uint8)[at + 1], (61, 43, 45, 64, 9, 13)).any()
    )  # = + - @ \t \r


def _positions(data: bytes, byte: int) -> np.ndarray:
    """Sorted positions of one byte value: memchr-fast find() calls when it is rare (a few
    ms), one numpy pass over the whole file (~40 ms per 100 MB) when it is common."""
    char = bytes([byte])
    if char not in data:
        return _EMPTY
    step = 1 << 20
    if data.count(char, 0, step) * (len(data) // step + 1) <= _FIND_LIMIT:  # looks rare
        found, find = [], data.find
        i = find(char)
        while i >= 0 and len(found) <= _FIND_LIMIT:
            found.append(i)
            i = find(char, i + 1)
        if i < 0:
            return np.array(found, dtype=np.int64)
    return np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == byte)


_FIND_LIMIT = 100_000


def _record_bounds(
    data: bytes, sep: str = ","
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Start and end of every CSV record, by arithmetic over byte positions.

    Returns (starts, ends, breaks, quotes): a record is data[starts[i]:ends[i]] (its line
    break, CRLF included, left out; ends <= starts for an empty line), breaks[i] is the
    position of its line break (len(data) for a last record without one) and quotes the
    positions of the quote characters that are CSV syntax (see _syntax_quotes).  None when
    the file has too many stray quotes to sort out quickly.

    Inside an RFC 4180 quoted field the number of syntax quotes seen so far is odd, so a
    line break ends a record exactly where that count is even ("" escapes cancel).
    """
    b = np.frombuffer(data, dtype=np.uint8)
    n = len(b)
    quotes = _positions(data, 34)
    if len(quotes):
        quotes = _syntax_quotes(data, quotes, sep)
    if quotes is None:
        return None
    breaks = _positions(data, 10)
    cr = _positions(data, 13)
    has_cr = len(cr) > 0
    if has_cr:
        lone = cr[b[np.minimum(cr + 1, n - 1)] != 10]  # a CR of CRLF is not a break of its own
        if len(lone):  # (b[n - 1] is that CR itself when the file ends with CR: not LF)
            breaks = np.union1d(breaks, lone)
    if len(quotes):
        breaks = breaks[np.searchsorted(quotes, breaks) % 2 == 0]
    if len(breaks) == 0 or breaks[-1] != n - 1:
        breaks = np.append(breaks, n)  # a last record without a line break
    starts = np.concatenate(([0], breaks[:-1] + 1))
    ends = breaks.copy()
    if has_cr:
        inner = (breaks < n) & (breaks > starts)
        inner[inner] = b[breaks[inner] - 1] == 13
        ends[inner] -= 1  # CRLF: the record's text stops before the CR
    return starts, ends, breaks, quotes


#: Past this many quote characters, a file with stray quotes goes to the exact parser.
_MAX_QUOTE_SCAN = 1_000_000


def _syntax_quotes(data: bytes, quotes: np.ndarray, sep: str = ",") -> np.ndarray | None:
    """The quote characters that open, close or escape (\"\") within a quoted field, as the csv
    module reads them; a stray quote inside an unquoted field (O"Brien, 5"10) is text.

    Usually every quote is syntax: each opening quote (an even number of quotes before it)
    follows a comma, a line break, the start of the file or a closing quote ("" escape) and
    each closing quote is followed by a comma, a line break, the end of the file or an opening
    quote ("" again): one vectorised test.  Otherwise the csv module's state machine, quote by
    quote (None when there are too many quotes for that).
    """
    b = np.frombuffer(data, dtype=np.uint8)
    separators = (ord(sep), *_LINE_BREAKS)
    field_start = np.zeros(256, dtype=bool)
    field_start[[*separators, 34]] = True  # next to a syntax quote: sep, LF, CR or a quote
    if len(quotes) % 2 == 0:
        opening, closing = quotes[0::2], quotes[1::2]
        after = closing + 1
        if (
            field_start[b[opening[opening > 0] - 1]].all()
            and field_start[b[after[after < len(b)]]].all()
        ):
            return quotes
    if len(quotes) > _MAX_QUOTE_SCAN:
        return None
    syntax: list[int] = []
    inside = escaped = False
    for p in quotes.tolist():
        if escaped:  # the second quote of a "" escape
            syntax.append(p)
            escaped = False
        elif inside:
            syntax.append(p)
            if data[p + 1 : p + 2] == b'"':
                escaped = True
            else:
                inside = False  # closing; text up to the next comma or line break is literal
        elif p == 0 or data[p - 1] in separators:
            syntax.append(p)  # opening
            inside = True
    return np.array(syntax, dtype=np.int64)


_LINE_BREAKS = (10, 13)  # with the delimiter: what ends a field outside quotes
_EMPTY = np.zeros(0, dtype=np.int64)


def _field_counts(
    data: bytes,
    starts: np.ndarray,
    ends: np.ndarray,
    breaks: np.ndarray,
    quotes: np.ndarray,
    sep: str = ",",
) -> np.ndarray:
    """Number of fields of every record (0 for an empty line): commas outside quotes + 1."""
    b = np.frombuffer(data, dtype=np.uint8)
    commas = np.flatnonzero(b == ord(sep))  # (named for the usual delimiter)
    # a record runs from just after the previous line break (never a comma) to its own
    counts = np.diff(np.searchsorted(commas, breaks), prepend=0) + 1
    if len(quotes):  # a quoted stretch lies within one record: take its commas off that record
        opening = quotes[0::2]
        closing = quotes[1::2] if len(quotes) % 2 == 0 else np.append(quotes[1::2], len(b))
        inside = np.searchsorted(commas, closing) - np.searchsorted(commas, opening)
        record = np.searchsorted(starts, opening, side="right") - 1
        counts -= np.bincount(record, weights=inside, minlength=len(starts)).astype(np.int64)
    counts[ends <= starts] = 0  # an empty line
    return counts


def _parse_fast(data: bytes, sep: str = ",") -> RawTable | None:
    """pyarrow's multi-threaded CSV parser, aligned to spreadsheet rows by _record_bounds.

    `data` is UTF-8.  Returns None (use the exact parser) whenever the two disagree.

    Field counts are only worked out when pyarrow skipped rows (ragged rows are rare): when it
    skipped none, every non-empty record has the header's width, and pyarrow's rows are the
    non-empty records in order, provided it read as many rows as there are such records.
    """
    simple = _parse_lines(data, sep)
    if simple is not None:
        return simple
    bounds = _record_bounds(data, sep)
    if bounds is None:
        return None
    starts, ends, breaks, quotes = bounds
    if len(starts) < 2 or ends[0] <= starts[0]:
        return None
    header = next(csv.reader([data[starts[0] : ends[0]].decode("utf-8")], delimiter=sep), [])
    width = len(header)
    if width == 0 or not any(h.strip() for h in header) or width > MAX_COLUMNS:
        return None
    names = [str(j) for j in range(width)]

    def read(abort_after: float):
        """pyarrow's table and how many rows it skipped (table None: it stopped)."""
        skipped = [0]

        def skip_invalid(row) -> str:
            skipped[0] += 1
            return "error" if skipped[0] > abort_after else "skip"

        return _pyarrow_read(data, sep, names, skip_invalid), skipped[0]

    def shape() -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        counts = _field_counts(data, starts, ends, breaks, quotes, sep)
        if width != counts[0]:
            return None
        body_counts = counts[1:]
        ragged = np.flatnonzero((body_counts != width) & (body_counts != 0))
        return body_counts, body_counts == width, ragged

    # pyarrow skips a ragged row slowly (tens of microseconds each): past a few thousand it
    # stops, and the fields are counted first, so that a file made of ragged rows fails with
    # FILE_RAGGED in array arithmetic, without parsing any of them.
    table, skipped = read(_SKIPS_BEFORE_COUNTING)
    counted = None
    if table is None:
        if skipped <= _SKIPS_BEFORE_COUNTING:
            return None  # pyarrow refused the file for another reason
        counted = shape()
        if counted is None:
            return None
        failure = _ragged_in_bytes(data, starts, ends, counted[2], counted[1], width, sep)
        if failure:
            return _failed(failure)
        table, skipped = read(float("inf"))
        if table is None:
            return None
    if table.num_rows < 1 or list(table.slice(0, 1).to_pylist()[0].values()) != header:
        return None
    filled = ends[1:] > starts[1:]  # body records that are not empty lines
    blank_lines = len(filled) - int(filled.sum())
    if not skipped:
        if table.num_rows != len(filled) - blank_lines + 1:
            return None
        good, ragged = filled, _EMPTY
    else:  # count every record's fields to know which ones pyarrow skipped
        counted = counted or shape()
        if counted is None:
            return None
        body_counts, good, ragged = counted
        if table.num_rows != int(good.sum()) + 1 or skipped != len(ragged):
            return None
        failure = _ragged_in_bytes(data, starts, ends, ragged, good, width, sep)
        if failure:
            return _failed(failure)
    cells = _text_frame(table.slice(1), names)
    del table
    row_numbers = np.flatnonzero(good).astype(np.int64) + 2
    field_counts = np.full(len(cells), width, dtype=np.int64)
    if len(ragged):
        extra, real = [], []
        for i in ragged:  # few rows: parse them exactly, padded or cut to the header
            record = data[starts[i + 1] : ends[i + 1]].decode("utf-8")
            fields = next(csv.reader([record], delimiter=sep), [])
            extra.append((fields + [""] * width)[:width])
            real.append(len(fields))
        if real != body_counts[ragged].tolist():
            return None
        more = pd.DataFrame(extra, columns=names).astype("str")
        cells = pd.concat([cells, more], ignore_index=True)
        row_numbers = np.concatenate([row_numbers, ragged.astype(np.int64) + 2])
        field_counts = np.concatenate([field_counts, body_counts[ragged]])
        order = np.argsort(row_numbers, kind="stable")  # _assemble reorders (one copy)
    else:
        order = None
    cells = cells.astype("str")  # one call: a per-column loop is slow on very wide files
    return _assemble(
        header,
        cells,
        row_numbers,
        field_counts,
        blank_lines,
        escapes=_may_have_escapes(data),
        order=order,
    )


def _parse_lines(data: bytes, sep: str) -> RawTable | None:
    """The usual file, without working out where each record starts: LF line breaks only,
    and pyarrow reads exactly one record per line (so no line is empty, ragged, or inside a
    quoted value) -- then row n of the table is line n + 2 of the file.  None otherwise
    (the caller's general path decides)."""
    if b"\r" in data:
        return None
    end = data.find(b"\n")
    first = data if end < 0 else data[:end]
    if first.count(b'"') % 2:  # the header line goes on past its line break
        return None
    header = next(csv.reader([first.decode("utf-8")], delimiter=sep), [])
    width = len(header)
    if width == 0 or not any(h.strip() for h in header) or width > MAX_COLUMNS:
        return None
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    names = [str(j) for j in range(width)]
    table = _pyarrow_read(data, sep, names, lambda row: "error")  # a ragged row: not usual
    if table is None or table.num_rows != lines or lines < 2:
        return None
    if list(table.slice(0, 1).to_pylist()[0].values()) != header:
        return None
    cells = _text_frame(table.slice(1), names)
    del table
    n = len(cells)
    return _assemble(
        header,
        cells,
        np.arange(2, n + 2, dtype=np.int64),
        np.full(n, width, dtype=np.int64),
        0,
        escapes=_may_have_escapes(data),
    )


def _pyarrow_read(data: bytes, sep: str, names: list[str], invalid_row) -> pa.Table | None:
    """pyarrow's multi-threaded CSV parser, every cell as text ("" never null); None when it
    stops (`invalid_row(row)` says "skip" or "error" for a row of the wrong width)."""
    try:
        return pv.read_csv(
            pa.py_buffer(data),
            read_options=pv.ReadOptions(column_names=names, block_size=8 << 20),
            parse_options=pv.ParseOptions(
                delimiter=sep, newlines_in_values=True, invalid_row_handler=invalid_row
            ),
            convert_options=pv.ConvertOptions(
                # large_string: what pandas' Arrow-backed str columns hold (no cast later)
                column_types={n: pa.large_string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None


def _text_frame(table: pa.Table, names: list[str]) -> pd.DataFrame:
    """The parsed text as pandas str columns that share Arrow's buffers (no copy; pandas'
    own to_pandas() takes ~0.3 s on 1,000,000 rows for the same result)."""
    dtype = pd.Series([], dtype="str").dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        frame = table.to_pandas(split_blocks=True)
        frame.columns = names
        return frame
    columns = {
        name: pd.Series(dtype.__from_arrow__(column), copy=False)
        for name, column in zip(names, table.columns)
    }
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows), copy=False)


def _ragged_in_bytes(
    data: bytes,
    starts: np.ndarray,
    ends: np.ndarray,
    ragged: np.ndarray,
    good: np.ndarray,
    width: int,
    sep: str,
) -> FileIssue | None:
    """_ragged_failure for the fast path, before any ragged row is parsed: a ragged record
    counts when it has a byte other than the delimiter, quotes and ASCII white space (one
    segment sum over the ragged records; a record of only non-ASCII spaces counts too)."""
    n_good = int(good.sum())
    if len(ragged) < RAGGED_MIN_ROWS or len(ragged) <= n_good:
        return None  # cannot be more than half, even if every ragged row has content
    lut = _CONTENT_LUT.copy()
    lut[ord(sep)] = False
    b = np.frombuffer(data, dtype=np.uint8)
    s, e = starts[ragged + 1], ends[ragged + 1]  # ragged records are never empty (e > s)
    bounds = np.empty(2 * len(s), dtype=np.int64)
    bounds[0::2], bounds[1::2] = s, e
    inside = np.add.reduceat(lut[b], bounds[bounds < len(b)], dtype=np.int64)[0::2]
    content = np.zeros(len(s), dtype=bool)
    content[: len(inside)] = inside > 0
    n_wrong = int(content.sum())
    if n_wrong < RAGGED_MIN_ROWS or n_wrong <= n_good:
        return None
    examples = ragged[content][:_RAGGED_EXAMPLES].astype(np.int64) + 2
    return _ragged_issue(n_wrong, n_good + n_wrong, width, examples)


#: Bytes that never make a row non-blank (with the delimiter): ASCII white space and quotes.
_BLANK_BYTES = b'\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "'
_CONTENT_LUT = np.ones(256, dtype=bool)  # True: a content byte
_CONTENT_LUT[list(_BLANK_BYTES)] = False
#: Ragged rows pyarrow skips one by one before the fields are counted in arrays instead.
_SKIPS_BEFORE_COUNTING = 2_000
