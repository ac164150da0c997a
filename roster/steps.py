"""The steps every file kind shares: reading, file-level failure, finishing rows, the error
report, the upload record and the file's transaction.

This module imports no file kind and not `roster.pipeline`: kinds build on it, the pipeline
strings its steps together.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select, update

from roster.apply import lock_district
from roster.changes import ChangesAhead, changes_csv, write_change_log
from roster.context import FileJob, RunContext
from roster.filekind import KindTable
from roster.models import Upload, utcnow
from roster.private import private_dir, write_private
from roster.results import FileResult, Hold
from roster.states import UNFINISHED_STATES, FileStatus, UploadState
from roster.store import DistrictInfo, Store, UploadFinished
from validation import dictionary as d
from validation.catalog import Severity
from validation.headers import HeaderResult
from validation.issues import FileIssue, file_issue, render, severity_of
from validation.reader import RawTable
from validation.report import (
    PARTLY,
    REJECTED,
    WARNINGS,
    build_report,
    row_statuses,
    saved_notes,
)
from validation.vector import trimmed

_COLUMN_ORDER = {
    name: i for i, name in reversed(list(enumerate(d.USERS_HEADERS + d.DEMOGRAPHICS_HEADERS)))
}


# --- reading ----------------------------------------------------------------------------------
def table_from(raw: RawTable, header: HeaderResult, names: tuple[str, ...]) -> pd.DataFrame:
    """The dictionary columns, trimmed; absent columns are blank.  A column with nothing to
    trim is the file's own column (no copy)."""
    n = len(raw.cells)
    data = {}
    for name in names:
        pos = header.positions.get(name)
        data[name] = (
            trimmed(raw.cells[str(pos)]) if pos is not None else pd.Series([""] * n, dtype="str")
        )
    return pd.DataFrame(data, copy=False)


def kind_table(raw: RawTable, header: HeaderResult, names: tuple[str, ...]) -> KindTable:
    return KindTable(
        raw, header, table_from(raw, header, names), raw.field_counts != len(raw.headers)
    )


def ragged_issues(raw: RawTable) -> pd.DataFrame:
    """ROW_FIELD_COUNT for every record whose field count differs from the header's."""
    width = len(raw.headers)
    idx = np.flatnonzero(raw.field_counts != width)
    return pd.DataFrame(
        {
            "idx": idx,
            "column": "",
            "code": "ROW_FIELD_COUNT",
            "value": raw.field_counts[idx].astype(str),
            "detail": str(width),
        }
    )


def with_ragged(table: KindTable, first: pd.DataFrame, *more: pd.DataFrame) -> pd.DataFrame:
    """A kind's row issues plus ROW_FIELD_COUNT for the ragged records, in one frame."""
    parts = [first, *more]
    if table.ragged.any():
        parts.append(ragged_issues(table.raw))
    present = [p for p in parts if len(p)]
    return pd.concat(present, ignore_index=True) if present else first


# --- file-level failure -----------------------------------------------------------------------
def has_file_error(issues: list[FileIssue]) -> bool:
    return any(i.severity == Severity.ERROR for i in issues)


def database_refused(exc: Exception) -> FileIssue:
    return file_issue(
        "FAILED",
        detail=f"the database refused the changes ({type(exc).__name__}); nothing was applied",
    )


def removal_hold(hold: str, ctx: RunContext) -> tuple[FileIssue, bool]:
    """The file issue for a plan over the removal guard, and whether the file is held."""
    severity = Severity.ERROR if ctx.apply and not ctx.confirm_removals else Severity.WARNING
    if ctx.apply and ctx.confirm_removals:
        detail = f"{hold}; the removals were confirmed"
    elif ctx.apply:
        detail = f"{hold}, so it is held until the removals are confirmed"
    else:
        detail = f"{hold}: an upload of it will wait for confirmation"
    issue = file_issue("REMOVALS_NEED_CONFIRMATION", detail=detail, severity=severity)
    return issue, severity is Severity.ERROR


def guard_hold(hold: Hold, ctx: RunContext) -> tuple[FileIssue, bool]:
    """The file issue of a guard other than the removal guard, and whether it holds the file
    (an upload not confirmed for it); a check gets the same code as a warning."""
    confirmed = {"ID_CHANGES_NEED_CONFIRMATION": ctx.confirm_id_changes}.get(hold.code, False)
    severity = Severity.ERROR if ctx.apply and not confirmed else Severity.WARNING
    issue = file_issue(hold.code, detail=hold.detail, severity=severity)
    return issue, severity is Severity.ERROR


