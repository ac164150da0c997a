"""Retention: student data on upload records is kept for a limited time (issue #13).

An upload record keeps its error report, every issue's value and message (they quote the
file's cells) and, while it runs, the file's bytes.  After `Settings.retention_days` (default
90, ROSTERBOT_RETENTION_DAYS) `purge()` removes those: the report and the bytes are dropped,
each issue keeps its row, column, code and severity (and the catalog's title and fix in place
of the message that quoted values).  What the audit trail shows stays: who, when, file name,
hash, state, counts, row statistics, file-level issues and how many issues there were.

`rosterbot purge` runs it; the bot runs it at start and then daily (bot/retention.py).
Records still being processed are never touched.  One short transaction per record, so a
purge never holds the write lock for long while the bot serves uploads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from roster.models import Upload, utcnow
from roster.states import UNFINISHED_STATES
from roster.store import Store
from validation.catalog import CATALOG


@dataclass(frozen=True)
class Purged:
    uploads: int
    cutoff: datetime
    days: int

    def to_json(self) -> dict:
        return {"purged": self.uploads, "days": self.days, "before": self.cutoff.isoformat()}


def _without_values(issue: dict) -> dict:
    code = issue.get("code", "")
    entry = CATALOG.get(code)
    return {
        "row": issue.get("row"),
        "column": issue.get("column", ""),
        "code": code,
        "severity": issue.get("severity", ""),
        "value": "",
        "message": (entry.title if entry else code)
        + " (details removed after the retention period)",
        "fix": entry.fix if entry else issue.get("fix", ""),
    }


def due(store: Store, days: int, now: datetime | None = None) -> tuple[list[int], datetime]:
    """The ids of finished records created before now - `days` not yet purged, and the cutoff."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    with store.reader.connect() as conn:
        ids = conn.execute(
            select(Upload.id)
            .where(
                Upload.created_at < cutoff,
                Upload.purged_at.is_(None),
                Upload.state.not_in(UNFINISHED_STATES),
            )
            .order_by(Upload.id)
        ).scalars()
        return list(ids), cutoff


def purge(store: Store, days: int, now: datetime | None = None) -> Purged:
    """Remove reports, issue values and file bytes of uploads older than `days` days."""
    if days < 1:
        raise ValueError("the retention period is at least one day")
    ids, cutoff = due(store, days, now)
    for upload_id in ids:
        with store.transaction() as conn:
            issues = conn.execute(select(Upload.issues).where(Upload.id == upload_id)).scalar()
            conn.execute(
                update(Upload)
                .where(Upload.id == upload_id, Upload.purged_at.is_(None))
                .values(
                    report=None,
                    payload=None,
                    issues=[_without_values(i) for i in issues or [] if isinstance(i, dict)],
                    purged_at=utcnow(),
                )
            )
    return Purged(len(ids), cutoff, days)
