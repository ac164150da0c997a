"""History and undo, read from the change log (roster/changes.py).

`history()` lists every change to one person or class, oldest first, following the person
across ID changes (the log names the stored row it touched, which an ID change keeps).

`undo()` reverses exactly the changes one applied upload made, in one transaction holding the
district's upload lock, and records that as a new upload (`undo_of`) with its own change log,
so an undo can itself be undone (which re-applies).  What a change becomes:

    created / reactivated  -> the row is deactivated again (people and classes are never deleted)
    removed                -> reactivated
    updated FIELD b -> a   -> FIELD set back to b (an ID change restores the old ID;
                              org_sis_id "" -> S removes the school again, S -> "" adds it back)

Refused (RosterError, nothing written) when a later applied upload changed any of the same
people, classes, enrollments or demographics and was not itself undone since; held by the
mass-removal guard when what it would deactivate is over the share.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timezone

import numpy as np
import pandas as pd
from sqlalchemy import Connection, bindparam, delete, func, insert, null, select, update

from roster.apply import insert_rows, update_rows
from roster.changes import (
    CHANGE_COLUMNS,
    CLASS_FIELDS,
    CREATED,
    PERSON_FIELDS,
    PRIMARY_FIELD,
    REACTIVATED,
    REMOVED,
    SCHOOL_FIELD,
    UPDATED,
    changes_csv,
    empty_changes,
    write_change_log,
)
from roster.context import Settings
from roster.models import (
    Change,
    Demographics,
    District,
    Enrollment,
    Membership,
    Person,
    School,
    SchoolClass,
    Upload,
    utcnow,
)
from roster.plan import BUCKETS
from roster.results import FileResult, Hold
from roster.states import FileKind, FileStatus, UploadState
from roster.steps import district_transaction
from roster.store import RosterError, Store
from roster.users import removal_guard
from validation.issues import file_issue

PERSON_ENTITIES = ("staff", "student")
_COLUMN_OF_PERSON_FIELD = {header: col for col, header in PERSON_FIELDS.items()}
_COLUMN_OF_CLASS_FIELD = {header: col for col, header in CLASS_FIELDS.items()}
_LOG_READ = (
    Change.id,
    Change.upload_id,
    Change.entity,
    Change.key,
    Change.change,
    Change.field,
    Change.before,
    Change.after,
    Change.person_pk,
    Change.class_pk,
    Change.first_id,
    Change.last_id,
)
_LOG_NAMES = [c.key for c in _LOG_READ]


# --- history -----------------------------------------------------------------------------------
def history(
    store: Store, district_key: str, *, user_id: str | None = None, class_id: str | None = None
) -> list[dict]:
    """Every logged change to one person (`user_id`) or class (`class_id`), oldest first:
    {"upload_id", "at", "actor", "entity", "key", "change", "field", "before", "after"}.

    A person is found by its current userId or any userId it had; a class by its classId.
    Raises RosterError when the district has no such person or class and no change to one.
    """
    district = store.district(district_key)
    did = district.id
    with store.engine.connect() as conn:
        if user_id is not None:
            pks = set(
                conn.execute(
                    select(Person.id).where(Person.district_id == did, Person.user_id == user_id)
                ).scalars()
            )
            pks |= set(
                conn.execute(
                    select(Change.person_pk).where(
                        Change.district_id == did,
                        Change.entity.in_(PERSON_ENTITIES),
                        (Change.key == user_id)
                        | (
                            (Change.field == "userId")
                            & ((Change.before == user_id) | (Change.after == user_id))
                        ),
                    )
                ).scalars()
            )
            pk_col, what = Change.person_pk, f"person with userId '{user_id}'"
        elif class_id is not None:
            pks = set(
                conn.execute(
                    select(SchoolClass.id).where(
                        SchoolClass.district_id == did, SchoolClass.class_id == class_id
                    )
                ).scalars()
            )
            pks |= set(
                conn.execute(
                    select(Change.class_pk).where(
                        Change.district_id == did, Change.entity == "class", Change.key == class_id
                    )
                ).scalars()
            )
            pk_col, what = Change.class_pk, f"class '{class_id}'"
        else:
            raise RosterError("name a person (userId) or a class (classId)")
        pks.discard(None)
        if not pks:
            raise RosterError(f"district '{district_key}' has no {what}")
        rows = conn.execute(
            select(
                Change.id,
                Change.upload_id,
                Change.entity,
                Change.key,
                Change.change,
                Change.field,
                Change.before,
                Change.after,
            )
            .where(Change.district_id == did, pk_col.in_(sorted(pks)))
            .order_by(Change.id)
        ).all()
        lines = [(r[0], 0, *r[1:]) for r in rows]
        lines += _created_in_runs(conn, did, "person" if user_id is not None else "class", pks)
        lines.sort(key=lambda r: (r[0], r[1]))
        uploads = sorted({r[2] for r in lines})
        when = {
            u.id: (u.at, u.actor)
            for u in conn.execute(
                select(
                    Upload.id,
                    func.coalesce(Upload.finished_at, Upload.created_at).label("at"),
                    Upload.actor,
                ).where(Upload.id.in_(uploads))
            )
        }
    return [
        {
            "upload_id": r[2],
            "at": _iso(when[r[2]][0]),
            "actor": when[r[2]][1],
            "entity": r[3],
            "key": r[4],
            "change": r[5],
            "field": r[6],
            "before": r[7],
            "after": r[8],
        }
        for r in lines
        if r[2] in when
    ]


def _created_in_runs(conn: Connection, did: int, kind: str, pks: set) -> list[tuple]:
    """The created lines, from the log's runs of created rows (roster.models.Change), of the
    people (`kind` "person") or classes (`kind` "class") `pks` and of their enrollments:
    (change id, order in the run, upload id, entity, key, "created", "", "", ""), each key and
    entity as they were then (a later ID or role change logged its `before`)."""
    ids = sorted(int(p) for p in pks)
    run = Change.__table__.alias("run")
    in_run = (run.c.district_id == did) & run.c.first_id.is_not(None)
    found = []  # (change id, order in the run, upload id, entity group, person pk, row key)
    own = Person if kind == "person" else SchoolClass
    own_key = Person.user_id if kind == "person" else SchoolClass.class_id
    for r in conn.execute(
        select(run.c.id, run.c.upload_id, own.id, own_key)
        .join(own, own.id.between(run.c.first_id, run.c.last_id))
        .where(in_run, run.c.entity == kind, own.district_id == did, own.id.in_(ids))
    ):
        person = r[2] if kind == "person" else None
        found.append((r[0], r[2], r[1], kind, person, r[3]))
    enr_of = Enrollment.person_id if kind == "person" else Enrollment.class_pk
    for r in conn.execute(
        select(
            run.c.id,
            run.c.upload_id,
            Enrollment.id,
            Enrollment.person_id,
            Enrollment.class_pk,
            SchoolClass.class_id,
        )
        .join(Enrollment, Enrollment.id.between(run.c.first_id, run.c.last_id))
        .join(SchoolClass, SchoolClass.id == Enrollment.class_pk)
        .where(in_run, run.c.entity == "enrollment", SchoolClass.district_id == did)
        .where(enr_of.in_(ids))
    ):
        found.append((r[0], r[2], r[1], "enrollment", r[3], r[5]))
    if not found:
        return []
    people = sorted({f[4] for f in found if f[4] is not None})
    now = {
        p.id: (p.user_id, p.role)
        for p in conn.execute(
            select(Person.id, Person.user_id, Person.role).where(Person.id.in_(people))
        )
    }
    # what a later ID or role change found: the first such line after the run has it as `before`
    later: dict[tuple[int, str], list[tuple[int, str]]] = {}
    for c in conn.execute(
        select(Change.id, Change.person_pk, Change.field, Change.before)
        .where(
            Change.district_id == did,
            Change.person_pk.in_(people),
            Change.field.in_(("userId", "userRole")),
        )
        .order_by(Change.id)
    ):
        later.setdefault((c.person_pk, c.field), []).append((c.id, c.before))

    def then(change_id: int, person: int, field: str, current: str) -> str:
        return next((b for i, b in later.get((person, field), ()) if i > change_id), current)

    out = []
    for change_id, order, upload_id, group, person, row_key in found:
        if person is not None:
            uid = then(change_id, person, "userId", now[person][0])
            role = then(change_id, person, "userRole", now[person][1])
        if group == "person":
            entity, key = ("student" if role == "student" else "staff"), uid
        elif group == "class":
            entity, key = "class", row_key
        else:
            entity, key = "enrollment", f"{row_key}/{uid}"
        out.append((change_id, order, upload_id, entity, key, CREATED, "", "", ""))
    return out


def _iso(at) -> str:
    if at is None:
        return ""
    if at.tzinfo is None:  # SQLite hands back naive datetimes; they were stored as UTC
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- undo ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Target:
    id: int
    kind: str


def undo(
    store: Store,
    district_key: str,
    upload_id: int,
    *,
    actor: str = "",
    confirm_removals: bool = False,
    settings: Settings | None = None,
) -> FileResult:
    """Undo one applied upload (see the module docstring).  Refusals raise RosterError."""
    settings = settings or Settings.from_env()
    district = store.district(district_key)
    with district_transaction(store, district) as (conn, trans):
        target = _target(conn, district.id, upload_id)
        log = _expanded(
            conn,
            district.id,
            _frame(
                conn.execute(
                    select(*_LOG_READ).where(Change.upload_id == target.id).order_by(Change.id)
                ).all()
            ),
        )
        later = _later_conflicts(conn, district.id, target.id, log)
        if later:
            ids = ", ".join(str(i) for i in later)
            raise RosterError(
                f"upload {target.id} cannot be undone: later upload(s) {ids} changed some of "
                f"the same people, classes or enrollments; undo those first (newest first)"
            )
        inverse = _inverse(log)
        result = FileResult(
            file=f"undo of upload {target.id}",
            kind=target.kind,
            counts=_counts(target.kind, inverse),
            undo_of=target.id,
            status=FileStatus.COMPLETED,
        )
        hold = removal_guard(_removal_shares(conn, district.id, inverse), settings.removal_share)
        if hold and not confirm_removals:
            result.status, result.held = FileStatus.FAILED, True
            result.file_issues.append(
                file_issue("REMOVALS_NEED_CONFIRMATION", detail=hold, severity="error")
            )
            result.holds.append(Hold("REMOVALS_NEED_CONFIRMATION", hold))
            result.changes_bytes = changes_csv(_keyed(conn, district.id, inverse))
            result.changes_count = len(inverse)
            return result
        _write(conn, district.id, inverse)
        inverse = _keyed(conn, district.id, inverse)
        new_id = conn.execute(
            insert(Upload)
            .values(
                district_id=district.id,
                kind=target.kind,
                file_name=result.file,
                actor=actor,
                dry_run=False,
                state=UploadState.APPLIED,
                status=FileStatus.COMPLETED,
                created_at=utcnow(),
                finished_at=utcnow(),
                counts=result.counts,
                undo_of=target.id,
            )
            .returning(Upload.id)
        ).scalar_one()
        write_change_log(conn, district.id, new_id, inverse)
        conn.execute(
            update(District)
            .where(District.id == district.id)
            .values(roster_version=District.roster_version + 1)
        )
        trans.commit()
    result.upload_id, result.applied = new_id, True
    if len(inverse):
        result.changes_bytes = changes_csv(inverse)
        result.changes_count = len(inverse)
    return result


def _frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=_LOG_NAMES)
    return frame.astype(object) if not len(frame) else frame


def _expanded(conn: Connection, did: int, log: pd.DataFrame) -> pd.DataFrame:
    """`log` with each run of created rows (roster.models.Change) as one line per row, in
    the run's place (keys as stored now: the undo keys its own lines afresh)."""
    runs = np.flatnonzero(log["last_id"].notna().to_numpy()) if len(log) else []
    if not len(runs):
        return log
    parts, done = [], 0
    for i in runs:
        parts += [log.iloc[done:i], _run_lines(conn, did, log.iloc[i])]
        done = i + 1
    parts.append(log.iloc[done:])
    return pd.concat([p for p in parts if len(p)], ignore_index=True)


