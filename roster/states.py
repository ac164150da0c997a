"""The fixed words of an upload's life, in one place: record states, file statuses, kinds.

Every value is a `StrEnum`, so it is stored, compared and written to JSON as the same plain
string the spec fixes (`UploadState.HELD == "held"`).
"""

from __future__ import annotations

from enum import StrEnum


class FileKind(StrEnum):
    """Which file a table is (users-csv.md, demographics-csv.md)."""

    USERS = "users"
    DEMOGRAPHICS = "demographics"


class FileStatus(StrEnum):
    """A processed file's `status` in the JSON output and on its upload record (product.md)."""

    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"


class UploadState(StrEnum):
    """An upload record's `state`: received -> processing -> one of the finished states."""

    RECEIVED = "received"
    PROCESSING = "processing"
    APPLIED = "applied"
    CHECKED = "checked"
    FAILED = "failed"
    HELD = "held"
    ABANDONED = "abandoned"


#: a record in one of these states was never finished (its process stopped, or is running)
UNFINISHED_STATES: tuple[UploadState, ...] = (UploadState.RECEIVED, UploadState.PROCESSING)
#: a record that produced a result to show in its Slack thread ("summary", "row N")
REPORTED_STATES: tuple[UploadState, ...] = (
    UploadState.APPLIED,
    UploadState.CHECKED,
    UploadState.FAILED,
    UploadState.HELD,
)


class RecoveryAction(StrEnum):
    """What start-up recovery did with one unfinished upload record (roster/recovery.py)."""

    RECHECKED = "rechecked"  # a check run again and finished
    ABANDONED = "abandoned"  # not applied; the admin uploads the file again
    ALREADY_FINISHED = "already_finished"  # another process finished it meanwhile