# --- finishing rows and the error report -----------------------------------------------------
@dataclass
class RowsReport:
    """Row statistics, the JSON issues and what the error report is made of, for one file."""

    rows: dict[str, int]
    issues: list[dict]
    status: FileStatus
    #: what `error_report()` builds from (None when no row has an issue)
    _parts: tuple | None = None

    def error_report(self, *, would: bool) -> bytes | None:
        """The report's bytes.  `would`: nothing was applied (a check, a held upload), so its
        statuses say "applicable" and partly applied rows what "would be saved"."""
        if self._parts is None:
            return None
        table, issues, statuses, parts = self._parts
        raw = table.raw
        partly = statuses.index[statuses.to_numpy() == PARTLY].to_numpy()
        notes = dict(zip(partly.tolist(), saved_notes(partly, parts, would))) if parts else None
        return build_report(
            issues,
            statuses,
            raw.headers,
            table.header.original_positions,
            raw.cells,
            raw.row_numbers,
            would=would,
            notes=notes,
        )


@dataclass(frozen=True)
class BuiltReport:
    """The error report of a file that applied nothing, built before the write, so the write
    does not hold the file's cells for a commit the database might refuse."""

    unapplied: bytes | None

    def error_report(self, *, would: bool) -> bytes | None:
        if not would:
            raise ValueError("a report built ahead has the words of a file that applied nothing")
        return self.unapplied


def _order_issues(issues: pd.DataFrame) -> pd.DataFrame:
    order = issues["column"].map(_COLUMN_ORDER).fillna(len(_COLUMN_ORDER))
    return (
        issues.assign(_o=order)
        .sort_values(["idx", "_o"], kind="stable")
        .drop(columns="_o")
        .reset_index(drop=True)
    )


def _json_issues(raw: RawTable, issues: pd.DataFrame) -> list[dict]:
    rows = raw.row_numbers[issues["idx"].to_numpy()].tolist()
    # whole columns to Python lists first: iterating an Arrow-backed column boxes one scalar
    # at a time (~0.2 s for the ~9,000 issues of the 1,000,000-row benchmark file)
    fields = ("column", "code", "severity", "value", "message", "fix")
    return [
        {"row": r, "column": c, "code": k, "severity": s, "value": v, "message": m, "fix": f}
        for r, c, k, s, v, m, f in zip(rows, *(issues[name].tolist() for name in fields))
    ]


def finish_rows(
    table: KindTable,
    issues: pd.DataFrame,
    rejected: np.ndarray,
    applied_any: np.ndarray,
    parts: list | None = None,
) -> RowsReport:
    """Messages, statuses, row stats and JSON issues; the report is built by
    `RowsReport.error_report()` once the guards have said whether anything is applied.

    `parts`: (label, carried, ok) per part of a row (person, class, ...), so a partly applied
    row's details say what was saved (validation.report.saved_notes)."""
    raw = table.raw
    issues = _order_issues(issues)
    issues["severity"] = severity_of(issues["code"])
    issues["message"], issues["fix"] = render(issues)
    statuses = row_statuses(issues, rejected, applied_any)
    counts = statuses.value_counts()
    rows = dict(
        total=len(raw.cells),
        blank_skipped=raw.blank_skipped,
        rejected=int(counts.get(REJECTED, 0)),
        partly_applied=int(counts.get(PARTLY, 0)),
        with_warnings=int(counts.get(WARNINGS, 0)),
    )
    has_error = bool((issues["severity"] == Severity.ERROR).any())
    status = FileStatus.COMPLETED_WITH_ERRORS if has_error else FileStatus.COMPLETED
    parts_of = (table, issues, statuses, parts or []) if len(issues) else None
    return RowsReport(rows, _json_issues(raw, issues), status, parts_of)


def unapplied_report(result: FileResult) -> None:
    """The database refused the commit, so nothing was applied: build the error report again
    with the words of a file that applied nothing ("partly applicable", "would be saved"),
    never "applied" or "saved"."""
    if result.report_source is not None:
        result.report_bytes = result.report_source.error_report(would=True)


def write_report(result: FileResult, report_dir: Path | None) -> None:
    """Write the error report and the changes file under `report_dir` (when given and there
    is one)."""
    if report_dir is None:
        return
    for data, name, attr in (
        (result.report_bytes, result.report_name, "error_report"),
        (result.changes_bytes, result.changes_name, "changes_file"),
    ):
        if data is None:
            continue
        path = Path(report_dir).resolve() / name
        private_dir(path.parent)
        write_private(path, data)  # owner-only: it holds student data
        setattr(result, attr, str(path))


def record_changes(result: FileResult, changes: pd.DataFrame | ChangesAhead | None) -> None:
    """The changes file of a check or an upload (None when nothing would change)."""
    if isinstance(changes, ChangesAhead):
        count, data = changes.result()
        if data is not None:
            result.changes_bytes, result.changes_count = data, count
        return
    if changes is not None and len(changes):
        result.changes_bytes = changes_csv(changes)
        result.changes_count = len(changes)


