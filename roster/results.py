"""What the pipeline answers: one `FileResult` per file, a `RunResult` per run.

`to_json()` is the `--json` output of product.md, key for key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from roster.states import FileStatus
from validation.issues import FileIssue

ROW_STATS = ("total", "blank_skipped", "rejected", "partly_applied", "with_warnings")


@dataclass
class Hold:
    """A guard that holds a file for the administrator's confirmation (product.md "Guards").

    Every guard fills one: the wording of the held summary (bot/text.py, bot/formatting.py,
    the CLI) is built from these fields alone, whatever the guard.
    """

    #: the guard's code: REMOVALS_NEED_CONFIRMATION, ID_CHANGES_NEED_CONFIRMATION, ...
    code: str
    #: one sentence: what is over which limit
    detail: str
    #: the first people / classes the file would change this way, readable ("Ava Johnson 004500")
    items: list[str] = field(default_factory=list)
    #: how many in all (`items` may be the first few)
    total: int = 0


@dataclass
class FileResult:
    file: str
    kind: str
    status: str = FileStatus.FAILED
    applied: bool = False
    file_issues: list[FileIssue] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    rows: dict = field(default_factory=lambda: dict.fromkeys(ROW_STATS, 0))
    issues: list[dict] = field(default_factory=list)
    error_report: str | None = None
    report_bytes: bytes | None = None
    upload_id: int | None = None
    dropped_report_columns: list[str] = field(default_factory=list)
    encoding: str = ""
    held: bool = False
    #: the guards that held this file (empty unless `held`)
    holds: list[Hold] = field(default_factory=list)
    #: people this users.csv accepted, userId -> "student" / "staff" (for a demographics.csv
    #: of the same upload)
    accepted_people: pd.DataFrame | None = None
    #: the changes file (product.md): bytes, or None when the file changes nothing
    changes_bytes: bytes | None = None
    #: how many lines the changes file has
    changes_count: int = 0
    #: its absolute path once written (`--report-dir`), else None
    changes_file: str | None = None
    #: the upload this record undid (an undo), else None
    undo_of: int | None = None
    #: "" or "-2", "-3"...: the second file of a kind in one run (RunContext.report_suffix)
    report_suffix: str = ""
    #: what the error report is built from (roster.steps.RowsReport), to build it again as a
    #: report of a file that applied nothing when the database refuses the commit
    report_source: Any = None

    @property
    def report_name(self) -> str:
        return f"{self.kind}-errors{self.report_suffix}.csv"

    @property
    def changes_name(self) -> str:
        return f"{self.kind}-changes{self.report_suffix}.csv"

    def to_json(self) -> dict:
        return {
            "file": self.file,
            "kind": self.kind,
            "status": self.status,
            "applied": self.applied,
            "file_issues": [i.to_json() for i in self.file_issues],
            "counts": self.counts,
            "rows": self.rows,
            "issues": self.issues,
            "error_report": self.error_report,
            "upload_id": self.upload_id,
            "changes_file": self.changes_file,
        }


@dataclass
class RunResult:
    files: list[FileResult]

    def to_json(self) -> dict:
        return {"files": [f.to_json() for f in self.files]}

    @property
    def exit_code(self) -> int:
        return 2 if any(f.status == FileStatus.FAILED for f in self.files) else 0
