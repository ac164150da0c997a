"""The error report (users-csv.md section 7): one line per row with an issue.

Columns: row_number, status, the uploaded file's own columns in their original order with
the original text, issues, details, how_to_fix.  A check's report (and a held upload's, or one
whose commit the database refused, which applied nothing either) says "applicable" where an
upload's says "applied"; a partly applied row's details start with what was saved and what was
not.  UTF-8 with BOM; formula-looking cells escaped with a leading quote (the reader strips it
again on re-upload).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from validation.vector import take_rows

REJECTED, PARTLY, WARNINGS = "rejected", "partly applied", "applied with warnings"
#: the status words of a report of a file that applied nothing (a check, a held upload, a
#: refused commit)
WOULD = {REJECTED: REJECTED, PARTLY: "partly applicable", WARNINGS: "applicable with warnings"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def escape_column(values: pa.Array) -> pa.Array:
    """escape_cell over a whole Arrow column of text (large_string)."""
    first = pc.utf8_slice_codeunits(values, 0, 1)
    formula = pc.is_in(first, value_set=pa.array(_FORMULA_START, pa.large_string()))
    quoted = pc.binary_join_element_wise(
        pa.scalar("'", pa.large_string()), values, pa.scalar("", pa.large_string())
    )
    return pc.if_else(formula, quoted, values)


def _escaped(values: pd.Series) -> list:
    """escape_cell over a column of the file (the rows of the report only)."""
    if isinstance(values.dtype, pd.StringDtype) and not values.isna().any():
        arr = pa.array(values.array)
        if arr.type != pa.large_string():
            arr = arr.cast(pa.large_string())
        return escape_column(arr).to_pylist()
    return [escape_cell(v) for v in np.asarray(values, dtype=object)]


def row_statuses(issues: pd.DataFrame, rejected: np.ndarray, applied_any: np.ndarray) -> pd.Series:
    """Report status per row index that has issues.

    `rejected[i]`: row i is wholly rejected; `applied_any[i]`: something of row i is applied.
    """
    if not len(issues):
        return pd.Series(dtype=object)
    has_error = (issues["severity"] == "error").groupby(issues["idx"]).any()
    idx = has_error.index.to_numpy()
    status = np.where(
        ~has_error.to_numpy(),
        WARNINGS,
        np.where(rejected[idx] | ~applied_any[idx], REJECTED, PARTLY),
    )
    return pd.Series(status, index=has_error.index)


def saved_notes(
    rows: np.ndarray,
    parts: Sequence[tuple[str | tuple[str, pd.Series], np.ndarray, np.ndarray]],
    would: bool = False,
) -> list[str]:
    """For each partly applied row in `rows` (table positions): what of it was saved and what
    was not ("class MATH5 saved; the person and the enrollment were not").

    `parts` are (label, carried, ok): the label of a part of a row (a constant, or a prefix and
    a Series aligned with the table: ("class ", classId)), the rows that carry that part, and the rows whose part applies.
    Only the given rows are turned into text."""
    saved_words = ("would be saved", "would not be") if would else ("saved", "were not")
    # each part's label, carried and ok for the given rows only (one take per part)
    picked = [
        (
            [label] * len(rows)
            if isinstance(label, str)
            else [label[0] + str(x) for x in np.asarray(label[1].take(rows), dtype=object)],
            np.asarray(carried)[rows],
            np.asarray(ok)[rows],
        )
        for label, carried, ok in parts
    ]
    notes = []
    for k in range(len(rows)):
        saved, lost = [], []
        for texts, carried, ok in picked:
            if not carried[k]:
                continue
            (saved if ok[k] else lost).append(texts[k])
        if not saved:
            notes.append("")
            continue
        note = f"{_joined(saved)} {saved_words[0]}"
        if lost:
            verb = saved_words[1]
            if len(lost) == 1:
                verb = "would not be" if would else "was not"
            note += f"; {_joined(lost)} {verb}"
        notes.append(note + ".")
    return notes


def saved_note_of(report: bytes | None, row_number: int, messages: Sequence[str]) -> str:
    """What of a partly applied (or partly applicable) row was saved, as its error report says
    it ("class MATH5 saved; the person and the enrollment were not."), or '' when the row is
    not partly applied or there is no report.

    `messages` are the row's issue messages in report order (the `issues` of the file's JSON):
    the report's details are the note followed by them, so the note is what precedes them.
    The report lists rows in ascending order; reading stops at the row asked about."""
    if not report:
        return ""
    reader = csv.reader(io.StringIO(report.decode("utf-8-sig")))
    header = next(reader, None)
    if not header or "details" not in header:
        return ""
    at = header.index("details")
    for line in reader:
        try:
            number = int(line[0])
        except (IndexError, ValueError):
            continue
        if number < row_number:
            continue
        if number > row_number or line[1] not in (PARTLY, WOULD[PARTLY]):
            return ""
        details = line[at] if at < len(line) else ""
        tail = " ".join(messages)
        note = details[: len(details) - len(tail)] if tail and details.endswith(tail) else ""
        return note.strip()
    return ""


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def build_report(
    issues: pd.DataFrame,
    statuses: pd.Series,
    headers: list[str],
    positions: list[int],
    cells: pd.DataFrame,
    row_numbers: np.ndarray,
    *,
    would: bool = False,
    notes: Mapping[int, str] | None = None,
) -> bytes:
    """Bytes of the report.  `issues` has idx, code, message, fix (sorted by row).

    `would`: the file applied nothing (a check, a held upload, a refused commit): statuses say
    "applicable".
    `notes`: per table position, a sentence put before the row's details."""
    issues = issues.sort_values("idx", kind="stable")
    rows = issues["idx"].to_numpy()
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else rows
    spans = list(zip(starts.tolist(), [*starts[1:].tolist(), len(rows)]))
    idx = rows[starts]

    def joined(column: str, sep: str) -> list[str]:  # one pass over runs of the same row
        values = issues[column].tolist()
        return [sep.join(values[a:b]) for a, b in spans]

    codes, details, fixes = joined("code", "; "), joined("message", " "), joined("fix", " ")
    if notes:
        details = [
            f"{notes[i]} {text}" if notes.get(i) else text for i, text in zip(idx.tolist(), details)
        ]
    out = io.BytesIO()
    out.write("\ufeff".encode())
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(
        [
            "row_number",
            "status",
            *(escape_cell(headers[p]) for p in positions),
            "issues",
            "details",
            "how_to_fix",
        ]
    )
    originals = [_escaped(take_rows(cells[str(p)], idx)) for p in positions]
    status = statuses.reindex(idx)
    status = (status.map(WOULD) if would else status).to_numpy()
    for k, i in enumerate(idx):
        writer.writerow(
            [
                int(row_numbers[i]),
                status[k],
                *(col[k] for col in originals),
                codes[k],
                escape_cell(details[k]),
                escape_cell(fixes[k]),
            ]
        )
    text.flush()
    data = out.getvalue()  # the report's one copy: no str of it, no second bytes
    text.detach()
    return data
