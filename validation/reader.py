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
    return RawTable([], pd.DataFrame(), np.zeros(0, dtype=np.int64),
                    np.zeros(0, dtype=np.int64), file_issues=list(issues))


def _human_size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def decode(data: bytes) -> tuple[str | None, str, list[FileIssue]]:
    """Return (text, encoding name, issues); text is None when the file cannot be read."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
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


def read_table(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> RawTable:
    """Read a CSV upload.  File-level problems come back in `file_issues`, never raised."""
    if len(data) == 0:
        return _failed(file_issue("FILE_EMPTY"))
    if len(data) > max_bytes:
        return _failed(file_issue("FILE_TOO_LARGE", detail=f"{_human_size(len(data))} "
                                                          f"(limit {_human_size(max_bytes)})"))
    for signature, what in _WORKBOOK_SIGNATURES.items():
        if data.startswith(signature):
            return _failed(file_issue("FILE_NOT_CSV", detail=what))
    text, encoding, notes = decode(data)
    if text is None:
        return _failed(*notes)
    if not _CONTENT.search(text):
        return _failed(file_issue("FILE_EMPTY"))
    utf8 = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    table = _parse_fast(utf8 if encoding == "utf-8" else text.encode("utf-8"))
    if table is None:  # the exact (slower) parser for anything the fast path is not sure of
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
    cells = pd.DataFrame({str(j): pd.array(col, dtype="str") for j, col in enumerate(columns)},
                         index=pd.RangeIndex(len(body)))
    return _assemble(header, cells, np.arange(2, len(body) + 2, dtype=np.int64), counts, 0)


def _assemble(header: list[str], cells: pd.DataFrame, row_numbers: np.ndarray,
              counts: np.ndarray, blank_lines: int) -> RawTable:
    """Drop blank rows, strip the report's formula escape, and wrap up."""
    header = [_FORMULA_ESCAPE.sub("", h) for h in header]
    # All columns as one pyarrow array, so that each test is ONE kernel call (the kernels
    # pandas' str methods use): a per-column pandas loop took 20+ s on a 10,000-column file.
    n_rows, n_cols = len(cells), len(cells.columns)
    arrays = [pa.array(col.array) for _, col in cells.items()]
    every = pa.chunked_array([chunk.cast(pa.large_string()) for arr in arrays for chunk in (
        arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr])], type=pa.large_string())

    def per_cell(mask) -> np.ndarray:  # a (columns, rows) boolean matrix
        flat = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
        return flat.astype(bool).reshape(n_cols, n_rows)

    blank = (per_cell(pc.or_(pc.equal(every, ""), pc.utf8_is_space(every))).all(axis=0)
             if n_cols else np.ones(n_rows, dtype=bool))
    quoted = per_cell(pc.starts_with(every, "'")).any(axis=1) if n_cols else []
    if blank.any():
        keep = ~blank
        cells = cells.loc[keep].reset_index(drop=True)
        row_numbers, counts = row_numbers[keep], counts[keep]
    for name in cells.columns[np.flatnonzero(quoted)]:
        cells[name] = cells[name].str.replace(_FORMULA_ESCAPE, "", regex=True)
    table = RawTable(header, cells, row_numbers, counts,
                     blank_skipped=int(blank.sum()) + blank_lines)
    if len(cells) == 0:
        table.file_issues.append(file_issue("FILE_NO_ROWS"))
    return table


def _record_bounds(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start, end and field count of every CSV record, by arithmetic over byte positions.

    Inside an RFC 4180 quoted field the number of quote characters seen so far is odd, so a
    comma or line break is a separator exactly where that count is even ("" escapes cancel).
    """
    b = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(b == 34)

    def outside(positions: np.ndarray) -> np.ndarray:
        if len(quotes) == 0:
            return positions
        return positions[np.searchsorted(quotes, positions) % 2 == 0]

    lf = np.flatnonzero(b == 10)
    cr = np.flatnonzero(b == 13)
    if len(cr):
        cr = cr[~np.isin(cr + 1, lf)]  # a CR of CRLF is not a break of its own
    ends = outside(np.union1d(lf, cr) if len(cr) else lf)
    if len(ends) == 0 or ends[-1] != len(b) - 1:
        ends = np.append(ends, len(b))  # a last record without a line break
    starts = np.concatenate(([0], ends[:-1] + 1))
    commas = outside(np.flatnonzero(b == 44))
    counts = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    content_end = ends.copy()
    inner = (ends < len(b)) & (ends > starts)
    inner[inner] = b[ends[inner] - 1] == 13
    content_end[inner] -= 1  # CRLF: the record's text stops before the CR
    counts[content_end <= starts] = 0  # an empty line
    return starts, content_end, counts


def _parse_fast(data: bytes) -> RawTable | None:
    """pyarrow's multi-threaded CSV parser, aligned to spreadsheet rows by _record_bounds.

    `data` is UTF-8.  Returns None (use the exact parser) whenever the two disagree.
    """
    starts, ends, counts = _record_bounds(data)
    if len(starts) < 2 or counts[0] < 1:
        return None
    header = next(csv.reader([data[starts[0]:ends[0]].decode("utf-8")]), [])
    width = len(header)
    if width != counts[0] or not any(h.strip() for h in header):
        return None
    body_counts = counts[1:]
    good = body_counts == width
    ragged = np.flatnonzero((body_counts != width) & (body_counts != 0))
    names = [str(j) for j in range(width)]
    skipped: list[int] = []

    def skip_invalid(row) -> str:
        skipped.append(row.actual_columns)
        return "skip"

    try:
        table = pv.read_csv(
            pa.py_buffer(data),
            read_options=pv.ReadOptions(column_names=names, block_size=8 << 20),
            parse_options=pv.ParseOptions(newlines_in_values=True, invalid_row_handler=skip_invalid),
            convert_options=pv.ConvertOptions(column_types={n: pa.string() for n in names},
                                              strings_can_be_null=False,
                                              quoted_strings_can_be_null=False),
        )
    except pa.ArrowInvalid:
        return None
    if table.num_rows != int(good.sum()) + 1 or len(skipped) != len(ragged):
        return None
    cells = table.slice(1).to_pandas()
    cells.columns = names
    row_numbers = np.flatnonzero(good).astype(np.int64) + 2
    field_counts = np.full(len(cells), width, dtype=np.int64)
    if len(ragged):
        extra = []
        for i in ragged:  # few rows: parse them exactly, padded or cut to the header
            fields = next(csv.reader([data[starts[i + 1]:ends[i + 1]].decode("utf-8")]), [])
            extra.append((fields + [""] * width)[:width])
        more = pd.DataFrame(extra, columns=names).astype("str")
        cells = pd.concat([cells, more], ignore_index=True)
        row_numbers = np.concatenate([row_numbers, ragged.astype(np.int64) + 2])
        field_counts = np.concatenate([field_counts, body_counts[ragged]])
        order = np.argsort(row_numbers, kind="stable")
        cells = cells.iloc[order].reset_index(drop=True)
        row_numbers, field_counts = row_numbers[order], field_counts[order]
    cells = cells.astype("str")  # one call: a per-column loop is slow on very wide files
    blank_lines = int((body_counts == 0).sum())
    return _assemble(header, cells, row_numbers, field_counts, blank_lines)
