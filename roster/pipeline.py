"""The one pipeline the CLI and the bot both call: read -> check -> plan -> apply -> report.

Each file is one upload record and one transaction.  Uploads of a district are serialised
by the database's own lock, taken before the roster snapshot is read.

The shape, top-down:

* `run()` reads every file, picks its kind, and processes users.csv before demographics.csv;
* `process_file()` is one file's upload record around `_steps()`;
* `_steps()` is the sequence every file goes through.  The stages that differ by file kind
  are the methods of a `FileKindSpec` (roster/filekind.py) registered in `KINDS`; the steps
  they share live in roster/steps.py.

A new file kind: a module like roster/demographics.py with a `KIND` object, added to `KINDS`
(and to `detect_kind`).  A new step for every kind: a function in roster/steps.py, called
from `_steps()` at its place in the sequence.  A step of one kind: in that kind's module.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from roster import demographics, users
from roster.context import FileJob, InputFile, Progress, RunContext, Settings, no_progress
from roster.filekind import FileKindSpec
from roster.logsafe import error_code
from roster.memory import configure_memory, release_memory, trim_eagerly
from roster.results import FileResult, Hold, RunResult
from roster.states import FileKind, FileStatus
from roster.steps import (
    BuiltReport,
    commit_upload,
    database_refused,
    district_transaction,
    finalise,
    finish_rows,
    guard_hold,
    has_file_error,
    kind_table,
    log_changes,
    record_changes,
    removal_hold,
    start_record,
    unapplied_report,
    write_report,
)
from roster.store import DistrictInfo, Store
from validation import dictionary as d
from validation.reader import read_table

__all__ = [
    "KINDS",
    "FileResult",
    "InputFile",
    "Progress",
    "RunResult",
    "Settings",
    "check_stored_file",
    "detect_kind",
    "empty_counts",
    "process_file",
    "run",
]

log = logging.getLogger(__name__)

#: the registered file kinds, in the order a run processes them (users.csv first: a
#: demographics.csv of the same upload may name the students it adds)
KINDS: dict[FileKind, FileKindSpec] = {k.kind: k for k in (users.KIND, demographics.KIND)}


def detect_kind(headers: list[str], name: str) -> FileKind:
    """users.csv or demographics.csv, from the headers first and the file name second."""
    cleaned = [h.strip() for h in headers if h.strip() and h.strip() not in d.REPORT_COLUMNS]
    if "userEmail" in cleaned or "action" in cleaned:
        return FileKind.USERS
    if cleaned and all(h in d.DEMOGRAPHICS_HEADERS for h in cleaned):
        return FileKind.DEMOGRAPHICS
    if "demographics" in name.lower():
        return FileKind.DEMOGRAPHICS
    return FileKind.USERS


def empty_counts(kind: str) -> dict[str, dict[str, int]]:
    return KINDS[FileKind(kind)].empty_counts()


# --- the entry point --------------------------------------------------------------------------
def run(
    store: Store,
    district_key: str,
    files: list[InputFile],
    *,
    apply: bool,
    actor: str = "",
    report_dir: Path | None = None,
    confirm_removals: bool = False,
    progress: Progress | None = None,
    settings: Settings | None = None,
    confirm_id_changes: bool = False,
    sync: bool = False,
) -> RunResult:
    """Process files for one district (users.csv before demographics.csv)."""
    configure_memory()
    if apply:
        trim_eagerly()
    settings = settings or Settings.from_env()
    # the files are parsed (pyarrow lets go of the GIL) while the store answers its first
    # query, which is the slow one (SQLAlchemy sets up its mappers and compiles it)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read")
    reading = pool.submit(lambda: [_read(settings, inp) for inp in files])
    pool.shutdown(wait=False)
    ctx = RunContext(
        store=store,
        district=store.district(district_key),  # no such district: the reading is let go
        settings=settings,
        apply=apply,
        confirm_removals=confirm_removals,
        confirm_id_changes=confirm_id_changes,
        sync=sync,
        progress=progress or no_progress,
        actor=actor,
        report_dir=report_dir,
    )
    jobs = reading.result()
    files = []  # noqa: F841 (the bytes of a file that is read are not needed past this point)
    del reading
    order = list(KINDS)
    jobs.sort(key=lambda job: order.index(job.kind))  # stable: upload order within a kind
    results = []
    for job in jobs:
        results.append(process_file(ctx, job))
        ctx.progress("done", 1.0)
    return RunResult(results)


def _read(settings: Settings, inp: InputFile) -> FileJob:
    """Read a file.  The job keeps the bytes only when its upload record stores them (a Slack
    upload, for start-up recovery): a 180 MB file's bytes are not held while it is checked."""
    # the file's SHA-256 in a second thread while it is parsed (hashlib lets go of the GIL)
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(lambda: hashlib.sha256(inp.data).hexdigest())
        raw = read_table(inp.data, settings.max_bytes)
        sha256, size = digest.result(), len(inp.data)
    kept = inp if inp.slack_file_id and inp.keep_bytes else replace(inp, data=b"")
    return FileJob(kept, raw, detect_kind(raw.headers, inp.name), sha256=sha256, size=size)


