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

from validation.issues import FileIssue, file_issue

DEFAULT_MAX_BYTES = 100 * 1024 * 1024

_WORKBOOK_SIGNATURES = {
    b"PK\x03\x04": "a spreadsheet workbook (.xlsx) or zip archive",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "an Excel 97-2003 workbook (.xls)",
}
#: The report escapes formula-looking cells with a leading quote; reading strips it again.
_FORMULA_ESCAPE = re.compile(r"^'(?=[=+\-@\t\r])")

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
    if not text.strip(" \t\r\n,\"'"):
        return _failed(file_issue("FILE_EMPTY"))
    records = list(csv.reader(io.StringIO(text, newline="")))
    table = _to_table(records)
    table.encoding = encoding
    table.file_issues = notes + table.file_issues
    return table


def _to_table(records: list[list[str]]) -> RawTable:
    header = [_FORMULA_ESCAPE.sub("", h) for h in records[0]] if records else []
    if not any(h.strip() for h in header):
        return _failed(file_issue("FILE_EMPTY", detail="the first line is empty"))
    width = len(header)
    body = records[1:]
    counts = np.fromiter(map(len, body), dtype=np.int64, count=len(body))
    ragged = np.flatnonzero(counts != width)
    for i in ragged:  # few rows: pad or cut so every record lines up with the header
        row = body[i]
        body[i] = (row + [""] * (width - len(row)))[:width]
    columns = list(zip(*body)) if body else [()] * width
    cells = pd.DataFrame(
        {str(j): pd.array(col, dtype="str") for j, col in enumerate(columns)},
        index=pd.RangeIndex(len(body)),
    )
    row_numbers = np.arange(2, len(body) + 2, dtype=np.int64)
    blank = np.ones(len(body), dtype=bool)
    for name in cells.columns:
        blank &= (cells[name].str.strip() == "").to_numpy()
    if blank.any():
        keep = ~blank
        cells = cells.loc[keep].reset_index(drop=True)
        row_numbers, counts = row_numbers[keep], counts[keep]
    for name in cells.columns:
        col = cells[name]
        if col.str.startswith("'").any():
            cells[name] = col.str.replace(_FORMULA_ESCAPE, "", regex=True)
    table = RawTable(header, cells, row_numbers, counts, blank_skipped=int(blank.sum()))
    if len(cells) == 0:
        table.file_issues.append(file_issue("FILE_NO_ROWS"))
    return table
