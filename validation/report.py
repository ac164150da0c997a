"""The error report (users-csv.md section 7): one line per row with an issue.

Columns: row_number, status, the uploaded file's own columns in their original order with
the original text, issues, details, how_to_fix.  UTF-8 with BOM; formula-looking cells
escaped with a leading quote (the reader strips it again on re-upload).
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

REJECTED, PARTLY, WARNINGS = "rejected", "partly applied", "applied with warnings"
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


def build_report(
    issues: pd.DataFrame,
    statuses: pd.Series,
    headers: list[str],
    positions: list[int],
    cells: pd.DataFrame,
    row_numbers: np.ndarray,
) -> bytes:
    """Bytes of the report.  `issues` has idx, code, message, fix (sorted by row)."""
    issues = issues.sort_values("idx", kind="stable")
    rows = issues["idx"].to_numpy()
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else rows
    spans = list(zip(starts.tolist(), [*starts[1:].tolist(), len(rows)]))
    idx = rows[starts]

    def joined(column: str, sep: str) -> list[str]:  # one pass over runs of the same row
        values = issues[column].tolist()
        return [sep.join(values[a:b]) for a, b in spans]

    codes, details, fixes = joined("code", "; "), joined("message", " "), joined("fix", " ")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
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
    originals = [np.asarray(cells[str(p)].take(idx), dtype=object) for p in positions]
    status = statuses.reindex(idx).to_numpy()
    for k, i in enumerate(idx):
        writer.writerow(
            [
                int(row_numbers[i]),
                status[k],
                *(escape_cell(col[k]) for col in originals),
                codes[k],
                escape_cell(details[k]),
                escape_cell(fixes[k]),
            ]
        )
    return "\ufeff".encode() + out.getvalue().encode("utf-8")