def _run_lines(conn: Connection, did: int, run: pd.Series) -> pd.DataFrame:
    """The created lines one run of created rows stands for, in id order."""
    first, last = int(run["first_id"]), int(run["last_id"])
    if run["entity"] == "person":
        query = select(Person.id, null(), Person.user_id, Person.role).where(
            Person.district_id == did, Person.id.between(first, last)
        )
        order = Person.id
    elif run["entity"] == "class":
        query = select(null(), SchoolClass.id, SchoolClass.class_id, null()).where(
            SchoolClass.district_id == did, SchoolClass.id.between(first, last)
        )
        order = SchoolClass.id
    else:
        query = (
            select(
                Enrollment.person_id,
                Enrollment.class_pk,
                SchoolClass.class_id + "/" + Person.user_id,
                null(),
            )
            .join(SchoolClass, SchoolClass.id == Enrollment.class_pk)
            .join(Person, Person.id == Enrollment.person_id)
            .where(SchoolClass.district_id == did, Enrollment.id.between(first, last))
        )
        order = Enrollment.id
    rows = conn.execute(query.order_by(order)).cursor.fetchall()
    got = pd.DataFrame.from_records(rows, columns=["person_pk", "class_pk", "key", "role"])
    if run["entity"] == "person":
        entity = np.where(got["role"].to_numpy() == "student", "student", "staff")
    else:
        entity = run["entity"]
    return pd.DataFrame(
        {
            "id": run["id"],
            "upload_id": run["upload_id"],
            "entity": entity,
            "key": got["key"],
            "change": CREATED,
            "field": "",
            "before": "",
            "after": "",
            "person_pk": got["person_pk"].astype(float),
            "class_pk": got["class_pk"].astype(float),
            "first_id": np.nan,
            "last_id": np.nan,
        },
        columns=_LOG_NAMES,
    )


