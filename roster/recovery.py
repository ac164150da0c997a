"""Start-up recovery: uploads that were accepted but never finished (issue #7).

An upload record is written (state ``received``, then ``processing``; for a file shared in Slack
with the file's bytes in ``payload``) BEFORE its one roster transaction starts, and is finished (``applied`` /
``checked`` / ``failed`` / ``held``) inside or right after it.  A record still ``received`` or
``processing`` after its process died (crash, SIGKILL, deploy) therefore means: the roster
transaction was never committed, nothing of that file was applied (users-csv.md section 6).

`recover_unfinished()` finds those records that are older than the running process and
settles every one of them -- none is skipped silently -- returning a `Recovered` per record so
the bot can tell each Slack thread what happened.

The decision, and why
---------------------
* A **check** (dry run) is re-run from its stored payload and finished as an ordinary check
  (``checked``, or ``failed`` for a file-level failure).  A check changes nothing, so re-running
  it is harmless, and the admin gets the answer they asked for.
* An **upload** (apply) is NOT re-applied.  It is re-run as a *dry run* against the roster as it
  is now, the result (counts, issues, error report) is stored on the record, and the record
  is finished as ``abandoned`` with status ``failed`` and a file issue saying that nothing
  was applied and the file must be uploaded again to apply it.  Re-applying would be
  transactionally safe (the original transaction was never committed) but not safe for the
  roster: the file may be hours old by the time the bot is back, other uploads of the district
  may have been applied since (re-applying the older file would silently undo them), the
  admin -- who never got an answer -- may already have uploaded it again or a corrected
  version, and a held-removal confirmation cannot be assumed.  Only the admin knows whether
  the file is still what they want, so they decide, with the dry-run result in hand.
* A record without payload (the bot stopped before the file was downloaded, or a command-line
  run, whose bytes are not kept: its user saw it stop) or without a district cannot be re-run:
  it is finished as ``abandoned`` with the reason.
* A demographics.csv is re-checked on its own: students that a users.csv of the same message
  would have added are unknown to it (its preview may show DEMO_USER_NOT_FOUND for them).

Re-running `recover_unfinished()` (e.g. the bot crashed during recovery) is safe: a record is
finished in one conditional update, only while it is still unfinished, under the district's
upload lock (so a live upload of another process that is applying right now is waited for,
and then reported as ``already_finished`` instead of being marked abandoned).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select, update

from roster.apply import lock_district
from roster.models import District, Upload, utcnow
from roster.pipeline import FileResult, Settings, check_stored_file
from roster.states import UNFINISHED_STATES, FileStatus, RecoveryAction, UploadState
from roster.store import DistrictInfo, Store
from validation.issues import file_issue

log = logging.getLogger(__name__)

UNFINISHED = UNFINISHED_STATES

ABANDONED_NOT_APPLIED = (
    "rosterbot stopped before this upload was saved, so nothing in it was "
    "applied; upload the file again to apply it"
)


@dataclass
class Recovered:
    """What recovery did with one unfinished upload record."""

    upload_id: int
    district_key: str | None
    file_name: str
    actor: str
    slack_channel: str
    slack_thread_ts: str
    #: True when the record was a check (dry run), False for an upload (apply)
    dry_run: bool
    previous_state: str
    #: "rechecked" (a check run again and finished), "abandoned" (not applied; upload again),
    #: "already_finished" (another process finished it while recovery ran)
    action: RecoveryAction
    #: the record's state now: "checked" / "failed" / "abandoned" / whatever finished it
    state: str
    #: one sentence for the admin
    reason: str
    #: the dry-run result (counts, issues, report_bytes) when the file could be re-run
    result: object | None = None

    @property
    def applied(self) -> bool:
        return False

    @property
    def message(self) -> str:
        """A plain-text reply for the upload's Slack thread."""
        name = self.file_name or "the file"
        if self.action == RecoveryAction.RECHECKED:
            return (
                f"rosterbot restarted while checking {name}; it was checked again: "
                f"{self.result.status.replace('_', ' ') if self.result else self.state}. "
                "Nothing was applied (it was a check)."
            )
        if self.action == RecoveryAction.ALREADY_FINISHED:
            return f"{name} was finished by another rosterbot process (state: {self.state})."
        return f"{name} was NOT applied: {self.reason}."