def log_changes(ctx: RunContext, job: FileJob, conn: Connection, changes) -> None:
    """The applied file's change log, in the file's own transaction."""
    if changes is not None:
        write_change_log(conn, ctx.district.id, job.upload_id, changes)


# --- the upload record and the file's transaction ---------------------------------------------
def start_record(ctx: RunContext, job: FileJob) -> int:
    """Create (or take over) the file's upload record and mark it processing."""
    inp = job.input
    upload_id = inp.upload_id or ctx.store.new_upload(
        ctx.district.key, inp.name, ctx.actor, not ctx.apply, job.kind
    )
    # The file's bytes are kept on the record only while a Slack upload runs: start-up
    # recovery re-checks it and tells its thread (roster/recovery.py).  A command-line
    # run has no thread to tell, and whoever ran it saw it stop; storing the bytes
    # would cost a second copy of the file in the database (about 1 s per 180 MB).
    # Taking over a record (a Slack upload, a queued job) only while it is unfinished: a
    # retried job whose first run committed must not start it again (UploadFinished).
    with ctx.store.transaction() as conn:
        taken = conn.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.state.in_(UNFINISHED_STATES))
            .values(
                state=UploadState.PROCESSING,
                kind=job.kind,
                file_name=inp.name,
                file_sha256=job.sha256 or hashlib.sha256(inp.data).hexdigest(),
                file_size=job.size or len(inp.data),
                dry_run=not ctx.apply,
                district_id=ctx.district.id,
                payload=inp.data if inp.slack_file_id and inp.keep_bytes else None,
            )
        ).rowcount
    if not taken:
        raise UploadFinished(upload_id)
    return upload_id


@contextmanager
def district_transaction(store: Store, district: DistrictInfo) -> Iterator[tuple]:
    """One upload's transaction, holding the district's upload lock from the start (before
    the roster is read).  Rolled back unless commit_upload() committed it: a check, a held
    upload, or any exception leaves the roster exactly as it was."""
    with store.engine.connect() as conn:
        trans = conn.begin()
        try:
            lock_district(conn, district.id)
            yield conn, trans
        finally:
            if trans.is_active:
                trans.rollback()


def commit_upload(store: Store, result: FileResult, conn: Connection, trans) -> None:
    """Finish the upload record in the roster's own transaction, then commit both at once."""
    # Under the district lock: a record another run of the same job finished meanwhile
    # (a retried queued job whose first worker was only slow) is not applied twice.
    state = conn.execute(
        select(Upload.state).where(Upload.id == result.upload_id).with_for_update()
    ).scalar()
    if state not in UNFINISHED_STATES:
        trans.rollback()
        raise UploadFinished(result.upload_id)
    result.applied = True
    finalise(store, result, conn)
    _test_pause_before_commit(result.upload_id)
    trans.commit()


def final_state(result: FileResult) -> UploadState:
    if result.applied:
        return UploadState.APPLIED
    if result.held:
        return UploadState.HELD
    if result.status == FileStatus.FAILED:
        return UploadState.FAILED
    return UploadState.CHECKED


def finalise(store: Store, result: FileResult, conn: Connection | None = None) -> None:
    """Store the file's result on its upload record (in `conn`'s transaction when given)."""
    store.update_upload(
        result.upload_id,
        conn=conn,
        state=final_state(result),
        status=result.status,
        finished_at=utcnow(),
        counts=result.counts,
        rows=result.rows,
        file_issues=[i.to_json() for i in result.file_issues],
        issues=result.issues,
        report=result.report_bytes,
        payload=None,
    )


def _test_pause_before_commit(upload_id: int) -> None:
    """TEST HOOK, no effect unless ROSTERBOT_TEST_PAUSE_BEFORE_COMMIT=<seconds> is set.

    Used by tests/test_crash.py and tests/test_concurrency.py to land a SIGKILL or a second
    upload deterministically mid-apply: every change is written and the district lock is held,
    but nothing is committed.  Prints one marker line on stderr, then sleeps <seconds>, or
    less once the file named by ROSTERBOT_TEST_PAUSE_RELEASE exists.
    """
    pause = os.environ.get("ROSTERBOT_TEST_PAUSE_BEFORE_COMMIT")
    if not pause:
        return
    sys.stderr.write(f"rosterbot-test-hook: upload {upload_id} paused before commit\n")
    sys.stderr.flush()
    release = os.environ.get("ROSTERBOT_TEST_PAUSE_RELEASE")
    deadline = time.monotonic() + float(pause)
    while time.monotonic() < deadline and not (release and os.path.exists(release)):
        time.sleep(0.05)
