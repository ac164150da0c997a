"""What one run of the pipeline works with: its inputs, settings and context.

`RunContext` is built once per `roster.pipeline.run()` call and handed to every step and every
file kind; `FileJob` is one file of that run (its bytes, table and upload record).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from roster.states import FileKind
from roster.store import DistrictInfo, Store
from validation.reader import DEFAULT_MAX_BYTES, RawTable

Progress = Callable[[str, float], None]
DEFAULT_REMOVAL_SHARE = 0.20
#: product.md "Guards": more userId changes than this in one upload need confirmation
DEFAULT_ID_CHANGE_MAX = 10
DEFAULT_RETENTION_DAYS = 90


def no_progress(stage: str, fraction: float) -> None:
    """The progress callback of a run nobody watches."""


@dataclass
class InputFile:
    name: str
    data: bytes
    slack_file_id: str | None = None
    upload_id: int | None = None
    #: keep the bytes on the upload record while it runs (start-up recovery re-checks them);
    #: a queued job does not: its retry downloads the file from Slack again
    keep_bytes: bool = True


@dataclass
class Settings:
    max_bytes: int = DEFAULT_MAX_BYTES
    removal_share: float = DEFAULT_REMOVAL_SHARE
    id_change_max: int = DEFAULT_ID_CHANGE_MAX
    #: days an upload's report, issue values and file bytes are kept (roster/retention.py)
    retention_days: int = DEFAULT_RETENTION_DAYS

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            retention_days=int(
                os.environ.get("ROSTERBOT_RETENTION_DAYS", "").strip() or DEFAULT_RETENTION_DAYS
            ),
            max_bytes=int(os.environ.get("ROSTERBOT_MAX_FILE_BYTES", DEFAULT_MAX_BYTES)),
            removal_share=float(
                os.environ.get("ROSTERBOT_REMOVAL_GUARD_SHARE", DEFAULT_REMOVAL_SHARE)
            ),
            id_change_max=int(
                os.environ.get("ROSTERBOT_ID_CHANGE_GUARD_MAX", DEFAULT_ID_CHANGE_MAX)
            ),
        )


@dataclass
class RunContext:
    """One run: the same for every file it processes."""

    store: Store
    district: DistrictInfo
    settings: Settings
    #: False = a check (dry run): nothing is committed
    apply: bool
    #: the admin confirmed removals over the guard's share
    confirm_removals: bool = False
    #: the admin confirmed more userId changes than the ID-change guard allows
    confirm_id_changes: bool = False
    #: full sync: what the file does not mention is removed, for the schools in the file
    sync: bool = False
    progress: Progress = no_progress
    #: Slack user id or CLI user, kept on each upload record
    actor: str = ""
    #: where error reports are written; None keeps them in memory only
    report_dir: Path | None = None
    #: people each users.csv of this run accepted (userId, role_l): a demographics.csv of the
    #: same run may name them before they are stored (a check)
    accepted_people: list[pd.DataFrame] = field(default_factory=list)
    #: reports named so far, per kind: two files of one kind in a run are reported apart
    reports_named: dict[str, int] = field(default_factory=dict)

    def report_suffix(self, kind: str) -> str:
        """ "" for the first file of `kind` in this run, then "-2", "-3"... (its report is
        users-errors.csv, users-errors-2.csv...: one file's report never overwrites another's)."""
        n = self.reports_named[kind] = self.reports_named.get(kind, 0) + 1
        return "" if n == 1 else f"-{n}"


@dataclass
class FileJob:
    """One file of a run, read, with its kind and upload record."""

    input: InputFile
    raw: RawTable
    kind: FileKind
    upload_id: int | None = None
    #: SHA-256 (hex) and size of the file's bytes, taken when it was read (the bytes
    #: themselves are not kept past reading unless the upload record stores them)
    sha256: str = ""
    size: int = 0

    @property
    def name(self) -> str:
        return self.input.name
