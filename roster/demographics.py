"""demographics.csv through the pipeline: lock, snapshot, check, diff, apply, report.

Mirrors `roster.pipeline.process_users`: one transaction per file, taken after the
district's upload lock; the diff is pandas over whole columns and the apply is one bulk
insert plus one executemany update.  Values live in `demographics.values` (JSON) per
student; a blank cell leaves the stored value as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sqlalchemy import Connection, bindparam, insert, select, update

from roster.models import Demographics, District, Person
from roster.pipeline import (
    FileResult,
    Progress,
    _finish_rows,
    commit_upload,
    district_transaction,
    ragged_issues,
    table_from,
)
from roster.plan import BUCKETS
from roster.store import DistrictInfo, Store
from validation import dictionary as d
from validation.demographics import VALUE_COLUMNS, DemographicsCheck, check_demographics
from validation.headers import HeaderResult
from validation.reader import RawTable
from validation.snapshot import PEOPLE_COLUMNS, RosterSnapshot

ENTITY = "demographics"


@dataclass
class DemographicsPlan:
    new: list[dict]  # {"person_id", "values"} for students with no stored demographics
    changed: list[dict]  # {"person_id", "values"}: the full merged values
    counts: dict[str, int]

    @property
    def changes(self) -> int:
        return len(self.new) + len(self.changed)


def load_people(conn: Connection, district: DistrictInfo) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The district's people (for the checks) and their stored demographics, in one query.

    Stored demographics come back indexed by userId: person_id, has_row, raw (the stored
    dict) and one column per value column ("" when not stored).
    """
    rows = conn.execute(
        select(
            Person.id,
            Person.user_id,
            Person.email,
            Person.first_name,
            Person.last_name,
            Person.role,
            Person.grade,
            Person.district_sis_id,
            Person.state_sis_id,
            Person.active,
            Demographics.person_id,
            Demographics.values,
        )
        .outerjoin(Demographics, Demographics.person_id == Person.id)
        .where(Person.district_id == district.id)
    ).all()
    frame = pd.DataFrame.from_records(rows, columns=[*PEOPLE_COLUMNS, "demo_pk", "raw"])
    if not rows:
        frame = frame.astype(object)
    people = frame[PEOPLE_COLUMNS].copy()
    people["active"] = people["active"].astype(bool)
    stored_values = pd.DataFrame.from_records(
        [v if isinstance(v, dict) else {} for v in frame["raw"]],
        columns=list(VALUE_COLUMNS),
        index=frame.index,
    )
    stored = pd.concat(
        [
            frame[["id", "user_id", "raw"]].rename(columns={"id": "person_id"}),
            stored_values.astype(object).where(stored_values.notna(), ""),
        ],
        axis=1,
    )
    stored["has_row"] = frame["demo_pk"].notna().to_numpy()
    return people, stored.set_index("user_id")


def plan_demographics(chk: DemographicsCheck, stored: pd.DataFrame) -> DemographicsPlan:
    """Diff the accepted rows against what is stored (a blank keeps the stored value)."""
    counts = dict.fromkeys(BUCKETS, 0)
    accepted = chk.table[chk.accepted]  # one row per userId: duplicates were rejected
    new_values = accepted.set_index("userId")[list(VALUE_COLUMNS)]
    old = stored.reindex(new_values.index)
    old_values = old[list(VALUE_COLUMNS)].astype(object).where(old[list(VALUE_COLUMNS)].notna(), "")
    merged = new_values.mask(new_values == "", old_values)
    has_row = old["has_row"].fillna(False).astype(bool).to_numpy()
    differs = (merged != old_values).any(axis=1).to_numpy()
    gives_any = (new_values != "").any(axis=1).to_numpy()
    created = ~has_row & gives_any
    updated = has_row & differs
    counts["created"] = int(created.sum())
    counts["updated"] = int(updated.sum())
    counts["no_change"] = int(len(merged) - created.sum() - updated.sum())

    rejected = chk.live & ~chk.accepted
    keys = chk.table["userId"][rejected]
    named = keys[(keys != "") & ~keys.isin(new_values.index)]
    counts["errors"] = int(named.nunique() + (keys == "").sum())

    person_ids = old["person_id"]

    def payload(mask: np.ndarray) -> list[dict]:
        # stored keys this version does not know are kept as they are
        raws = old["raw"][mask]
        return [
            {
                "person_id": pid,
                "values": {
                    **(raw if isinstance(raw, dict) else {}),
                    **{k: v for k, v in values.items() if v != ""},
                },
            }
            for pid, raw, values in zip(person_ids[mask], raws, merged[mask].to_dict("records"))
        ]

    return DemographicsPlan(payload(created), payload(updated), counts)


def apply_demographics(conn: Connection, district_id: int, plan: DemographicsPlan) -> None:
    """Write the plan inside the caller's transaction: bulk statements only."""
    table = Demographics.__table__
    new = [{"person_id": int(r["person_id"]), "values": r["values"]} for r in plan.new]
    if new:
        conn.execute(insert(Demographics), new)
    if plan.changed:
        stmt = (
            update(table)
            .where(table.c.person_id == bindparam("_pid"))
            .values({"values": bindparam("_values")})
        )
        conn.execute(
            stmt, [{"_pid": int(r["person_id"]), "_values": r["values"]} for r in plan.changed]
        )
    conn.execute(
        update(District)
        .where(District.id == district_id)
        .values(roster_version=District.roster_version + 1)
    )


def process(
    store: Store,
    district: DistrictInfo,
    raw: RawTable,
    header: HeaderResult,
    result: FileResult,
    apply: bool,
    progress: Progress,
    record: dict,
    pending_people: dict[str, str] | None = None,
) -> None:
    """The pipeline hook for kind "demographics" (called by roster.pipeline._process_one)."""
    table = table_from(raw, header, d.DEMOGRAPHICS_HEADERS)
    width = len(raw.headers)
    ragged = raw.field_counts != width
    with district_transaction(store, district) as (conn, trans):
        progress("loading the roster", 0.2)
        people, stored = load_people(conn, district)
        # When applying, a users.csv of the same upload was committed before this file, so
        # its students are stored; one that was not applied (held, failed) gives no student.
        pending = {} if apply else (pending_people or {})
        snap = replace(
            RosterSnapshot(enrollment_source=district.enrollment_source),
            people=people,
            pending_students=frozenset(u for u, k in pending.items() if k == "student"),
            pending_staff=frozenset(u for u, k in pending.items() if k != "student"),
        )
        progress("checking rows", 0.35)
        chk = check_demographics(table, snap, skip=ragged)
        progress("planning changes", 0.6)
        plan = plan_demographics(chk, stored)
        result.counts = {ENTITY: plan.counts}
        issues = (
            pd.concat([chk.issues, ragged_issues(raw)], ignore_index=True)
            if ragged.any()
            else chk.issues
        )
        _finish_rows(result, raw, header, issues, ~chk.accepted, chk.accepted)
        if apply:
            progress("saving", 0.8)
            apply_demographics(conn, district.id, plan)
            commit_upload(store, result, record, conn, trans)
