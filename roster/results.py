"""What the pipeline answers: one `FileResult` per file, a `RunResult` per run.

`to_json()` is the `--json` output of product.md, key for key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from roster.states import FileStatus
from validation.issues import FileIssue

ROW_STATS = ("total", "blank_skipped", "rejected", "partly_applied", "with_warnings")


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
    #: people this users.csv accepted, userId -> "student" / "staff" (for a demographics.csv
    #: of the same upload)
    accepted_people: pd.DataFrame | None = None

    @property
    def report_name(self) -> str:
        return f"{self.kind}-errors.csv"

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
        }


@dataclass
class RunResult:
    files: list[FileResult]

    def to_json(self) -> dict:
        return {"files": [f.to_json() for f in self.files]}

    @property
    def exit_code(self) -> int:
        return 2 if any(f.status == FileStatus.FAILED for f in self.files) else 0