def process_started_at() -> datetime:
    """When this process started (UTC), from /proc; `now` where /proc is not available."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat", encoding="ascii") as fh:
            btime = next(int(line.split()[1]) for line in fh if line.startswith("btime"))
        started = btime + start_ticks / os.sysconf("SC_CLK_TCK")
        return datetime.fromtimestamp(started, timezone.utc)
    except (OSError, ValueError, IndexError, StopIteration):
        return utcnow()


def _aware(value: datetime | None) -> datetime:
    if value is None:
        return datetime.min.replace(tzinfo=timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _district(store: Store, district_id: int | None) -> DistrictInfo | None:
    if district_id is None:
        return None
    with store.engine.connect() as conn:
        row = conn.execute(
            select(District.id, District.key, District.name, District.enrollment_source).where(
                District.id == district_id
            )
        ).first()
    return DistrictInfo(*row) if row else None


def _dry_run(
    store: Store, district: DistrictInfo, record: Upload, settings: Settings
) -> FileResult:
    """Re-run the stored file as a check (nothing is committed).  Raises on internal errors."""
    return check_stored_file(
        store, district, record.file_name or "", record.payload, record.id, settings
    )


def _finish(
    store: Store, district: DistrictInfo | None, upload_id: int, values: dict
) -> str | None:
    """Finish the record if it is still unfinished, under the district's upload lock.

    Returns None when this call finished it, else the state someone else left it in.
    """
    with store.transaction() as conn:
        if district is not None:
            lock_district(conn, district.id)
        done = conn.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.state.in_(UNFINISHED))
            .values(**values)
        )
        if done.rowcount == 1:
            return None
        return conn.execute(select(Upload.state).where(Upload.id == upload_id)).scalar_one()


def recover_unfinished(
    store: Store, *, started_before: datetime | None = None, settings: Settings | None = None
) -> list[Recovered]:
    """Settle every unfinished upload record created before `started_before`.

    `started_before` defaults to the start of this process, so uploads this process is running
    itself are left alone; call it at start-up, before accepting events.  Returns one
    `Recovered` per record found, in upload order.
    """
    settings = settings or Settings.from_env()
    cutoff = _aware(started_before) if started_before else process_started_at()
    out: list[Recovered] = []
    for record in store.unfinished_uploads():
        if _aware(record.created_at) >= cutoff:
            continue
        out.append(_recover_one(store, record, settings))
    return out


def _recover_one(store: Store, record: Upload, settings: Settings) -> Recovered:
    district = _district(store, record.district_id)
    result, reason = _rerun(store, district, record, settings)
    action, state, values = _settlement(record, result, reason)
    if action == RecoveryAction.RECHECKED:
        reason = "the check was run again after rosterbot restarted"
    other = _finish(store, district, record.id, values)
    if other is not None:
        action, state = RecoveryAction.ALREADY_FINISHED, other
        reason = f"another rosterbot process finished it ({other})"
    log.warning("recovery: upload %s (%s) %s: %s", record.id, record.file_name, action, reason)
    return Recovered(
        upload_id=record.id,
        district_key=district.key if district else None,
        file_name=record.file_name,
        actor=record.actor,
        slack_channel=record.slack_channel,
        slack_thread_ts=record.slack_thread_ts,
        dry_run=record.dry_run,
        previous_state=record.state,
        action=action,
        state=state,
        reason=reason,
        result=result,
    )


def _rerun(
    store: Store, district: DistrictInfo | None, record: Upload, settings: Settings
) -> tuple[FileResult | None, str]:
    """The stored file checked again (None when it cannot be), and why it was not applied."""
    what = "check" if record.dry_run else "upload"
    if district is None:
        return None, (
            "rosterbot stopped before this file was processed and it is not linked to a "
            "district, so nothing was applied; share the file again in a linked channel"
        )
    if record.payload is None and record.slack_file_id is None:
        return None, (
            f"rosterbot stopped before this command-line {what} finished, so nothing in "
            f"it was applied; {what} the file again"
        )  # its bytes are not kept (pipeline.run)
    if record.payload is None:
        return None, (
            "rosterbot stopped before this file was stored and processed (its content "
            f"was not kept), so nothing was applied; {what} the file again"
        )
    reason = (
        ABANDONED_NOT_APPLIED
        if not record.dry_run
        else "rosterbot stopped before this check finished; nothing was applied; check the file again"
    )
    try:
        return _dry_run(store, district, record, settings), reason
    except Exception:  # never lose the record because the re-run failed
        log.exception("recovery: re-running upload %s failed", record.id)
        return None, reason + " (re-checking the stored file also failed)"


def _settlement(
    record: Upload, result: FileResult | None, reason: str
) -> tuple[RecoveryAction, str, dict]:
    """What the record becomes: the action, its state and the values to store."""
    values: dict = dict(finished_at=utcnow(), payload=None)
    if record.dry_run and result is not None:
        state = UploadState.FAILED if result.status == FileStatus.FAILED else UploadState.CHECKED
        values.update(
            state=state,
            status=result.status,
            counts=result.counts,
            rows=result.rows,
            file_issues=[i.to_json() for i in result.file_issues],
            issues=result.issues,
            report=result.report_bytes,
        )
        return RecoveryAction.RECHECKED, state, values
    issues = [file_issue("FAILED", detail=reason).to_json()]
    values.update(state=UploadState.ABANDONED, status=FileStatus.FAILED, file_issues=issues)
    if result is not None:  # the dry-run preview of what the file would do now
        values.update(
            counts=result.counts,
            rows=result.rows,
            issues=result.issues,
            report=result.report_bytes,
            file_issues=issues + [i.to_json() for i in result.file_issues],
        )
    return RecoveryAction.ABANDONED, UploadState.ABANDONED, values
