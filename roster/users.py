"""users.csv as a file kind: headers, snapshot, check, plan, removal guard, apply.

The rules are in `validation.users.check_users`, the diff in `roster.plan.plan_users`, the
writes in `roster.apply.apply_plan`; this module wires them into the pipeline's stages
(roster/filekind.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import Connection

from roster.apply import apply_plan
from roster.changes import (
    FILE_COLUMNS,
    ChangesAhead,
    removal_items,
    users_change_blocks,
    users_changes,
)
from roster.context import RunContext
from roster.filekind import KindTable, Planned
from roster.memory import release_memory
from roster.plan import BUCKETS, ENTITIES, UploadPlan, plan_users
from roster.results import Hold
from roster.snapshot import load_snapshot
from roster.states import FileKind
from roster.steps import with_ragged
from validation import dictionary as d
from validation.headers import HeaderResult, check_headers
from validation.reader import RawTable
from validation.snapshot import RosterSnapshot
from validation.users import check_users
from validation.vector import isin

if TYPE_CHECKING:
    from validation.users import UsersCheck

#: how many people a held summary names (the rest are in the error report)
HOLD_ITEMS = 10

_GUARD_LABELS = {
    "class": "active classes",
    "people": "active people",
    "enrollment": "active enrollments",
}


def removal_guard(shares: dict[str, tuple[int, int]], limit: float) -> str:
    """A description of the removals over the limit, or '' when none is."""
    over = [
        f"{removed} of {active} {_GUARD_LABELS[k]} ({removed / active:.0%})"
        for k, (removed, active) in shares.items()
        if active and removed > limit * active
    ]
    if not over:
        return ""
    return "; ".join(over) + f", more than the {limit:.0%} allowed without confirmation"


def id_change_guard(checked: UsersCheck, limit: int) -> Hold | None:
    """The ID-change guard (product.md "Guards"): a Hold when the file would change the userId
    of more than `limit` people, naming the first of them ("Ava Nguyen S1 → S1-NEW")."""
    if len(checked.id_changes) <= limit:
        return None
    t = checked.table
    uid = t["userId"]
    applied = checked.person_ok & isin(uid, list(checked.id_changes))
    first = t[applied].drop_duplicates("userId")
    if len(first) <= limit:
        return None
    items = [
        f"{f} {last} {checked.id_changes[new]} → {new}".strip()
        for f, last, new in zip(
            first["userFirstName"][:HOLD_ITEMS],
            first["userLastName"][:HOLD_ITEMS],
            first["userId"][:HOLD_ITEMS],
        )
    ]
    detail = f"{len(first)} people, more than the {limit} allowed without confirmation"
    return Hold("ID_CHANGES_NEED_CONFIRMATION", detail, items, len(first))


def row_parts(checked: UsersCheck) -> list:
    """The parts of a users.csv row, for "class MATH5 saved; the person and the enrollment
    were not" (labels built lazily, only for the partly applied rows)."""
    t, v = checked.table, checked.derived
    add = v.as_add
    with_class = add & (t["classId"] != "").to_numpy()
    return [
        ("the person", add, checked.person_ok),
        (("class ", t["classId"]), checked.carries_class, checked.class_ok),
        ("the enrollment", with_class, checked.enrollment_ok),
    ]


class _LowerEmails:
    """The file's distinct lower-cased emails, worked out only when the snapshot iterates
    over them (a store of one district never does): a 1,000,000-row file's ~300,000 emails
    are not turned into Python strings for nothing."""

    def __init__(self, emails: pd.Series) -> None:
        self._emails = emails

    def __iter__(self) -> Iterator[str]:
        distinct = self._emails.drop_duplicates().str.lower().drop_duplicates()
        return iter(distinct.tolist())


class UsersKind:
    kind = FileKind.USERS
    columns = d.USERS_HEADERS

    def empty_counts(self) -> dict[str, dict[str, int]]:
        return {e: dict.fromkeys(BUCKETS, 0) for e in ENTITIES}

    def headers(self, raw: RawTable) -> HeaderResult:
        role_pos = next(
            (i for i, h in enumerate(raw.headers) if h.strip().casefold() == "userrole"), None
        )
        any_student = bool(
            role_pos is not None
            and pd.Series(raw.cells[str(role_pos)].unique(), dtype=object)
            .str.strip()
            .str.lower()
            .eq("student")
            .any()
        )
        return check_headers(
            raw.headers,
            d.USERS_COLUMNS,
            "users.csv",
            required_when={"userGrade": any_student},
            groups=((d.CLASS_GROUP, d.CLASS_GROUP_REQUIRED),),
        )

    def load(self, ctx: RunContext, conn: Connection, table: KindTable) -> RosterSnapshot:
        return load_snapshot(conn, ctx.district, _LowerEmails(table.table["userEmail"]))

    def check(self, ctx: RunContext, table: KindTable, loaded: RosterSnapshot) -> UsersCheck:
        has_class_group = any(c in table.header.positions for c in d.CLASS_GROUP)
        return check_users(table.table, loaded, has_class_group, skip=table.ragged)

    def plan(
        self, ctx: RunContext, table: KindTable, checked: UsersCheck, loaded: RosterSnapshot
    ) -> Planned:
        # the rows of the lines are found by the check's integer codes of userId and classId
        codes = (checked.derived.user_key, checked.derived.class_key)
        limit = ctx.settings.removal_share
        ahead: list[ChangesAhead] = []

        def diffed(plan: UploadPlan) -> None:
            """A check that is not held: its changes file is built in a second thread from
            here on, while the plan counts and the rows are worded (only the file needs the
            lines); an upload and a held check need them whole, below."""
            if not ctx.apply and not removal_guard(plan.removal_shares, limit):
                lines = partial(
                    users_change_blocks,
                    table.table,
                    table.raw.row_numbers,
                    loaded,
                    plan,
                    checked.id_changes,
                    codes,
                    FILE_COLUMNS,
                )
                ahead.append(ChangesAhead(lines))

        plan = plan_users(checked, loaded, sync=ctx.sync, diffed=diffed)
        release_memory()  # the plan's working columns, before an upload's lines are built
        hold = removal_guard(plan.removal_shares, limit)
        changes: pd.DataFrame | ChangesAhead = (
            ahead.pop()
            if ahead
            else users_changes(  # the change log and the held summary need the lines here
                table.table, table.raw.row_numbers, loaded, plan, checked.id_changes, codes
            )
        )
        items, total = removal_items(changes, loaded) if hold else ([], 0)
        return Planned(
            plan=plan,
            counts=plan.counts,
            issues=with_ragged(table, checked.issues, plan.class_issues),
            rejected=checked.row_reject,
            applied_any=checked.person_ok
            | checked.class_ok
            | checked.enrollment_ok
            | checked.remove_ok,
            hold=hold,
            hold_items=items,
            hold_total=total,
            holds=[
                h for h in (id_change_guard(checked, ctx.settings.id_change_max),) if h is not None
            ],
            accepted_people=checked.accepted_people,
            changes=changes,
            parts=row_parts(checked),
        )

    def apply(self, ctx: RunContext, conn: Connection, planned: Planned) -> None:
        apply_plan(conn, ctx.district.id, planned.plan)


KIND = UsersKind()
