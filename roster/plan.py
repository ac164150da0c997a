"""The plan: what a checked users.csv changes in the stored roster, and the counts.

Pure pandas over whole columns (no SQL): accepted rows are aggregated per entity key and
joined with the snapshot; the result lists creations, updates and removals, the counts of
users-csv.md section 5, the after-apply class warnings and the removal shares the
mass-removal guard looks at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from roster.memory import release_memory
from validation import dictionary as d
from validation.issues import ISSUE_COLUMNS
from validation.snapshot import RosterSnapshot
from validation.users import UsersCheck
from validation.vector import first_positions, isin, lookup

ENTITIES = ("school", "staff", "student", "class", "enrollment")
BUCKETS = ("created", "updated", "no_change", "removed", "errors")


@dataclass
class UploadPlan:
    people_new: pd.DataFrame
    people_changed: pd.DataFrame  # id + every person field (the full new values)
    memberships_new: pd.DataFrame  # user_id, org_sis_id
    classes_new: pd.DataFrame
    classes_changed: pd.DataFrame  # id + every class field
    enrollments_new: pd.DataFrame  # class_id, user_id, is_primary
    enrollments_changed: pd.DataFrame  # id, is_primary
    classes_removed: list[int]  # stored class pks to deactivate
    enrollments_removed: list[int]  # stored enrollment pks to deactivate
    people_removed: list[int]  # stored person pks to deactivate
    counts: dict[str, dict[str, int]]
    class_issues: pd.DataFrame  # after-apply warnings, ISSUE_COLUMNS
    #: removals as shares of what was active before: {"class": (removed, active), ...}
    removal_shares: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: per line of enrollments_new: the first row of the file that applies it (row positions,
    #: for the changes file's row numbers; None when the plan did not come from a check)
    enrollments_new_rows: np.ndarray | None = None
    #: full sync: schools people leave (user_id, org_sis_id, role, person_pk, school_pk)
    memberships_removed: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            columns=["user_id", "org_sis_id", "role", "person_pk", "school_pk"]
        )
    )

    @property
    def changes(self) -> int:
        return sum(
            len(x)
            for x in (
                self.people_new,
                self.people_changed,
                self.memberships_new,
                self.classes_new,
                self.classes_changed,
                self.enrollments_new,
                self.enrollments_changed,
                self.classes_removed,
                self.enrollments_removed,
                self.people_removed,
                self.memberships_removed,
            )
        )


def _empty_counts() -> dict[str, dict[str, int]]:
    return {e: dict.fromkeys(BUCKETS, 0) for e in ENTITIES}


def _add_counts(total: dict, part: dict) -> None:
    for entity, buckets in part.items():
        for bucket, n in buckets.items():
            total[entity][bucket] += n


def _changed(is_new: pd.Series, differs: Callable[[], pd.Series]) -> pd.Series:
    """Which stored keys the file changes: `differs()` (field by field) for the keys already
    stored; when none of them is stored there is nothing to compare, and it is not computed."""
    if is_new.all():
        return pd.Series(False, index=is_new.index)
    return differs() & ~is_new


def _first_filled(
    mask: np.ndarray,
    key: pd.Series,
    fields: dict[str, pd.Series],
    key_codes: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per key, the first non-blank value of each field among the rows in `mask` (rows agree,
    or were rejected).  Only each key's first filled value is copied, never a whole column.
    `key_codes`: the check's integer codes of the key column (UsersDerived.user_key,
    class_key), so that the keys are told apart without hashing their text again."""
    rows = np.flatnonzero(mask)
    codes = _codes_in_order(rows, key, key_codes)  # keys in order of first appearance
    n_keys = int(codes.max()) + 1 if len(codes) else 0
    position = np.arange(len(rows), dtype=np.int64)
    index = pd.Index(key.take(rows[first_positions(codes, position, n_keys)]).array, name=key.name)
    data = {}
    for name, s in fields.items():
        at = np.flatnonzero(_filled(s)[rows])
        first = first_positions(codes[at], rows[at], n_keys)  # first filled row per key
        found = first != np.iinfo(np.int64).max
        taken = s.take(np.where(found, first, 0)) if len(s) else s.iloc[:0]
        data[name] = pd.Series(taken.array, index=index).where(found)
    return pd.DataFrame(data, index=index)


def _codes_in_order(rows: np.ndarray, key: pd.Series, key_codes: np.ndarray | None) -> np.ndarray:
    """The key of each of `rows` as 0, 1, 2... in order of first appearance (pd.factorize of
    the rows' keys), from the check's integer codes when every row has one."""
    codes = key_codes[rows] if key_codes is not None else None
    if codes is None or not len(codes) or codes.min() < 0:
        return pd.factorize(key.take(rows))[0]
    first = first_positions(codes, np.arange(len(codes), dtype=np.int64), int(codes.max()) + 1)
    present = np.flatnonzero(first != np.iinfo(np.int64).max)
    order = present[np.argsort(first[present], kind="stable")]
    renumber = np.empty(len(first), dtype=np.int64)
    renumber[order] = np.arange(len(order), dtype=np.int64)
    return renumber[codes]


def _filled(s: pd.Series) -> np.ndarray:
    """Which values are neither missing nor blank."""
    return (s.notna() & (s != "")).to_numpy(dtype=bool, na_value=False)


def _differs(new: pd.Series, old: pd.Series, blank_keeps: bool = False) -> pd.Series:
    new_v, old_v = new.fillna("").astype(str), old.fillna("").astype(str)
    out = new_v != old_v
    if blank_keeps:
        out &= new_v != ""
    return out


def _role_kind(role: pd.Series) -> pd.Series:
    return pd.Series(
        np.where((role == "student").to_numpy(dtype=bool, na_value=False), "student", "staff"),
        index=role.index,
    )


