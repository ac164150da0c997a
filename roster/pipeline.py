"""The one pipeline the CLI and the bot both call: read -> check -> plan -> apply -> report.

Each file is one upload record and one transaction.  Uploads of a district are serialised
by the database's own lock, taken before the roster snapshot is read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from roster.apply import apply_plan, lock_district
from roster.models import utcnow
from roster.plan import BUCKETS, ENTITIES, plan_users
from roster.snapshot import load_snapshot
from roster.store import DistrictInfo, Store
from validation import dictionary as d
from validation.catalog import Severity
from validation.headers import HeaderResult, check_headers
from validation.issues import FileIssue, file_issue, render, severity_of
from validation.reader import DEFAULT_MAX_BYTES, RawTable, read_table
from validation.report import PARTLY, REJECTED, WARNINGS, build_report, row_statuses
from validation.users import check_users

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
DEFAULT_REMOVAL_SHARE = 0.20
_COLUMN_ORDER = {
    name: i for i, name in reversed(list(enumerate(d.USERS_HEADERS + d.DEMOGRAPHICS_HEADERS)))
}


@dataclass
class InputFile:
    name: str
    data: bytes
    slack_file_id: str | None = None
    upload_id: int | None = None


@dataclass
class Settings:
    max_bytes: int = DEFAULT_MAX_BYTES
    removal_share: float = DEFAULT_REMOVAL_SHARE

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            max_bytes=int(os.environ.get("ROSTERBOT_MAX_FILE_BYTES", DEFAULT_MAX_BYTES)),
            removal_share=float(
                os.environ.get("ROSTERBOT_REMOVAL_GUARD_SHARE", DEFAULT_REMOVAL_SHARE)
            ),
        )


def empty_counts(kind: str) -> dict[str, dict[str, int]]:
    entities = ("demographics",) if kind == "demographics" else ENTITIES
    return {e: dict.fromkeys(BUCKETS, 0) for e in entities}


@dataclass
class FileResult:
    file: str
    kind: str
    status: str = "failed"
    applied: bool = False
    file_issues: list[FileIssue] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    rows: dict = field(
        default_factory=lambda: dict.fromkeys(
            ("total", "blank_skipped", "rejected", "partly_applied", "with_warnings"), 0
        )
    )
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
        return 2 if any(f.status == "failed" for f in self.files) else 0


# --- kind detection ---------------------------------------------------------------------------
def detect_kind(headers: list[str], name: str) -> str:
    """users.csv or demographics.csv, from the headers first and the file name second."""
    cleaned = [h.strip() for h in headers if h.strip() and h.strip() not in d.REPORT_COLUMNS]
    if "userEmail" in cleaned or "action" in cleaned:
        return "users"
    if cleaned and all(h in d.DEMOGRAPHICS_HEADERS for h in cleaned):
        return "demographics"
    if "demographics" in name.lower():
        return "demographics"
    return "users"


def table_from(raw: RawTable, header: HeaderResult, names: tuple[str, ...]) -> pd.DataFrame:
    """The dictionary columns, trimmed; absent columns are blank."""
    n = len(raw.cells)
    data = {}
    for name in names:
        pos = header.positions.get(name)
        data[name] = (
            raw.cells[str(pos)].str.strip() if pos is not None else pd.Series([""] * n, dtype="str")
        )
    return pd.DataFrame(data)


# --- users.csv --------------------------------------------------------------------------------
def _read_users_headers(raw: RawTable) -> HeaderResult:
    role_pos = next(
        (i for i, h in enumerate(raw.headers) if h.strip().casefold() == "userrole"), None
    )
    any_student = bool(
        role_pos is not None
        and raw.cells[str(role_pos)].str.strip().str.lower().eq("student").any()
    )
    return check_headers(
        raw.headers,
        d.USERS_COLUMNS,
        "users.csv",
        required_when={"userGrade": any_student},
        groups=((d.CLASS_GROUP, d.CLASS_GROUP_REQUIRED),),
    )


def _order_issues(issues: pd.DataFrame) -> pd.DataFrame:
    order = issues["column"].map(_COLUMN_ORDER).fillna(len(_COLUMN_ORDER))
    return (
        issues.assign(_o=order)
        .sort_values(["idx", "_o"], kind="stable")
        .drop(columns="_o")
        .reset_index(drop=True)
    )


def _finish_rows(
    result: FileResult,
    raw: RawTable,
    header: HeaderResult,
    issues: pd.DataFrame,
    rejected: np.ndarray,
    applied_any: np.ndarray,
) -> None:
    """Messages, statuses, row stats, JSON issues and the report bytes."""
    issues = _order_issues(issues)
    issues["severity"] = severity_of(issues["code"])
    messages, fixes = render(issues)
    issues["message"], issues["fix"] = messages, fixes
    statuses = row_statuses(issues, rejected, applied_any)
    counts = statuses.value_counts()
    result.rows.update(
        total=len(raw.cells),
        blank_skipped=raw.blank_skipped,
        rejected=int(counts.get(REJECTED, 0)),
        partly_applied=int(counts.get(PARTLY, 0)),
        with_warnings=int(counts.get(WARNINGS, 0)),
    )
    rows = raw.row_numbers[issues["idx"].to_numpy()]
    result.issues = [
        {"row": int(r), "column": c, "code": k, "severity": s, "value": v, "message": m, "fix": f}
        for r, c, k, s, v, m, f in zip(
            rows,
            issues["column"],
            issues["code"],
            issues["severity"],
            issues["value"],
            issues["message"],
            issues["fix"],
        )
    ]
    if len(issues):
        result.report_bytes = build_report(
            issues, statuses, raw.headers, header.original_positions, raw.cells, raw.row_numbers
        )
    has_error = bool((issues["severity"] == "error").any())
    result.status = "completed_with_errors" if has_error else "completed"


def process_users(
    store: Store,
    district: DistrictInfo,
    raw: RawTable,
    header: HeaderResult,
    result: FileResult,
    apply: bool,
    confirm_removals: bool,
    settings: Settings,
    progress: Progress,
    record: dict,
) -> None:
    table = table_from(raw, header, d.USERS_HEADERS)
    width = len(raw.headers)
    ragged = raw.field_counts != width
    has_class_group = any(c in header.positions for c in d.CLASS_GROUP)
    with district_transaction(store, district) as (conn, trans):
        progress("loading the roster", 0.2)
        snap = load_snapshot(conn, district, table["userEmail"].str.lower().unique())
        progress("checking rows", 0.35)
        chk = check_users(table, snap, has_class_group, skip=ragged)
        progress("planning changes", 0.6)
        plan = plan_users(chk, snap)
        result.counts = plan.counts
        result.accepted_people = chk.table.loc[chk.person_ok, ["userId", "role_l"]]
        parts = [chk.issues, plan.class_issues, ragged_issues(raw)]
        issues = (
            pd.concat([p for p in parts if len(p)], ignore_index=True)
            if any(len(p) for p in parts)
            else chk.issues
        )
        applied_any = chk.person_ok | chk.class_ok | chk.enrollment_ok | chk.remove_ok
        _finish_rows(result, raw, header, issues, chk.row_reject, applied_any)
        held = _guard(plan.removal_shares, settings.removal_share)
        if held:
            severity = Severity.ERROR if apply and not confirm_removals else Severity.WARNING
            result.file_issues.append(
                file_issue("REMOVALS_NEED_CONFIRMATION", detail=held, severity=severity)
            )
            if severity is Severity.ERROR:
                result.status, result.held = "failed", True
        if apply and not result.held:
            progress("saving", 0.8)
            apply_plan(conn, district.id, plan)
            commit_upload(store, result, record, conn, trans)


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


def commit_upload(store: Store, result: FileResult, record: dict, conn, trans) -> None:
    """Finish the upload record in the roster's own transaction, then commit both at once."""
    result.applied = True
    _finalise(store, result, record, conn)
    _test_pause_before_commit(record["id"])
    trans.commit()


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


