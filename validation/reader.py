"""Bytes -> a table of text, exactly as a spreadsheet would show it.

Decoding (UTF-8 with or without BOM, UTF-16 with BOM, Windows-1252 fallback), refusal
of binary files and workbooks, RFC 4180 parsing with quoted newlines, spreadsheet row
numbers, blank rows, ragged rows and the report's formula escape.  Nothing here knows
what the columns mean.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pv

from validation.issues import FileIssue, file_issue

DEFAULT_MAX_BYTES = 100 * 1024 * 1024

_WORKBOOK_SIGNATURES = {
    b"PK\x03\x04": "a spreadsheet workbook (.xlsx) or zip archive",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "an Excel 97-2003 workbook (.xls)",
}
#: The report escapes formula-looking cells with a leading quote; reading strips it again.
_FORMULA_ESCAPE = re.compile(r"^'(?=[=+\-@\t\r])")
_CONTENT = re.compile(r"[^\s,\"']")

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
        return text, "UTF-16", [file_issue("FILE_ENCODING_GUESSED", detail="UTF-16")]
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


def read_table(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> RawTable:
    """Read a CSV upload.  File-level problems come back in `file_issues`, never raised."""
    if len(data) == 0:
        return _failed(file_issue("FILE_EMPTY"))
    if len(data) > max_bytes:
        return _failed(
            file_issue(
                "FILE_TOO_LARGE",
                detail=f"{_human_size(len(data))} (limit {_human_size(max_bytes)})",
            )
        )
    for signature, what in _WORKBOOK_SIGNATURES.items():
        if data.startswith(signature):
            return _failed(file_issue("FILE_NOT_CSV", detail=what))
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
    if not _CONTENT_BYTE.search(utf8):  # almost always found at the first byte
        if text is None:
            text = utf8.decode("utf-8")
        if not _CONTENT.search(text):
            return _failed(file_issue("FILE_EMPTY"))
    table = _parse_fast(utf8)
    if table is None:  # the exact (slower) parser for anything the fast path is not sure of
        if text is None:
            text = utf8.decode("utf-8")
        table = _to_table(list(csv.reader(io.StringIO(text, newline=""))))
    table.encoding = encoding
    table.file_issues = notes + table.file_issues
    return table


def _to_table(records: list[list[str]]) -> RawTable:
    """The exact parser's records (header first) -> RawTable."""
    header = records[0] if records else []
    if not any(h.strip() for h in header):
        return _failed(file_issue("FILE_EMPTY", detail="the first line is empty"))
    width = len(header)
    body = records[1:]
    counts = np.fromiter(map(len, body), dtype=np.int64, count=len(body))
    for i in np.flatnonzero(counts != width):  # few rows: pad or cut to line up with the header
        body[i] = (body[i] + [""] * (width - len(body[i])))[:width]
    columns = list(zip(*body)) if body else [()] * width
    cells = pd.DataFrame(
        {str(j): pd.array(col, dtype="str") for j, col in enumerate(columns)},
        index=pd.RangeIndex(len(body)),
    )
    return _assemble(header, cells, np.arange(2, len(body) + 2, dtype=np.int64), counts, 0)


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


def _record_bounds(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
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
        quotes = _syntax_quotes(data, quotes)
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


def _syntax_quotes(data: bytes, quotes: np.ndarray) -> np.ndarray | None:
    """The quote characters that open, close or escape (\"\") within a quoted field, as the csv
    module reads them; a stray quote inside an unquoted field (O"Brien, 5"10) is text.

    Usually every quote is syntax: each opening quote (an even number of quotes before it)
    follows a comma, a line break, the start of the file or a closing quote ("" escape) and
    each closing quote is followed by a comma, a line break, the end of the file or an opening
    quote ("" again): one vectorised test.  Otherwise the csv module's state machine, quote by
    quote (None when there are too many quotes for that).
    """
    b = np.frombuffer(data, dtype=np.uint8)
    if len(quotes) % 2 == 0:
        opening, closing = quotes[0::2], quotes[1::2]
        after = closing + 1
        if (
            _FIELD_START[b[opening[opening > 0] - 1]].all()
            and _FIELD_START[b[after[after < len(b)]]].all()
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
        elif p == 0 or data[p - 1] in _FIELD_SEPARATORS:
            syntax.append(p)  # opening
            inside = True
    return np.array(syntax, dtype=np.int64)


_FIELD_SEPARATORS = (44, 10, 13)  # , LF CR: what ends a field outside quotes
_EMPTY = np.zeros(0, dtype=np.int64)
_FIELD_START = np.zeros(256, dtype=bool)
_FIELD_START[[*_FIELD_SEPARATORS, 34]] = True  # next to a syntax quote: , LF CR or a quote


def _field_counts(
    data: bytes, starts: np.ndarray, ends: np.ndarray, breaks: np.ndarray, quotes: np.ndarray
) -> np.ndarray:
    """Number of fields of every record (0 for an empty line): commas outside quotes + 1."""
    b = np.frombuffer(data, dtype=np.uint8)
    commas = np.flatnonzero(b == 44)
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


def _parse_fast(data: bytes) -> RawTable | None:
    """pyarrow's multi-threaded CSV parser, aligned to spreadsheet rows by _record_bounds.

    `data` is UTF-8.  Returns None (use the exact parser) whenever the two disagree.

    Field counts are only worked out when pyarrow skipped rows (ragged rows are rare): when it
    skipped none, every non-empty record has the header's width, and pyarrow's rows are the
    non-empty records in order, provided it read as many rows as there are such records.
    """
    bounds = _record_bounds(data)
    if bounds is None:
        return None
    starts, ends, breaks, quotes = bounds
    if len(starts) < 2 or ends[0] <= starts[0]:
        return None
    header = next(csv.reader([data[starts[0] : ends[0]].decode("utf-8")]), [])
    width = len(header)
    if width == 0 or not any(h.strip() for h in header):
        return None
    names = [str(j) for j in range(width)]
    skipped: list[int] = []

    def skip_invalid(row) -> str:
        skipped.append(row.actual_columns)
        return "skip"

    try:
        table = pv.read_csv(
            pa.py_buffer(data),
            read_options=pv.ReadOptions(column_names=names, block_size=8 << 20),
            parse_options=pv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=skip_invalid
            ),
            convert_options=pv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
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
        counts = _field_counts(data, starts, ends, breaks, quotes)
        if width != counts[0]:
            return None
        body_counts = counts[1:]
        good = body_counts == width
        ragged = np.flatnonzero((body_counts != width) & (body_counts != 0))
        if table.num_rows != int(good.sum()) + 1 or len(skipped) != len(ragged):
            return None
    cells = table.slice(1).to_pandas(split_blocks=True)
    cells.columns = names
    row_numbers = np.flatnonzero(good).astype(np.int64) + 2
    field_counts = np.full(len(cells), width, dtype=np.int64)
    if len(ragged):
        extra, real = [], []
        for i in ragged:  # few rows: parse them exactly, padded or cut to the header
            fields = next(csv.reader([data[starts[i + 1] : ends[i + 1]].decode("utf-8")]), [])
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
