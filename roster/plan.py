"""The plan: what a checked users.csv changes in the stored roster, and the counts.

Pure pandas over whole columns (no SQL): accepted rows are aggregated per entity key and
joined with the snapshot; the result lists creations, updates and removals, the counts of
users-csv.md section 5, the after-apply class warnings and the removal shares the
mass-removal guard looks at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from validation import dictionary as d
from validation.issues import ISSUE_COLUMNS
from validation.snapshot import RosterSnapshot
from validation.users import UsersCheck
from validation.vector import first_positions, isin, lookup

ENTITIES = ("school", "staff", "student", "class", "enrollment")
BUCKETS = ("created", "updated", "no_change", "removed", "errors")

_PERSON_FIELDS = {  # plan column <- table column
    "first_name": "userFirstName",
    "last_name": "userLastName",
    "email": "userEmail",
    "role": "role_l",
    "grade": "grade_n",
    "district_sis_id": "userDistrictId",
    "state_sis_id": "userStateId",
}
_CLASS_FIELDS = {
    "org_sis_id": "org_sis_id",
    "name": "className",
    "grade": "class_grade_n",
    "display_name": "classDisplayName",
    "subject": "classSubject",
}


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
            )
        )


def _first_filled(frame: pd.DataFrame, key, fields: dict[str, str]) -> pd.DataFrame:
    """Per key, the first non-blank value of each field (rows agree, or were rejected)."""
    data = pd.DataFrame({name: frame[col].mask(frame[col] == "") for name, col in fields.items()})
    return data.groupby(key, sort=False).first()


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


def plan_users(chk: UsersCheck, snap: RosterSnapshot) -> UploadPlan:
    t = chk.table
    counts = {e: dict.fromkeys(BUCKETS, 0) for e in ENTITIES}
    uid, cid, org = t["userId"], t["classId"], t["org_sis_id"]
    people = snap.people
    by_uid = people.set_index("user_id") if len(people) else people.set_index("user_id")
    stored_uid = uid.where(
        isin(uid, by_uid.index), uid.map(chk.id_changes) if chk.id_changes else np.nan
    )

    def rows(mask: np.ndarray, *columns: str) -> pd.DataFrame:
        """Only the columns a step needs, of the rows it applies: no copy of the whole table."""
        picked = t[[c for c in dict.fromkeys(columns) if c != "stored_uid"]]
        if "stored_uid" in columns:
            picked = picked.assign(stored_uid=stored_uid)
        return picked[mask]

    # --- people --------------------------------------------------------------------------------
    accepted = rows(chk.person_ok, "userId", "org_sis_id", "stored_uid", *_PERSON_FIELDS.values())
    agg = _first_filled(accepted, accepted["userId"], _PERSON_FIELDS)
    agg["stored_uid"] = accepted.groupby("userId", sort=False)["stored_uid"].first()
    agg["grade"] = agg["grade"].where(agg["role"] == "student", "")
    old = by_uid.reindex(agg["stored_uid"].fillna("\x00"))
    old.index = agg.index
    is_new = old["id"].isna()
    member_pairs = accepted[["userId", "org_sis_id", "stored_uid"]].drop_duplicates(
        ["userId", "org_sis_id"]
    )
    stored_pairs = pd.MultiIndex.from_arrays(
        [snap.memberships["user_id"].astype(object), snap.memberships["org_sis_id"].astype(object)]
    )
    pair_new = ~pd.MultiIndex.from_arrays(
        [
            member_pairs["stored_uid"].astype(object).fillna(""),
            member_pairs["org_sis_id"].astype(object),
        ]
    ).isin(stored_pairs)
    memberships_new = member_pairs.loc[pair_new, ["userId", "org_sis_id"]].rename(
        columns={"userId": "user_id"}
    )
    gains_school = isin(agg.index, memberships_new["user_id"])
    changed = (
        _differs(agg["first_name"], old["first_name"])
        | _differs(agg["last_name"], old["last_name"])
        | _differs(agg["email"].str.lower(), old["email"].str.lower())
        | _differs(agg["role"], old["role"])
        | _differs(agg["grade"], old["grade"])
        | _differs(agg["district_sis_id"], old["district_sis_id"], blank_keeps=True)
        | _differs(agg["state_sis_id"], old["state_sis_id"], blank_keeps=True)
        | ~old["active"].fillna(True).astype(bool)
        | (agg["stored_uid"] != agg.index.to_series())
        | gains_school
    ) & ~is_new
    for col in ("district_sis_id", "state_sis_id"):  # a blank optional value keeps what is stored
        agg[col] = agg[col].fillna(old[col]).fillna("")
    agg = agg.fillna({"grade": ""})
    people_new = agg[is_new].drop(columns="stored_uid").rename_axis("user_id").reset_index()
    people_changed = agg[changed].drop(columns="stored_uid").rename_axis("user_id").reset_index()
    people_changed.insert(0, "id", old.loc[changed, "id"].astype("int64").to_numpy())
    kind = _role_kind(agg["role"])
    _tally(counts, kind[is_new], "created")
    _tally(counts, kind[changed], "updated")
    _tally(counts, kind[~is_new & ~changed], "no_change")

    # --- classes -------------------------------------------------------------------------------
    class_rows = rows(chk.class_ok, "classId", *_CLASS_FIELDS.values())
    cagg = _first_filled(class_rows, class_rows["classId"], _CLASS_FIELDS)
    by_cid = snap.classes.set_index("class_id")
    cold = by_cid.reindex(cagg.index)
    c_new = cold["id"].isna()
    c_changed = (
        _differs(cagg["name"], cold["name"])
        | _differs(cagg["grade"], cold["grade"])
        | _differs(cagg["display_name"], cold["display_name"], blank_keeps=True)
        | _differs(cagg["subject"], cold["subject"], blank_keeps=True)
        | ~cold["active"].fillna(True).astype(bool)
    ) & ~c_new
    for col in ("display_name", "subject"):
        cagg[col] = cagg[col].fillna(cold[col]).fillna("")
    classes_new = cagg[c_new].rename_axis("class_id").reset_index()
    classes_changed = (
        cagg[c_changed].drop(columns="org_sis_id").rename_axis("class_id").reset_index()
    )
    classes_changed.insert(0, "id", cold.loc[c_changed, "id"].astype("int64").to_numpy())
    counts["class"]["created"] += int(c_new.sum())
    counts["class"]["updated"] += int(c_changed.sum())
    counts["class"]["no_change"] += int((~c_new & ~c_changed).sum())

    # --- enrollments ---------------------------------------------------------------------------
    enr = snap.enrollments
    new_uid_of = {v: k for k, v in chk.id_changes.items()}
    if new_uid_of and len(enr):
        enr = enr.assign(user_id=enr["user_id"].map(new_uid_of).fillna(enr["user_id"]))
    enr = enr.set_index(["class_id", "user_id"])
    erows = rows(chk.enrollment_ok, "classId", "userId", "primary")
    eagg = erows.groupby(["classId", "userId"], sort=False)["primary"].any().rename("is_primary")
    eold = enr.reindex(eagg.index)
    e_new = eold["id"].isna()
    e_changed = ~e_new & (
        ~eold["active"].fillna(True).astype(bool)
        | (eold["is_primary"].fillna(False).astype(bool) != eagg)
    )
    enrollments_new = (
        eagg[e_new].reset_index().rename(columns={"classId": "class_id", "userId": "user_id"})
    )
    enrollments_changed = pd.DataFrame(
        {
            "id": eold.loc[e_changed, "id"].astype("int64").to_numpy(),
            "is_primary": eagg[e_changed].to_numpy(),
        }
    )
    counts["enrollment"]["created"] += int(e_new.sum())
    counts["enrollment"]["updated"] += int(e_changed.sum())
    counts["enrollment"]["no_change"] += int((~e_new & ~e_changed).sum())

    # --- removals ------------------------------------------------------------------------------
    active_enr = enr[enr["active"].astype(bool)] if len(enr) else enr
    rc = chk.remove_ok & chk.is_remove_class
    du = chk.remove_ok & chk.is_deactivate
    re_ = chk.remove_ok & chk.is_remove_enrollment
    rc_ids = pd.Index(cid[rc].unique())
    rc_old = by_cid.reindex(rc_ids)
    rc_active = rc_old["active"].fillna(False).astype(bool)
    classes_removed = rc_old.loc[rc_active, "id"].astype("int64").tolist()
    counts["class"]["removed"] += int(rc_active.sum())
    counts["class"]["no_change"] += int((~rc_active).sum())
    du_ids = pd.Index(uid[du].unique())
    du_old = by_uid.reindex(du_ids)
    du_active = du_old["active"].fillna(False).astype(bool)
    people_removed = du_old.loc[du_active, "id"].astype("int64").tolist()
    _tally(counts, _role_kind(du_old.loc[du_active, "role"]), "removed")
    _tally(counts, _role_kind(du_old.loc[~du_active, "role"]), "no_change")
    gone = np.zeros(len(active_enr), dtype=bool)
    if len(active_enr):
        keys_c = active_enr.index.get_level_values(0)
        keys_u = active_enr.index.get_level_values(1)
        gone |= keys_c.isin(rc_ids[rc_active.to_numpy()])
        gone |= keys_u.isin(du_ids[du_active.to_numpy()])
        pairs = pd.MultiIndex.from_arrays([cid[re_], uid[re_]])
        direct = active_enr.index.isin(pairs)
        gone |= direct
    enrollments_removed = active_enr.loc[gone, "id"].astype("int64").tolist()
    counts["enrollment"]["removed"] += len(enrollments_removed)
    if re_.any():
        re_pairs = pd.MultiIndex.from_arrays([cid[re_], uid[re_]]).unique()
        counts["enrollment"]["no_change"] += int((~re_pairs.isin(active_enr.index)).sum())

    # --- errors --------------------------------------------------------------------------------
    applied_people = agg.index
    rejected = chk.as_add & ~chk.person_ok | (chk.is_deactivate & ~chk.remove_ok)
    # a rejected person counts under its valid role, else its stored one, else by its grade
    typed = t["role_l"][rejected]
    role = typed.where(
        typed.isin(d.ROLES), lookup(stored_uid[rejected], by_uid.index, by_uid["role"])
    )
    role = role.fillna(
        pd.Series(np.where(t["userGrade"][rejected] != "", "student", "teacher"), index=typed.index)
    )
    _count_errors(counts, uid, rejected, applied_people, _role_kind(role))
    applied_classes = cagg.index
    rejected_c = (chk.carries_class & ~chk.class_ok) | (chk.is_remove_class & ~chk.remove_ok)
    _count_errors(counts, cid, rejected_c, applied_classes, "class")
    enr_key = cid + "\x1f" + uid
    enr_key = enr_key.where((cid != "") & (uid != ""), "")
    applied_enr = enr_key[chk.enrollment_ok]  # the keys of eagg, without building them again
    rejected_e = (chk.as_add & (cid != "").to_numpy() & ~chk.enrollment_ok) | (
        chk.is_remove_enrollment & ~chk.remove_ok
    )
    _count_errors(counts, enr_key, rejected_e, applied_enr, "enrollment")

    # --- schools -------------------------------------------------------------------------------
    counts["school"]["no_change"] = int(org[chk.live & org.isin(snap.schools).to_numpy()].nunique())
    issues = chk.issues
    org_err = issues[issues["code"].isin(("ORG_REQUIRED", "ORG_NOT_FOUND", "ORG_EXCEL"))]
    counts["school"]["errors"] = int(
        org_err["value"][org_err["value"] != ""].nunique() + (org_err["value"] == "").sum()
    )

    class_issues = _class_warnings(
        t, chk, snap, enr, cagg.index, eagg, classes_removed, enrollments_removed, agg["role"]
    )
    shares = {
        "class": (len(classes_removed), int(snap.classes["active"].astype(bool).sum())),
        "people": (len(people_removed), int(snap.people["active"].astype(bool).sum())),
        "enrollment": (
            len(enrollments_removed),
            int(snap.enrollments["active"].astype(bool).sum()),
        ),
    }
    return UploadPlan(
        people_new,
        people_changed,
        memberships_new,
        classes_new,
        classes_changed,
        enrollments_new,
        enrollments_changed,
        classes_removed,
        enrollments_removed,
        people_removed,
        counts,
        class_issues,
        shares,
    )


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
    blank = k == ""
    frame = pd.DataFrame({"key": k, "entity": entities})
    # hash the few rejected keys and probe the many applied ones, not the other way round
    candidates = applied[isin(applied, k.unique())]
    named = frame[~blank & ~isin(k, candidates)].drop_duplicates("key")
    for ent, n in pd.concat([named["entity"], frame.loc[blank, "entity"]]).value_counts().items():
        counts[ent]["errors"] += int(n)


def _class_warnings(
    t, chk, snap, enr, touched, eagg, classes_removed, enrollments_removed, new_roles
) -> pd.DataFrame:
    """CLASS_NO_PRIMARY_TEACHER / CLASS_MULTIPLE_PRIMARY / CLASS_SIZE on each class's first row."""
    removed_cls = set(snap.classes.loc[snap.classes["id"].isin(classes_removed), "class_id"])
    touched = [c for c in touched if c not in removed_cls]
    if not touched:
        return pd.DataFrame(columns=ISSUE_COLUMNS)
    stored = enr[isin(enr.index.get_level_values(0), touched)]
    stored = stored[stored["active"].astype(bool) & ~stored["id"].isin(enrollments_removed)]
    final = pd.concat(
        [
            stored["is_primary"].astype(bool),
            eagg[isin(eagg.index.get_level_values(0), touched)],
        ]
    )
    final = final[~final.index.duplicated(keep="last")].reset_index()
    final.columns = ["class_id", "user_id", "is_primary"]
    roles = (
        snap.people.set_index("user_id")["role"] if len(snap.people) else pd.Series(dtype=object)
    )
    roles = pd.concat([roles, new_roles])
    roles = roles[~roles.index.duplicated(keep="last")]
    final["student"] = lookup(final["user_id"], roles.index, roles.to_numpy()).eq("student")
    per_class = final.groupby("class_id").agg(
        primaries=("is_primary", "sum"), students=("student", "sum")
    )
    per_class = per_class.reindex(touched, fill_value=0)
    rows_ok = np.flatnonzero(chk.class_ok)
    codes, class_ids = pd.factorize(t["classId"].take(rows_ok))
    first_row = pd.Series(first_positions(codes, rows_ok, len(class_ids)), index=class_ids)
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