@dataclass(frozen=True)
class _Stored:
    """The snapshot keyed the way the plan looks things up."""

    people: pd.DataFrame  # by user_id
    classes: pd.DataFrame  # by class_id
    #: the stored enrollments, userIds already renamed by ID changes (flat: the applied ones
    #: are matched by integer codes, `_plan_enrollments`)
    enrollments_flat: pd.DataFrame
    stored_uid: pd.Series  # per row: the stored userId it updates (NaN for a new person)

    @cached_property
    def enrollments(self) -> pd.DataFrame:
        """By (class_id, user_id): built only when the file removes something or is a full
        sync (a two-level index of a million stored pairs is ~55 MB)."""
        return self.enrollments_flat.set_index(["class_id", "user_id"])


def _stored(chk: UsersCheck, snap: RosterSnapshot) -> _Stored:
    uid = chk.table["userId"]
    by_uid = snap.people.set_index("user_id")
    stored_uid = uid.where(
        isin(uid, by_uid.index), uid.map(chk.id_changes) if chk.id_changes else np.nan
    )
    enr = snap.enrollments
    new_uid_of = {v: k for k, v in chk.id_changes.items()}
    if new_uid_of and len(enr):
        enr = enr.assign(user_id=enr["user_id"].map(new_uid_of).fillna(enr["user_id"]))
    return _Stored(
        people=by_uid,
        classes=snap.classes.set_index("class_id"),
        enrollments_flat=enr,
        stored_uid=stored_uid,
    )


def plan_users(
    chk: UsersCheck,
    snap: RosterSnapshot,
    sync: bool = False,
    diffed: Callable[[UploadPlan], None] | None = None,
) -> UploadPlan:
    """The diff; `sync` (full sync, product.md) also removes, for every school the file
    names, the memberships, classes and enrollments the file does not mention.

    `diffed(plan)` is called as soon as what changes is known, before the counts and the
    class warnings are worked out (a check starts its changes file there); the plan it is
    handed gets its `counts` and `class_issues` afterwards, and is the one returned."""
    # each part's working columns are handed back before the next part (release_memory):
    # a no-change upload of a 1,000,000-row file holds the file, the check and the stored
    # roster throughout, so the plan's peak is what its parts leave behind
    stored = _stored(chk, snap)
    people = _plan_people(chk, snap, stored)
    release_memory()
    classes = _plan_classes(chk, stored)
    enrollments = _plan_enrollments(chk, stored)
    release_memory()
    removals = _plan_removals(chk, stored, people, classes, enrollments)
    # what the file adds and then removes is created inactive
    people_new = _inactive(people.new, "user_id", removals.new_people)
    classes_new = _inactive(classes.new, "class_id", removals.new_classes)
    enrollments_new = _inactive(enrollments.new, ["class_id", "user_id"], removals.new_enrollments)
    memberships_removed = None
    if sync:
        removals, memberships_removed = _plan_sync(chk, snap, stored, removals, people)
    shares = {
        "class": (len(removals.classes), int(snap.classes["active"].astype(bool).sum())),
        "people": (len(removals.people), int(snap.people["active"].astype(bool).sum())),
        "enrollment": (
            len(removals.enrollments),
            int(snap.enrollments["active"].astype(bool).sum()),
        ),
    }
    plan = UploadPlan(
        people_new=people_new,
        people_changed=people.changed,
        memberships_new=people.memberships_new,
        classes_new=classes_new,
        classes_changed=classes.changed,
        enrollments_new=enrollments_new,
        enrollments_new_rows=enrollments.new_rows,
        enrollments_changed=enrollments.changed,
        classes_removed=removals.classes,
        enrollments_removed=removals.enrollments,
        people_removed=removals.people,
        counts=_empty_counts(),
        class_issues=pd.DataFrame(columns=ISSUE_COLUMNS),
        removal_shares=shares,
        **({"memberships_removed": memberships_removed} if memberships_removed is not None else {}),
    )
    if diffed is not None:
        diffed(plan)
    counts = _empty_counts()
    for part in (
        people.counts,
        classes.counts,
        enrollments.counts,
        removals.counts,
        _count_rejected(chk, stored, people.applied.index, classes.applied.index),
        _count_schools(chk, snap),
    ):
        _add_counts(counts, part)
    release_memory()
    class_issues = _class_warnings(
        chk.table,
        chk,
        snap,
        stored.enrollments_flat,
        classes.applied.index.difference(removals.new_classes, sort=False),
        enrollments.applied[~enrollments.applied.index.isin(removals.new_enrollments)]
        if len(removals.new_enrollments)
        else enrollments.applied,
        removals.classes,
        removals.enrollments,
        people.applied["role"],
        enrollments.stored_id.dropna().to_numpy(dtype=float),
    )
    plan.counts, plan.class_issues = counts, class_issues
    return plan


def _inactive(new: pd.DataFrame, key, removed: pd.Index) -> pd.DataFrame:
    """`new` with an `active` column: False for the keys the same file removes."""
    if not len(removed):
        return new.assign(active=True)
    if isinstance(key, list):
        keys = (
            pd.MultiIndex.from_frame(new[key])
            if len(new)
            else pd.MultiIndex.from_tuples([], names=key)
        )
    else:
        keys = pd.Index(new[key])
    return new.assign(active=~keys.isin(removed))


@dataclass(frozen=True)
class _PeoplePlan:
    applied: pd.DataFrame  # per applied userId: the person fields (as stored after the upload)
    new: pd.DataFrame
    changed: pd.DataFrame
    memberships_new: pd.DataFrame
    counts: dict
    bucket: pd.Series  # per applied userId: created / updated / no_change


