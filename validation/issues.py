"""Issues: file-level ones as small objects, row-level ones as one DataFrame.

Row rules produce boolean masks over whole columns; `IssueLog.add` turns a mask into
issue rows.  Messages are rendered from the catalog only for the rows that failed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from validation.catalog import CATALOG, Severity
from validation.vector import take_rows

ISSUE_COLUMNS = ["idx", "column", "code", "value", "detail"]


@dataclass(frozen=True)
class FileIssue:
    code: str
    severity: str
    column: str
    message: str
    fix: str

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "column": self.column,
            "message": self.message,
            "fix": self.fix,
        }


def file_issue(
    code: str, column: str = "", value: str = "", detail: str = "", severity: Severity | None = None
) -> FileIssue:
    entry = CATALOG[code]
    fmt = dict(column=column, value=value, detail=detail)
    return FileIssue(code, str(severity or entry.severity), column, entry.render(**fmt), entry.fix)


class IssueLog:
    """Collects row issues as frames (one per rule) and concatenates them once."""

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def add(self, mask, column: str, code: str, value, detail="") -> None:
        """Record `code` on every row where `mask` is true.

        `value` and `detail` are a Series aligned with the table, a constant, or a function
        of the failing rows' positions (computed for those rows only).
        """
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        idx = np.flatnonzero(mask)
        self._parts.append(
            pd.DataFrame(
                {
                    "idx": idx,
                    "column": column,
                    "code": code,
                    "value": _pick(value, idx),
                    "detail": _pick(detail, idx),
                }
            )
        )

    def add_frame(self, frame: pd.DataFrame) -> None:
        if len(frame):
            self._parts.append(frame[ISSUE_COLUMNS])

    def frame(self) -> pd.DataFrame:
        if not self._parts:
            return pd.DataFrame(
                {c: pd.Series(dtype="int64" if c == "idx" else object) for c in ISSUE_COLUMNS}
            )
        out = pd.concat(self._parts, ignore_index=True)
        out["value"] = out["value"].astype(object).where(out["value"].notna(), "")
        out["detail"] = out["detail"].astype(object).where(out["detail"].notna(), "")
        return out


def _pick(value, idx: np.ndarray):
    """The failing rows' values only: never convert a whole column."""
    if callable(value):
        return np.asarray(value(idx), dtype=object)
    if isinstance(value, (pd.Series, pd.Index)):
        taken = take_rows(value, idx) if isinstance(value, pd.Series) else value.take(idx)
        return np.asarray(taken, dtype=object)
    if isinstance(value, (np.ndarray, pd.api.extensions.ExtensionArray)):
        return np.asarray(value[idx], dtype=object)
    return value


def severity_of(codes: pd.Series) -> pd.Series:
    return codes.map({c.code: str(c.severity) for c in CATALOG.values()})


def scope_of(codes: pd.Series) -> pd.Series:
    return codes.map({c.code: str(c.scope) for c in CATALOG.values()})


def render(issues: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Messages and fixes for each issue row (only failing rows ever get here)."""
    messages, fixes = [], []
    for code, column, value, detail in zip(
        issues["code"], issues["column"], issues["value"], issues["detail"]
    ):
        entry = CATALOG[code]
        fmt = dict(column=column, value=value, detail=detail)
        messages.append(entry.render(**fmt))
        fixes.append(entry.fix)
    return messages, fixes