def _target(conn: Connection, district_id: int, upload_id: int) -> _Target:
    rec = conn.execute(
        select(Upload.id, Upload.district_id, Upload.state, Upload.dry_run, Upload.kind).where(
            Upload.id == upload_id
        )
    ).first()
    if rec is None or rec.district_id != district_id:
        raise RosterError(f"no upload {upload_id} in this district")
    if rec.state != UploadState.APPLIED or rec.dry_run:
        raise RosterError(
            f"upload {upload_id} was not applied (it is '{rec.state}'), so there is nothing to undo"
        )
    undone_by = _live_undo(conn, upload_id)
    if undone_by is not None:
        raise RosterError(
            f"upload {upload_id} was already undone by upload {undone_by}; "
            f"undo {undone_by} to apply it again"
        )
    return _Target(rec.id, rec.kind)


def _live_undo(conn: Connection, upload_id: int) -> int | None:
    """The applied undo of `upload_id` that is still in effect (not itself undone), if any."""
    undos = conn.execute(
        select(Upload.id).where(Upload.undo_of == upload_id, Upload.state == UploadState.APPLIED)
    ).scalars()
    for undo_id in undos:
        if _live_undo(conn, undo_id) is None:
            return undo_id
    return None


def _identity(frame: pd.DataFrame) -> pd.Series:
    """What a change touched, as one comparable string: person, class, enrollment, demographics."""
    group = frame["entity"].where(~frame["entity"].isin(PERSON_ENTITIES), "person")
    return (
        group.astype(str) + ":" + _pk_text(frame["class_pk"]) + ":" + _pk_text(frame["person_pk"])
    )