def _plan_people(chk: UsersCheck, snap: RosterSnapshot, stored: _Stored) -> _PeoplePlan:
    t, v, ok = chk.table, chk.derived, chk.person_ok
    uid, stored_uid = t["userId"], stored.stored_uid
    fields = {
        "first_name": t["userFirstName"],
        "last_name": t["userLastName"],
        "email": t["userEmail"],
        "role": v.role,
        "grade": v.grade,
        "district_sis_id": t["userDistrictId"],
        "state_sis_id": t["userStateId"],
    }
    agg = _first_filled(ok, uid, {**fields, "stored_uid": stored_uid}, v.user_key)
    agg["grade"] = agg["grade"].where(agg["role"] == "student", "")
    if len(stored.people):
        pos = (
            pc.index_in(_text_array(agg["stored_uid"]), value_set=_text_array(stored.people.index))
            .fill_null(-1)
            .to_numpy(zero_copy_only=False)
        )
    else:  # nothing stored: no key to look up
        pos = np.full(len(agg), -1, dtype=np.int64)
    old = _rows_at(stored.people, pos, agg.index)
    is_new = old["id"].isna()
    memberships_new = _memberships_new(chk, snap, stored_uid)
    changed = _changed(
        is_new,
        lambda: (
            _differs(agg["first_name"], old["first_name"])
            | _differs(agg["last_name"], old["last_name"])
            | _differs(agg["email"].str.lower(), old["email"].str.lower())
            | _differs(agg["role"], old["role"])
            | _differs(agg["grade"], old["grade"])
            | _differs(agg["district_sis_id"], old["district_sis_id"], blank_keeps=True)
            | _differs(agg["state_sis_id"], old["state_sis_id"], blank_keeps=True)
            | ~old["active"].fillna(True).astype(bool)
            | (agg["stored_uid"] != agg.index.to_series())
            | isin(agg.index, memberships_new["user_id"])  # gains a school
        ),
    )
    # the masks as plain arrays: a boolean Series indexed by ~300,000 userIds makes pandas
    # look its attribute names up in that index each time numpy is handed it
    is_new, changed = is_new.to_numpy(dtype=bool), changed.to_numpy(dtype=bool)
    for col in ("district_sis_id", "state_sis_id"):  # a blank optional value keeps what is stored
        agg[col] = agg[col].fillna(old[col]).fillna("")
    agg = agg.fillna({"grade": ""})
    people_new = (
        _rows_where(agg, is_new).drop(columns="stored_uid").rename_axis("user_id").reset_index()
    )
    people_changed = agg[changed].drop(columns="stored_uid").rename_axis("user_id").reset_index()
    people_changed.insert(0, "id", old.loc[changed, "id"].astype("int64").to_numpy())
    counts = _empty_counts()
    kind = _role_kind(agg["role"])
    _tally(counts, kind[is_new], "created")
    _tally(counts, kind[changed], "updated")
    _tally(counts, kind[~is_new & ~changed], "no_change")
    bucket = _buckets(is_new, changed, agg.index)
    return _PeoplePlan(agg, people_new, people_changed, memberships_new, counts, bucket)


def _rows_where(frame, mask: pd.Series):
    """`frame[mask]`, without a copy when every row is kept (a file into an empty store:
    every person, class and enrollment is new)."""
    return frame if bool(mask.all()) else frame[mask]


_BUCKET_WORDS = np.array(["created", "updated", "no_change"], dtype=object)


def _buckets(new, changed, index) -> pd.Series:
    """created / updated / no_change per key: three shared strings, not one per key."""
    at = np.where(np.asarray(new, dtype=bool), 0, np.where(np.asarray(changed, dtype=bool), 1, 2))
    return pd.Series(_BUCKET_WORDS[at], index=index, dtype=object)


def _memberships_new(chk: UsersCheck, snap: RosterSnapshot, stored_uid: pd.Series) -> pd.DataFrame:
    """(user_id, org_sis_id) pairs of accepted people that are not stored yet.

    A pair's first row is found from integer codes (the userId's, the school's); only the
    distinct pairs are taken as text, and compared with the stored ones as one joined key
    (Arrow) when any is stored."""
    t = chk.table
    rows = np.flatnonzero(chk.person_ok)
    first = rows[_first_rows(chk.derived.user_key[rows], pd.factorize(t["org_sis_id"])[0][rows])]
    uid, org = t["userId"].take(first), t["org_sis_id"].take(first)
    if not len(snap.memberships):
        return pd.DataFrame({"user_id": uid, "org_sis_id": org})
    stored_pairs = _pair_key(snap.memberships["user_id"], snap.memberships["org_sis_id"])
    suid = stored_uid.take(first)
    pair_new = ~pc.is_in(_pair_key(suid.fillna(""), org), value_set=stored_pairs).to_numpy(
        zero_copy_only=False
    )
    return pd.DataFrame({"user_id": uid[pair_new], "org_sis_id": org[pair_new]})


