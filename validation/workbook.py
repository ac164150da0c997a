"""What kind of file an upload really is, and an .xlsx / .xlsm sheet as the CSV it shows.

A file's bytes decide, never its name: a workbook renamed `users.csv` is still read as a
workbook, and an HTML page saved as `users.csv` is still refused.  A workbook sheet becomes
UTF-8 CSV text in which every cell is what the spreadsheet DISPLAYS (its number format applied,
whole numbers without `.0`, dates as shown, formulas as their cached value), so the rest of
the reader treats it exactly like a CSV export of that sheet.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import islice

#: Formats refused from their first bytes, with the name a person knows them by.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)"),
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", "a compressed archive (.gz)"),
    (b"7z\xbc\xaf\x27\x1c", "a compressed archive (.7z)"),
    (b"Rar!\x1a\x07", "a compressed archive (.rar)"),
    (b"BZh", "a compressed archive (.bz2)"),
)
_ZIP = b"PK\x03\x04"
#: Text formats that spreadsheets write under a .csv name (checked on the first bytes).
_SPREADSHEET_ML = re.compile(rb"urn:schemas-microsoft-com:office:spreadsheet", re.I)
_HTML = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|table)\b", re.I | re.S
)
_XML = re.compile(rb"^\s*<\?xml\b", re.I)
_SNIFF = 4096


@dataclass
class Sniffed:
    """`workbook` when the bytes are an .xlsx/.xlsm workbook; `refused` names any format
    that is not read; neither for text to read as CSV."""

    workbook: bool = False
    refused: str = ""


def sniff(data: bytes) -> Sniffed:
    for signature, what in _SIGNATURES:
        if data.startswith(signature):
            return Sniffed(refused=what)
    if data.startswith(_ZIP):
        return _sniff_zip(data)
    head = data[:_SNIFF]
    for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        if head.startswith(bom):  # UTF-16 pages: look at the text without its NULs
            head = head[len(bom) :].replace(b"\x00", b"")
    if _SPREADSHEET_ML.search(head) and _XML.match(head):
        return Sniffed(refused="an Excel XML spreadsheet (SpreadsheetML) saved with a .csv name")
    if _HTML.match(head):
        return Sniffed(refused="a web page (HTML) saved with a .csv name")
    return Sniffed()


def _sniff_zip(data: bytes) -> Sniffed:
    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return Sniffed(refused="a damaged zip archive")
    if "xl/workbook.xml" in names:
        return Sniffed(workbook=True)
    if "xl/workbook.bin" in names:
        return Sniffed(refused="an Excel binary workbook (.xlsb)")
    if "content.xml" in names and "mimetype" in names:
        return Sniffed(refused="an OpenDocument spreadsheet (.ods)")
    if any(n.startswith("Index/") and n.endswith(".iwa") for n in names):
        return Sniffed(refused="an Apple Numbers spreadsheet (.numbers)")
    if "word/document.xml" in names:
        return Sniffed(refused="a Word document (.docx)")
    return Sniffed(refused="a zip archive")


class WorkbookError(Exception):
    """The workbook cannot be read; the message says why, for FILE_NOT_CSV."""


class TooLarge(Exception):
    """The sheet's text is over the size limit."""


@dataclass
class Sheet:
    name: str
    csv: bytes


#: How many rows of a sheet are looked at to decide whether it has data.
_PROBE_ROWS = 1000


def workbook_to_csv(data: bytes, prefer: tuple[str, ...], max_bytes: int) -> Sheet:
    """The sheet to read, as UTF-8 CSV bytes.

    The first visible sheet, or, when several visible sheets have data, the first whose name
    contains one of `prefer` (letter case ignored).  Rows above the header stay as empty
    lines, so row numbers are the sheet's own.
    """
    from openpyxl import load_workbook  # only for a workbook upload

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise WorkbookError(
            f"an Excel workbook that cannot be opened ({type(exc).__name__})"
        ) from exc
    try:
        visible = [ws for ws in book.worksheets if ws.sheet_state == "visible"]
        if not visible:
            raise WorkbookError("an Excel workbook with no visible sheet")
        with_data = [ws for ws in visible if _has_data(ws)]
        chosen = visible[0] if not with_data else with_data[0]
        if len(with_data) > 1:
            for word in prefer:
                named = [ws for ws in with_data if word in ws.title.casefold()]
                if named:
                    chosen = named[0]
                    break
        return Sheet(chosen.title, _sheet_csv(chosen, book.epoch, max_bytes))
    finally:
        book.close()


def _has_data(ws) -> bool:
    return any(
        any(v is not None and v != "" for v in row)
        for row in islice(ws.iter_rows(values_only=True), _PROBE_ROWS)
    )


def _sheet_csv(ws, epoch: datetime, max_bytes: int) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    width = 0  # the header row's width, once found
    pending_blank = 0  # blank rows are written only when a row with data follows them
    size = 0
    for row in ws.iter_rows():
        cells = [_display(c, epoch) for c in row]
        while cells and not cells[-1].strip():
            cells.pop()
        if not cells:
            pending_blank += 1
            continue
        blank_row = [""] * width if width else []  # above the header: an empty line
        for _ in range(pending_blank):
            writer.writerow(blank_row)
        pending_blank = 0
        if not width:
            width = len(cells)
        writer.writerow(cells + [""] * (width - len(cells)))
        if out.tell() - size > 1 << 20:
            size = out.tell()
            if size > max_bytes:
                raise TooLarge
    text = out.getvalue()
    if len(text) > max_bytes:
        raise TooLarge
    return text.encode("utf-8")


def _display(cell, epoch: datetime) -> str:
    """The text a spreadsheet shows for one cell."""
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    fmt = getattr(cell, "number_format", None) or "General"
    if isinstance(value, (datetime, date, time, timedelta)):
        from openpyxl.utils.datetime import to_excel

        value = to_excel(value, epoch)
    if isinstance(value, (int, float)):
        if fmt == "General" and float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return _formatter().format(fmt, value)
    return str(value)


_SSF = None


def _formatter():
    """SheetJS's number-format engine (Python port), made once."""
    global _SSF
    if _SSF is None:
        from ssf import SSF

        _SSF = SSF()
    return _SSF