def _pk_text(values: pd.Series) -> pd.Series:
    """Stored ids as text ("" for none), the same whether the column came back as integers or,
    with a blank among them, as floats."""
    numbers = pd.to_numeric(values.astype(object))
    return numbers.fillna(-1).astype(np.int64).astype(str).where(numbers.notna(), "")


def _later_conflicts(conn: Connection, district_id: int, target_id: int, log) -> list[int]:
    """Later applied uploads that touched what `target_id` touched and are still in effect."""
    if not len(log):
        return []
    rows = conn.execute(
        select(*_LOG_READ)
        .join(Upload, Upload.id == Change.upload_id)
        .where(
            Change.district_id == district_id,
            Change.upload_id > target_id,
            Upload.state == UploadState.APPLIED,
            # rows created after the target upload cannot be among those it changed
            Change.first_id.is_(None),
        )
    ).all()
    later = _frame(rows)
    if not len(later):
        return []
    hit = later.loc[_identity(later).isin(set(_identity(log))), "upload_id"]
    ids = set(int(i) for i in hit.unique())
    # an upload and its undo cancel out: neither stands in the way
    undo_of = (
        dict(
            conn.execute(select(Upload.id, Upload.undo_of).where(Upload.id.in_(sorted(ids)))).all()
        )
        if ids
        else {}
    )
    for uid, of in sorted(undo_of.items(), reverse=True):
        if of in ids and uid in ids:
            ids -= {uid, of}
    return sorted(ids)


_FLIP = {CREATED: REMOVED, REACTIVATED: REMOVED, REMOVED: REACTIVATED}