def _first_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each pair (a[i], b[i]) of integer codes, in
    order (codes are >= -1)."""
    pair = (a.astype(np.int64) + 1) * (int(b.max(initial=0)) + 2) + (b.astype(np.int64) + 1)
    codes, uniques = pd.factorize(pair)
    first = first_positions(codes, np.arange(len(codes)), len(uniques))
    return np.sort(first)


def _first_of_each(keys: pa.Array) -> np.ndarray:
    """Mask of the first occurrence of each key (one Arrow hash, no Python objects)."""
    first = pc.index_in(keys, value_set=keys).to_numpy(zero_copy_only=False)
    return first == np.arange(len(keys))


def _rows_at(frame: pd.DataFrame, pos: np.ndarray, index) -> pd.DataFrame:
    """`frame`'s rows at positions `pos` (-1: a row of NaN), labelled `index`: what
    `frame.reindex(keys)` gives, with the keys already looked up."""
    found = pos >= 0
    if not len(frame):  # nothing stored: every row is NaN already
        out = frame.reindex(range(len(pos)))
        out.index = index
        return out
    out = frame.iloc[np.where(found, pos, 0)]
    out.index = index
    if not found.all():
        out = out.where(np.broadcast_to(found[:, None], out.shape))
    return out


def _text_array(values) -> pa.Array:
    """Text values as an Arrow array, whatever their pandas dtype (object or Arrow strings)."""
    arr = pa.array(values, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr if arr.type == pa.large_string() else arr.cast(pa.large_string())


def _pair_key(a, b) -> pa.Array:
    """The pairs (a, b) as one text key each ("\x1f" cannot occur in a trimmed CSV key)."""
    return pc.binary_join_element_wise(
        _text_array(a), _text_array(b), pa.scalar("\x1f", pa.large_string())
    )


@dataclass(frozen=True)
class _ClassesPlan:
    applied: pd.DataFrame  # per applied classId: the class fields
    new: pd.DataFrame
    changed: pd.DataFrame
    counts: dict
    bucket: pd.Series  # per applied classId: created / updated / no_change


def _plan_classes(chk: UsersCheck, stored: _Stored) -> _ClassesPlan:
    t = chk.table
    fields = {
        "org_sis_id": t["org_sis_id"],
        "name": t["className"],
        "grade": chk.derived.class_grade,
        "display_name": t["classDisplayName"],
        "subject": t["classSubject"],
    }
    cagg = _first_filled(chk.class_ok, t["classId"], fields, chk.derived.class_key)
    cold = stored.classes.reindex(cagg.index)
    c_new = cold["id"].isna()
    c_changed = _changed(
        c_new,
        lambda: (
            _differs(cagg["name"], cold["name"])
            | _differs(cagg["grade"], cold["grade"])
            | _differs(cagg["display_name"], cold["display_name"], blank_keeps=True)
            | _differs(cagg["subject"], cold["subject"], blank_keeps=True)
            | ~cold["active"].fillna(True).astype(bool)
        ),
    )
    c_new, c_changed = c_new.to_numpy(dtype=bool), c_changed.to_numpy(dtype=bool)
    for col in ("display_name", "subject"):
        cagg[col] = cagg[col].fillna(cold[col]).fillna("")
    classes_new = _rows_where(cagg, c_new).rename_axis("class_id").reset_index()
    classes_changed = (
        cagg[c_changed].drop(columns="org_sis_id").rename_axis("class_id").reset_index()
    )
    classes_changed.insert(0, "id", cold.loc[c_changed, "id"].astype("int64").to_numpy())
    counts = _empty_counts()
    counts["class"]["created"] = int(c_new.sum())
    counts["class"]["updated"] = int(c_changed.sum())
    counts["class"]["no_change"] = int((~c_new & ~c_changed).sum())
    bucket = _buckets(c_new, c_changed, cagg.index)
    return _ClassesPlan(cagg, classes_new, classes_changed, counts, bucket)


@dataclass(frozen=True)
class _EnrollmentsPlan:
    applied: pd.Series  # is_primary per applied (classId, userId)
    new: pd.DataFrame
    changed: pd.DataFrame
    counts: dict
    bucket: pd.Series  # per applied (classId, userId): created / updated / no_change
    stored_id: pd.Series  # per applied (classId, userId): the stored enrollment pk (NaN if new)
    new_rows: np.ndarray  # per new enrollment: the first row of the file that applies it


def _plan_enrollments(chk: UsersCheck, stored: _Stored) -> _EnrollmentsPlan:
    eagg, pairs, first_rows = _enrollments_applied(chk)
    enr = stored.enrollments_flat
    # the applied pairs' stored enrollments, matched on the pairs' integer codes (the file's
    # codes for classId and userId; a stored key the file does not name has none): no text
    # key is built for the million pairs of either side, no stored row copied per pair
    pos = (
        _stored_positions(chk, enr, pairs)
        if len(enr) and len(pairs)
        else np.full(len(eagg), -1, dtype=np.int64)
    )
    found = pos >= 0
    at = np.where(found, pos, 0)
    if len(enr):
        ids = enr["id"].to_numpy()[at]
        active = enr["active"].to_numpy(dtype=bool)[at]
        primary = enr["is_primary"].to_numpy(dtype=bool)[at]
    else:
        ids = np.zeros(len(eagg), dtype=np.int64)
        active = primary = np.zeros(len(eagg), dtype=bool)
    e_new = ~found
    e_changed = found & (~active | (primary != eagg.to_numpy(dtype=bool)))
    stored_id = pd.Series(
        ids if found.all() else np.where(found, ids, np.nan), index=eagg.index, name="id"
    )
    enrollments_new = (
        _rows_where(eagg, e_new)
        .reset_index()
        .rename(columns={"classId": "class_id", "userId": "user_id"})
    )
    enrollments_changed = pd.DataFrame(
        {
            "id": ids[e_changed].astype("int64"),
            "is_primary": eagg.to_numpy()[e_changed],
        }
    )
    counts = _empty_counts()
    counts["enrollment"]["created"] = int(e_new.sum())
    counts["enrollment"]["updated"] = int(e_changed.sum())
    counts["enrollment"]["no_change"] = int((~e_new & ~e_changed).sum())
    bucket = _buckets(e_new, e_changed, eagg.index)
    return _EnrollmentsPlan(
        eagg, enrollments_new, enrollments_changed, counts, bucket, stored_id, first_rows[e_new]
    )


def _stored_positions(chk: UsersCheck, enr: pd.DataFrame, pairs: np.ndarray) -> np.ndarray:
    """For each applied pair (its code from `_pair_codes`), the position of its stored
    enrollment in `enr` (the first, as a lookup of the pair's text would find), -1 if none.

    A stored classId / userId gets the file's code for the same text (one Arrow hash lookup
    into the file's distinct values); a stored pair whose class or user the file does not
    name cannot be applied and gets -2."""
    t, v = chk.table, chk.derived
    user_of = _file_codes(t["userId"], v.user_key, enr["user_id"])
    class_of = _file_codes(t["classId"], v.class_key, enr["class_id"])
    width = int(v.user_key.max(initial=0)) + 1  # as _pair_codes
    known = (class_of >= 0) & (user_of >= 0)
    keys = np.where(known, class_of * width + user_of, -2)
    del user_of, class_of, known
    return (
        pc.index_in(pa.array(pairs, pa.int64()), value_set=pa.array(keys, pa.int64()))
        .fill_null(-1)
        .to_numpy(zero_copy_only=False)
        .astype(np.int64, copy=False)
    )


def _file_codes(column: pd.Series, codes: np.ndarray, stored: pd.Series) -> np.ndarray:
    """The file's code (`codes`, from factorising `column`; -1 for a blank) of each stored
    value; -1 for a value no row of the file has under a code."""
    valid = np.flatnonzero(codes >= 0)
    first = first_positions(codes[valid], valid, int(codes.max(initial=-1)) + 1)
    used = first != np.iinfo(np.int64).max  # a code can be unused (the blank's)
    if not used.any():
        return np.full(len(stored), -1, dtype=np.int64)
    values = _text_array(column.take(np.where(used, first, 0)))
    found = (
        pc.index_in(_text_array(stored), value_set=values)
        .fill_null(-1)
        .to_numpy(zero_copy_only=False)
        .astype(np.int64, copy=False)
    )
    return np.where(found >= 0, np.where(used[found], found, -1), -1)


def _enrollments_applied(chk: UsersCheck) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """is_primary per applied (classId, userId), in order of first appearance: any of the
    pair's rows says primary; each pair's code (`_pair_codes`); and its first applied row.  Pairs are told apart by
    the columns' integer codes; only each pair's first row is taken as text."""
    t, v = chk.table, chk.derived
    rows = np.flatnonzero(chk.enrollment_ok)
    if not len(rows):
        index = pd.MultiIndex.from_arrays(
            [t["classId"].iloc[:0], t["userId"].iloc[:0]], names=["classId", "userId"]
        )
        none = np.zeros(0, dtype=np.int64)
        return pd.Series(np.zeros(0, dtype=bool), index=index, name="is_primary"), none, none
    codes, uniques = pd.factorize(_pair_codes(v.class_key, v.user_key)[rows])
    first = rows[first_positions(codes, np.arange(len(codes)), len(uniques))]
    primary = np.bincount(codes, weights=v.primary[rows], minlength=len(uniques)) > 0
    applied = pd.Series(primary, index=_pair_index(chk, first), name="is_primary")
    return applied, np.asarray(uniques, np.int64), first


def _pair_index(chk: UsersCheck, first: np.ndarray) -> pd.MultiIndex:
    """The (classId, userId) index of the pairs whose first rows are `first`.  A large file's
    check has both columns' distinct values and every row's codes into them: the index is
    put together from those (~0.35 s less than factorising a million pairs' text again for
    each level); its levels may then hold values no pair uses, and are not sorted."""
    t, v = chk.table, chk.derived
    values = v.key_values
    if v.class_key is None or "classId" not in values or "userId" not in values:
        return pd.MultiIndex.from_arrays(
            [t["classId"].take(first), t["userId"].take(first)], names=["classId", "userId"]
        )
    return pd.MultiIndex(
        levels=[pd.Index(values["classId"]), pd.Index(values["userId"])],
        codes=[v.class_key[first], v.user_key[first]],
        names=["classId", "userId"],
        verify_integrity=False,
    )


@dataclass(frozen=True)
class _RemovalsPlan:
    classes: list[int]  # stored class pks to deactivate
    enrollments: list[int]  # stored enrollment pks to deactivate
    people: list[int]  # stored person pks to deactivate
    counts: dict
    #: what the same file adds and then removes: created inactive (keys)
    new_people: pd.Index
    new_classes: pd.Index
    new_enrollments: pd.MultiIndex


def _undo(counts: dict, entity_of: pd.Series, buckets: pd.Series) -> None:
    """Take back what the add plans counted for entities the file then removes: each entity
    counts once, as removed (README "Decisions")."""
    for (entity, bucket), n in pd.DataFrame({"e": entity_of, "b": buckets}).value_counts().items():
        counts[entity][bucket] -= int(n)


def _plan_removals(
    chk: UsersCheck,
    stored: _Stored,
    people: _PeoplePlan,
    classes: _ClassesPlan,
    enrollments: _EnrollmentsPlan,
) -> _RemovalsPlan:
    """Removals apply after the adds of the same file: what an add row of the file creates,
    updates or reactivates is removed too, and counts once, as removed."""
    t, v = chk.table, chk.derived
    uid, cid = t["userId"], t["classId"]
    rc = chk.remove_ok & v.is_remove_class
    du = chk.remove_ok & v.is_deactivate
    re_ = chk.remove_ok & v.is_remove_enrollment
    counts = _empty_counts()

    # classes: active before the removals = stored active, or applied by an add row
    rc_ids = pd.Index(cid[rc].unique())
    rc_old = stored.classes.reindex(rc_ids)
    rc_in_file = isin(rc_ids, classes.applied.index)
    rc_live = rc_old["active"].fillna(False).astype(bool).to_numpy() | rc_in_file
    rc_stored = rc_old["id"].notna().to_numpy()
    classes_removed = rc_old.loc[rc_live & rc_stored, "id"].astype("int64").tolist()
    counts["class"]["removed"] = int(rc_live.sum())
    counts["class"]["no_change"] = int((~rc_live).sum())
    _undo(counts, pd.Series("class", index=rc_ids[rc_in_file]), classes.bucket[rc_ids[rc_in_file]])

    # people (a file that deactivates no one looks nothing up: a label lookup would leave
    # a hash table of the ~320,000 stored and applied userIds behind for the rest of the plan)
    du_ids = pd.Index(uid[du].unique())
    if len(du_ids):
        du_old = stored.people.reindex(du_ids)
        du_in_file = isin(du_ids, people.applied.index)
        du_live = du_old["active"].fillna(False).astype(bool).to_numpy() | du_in_file
        du_stored = du_old["id"].notna().to_numpy()
        people_removed = du_old.loc[du_live & du_stored, "id"].astype("int64").tolist()
        role = people.applied["role"].reindex(du_ids).fillna(du_old["role"])
        kind = _role_kind(role)
        _tally(counts, kind[du_live], "removed")
        _tally(counts, kind[~du_live], "no_change")
        in_file = du_ids[du_in_file]
        _undo(counts, kind[in_file], people.bucket[in_file])
    else:
        du_live = du_stored = np.zeros(0, dtype=bool)
        people_removed = []

    # enrollments active before the removals: stored active ones the file does not touch, and
    # every one an add row applies (stored or new)
    applied = enrollments.stored_id
    if rc_live.any() or du_live.any() or re_.any():
        enr = stored.enrollments
        stored_active = enr[enr["active"].astype(bool)]["id"] if len(enr) else enr["id"]
        # the applied pairs that are stored carry their stored pk: compare integers, not pairs
        untouched = ~np.isin(stored_active.to_numpy(), applied.dropna().to_numpy())
        live = pd.concat([stored_active[untouched], applied])
        from_file = np.arange(len(live)) >= int(untouched.sum())
        gone = np.zeros(len(live), dtype=bool)
        if len(live):
            gone |= isin(live.index.get_level_values(0), rc_ids[rc_live])
            gone |= isin(live.index.get_level_values(1), du_ids[du_live])
            if re_.any():
                gone |= live.index.isin(pd.MultiIndex.from_arrays([cid[re_], uid[re_]]))
        removed = live[gone]
    else:  # the file removes nothing (the usual case): no pass over the stored enrollments
        gone, removed = np.zeros(0, dtype=bool), applied.iloc[:0]
    enrollments_removed = removed.dropna().astype("int64").tolist()
    counts["enrollment"]["removed"] = int(gone.sum())
    if len(removed):  # the removed enrollments that an add row applied (live's second part)
        in_file_e = removed.index[from_file[gone]]
        _undo(counts, pd.Series("enrollment", index=in_file_e), enrollments.bucket[in_file_e])
    if re_.any():
        re_pairs = pd.MultiIndex.from_arrays([cid[re_], uid[re_]]).unique()
        counts["enrollment"]["no_change"] += int((~re_pairs.isin(live.index)).sum())
    return _RemovalsPlan(
        classes_removed,
        enrollments_removed,
        people_removed,
        counts,
        new_people=du_ids[du_live & ~du_stored],
        new_classes=rc_ids[rc_live & ~rc_stored],
        new_enrollments=removed.index[removed.isna().to_numpy()],
    )


def _new_ids(uids: pd.Series, id_changes: dict[str, str], reverse: bool = True) -> np.ndarray:
    """Stored userIds as the file renames them (`reverse`), or the file's as stored."""
    mapping = {v: k for k, v in id_changes.items()} if reverse else id_changes
    out = uids.to_numpy(dtype=object).copy()
    if mapping:
        hit = uids.isin(list(mapping)).to_numpy()
        out[hit] = [mapping[v] for v in out[hit]]
    return out


def _plan_sync(
    chk: UsersCheck,
    snap: RosterSnapshot,
    stored: _Stored,
    removals: _RemovalsPlan,
    people: _PeoplePlan,
) -> tuple[_RemovalsPlan, pd.DataFrame]:
    """Full sync: for the schools the file names, what it does not mention is removed.

    A row mentions its userId at its school, its classId and its (classId, userId) pair,
    whatever its action and even when it is rejected: a row with a mistake never makes
    anything disappear.  A person who leaves every school is deactivated (DEACTIVATE-USER);
    one who keeps another school only leaves this one.
    """
    t = chk.table
    org, uid, cid = t["org_sis_id"], t["userId"], t["classId"]
    live = chk.derived.live
    schools = pd.Index(org[live & isin(org, list(snap.schools))].unique())
    counts = removals.counts
    if not len(schools):
        return removals, None
    # people: memberships at those schools whose (userId, school) no row mentions
    said = pd.MultiIndex.from_arrays(
        [
            pd.concat([uid, stored.stored_uid.fillna(uid)]).astype(object).to_numpy(),
            pd.concat([org, org]).astype(object).to_numpy(),
        ]
    )
    by_uid = stored.people
    mem = snap.memberships
    mem = mem[isin(mem["org_sis_id"], schools)]
    active = lookup(mem["user_id"], by_uid.index, by_uid["active"]).fillna(False).astype(bool)
    mem = mem[
        active.to_numpy() & ~isin(mem["user_id"], by_uid.index[by_uid["id"].isin(removals.people)])
    ]
    pairs = pd.MultiIndex.from_arrays([mem["user_id"].astype(object), mem["org_sis_id"]])
    leaving = mem[~pairs.isin(said)]
    all_mem = snap.memberships
    kept = all_mem[isin(all_mem["user_id"], leaving["user_id"].unique())]
    kept_pairs = pd.MultiIndex.from_arrays([kept["user_id"].astype(object), kept["org_sis_id"]])
    left_pairs = pd.MultiIndex.from_arrays(
        [leaving["user_id"].astype(object), leaving["org_sis_id"]]
    )
    staying = kept[~kept_pairs.isin(left_pairs)]["user_id"].unique()
    newly_at = (
        people.memberships_new["user_id"]
        .map(chk.id_changes)
        .fillna(people.memberships_new["user_id"])
    )
    gone_all = ~isin(leaving["user_id"], staying) & ~isin(leaving["user_id"], newly_at.unique())
    deactivated = pd.Index(leaving.loc[gone_all, "user_id"].unique())
    person = by_uid.reindex(deactivated)
    people_removed = removals.people + person["id"].astype("int64").tolist()
    _tally(counts, _role_kind(person["role"]), "removed")
    moved = leaving[~gone_all]
    info = by_uid.reindex(moved["user_id"])
    memberships_removed = pd.DataFrame(
        {
            "user_id": _new_ids(moved["user_id"], chk.id_changes),
            "org_sis_id": moved["org_sis_id"].to_numpy(dtype=object),
            "role": info["role"].to_numpy(dtype=object),
            "person_pk": info["id"].astype("int64").to_numpy(),
        }
    )
    untouched = ~isin(memberships_removed["user_id"], people.applied.index)
    first = ~memberships_removed["user_id"].duplicated()
    _tally(counts, _role_kind(memberships_removed.loc[untouched & first, "role"]), "updated")
    # classes of those schools that no row names
    cls = snap.classes
    gone_cls = cls[
        cls["active"].astype(bool)
        & isin(cls["org_sis_id"], schools)
        & ~isin(cls["class_id"], cid.unique())
        & ~cls["id"].isin(removals.classes)
    ]
    classes_removed = removals.classes + gone_cls["id"].astype("int64").tolist()
    counts["class"]["removed"] += len(gone_cls)
    # enrollments of those schools' classes that no row names, and those the removals take
    enr = stored.enrollments
    if len(enr):
        school_of = lookup(
            pd.Series(enr.index.get_level_values(0), dtype=object),
            pd.Index(cls["class_id"]),
            cls["org_sis_id"],
        )
        said_pairs = pd.MultiIndex.from_arrays([cid.astype(object), uid.astype(object)])
        gone = (
            enr["active"].astype(bool).to_numpy()
            & isin(school_of, schools)
            & ~enr.index.isin(said_pairs)
        )
        gone |= enr["active"].astype(bool).to_numpy() & (
            isin(pd.Series(enr.index.get_level_values(0)), gone_cls["class_id"])
            | isin(pd.Series(enr.index.get_level_values(1)), deactivated)
        )
        extra = enr.loc[gone & ~enr["id"].isin(removals.enrollments).to_numpy(), "id"]
        enrollments_removed = removals.enrollments + extra.astype("int64").tolist()
        counts["enrollment"]["removed"] += len(extra)
    else:
        enrollments_removed = removals.enrollments
    return (
        _RemovalsPlan(
            classes_removed,
            enrollments_removed,
            people_removed,
            counts,
            removals.new_people,
            removals.new_classes,
            removals.new_enrollments,
        ),
        memberships_removed,
    )


def _count_rejected(
    chk: UsersCheck, stored: _Stored, applied_people: pd.Index, applied_classes: pd.Index
) -> dict:
    """The errors bucket: distinct people, classes and enrollments that a rejection kept out."""
    t, v = chk.table, chk.derived
    uid, cid = t["userId"], t["classId"]
    counts = _empty_counts()
    rejected = v.as_add & ~chk.person_ok | (v.is_deactivate & ~chk.remove_ok)
    # a rejected person counts under its valid role, else its stored one, else by its grade
    typed = v.role[rejected]
    by_uid = stored.people
    role = typed.where(
        typed.isin(d.ROLES), lookup(stored.stored_uid[rejected], by_uid.index, by_uid["role"])
    )
    role = role.fillna(
        pd.Series(np.where(t["userGrade"][rejected] != "", "student", "teacher"), index=typed.index)
    )
    _count_errors(counts, uid, rejected, applied_people, _role_kind(role))
    rejected_c = (chk.carries_class & ~chk.class_ok) | (v.is_remove_class & ~chk.remove_ok)
    _count_errors(counts, cid, rejected_c, applied_classes, "class")
    enr_key = pd.Series(_pair_codes(v.class_key, v.user_key), index=t.index)  # -1: blank
    applied_enr = enr_key.to_numpy()[chk.enrollment_ok]  # the applied enrollments' keys, once
    rejected_e = (v.as_add & (cid != "").to_numpy() & ~chk.enrollment_ok) | (
        v.is_remove_enrollment & ~chk.remove_ok
    )
    _count_errors(counts, enr_key, rejected_e, applied_enr, "enrollment")
    return counts


def _count_schools(chk: UsersCheck, snap: RosterSnapshot) -> dict:
    org = chk.table["org_sis_id"]
    counts = _empty_counts()
    counts["school"]["no_change"] = int(
        org[chk.derived.live & org.isin(snap.schools).to_numpy()].nunique()
    )
    issues = chk.issues
    org_err = issues[issues["code"].isin(("ORG_REQUIRED", "ORG_NOT_FOUND", "ORG_EXCEL"))]
    counts["school"]["errors"] = int(
        org_err["value"][org_err["value"] != ""].nunique() + (org_err["value"] == "").sum()
    )
    return counts


def _tally(counts: dict, kinds: pd.Series, bucket: str) -> None:
    for kind, n in kinds.value_counts().items():
        counts[kind][bucket] += int(n)


def _count_errors(counts: dict, keys: pd.Series, rejected: np.ndarray, applied, entity) -> None:
    """Distinct rejected keys not applied from another row; a blank key counts per row.

    `entity` is the entity of every rejected row (a Series aligned with keys[rejected]) or one
    entity for all of them.
    """
    if not rejected.any():
        return
    k = keys[rejected]
    entities = entity if isinstance(entity, pd.Series) else pd.Series(entity, index=k.index)
    codes = pd.api.types.is_integer_dtype(k.dtype)  # integer keys: -1 is blank
    blank = (k < 0) if codes else (k == "")
    member = (lambda a, b: np.isin(a, np.asarray(b))) if codes else isin
    frame = pd.DataFrame({"key": k, "entity": entities})
    # hash the few rejected keys and probe the many applied ones, not the other way round
    candidates = applied[member(applied, k.unique())]
    named = frame[~blank & ~member(k, candidates)].drop_duplicates("key")
    for ent, n in pd.concat([named["entity"], frame.loc[blank, "entity"]]).value_counts().items():
        counts[ent]["errors"] += int(n)


def _pair_codes(class_key: np.ndarray | None, user_key: np.ndarray) -> np.ndarray:
    """One integer per (classId, userId) pair from the two columns' codes; -1 where either
    is blank (no class columns: every row)."""
    if class_key is None:
        return np.full(len(user_key), -1, dtype=np.int64)
    pair = class_key.astype(np.int64) * (int(user_key.max(initial=0)) + 1) + user_key
    return np.where((class_key >= 0) & (user_key >= 0), pair, -1)


def _in_level(index: pd.MultiIndex, level: int, values) -> np.ndarray:
    """Which entries of a two-level index have one of `values` at `level` (tested once per
    distinct level value, spread by the level's codes)."""
    if not len(index):
        return np.zeros(0, dtype=bool)
    return isin(index.levels[level], values)[index.codes[level]]


def _class_warnings(
    t, chk, snap, enr, touched, eagg, classes_removed, enrollments_removed, new_roles, applied_pks
) -> pd.DataFrame:
    """CLASS_NO_PRIMARY_TEACHER / CLASS_MULTIPLE_PRIMARY / CLASS_SIZE on each class's first row."""
    removed_cls = set(snap.classes.loc[snap.classes["id"].isin(classes_removed), "class_id"])
    if removed_cls:
        touched = pd.Index([c for c in touched if c not in removed_cls], dtype=object)
    else:
        touched = touched.astype(object)
    if not len(touched):
        return pd.DataFrame(columns=ISSUE_COLUMNS)
    # the enrollments of the touched classes after the upload: the file's (`eagg`), and the
    # stored active ones it neither applies (their pks are `applied_pks`) nor removes; the
    # stored ones are looked at as flat columns (each distinct classId / userId once)
    if len(enr):
        c_codes, c_values = pd.factorize(enr["class_id"])
        at_class = touched.get_indexer(pd.Index(c_values))
        s_class = np.where(c_codes >= 0, at_class[c_codes], -1)
        del c_codes
        keep = (
            (s_class >= 0)
            & enr["active"].to_numpy(dtype=bool)
            & ~np.isin(  # integer pks: numpy marks them in a table instead of sorting 2 M
                enr["id"].to_numpy(),
                np.concatenate([np.asarray(enrollments_removed, float), applied_pks]).astype(
                    np.int64
                ),
            )
        )
        kept = np.flatnonzero(keep)
        s_class, s_primary = s_class[kept], enr["is_primary"].to_numpy(dtype=bool)[kept]
        u_codes, u_values = pd.factorize(enr["user_id"].take(kept))
    else:
        s_class, s_primary = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
        u_codes, u_values = np.zeros(0, dtype=np.int64), pd.Index([], dtype=object)
    mine = eagg[_in_level(eagg.index, 0, touched)]

    # per enrollment: its class's position in `touched` and whether it is a student's, looked
    # up once per distinct value of the two index levels and spread by the levels' codes
    def is_student(users: pd.Index) -> np.ndarray:
        role = lookup(pd.Series(users, dtype=users.dtype), new_roles.index, new_roles.to_numpy())
        if len(snap.people):
            role = role.fillna(
                lookup(
                    pd.Series(users, dtype=users.dtype),
                    pd.Index(snap.people["user_id"]),
                    snap.people["role"],
                )
            )
        return (role == "student").to_numpy(dtype=bool)

    def per_row(index: pd.MultiIndex, level: int, of_values) -> np.ndarray:
        if not len(index):
            return np.zeros(0, dtype=np.int64)
        return np.asarray(of_values(index.levels[level]))[index.codes[level]]

    s_student = is_student(pd.Index(u_values))[u_codes] if len(u_codes) else np.zeros(0, dtype=bool)
    codes = np.concatenate([s_class, per_row(mine.index, 0, touched.get_indexer)])
    student = np.concatenate([s_student, per_row(mine.index, 1, is_student)])
    primary = np.concatenate([s_primary, mine.astype(bool).to_numpy()])
    per_class = pd.DataFrame(
        {
            "primaries": np.bincount(codes, weights=primary, minlength=len(touched)).astype(int),
            "students": np.bincount(codes, weights=student, minlength=len(touched)).astype(int),
        },
        index=touched,
    )
    rows_ok = np.flatnonzero(chk.class_ok)
    codes = _codes_in_order(rows_ok, t["classId"], chk.derived.class_key)
    first = first_positions(codes, rows_ok, int(codes.max()) + 1 if len(codes) else 0)
    first_row = pd.Series(first, index=pd.Index(t["classId"].take(first).array))
    out = []
    for code, mask, detail in (
        ("CLASS_NO_PRIMARY_TEACHER", per_class["primaries"] == 0, ""),
        ("CLASS_MULTIPLE_PRIMARY", per_class["primaries"] > 1, per_class["primaries"].astype(str)),
        ("CLASS_SIZE", per_class["students"] > d.CLASS_SIZE_MAX, per_class["students"].astype(str)),
    ):
        hit = per_class.index[mask]
        if len(hit):
            out.append(
                pd.DataFrame(
                    {
                        "idx": first_row.reindex(hit).to_numpy(),
                        "column": "classId",
                        "code": code,
                        "value": list(hit),
                        "detail": detail[mask].tolist()
                        if isinstance(detail, pd.Series)
                        else detail,
                    }
                )
            )
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=ISSUE_COLUMNS)