def _guard(shares: dict[str, tuple[int, int]], limit: float) -> str:
    """A description of the removals over the limit, or '' when none is."""
    labels = {
        "class": "active classes",
        "people": "active people",
        "enrollment": "active enrollments",
    }
    over = [
        f"{removed} of {active} {labels[k]} ({removed / active:.0%})"
        for k, (removed, active) in shares.items()
        if active and removed > limit * active
    ]
    if not over:
        return ""
    return "; ".join(over) + f", more than the {limit:.0%} allowed without confirmation"


def _finalise(store: Store, result: FileResult, record: dict, conn=None) -> None:
    state = (
        "applied"
        if result.applied
        else "held"
        if result.held
        else "failed"
        if result.status == "failed"
        else "checked"
    )
    store.update_upload(
        record["id"],
        conn=conn,
        state=state,
        status=result.status,
        finished_at=utcnow(),
        counts=result.counts,
        rows=result.rows,
        file_issues=[i.to_json() for i in result.file_issues],
        issues=result.issues,
        report=result.report_bytes,
        payload=None,
    )


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
) -> RunResult:
    """Process files for one district (users.csv before demographics.csv)."""
    settings = settings or Settings.from_env()
    district = store.district(district_key)
    progress = progress or (lambda stage, fraction: None)
    prepared = []
    for inp in files:
        raw = read_table(inp.data, settings.max_bytes)
        kind = detect_kind(raw.headers, inp.name)
        prepared.append((0 if kind == "users" else 1, len(prepared), inp, raw, kind))
    prepared.sort(key=lambda p: (p[0], p[1]))
    results: list[FileResult] = []
    pending_people: dict[str, str] = {}
    for _, _, inp, raw, kind in prepared:
        result = FileResult(
            file=inp.name, kind=kind, counts=empty_counts(kind), encoding=raw.encoding
        )
        upload_id = inp.upload_id or store.new_upload(
            district_key, inp.name, actor, not apply, kind
        )
        result.upload_id = upload_id
        record = {"id": upload_id}
        # The file's bytes are kept on the record only while a Slack upload runs: start-up
        # recovery re-checks it and tells its thread (roster/recovery.py).  A command-line
        # run has no thread to tell, and whoever ran it saw it stop; storing the bytes
        # would cost a second copy of the file in the database (about 1 s per 180 MB).
        store.update_upload(
            upload_id,
            state="processing",
            kind=kind,
            file_name=inp.name,
            file_sha256=hashlib.sha256(inp.data).hexdigest(),
            file_size=len(inp.data),
            dry_run=not apply,
            district_id=district.id,
            payload=inp.data if inp.slack_file_id else None,
        )
        try:
            _process_one(
                store,
                district,
                raw,
                kind,
                result,
                apply,
                confirm_removals,
                settings,
                progress,
                record,
                pending_people,
            )
        except (SQLAlchemyError, store.engine.dialect.loaded_dbapi.Error) as exc:
            # roster.apply writes through the raw driver: its errors are the DBAPI's own
            log.exception("upload %s could not be saved", upload_id)
            result.status, result.applied = "failed", False
            result.file_issues.append(
                file_issue(
                    "FAILED",
                    detail=f"the database refused the changes ({type(exc).__name__}); "
                    "nothing was applied",
                )
            )
        if not result.applied:
            _finalise(store, result, record)
        if result.report_bytes is not None and report_dir is not None:
            path = Path(report_dir).resolve() / result.report_name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(result.report_bytes)
            result.error_report = str(path)
        if (
            kind == "users"
            and result.accepted_people is not None
            and any(p[4] == "demographics" for p in prepared)
        ):
            people = result.accepted_people
            pending_people.update(
                zip(people["userId"], np.where(people["role_l"] == "student", "student", "staff"))
            )
        results.append(result)
        progress("done", 1.0)
    return RunResult(results)


def _process_one(
    store: Store,
    district: DistrictInfo,
    raw: RawTable,
    kind: str,
    result: FileResult,
    apply: bool,
    confirm_removals: bool,
    settings: Settings,
    progress: Progress,
    record: dict,
    pending_people: dict[str, str],
) -> None:
    result.file_issues.extend(raw.file_issues)
    if raw.failed:
        result.status = "failed"
        return
    progress("reading", 0.1)
    if kind == "users":
        header = _read_users_headers(raw)
    else:
        header = check_headers(raw.headers, d.DEMOGRAPHICS_COLUMNS, "demographics.csv")
    result.dropped_report_columns = header.dropped
    result.file_issues.extend(header.issues)
    if any(i.severity == "error" for i in result.file_issues):
        result.status = "failed"
        return
    if kind == "users":
        process_users(
            store,
            district,
            raw,
            header,
            result,
            apply,
            confirm_removals,
            settings,
            progress,
            record,
        )
    else:
        from roster import demographics  # built on the same pipeline pieces

        demographics.process(
            store, district, raw, header, result, apply, progress, record, pending_people
        )