def _inverse(log: pd.DataFrame) -> pd.DataFrame:
    """The change lines that undo `log`, newest first (keys are filled in after writing)."""
    if not len(log):
        return empty_changes()
    log = log.iloc[::-1].reset_index(drop=True)
    updated = log["change"] == UPDATED
    change = log["change"].map(_FLIP).where(~updated, UPDATED)
    created_demo = (log["entity"] == "demographics") & (log["change"] == CREATED)
    out = pd.DataFrame(
        {
            "entity": log["entity"],
            "key": log["key"],
            "change": change,
            "field": log["field"],
            # created demographics keep their values in `after`; undone, they are `before`
            "before": log["after"].where(updated | created_demo, ""),
            "after": log["before"].where(updated, ""),
            "row_number": None,
            "user_id": "",
            "class_id": "",
            "person_pk": log["person_pk"],
            "class_pk": log["class_pk"],
        },
        columns=list(CHANGE_COLUMNS),
    )
    removed_demo = (log["entity"] == "demographics") & (log["change"] == REMOVED)
    out.loc[removed_demo, "after"] = log.loc[removed_demo, "before"]
    return out


def _counts(kind: str, inverse: pd.DataFrame) -> dict:
    entities = (
        ("demographics",)
        if kind == FileKind.DEMOGRAPHICS
        else ("school", "staff", "student", "class", "enrollment")
    )
    counts = {e: dict.fromkeys(BUCKETS, 0) for e in entities}
    if not len(inverse):
        return counts
    ident = _identity(inverse)
    for entity in entities:
        mine = inverse["entity"] == entity
        removed = mine & (inverse["change"] == REMOVED)
        counts[entity]["removed"] = int(ident[removed].nunique())
        counts[entity]["updated"] = int(ident[mine & ~removed].nunique())
    return counts


def _removal_shares(conn: Connection, did: int, inverse: pd.DataFrame) -> dict:
    removed = inverse[inverse["change"] == REMOVED]

    def active(model, *where) -> int:
        return conn.execute(
            select(func.count()).select_from(model).where(model.active.is_(True), *where)
        ).scalar_one()

    enr_active = conn.execute(
        select(func.count())
        .select_from(Enrollment)
        .join(SchoolClass, SchoolClass.id == Enrollment.class_pk)
        .where(SchoolClass.district_id == did, Enrollment.active.is_(True))
    ).scalar_one()
    return {
        "class": (
            int((removed["entity"] == "class").sum()),
            active(SchoolClass, SchoolClass.district_id == did),
        ),
        "people": (
            int(removed["entity"].isin(PERSON_ENTITIES).sum()),
            active(Person, Person.district_id == did),
        ),
        "enrollment": (int((removed["entity"] == "enrollment").sum()), enr_active),
    }


def _ints(values) -> list[int]:
    return [int(v) for v in values]


def _write(conn: Connection, did: int, inverse: pd.DataFrame) -> None:
    """The inverse changes, in bulk statements grouped by what they set."""
    ent, change, field = inverse["entity"], inverse["change"], inverse["field"]
    person = ent.isin(PERSON_ENTITIES)
    for mask, table in ((person, Person.__table__), (ent == "class", SchoolClass.__table__)):
        pk = "person_pk" if table is Person.__table__ else "class_pk"
        for state, value in ((REMOVED, False), (REACTIVATED, True)):
            m = mask & (change == state)
            if m.any():
                update_rows(conn, table, ("active",), ((value, i) for i in _ints(inverse[pk][m])))
    # person fields (an ID change restores the old ID; email keeps its lower-cased key)
    for header, col in _COLUMN_OF_PERSON_FIELD.items():
        m = person & (change == UPDATED) & (field == header)
        if not m.any():
            continue
        values, ids = inverse["after"][m].tolist(), _ints(inverse["person_pk"][m])
        if col == "email":
            rows = zip(values, [v.lower() for v in values], ids)
            update_rows(conn, Person.__table__, ("email", "email_key"), rows)
        else:
            update_rows(conn, Person.__table__, (col,), zip(values, ids))
    for header, col in _COLUMN_OF_CLASS_FIELD.items():
        m = (ent == "class") & (change == UPDATED) & (field == header)
        if m.any():
            rows = zip(inverse["after"][m].tolist(), _ints(inverse["class_pk"][m]))
            update_rows(conn, SchoolClass.__table__, (col,), rows)
    _write_memberships(conn, did, inverse[person & (field == SCHOOL_FIELD)])
    _write_enrollments(conn, inverse[ent == "enrollment"])
    _write_demographics(conn, inverse[ent == "demographics"])


