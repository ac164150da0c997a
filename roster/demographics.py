"""demographics.csv as a file kind: headers, people, check, diff, apply (roster/filekind.py).

Like users.csv (roster/users.py), each file is one transaction, taken after the district's
upload lock; the diff is pandas over whole columns and the apply is one bulk
insert plus one executemany update.  Values live in `demographics.values` (JSON) per
student; a blank cell leaves the stored value as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sqlalchemy import Connection, bindparam, insert, select, update

from roster.changes import demographics_changes
from roster.context import RunContext
from roster.filekind import KindTable, Planned
from roster.models import Demographics, District, Person
from roster.plan import BUCKETS
from roster.states import FileKind
from roster.steps import with_ragged
from roster.store import DistrictInfo
from validation import dictionary as d
from validation.demographics import VALUE_COLUMNS, DemographicsCheck, check_demographics
from validation.headers import HeaderResult, check_headers
from validation.reader import RawTable
from validation.snapshot import PEOPLE_COLUMNS, RosterSnapshot

ENTITY = "demographics"


@dataclass
class DemographicsPlan:
    new: list[dict]  # {"person_id", "values"} for students with no stored demographics
    changed: list[dict]  # {"person_id", "values"}: the full merged values
    counts: dict[str, int]
    #: one line per change (roster.changes.CHANGE_COLUMNS)
    change_lines: pd.DataFrame | None = None

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


def plan_demographics(
    chk: DemographicsCheck, stored: pd.DataFrame, row_numbers: np.ndarray | None = None
) -> DemographicsPlan:
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

    if row_numbers is None:
        row_numbers = np.arange(len(chk.table)) + 2
    changes = demographics_changes(
        merged,
        old_values,
        created,
        updated,
        person_ids,
        pd.Series(row_numbers[chk.accepted], index=accepted["userId"].to_numpy()),
    )
    return DemographicsPlan(payload(created), payload(updated), counts, changes)


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


def _pending_people(ctx: RunContext) -> tuple[frozenset[str], frozenset[str]]:
    """Students and staff a users.csv of this run accepted, when this run is a check.

    When applying, a users.csv of the same upload was committed before this file, so its
    students are stored; one that was not applied (held, failed) gives no student.
    """
    if ctx.apply or not ctx.accepted_people:
        return frozenset(), frozenset()
    pending: dict[str, str] = {}
    for people in ctx.accepted_people:
        pending.update(
            zip(people["userId"], np.where(people["role_l"] == "student", "student", "staff"))
        )
    students = frozenset(u for u, k in pending.items() if k == "student")
    return students, frozenset(u for u, k in pending.items() if k != "student")


class DemographicsKind:
    kind = FileKind.DEMOGRAPHICS
    columns = d.DEMOGRAPHICS_HEADERS

    def empty_counts(self) -> dict[str, dict[str, int]]:
        return {ENTITY: dict.fromkeys(BUCKETS, 0)}

    def headers(self, raw: RawTable) -> HeaderResult:
        return check_headers(raw.headers, d.DEMOGRAPHICS_COLUMNS, "demographics.csv")

    def load(
        self, ctx: RunContext, conn: Connection, table: KindTable
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        return load_people(conn, ctx.district)

    def check(
        self, ctx: RunContext, table: KindTable, loaded: tuple[pd.DataFrame, pd.DataFrame]
    ) -> DemographicsCheck:
        people, _stored = loaded
        students, staff = _pending_people(ctx)
        snap = replace(
            RosterSnapshot(enrollment_source=ctx.district.enrollment_source),
            people=people,
            pending_students=students,
            pending_staff=staff,
        )
        return check_demographics(table.table, snap, skip=table.ragged)

    def plan(
        self,
        ctx: RunContext,
        table: KindTable,
        checked: DemographicsCheck,
        loaded: tuple[pd.DataFrame, pd.DataFrame],
    ) -> Planned:
        plan = plan_demographics(checked, loaded[1], table.raw.row_numbers)
        return Planned(
            plan=plan,
            counts={ENTITY: plan.counts},
            issues=with_ragged(table, checked.issues),
            rejected=~checked.accepted,
            applied_any=checked.accepted,
            changes=plan.change_lines,
        )

    def apply(self, ctx: RunContext, conn: Connection, planned: Planned) -> None:
        apply_demographics(conn, ctx.district.id, planned.plan)


KIND = DemographicsKind()