def process_file(ctx: RunContext, job: FileJob) -> FileResult:
    """One file of a run: its upload record, its steps, its stored result and report."""
    job.upload_id = start_record(ctx, job)
    result = _new_result(job)
    result.report_suffix = ctx.report_suffix(job.kind)
    try:
        _steps(ctx, job, result)
    except (SQLAlchemyError, ctx.store.engine.dialect.loaded_dbapi.Error) as exc:
        # roster.apply writes through the raw driver: its errors are the DBAPI's own
        log.error("upload %s could not be saved (%s)", job.upload_id, error_code(exc))
        result.status, result.applied = FileStatus.FAILED, False
        result.file_issues.append(database_refused(exc))
        unapplied_report(result)
    if not result.applied:
        finalise(ctx.store, result)
    write_report(result, ctx.report_dir)
    result.report_source = None  # the file's frames: not kept past the file
    return result


def check_stored_file(
    store: Store,
    district: DistrictInfo,
    name: str,
    data: bytes,
    upload_id: int,
    settings: Settings,
) -> FileResult:
    """Check a stored file against the roster as it is now, writing nothing: not to the
    roster, not to its upload record (start-up recovery, roster/recovery.py).  Raises on
    internal and database errors."""
    ctx = RunContext(store=store, district=district, settings=settings, apply=False)
    configure_memory()
    job = _read(settings, InputFile(name, data))
    job.upload_id = upload_id
    result = _new_result(job)
    _steps(ctx, job, result)
    return result


def _new_result(job: FileJob) -> FileResult:
    return FileResult(
        file=job.name,
        kind=job.kind,
        counts=KINDS[job.kind].empty_counts(),
        encoding=job.raw.encoding,
        upload_id=job.upload_id,
    )


def _steps(ctx: RunContext, job: FileJob, result: FileResult) -> None:
    """The steps of one file, in order; each may end the file as failed.

    A new step for every kind goes here, at its place in the sequence (a function in
    roster/steps.py); a step of one kind goes in that kind's stage.
    """
    kind, raw = KINDS[job.kind], job.raw
    # 1. reading: encoding, size and shape problems fail the whole file
    result.file_issues.extend(raw.file_issues)
    if raw.failed:
        result.status = FileStatus.FAILED
        return
    ctx.progress("reading", 0.1)
    # 2. headers
    header = kind.headers(raw)
    result.dropped_report_columns = header.dropped
    result.file_issues.extend(header.issues)
    if has_file_error(result.file_issues):
        result.status = FileStatus.FAILED
        return
    table = kind_table(raw, header, kind.columns)
    with district_transaction(ctx.store, ctx.district) as (conn, trans):
        # 3. load -> check -> plan, under the district's upload lock
        ctx.progress("loading the roster", 0.2)
        loaded = kind.load(ctx, conn, table)
        ctx.progress("checking rows", 0.35)
        checked = kind.check(ctx, table, loaded)
        release_memory()
        ctx.progress("planning changes", 0.6)
        planned = kind.plan(ctx, table, checked, loaded)
        # what the rules and the plan worked with is not needed past the plan; a check applies
        # nothing, so its plan's frames are not either (~150 MB of a 1,000,000-row file,
        # let go before the changes file is written)
        del checked, loaded
        if not ctx.apply:
            planned.plan = None
        release_memory()
        result.counts = planned.counts
        if planned.accepted_people is not None:
            result.accepted_people = planned.accepted_people
            ctx.accepted_people.append(planned.accepted_people)
        # 4. report: row statuses, messages, the error report
        report = finish_rows(
            table, planned.issues, planned.rejected, planned.applied_any, planned.parts
        )
        result.rows.update(report.rows)
        result.issues = report.issues
        result.status = report.status
        # 5. guards that hold the file for the admin's confirmation
        if planned.hold:
            issue, result.held = removal_hold(planned.hold, ctx)
            result.file_issues.append(issue)
            if result.held:
                result.status = FileStatus.FAILED
                result.holds.append(
                    Hold(issue.code, planned.hold, planned.hold_items, planned.hold_total)
                )
        for hold in planned.holds:  # the ID-change guard
            issue, held = guard_hold(hold, ctx)
            result.file_issues.append(issue)
            if held:
                result.held, result.status = True, FileStatus.FAILED
                result.holds.append(hold)
        result.report_source = report
        result.report_bytes = report.error_report(would=not ctx.apply or result.held)
        if not ctx.apply:
            # a check: its report is built and says what applying would do; the file's cells
            # are let go while its changes file is finished in the second thread
            result.report_source = BuiltReport(result.report_bytes)
            planned = replace(planned, issues=None, rejected=None, applied_any=None, parts=[])
            del table, report, raw, header
            job.raw = replace(job.raw, cells=job.raw.cells.iloc[:0])
            release_memory()
        # after the report: a check's changes file was built in a second thread meanwhile
        record_changes(result, planned.changes)
        release_memory()
        # 6. apply, and finish the upload record in the same transaction
        if ctx.apply and not result.held:
            ctx.progress("saving", 0.8)
            # the file's cells (~300 MB of a 1,000,000-row file) are not needed by the write:
            # the report a refused commit gets is built now, and the cells are let go
            result.report_source = BuiltReport(report.error_report(would=True))
            planned = replace(planned, issues=None, rejected=None, applied_any=None, parts=[])
            del table, report, raw, header
            job.raw = replace(job.raw, cells=job.raw.cells.iloc[:0])
            release_memory()
            kind.apply(ctx, conn, planned)
            # the log is small even for a large file (a run of created rows is one line),
            # so its indexes are kept up to date as it is written (no bulk_indexes here)
            log_changes(ctx, job, conn, planned.changes)
            commit_upload(ctx.store, result, conn, trans)