def _write_memberships(conn: Connection, did: int, lines: pd.DataFrame) -> None:
    if not len(lines):
        return
    schools = dict(
        conn.execute(select(School.org_sis_id, School.id).where(School.district_id == did)).all()
    )
    gone = lines[lines["after"] == ""]
    if len(gone):
        dbapi = conn.connection.dbapi_connection
        mark = "%s" if conn.dialect.name == "postgresql" else "?"
        cur = dbapi.cursor()
        try:
            cur.executemany(
                f"DELETE FROM memberships WHERE person_id = {mark} AND school_id = {mark}",
                list(zip(_ints(gone["person_pk"]), [schools[o] for o in gone["before"]])),
            )
        finally:
            cur.close()
    back = lines[lines["after"] != ""]
    if len(back):
        insert_rows(
            conn,
            Membership.__table__,
            ("person_id", "school_id"),
            zip(_ints(back["person_pk"]), [schools[o] for o in back["after"]]),
        )


def _write_enrollments(conn: Connection, lines: pd.DataFrame) -> None:
    if not len(lines):
        return
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    statements = []
    for state, value in ((REMOVED, False), (REACTIVATED, True)):
        m = lines["change"] == state
        if m.any():
            statements.append(
                (
                    "active",
                    [value] * int(m.sum()),
                    lines["class_pk"][m],
                    lines["person_pk"][m],
                )
            )
    m = (lines["change"] == UPDATED) & (lines["field"] == PRIMARY_FIELD)
    if m.any():
        statements.append(
            (
                "is_primary",
                (lines["after"][m] == "Y").tolist(),
                lines["class_pk"][m],
                lines["person_pk"][m],
            )
        )
    dbapi = conn.connection.dbapi_connection
    for column, values, class_pks, person_pks in statements:
        cur = dbapi.cursor()
        try:
            cur.executemany(
                f"UPDATE enrollments SET {column} = {mark} "
                f"WHERE class_pk = {mark} AND person_id = {mark}",
                list(zip(values, _ints(class_pks), _ints(person_pks))),
            )
        finally:
            cur.close()


def _write_demographics(conn: Connection, lines: pd.DataFrame) -> None:
    """Demographics: created ones are deleted (and re-created from the logged values),
    updated values set back one key at a time."""
    if not len(lines):
        return
    gone = lines[lines["change"] == REMOVED]
    if len(gone):
        pks = _ints(gone["person_pk"])
        conn.execute(delete(Demographics).where(Demographics.person_id.in_(pks)))
    back = lines[lines["change"] == REACTIVATED]
    if len(back):
        conn.execute(
            insert(Demographics),
            [
                {"person_id": int(p), "values": json.loads(v or "{}")}
                for p, v in zip(back["person_pk"], back["after"])
            ],
        )
    upd = lines[lines["change"] == UPDATED]
    if len(upd):
        pks = sorted(set(_ints(upd["person_pk"])))
        stored = dict(
            conn.execute(
                select(Demographics.person_id, Demographics.values).where(
                    Demographics.person_id.in_(pks)
                )
            ).all()
        )
        for p, f, v in zip(_ints(upd["person_pk"]), upd["field"], upd["after"]):
            values = dict(stored.get(p) or {})
            if v == "":
                values.pop(f, None)
            else:
                values[f] = v
            stored[p] = values
        conn.execute(
            update(Demographics.__table__)
            .where(Demographics.__table__.c.person_id == bindparam("_pid"))
            .values({"values": bindparam("_values")}),
            [{"_pid": p, "_values": stored[p]} for p in pks],
        )


def _keyed(conn: Connection, did: int, inverse: pd.DataFrame) -> pd.DataFrame:
    """The lines' keys as stored now (after an ID change is undone, the restored ID)."""
    if not len(inverse):
        return inverse
    people = dict(
        conn.execute(select(Person.id, Person.user_id).where(Person.district_id == did)).all()
    )
    classes = dict(
        conn.execute(
            select(SchoolClass.id, SchoolClass.class_id).where(SchoolClass.district_id == did)
        ).all()
    )
    uid = [people.get(int(p), "") if p == p and p is not None else "" for p in inverse["person_pk"]]
    cid = [classes.get(int(c), "") if c == c and c is not None else "" for c in inverse["class_pk"]]
    uid_s, cid_s = pd.Series(uid, dtype=object), pd.Series(cid, dtype=object)
    ent = inverse["entity"].reset_index(drop=True)
    key = np.where(ent == "class", cid_s, np.where(ent == "enrollment", cid_s + "/" + uid_s, uid_s))
    return inverse.reset_index(drop=True).assign(key=key)
