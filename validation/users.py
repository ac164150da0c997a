"""users.csv row rules (users-csv.md sections 3-5), vectorised over whole columns.

Input: the table (one column per dictionary header, trimmed text, "" for absent columns)
and a RosterSnapshot.  Output: every issue, plus what each row may apply (the cascade
of section 5).  Pure: no database, no Slack.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from validation import dictionary as d
from validation.issues import IssueLog, scope_of, severity_of
from validation.snapshot import RosterSnapshot
from validation.vector import conflicts, isin, lookup

_PERSON_ATTRS = {  # column -> derived column compared for USER_CONFLICT
    "userFirstName": "userFirstName",
    "userLastName": "userLastName",
    "userEmail": "email_l",
    "userRole": "role_l",
    "userGrade": "grade_n",
    "userDistrictId": "userDistrictId",
    "userStateId": "userStateId",
}


@dataclass
class UsersCheck:
    table: pd.DataFrame  # the input plus derived columns (action_u, role_l, email_l, grade_n, ...)
    issues: pd.DataFrame  # idx, column, code, value, detail
    live: np.ndarray  # rows that were checked (not ragged)
    is_add: np.ndarray  # add/update rows (blank action)
    as_add: np.ndarray  # rows read as add/update: blank or unknown action
    is_remove_class: np.ndarray
    is_remove_enrollment: np.ndarray
    is_deactivate: np.ndarray
    carries_class: np.ndarray  # add rows that name a class or give class details
    row_reject: np.ndarray  # the whole row is rejected
    person_ok: np.ndarray  # the row's person may be applied
    class_ok: np.ndarray  # the row's class may be applied (and the row has a classId)
    enrollment_ok: np.ndarray  # the row's enrollment may be applied
    remove_ok: np.ndarray  # a remove row that may be applied
    #: new userId -> stored userId, for the ID-change rule
    id_changes: dict[str, str]


def _per_distinct(values: pd.Series, fn) -> list[np.ndarray]:
    """Apply `fn` (value -> tuple) once per distinct value and spread the results back.

    Grade columns repeat a few dozen values a million times: one factorize and a numpy take
    per output instead of a Python call (or a dict map through Python objects) per row.
    """
    codes, uniques = pd.factorize(values)
    results = [fn(v) for v in uniques]
    columns = list(zip(*results)) if results else []
    out = []
    for col in columns:
        arr = np.asarray(col, dtype=object)
        out.append(arr.take(codes))
    return out


def _grade_code(value: str) -> tuple[str | None]:
    return (value if value in d.GRADES else d.GRADE_ALIASES.get(value.lower()),)


def _grade_norm(values: pd.Series) -> pd.Series:
    """Grade code for each value: itself, its alias target, or NA when not a grade."""
    if len(values) == 0:
        return pd.Series([], index=values.index, dtype=object)
    (norm,) = _per_distinct(values, _grade_code)
    return pd.Series(norm, index=values.index, dtype=object)


def _class_grade_parts(value: str) -> tuple[str, str | None, bool]:
    """One classGrade cell: (normalised list, first part that is not a grade, alias used?)."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    norm = [p if p in d.GRADES else d.GRADE_ALIASES.get(p.lower()) for p in parts]
    bad = next((p for p, n in zip(parts, norm) if n is None), None)
    changed = any(n is not None and n != p for p, n in zip(parts, norm))
    # a code listed twice is kept once: the list stays short (classes.grade is 128 characters)
    return ("" if bad is not None else ",".join(dict.fromkeys(norm))), bad, changed


def _class_grades(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Normalise comma lists of grades: (normalised text, first bad part, changed?)."""
    if len(values) == 0:
        empty = pd.Series([], index=values.index, dtype=object)
        return empty, empty, empty.astype(bool)
    norm, bad, changed = _per_distinct(values, _class_grade_parts)
    idx = values.index
    return (
        pd.Series(norm, index=idx, dtype=object),
        pd.Series(bad, index=idx, dtype=object),
        pd.Series(changed, index=idx).astype(bool),
    )


def _suggest_action(values: pd.Series) -> pd.Series:
    from rapidfuzz import process, utils  # only for a file with an invalid action

    choices = list(d.ACTIONS)
    hints = {}
    for v in values.unique():
        found = process.extractOne(v, choices, processor=utils.default_process, score_cutoff=60)
        hints[v] = f"; did you mean {found[0]}?" if found else ""
    return values.map(hints)


def _key_codes(keys: pd.Series) -> np.ndarray:
    codes, _ = pd.factorize(keys)
    codes[(keys == "").to_numpy()] = -1
    return codes


def _group_conflict(
    keys: pd.Series, values: pd.Series, eligible: np.ndarray, key_codes: np.ndarray | None = None
) -> np.ndarray:
    """Rows whose key has two or more different non-blank values among eligible rows."""
    return conflicts(_key_codes(keys) if key_codes is None else key_codes, values, eligible)


def check_users(
    table: pd.DataFrame, snap: RosterSnapshot, has_class_group: bool, skip: np.ndarray | None = None
) -> UsersCheck:
    """Run every users.csv rule.  `skip` marks rows that are not checked (ragged rows)."""
    t = table
    n = len(t)
    live = np.ones(n, dtype=bool) if skip is None else ~skip
    log = IssueLog()
    id_ok = lambda s: s.str.fullmatch(d.ID_PATTERN).fillna(False).to_numpy()  # noqa: E731
    excel = lambda s: s.str.fullmatch(d.EXCEL_PATTERN).fillna(False).to_numpy()  # noqa: E731
    blank = lambda s: (s == "").to_numpy()  # noqa: E731

    # --- action --------------------------------------------------------------------------------
    t["action_u"] = t["action"].str.upper()
    is_add = blank(t["action_u"]) & live
    is_rc = (t["action_u"] == "REMOVE-CLASS").to_numpy() & live
    is_re = (t["action_u"] == "REMOVE-ENROLLMENT").to_numpy() & live
    is_du = (t["action_u"] == "DEACTIVATE-USER").to_numpy() & live
    is_remove = is_rc | is_re | is_du
    bad_action = live & ~is_add & ~is_remove
    if bad_action.any():
        log.add(
            bad_action,
            "action",
            "ACTION_INVALID",
            t["action"],
            _suggest_action(t["action"].where(bad_action, "")),
        )
    as_add = is_add | bad_action  # an unknown action still gets its values checked

    # --- org_sis_id ----------------------------------------------------------------------------
    org = t["org_sis_id"]
    org_blank, org_excel = blank(org) & live, excel(org) & live
    org_known = org.isin(snap.schools).to_numpy()
    org_missing = live & ~org_blank & ~org_excel & ~org_known
    log.add(org_blank, "org_sis_id", "ORG_REQUIRED", org)
    log.add(org_excel, "org_sis_id", "ORG_EXCEL", org)
    if org_missing.any():
        padded = {s.lstrip("0"): s for s in snap.schools}

        def zeros_hint(idx: np.ndarray) -> list[str]:
            hints = (padded.get(v.lstrip("0")) for v in org.take(idx))
            return [
                f"; did you mean {h} (a spreadsheet may have dropped the leading zeros)?"
                if h
                else ""
                for h in hints
            ]

        log.add(org_missing, "org_sis_id", "ORG_NOT_FOUND", org, zeros_hint)
    org_valid = live & org_known

    # --- userId and secondary IDs --------------------------------------------------------------
    uid = t["userId"]
    reads_uid = as_add | is_re | is_du
    uid_blank, uid_excel = blank(uid) & reads_uid, excel(uid) & reads_uid
    uid_bad = reads_uid & ~uid_blank & ~uid_excel & ~id_ok(uid)
    uid_valid = reads_uid & ~uid_blank & ~uid_excel & ~uid_bad
    log.add(uid_blank, "userId", "USERID_REQUIRED", uid)
    log.add(uid_excel, "userId", "USERID_EXCEL", uid)
    log.add(uid_bad, "userId", "USERID_INVALID", uid, _id_problem(uid))
    for col in ("userDistrictId", "userStateId"):
        s = t[col]
        filled = as_add & ~blank(s)
        s_excel = filled & excel(s)
        log.add(s_excel, col, "USERID_EXCEL", s)
        log.add(filled & ~s_excel & ~id_ok(s), col, "USERID_INVALID", s, _id_problem(s))

    # --- names, email, role, grade -------------------------------------------------------------
    for col, code in (
        ("userFirstName", "FIRSTNAME_REQUIRED"),
        ("userLastName", "LASTNAME_REQUIRED"),
    ):
        s = t[col]
        log.add(as_add & blank(s), col, code, s)
        lengths = s.str.len()
        log.add(
            as_add & (lengths > d.NAME_MAX).to_numpy(), col, "NAME_TOO_LONG", s, lengths.astype(str)
        )
    email = t["userEmail"]
    t["email_l"] = email.str.lower()
    email_blank = as_add & blank(email)
    shape_ok = email.str.fullmatch(d.EMAIL_PATTERN).fillna(False).to_numpy()
    too_long = (email.str.len() > d.EMAIL_MAX).to_numpy()
    email_bad = as_add & ~email_blank & (~shape_ok | too_long)
    log.add(email_blank, "userEmail", "EMAIL_REQUIRED", email)
    log.add(
        email_bad,
        "userEmail",
        "EMAIL_INVALID",
        email,
        np.where(too_long, " (over 254 characters)", ""),
    )
    amplify = t["email_l"].str.contains("amplify.", regex=False).to_numpy(dtype=bool, copy=True)
    if amplify.any():  # few rows: the exact rule on those only
        amplify[amplify] = t["email_l"][amplify].str.contains(d.AMPLIFY_EMAIL_PATTERN).to_numpy()
    log.add(as_add & amplify, "userEmail", "EMAIL_AMPLIFY_DOMAIN", email)
    email_valid = as_add & ~email_blank & ~email_bad & ~amplify

    t["role_l"] = t["userRole"].str.lower()
    is_student = (t["role_l"] == "student").to_numpy()
    is_staff = t["role_l"].isin(d.STAFF_ROLES).to_numpy()
    log.add(as_add & ~is_student & ~is_staff, "userRole", "ROLE_INVALID", t["userRole"])
    if snap.third_party:
        log.add(
            as_add & is_student, "userRole", "ROLE_NOT_ALLOWED", t["userRole"], snap.third_party
        )

    grade = t["userGrade"]
    grade_n = _grade_norm(grade)
    grade_filled = ~blank(grade)
    log.add(as_add & is_student & ~grade_filled, "userGrade", "USERGRADE_REQUIRED", grade)
    log.add(as_add & is_staff & grade_filled, "userGrade", "USERGRADE_IGNORED", grade)
    judged = as_add & ~is_staff & grade_filled
    log.add(judged & grade_n.isna().to_numpy(), "userGrade", "USERGRADE_INVALID", grade)
    normalised = judged & grade_n.notna().to_numpy() & (grade_n != grade).fillna(False).to_numpy()
    log.add(normalised, "userGrade", "USERGRADE_NORMALIZED", grade, grade_n)
    t["grade_n"] = grade_n.where(~is_staff, "").fillna("")

    # --- class columns -------------------------------------------------------------------------
    cid = t["classId"]
    has_cid = ~blank(cid)
    cid_valid = np.zeros(n, dtype=bool)
    # a class removal needs a classId even when the file has no class columns at all
    log.add((is_rc | is_re) & ~has_cid, "action", "ACTION_NEEDS_CLASS", t["action"])
    t["class_grade_n"] = ""
    t["primary"] = False
    if has_class_group:
        details = ~(
            blank(t["className"])
            & blank(t["classGrade"])
            & blank(t["classDisplayName"])
            & blank(t["classSubject"])
        )
        log.add(as_add & ~has_cid & details, "classId", "CLASSID_REQUIRED", cid)
        reads_cid = as_add | is_rc | is_re
        c_excel = reads_cid & has_cid & excel(cid)
        c_bad = reads_cid & has_cid & ~c_excel & ~id_ok(cid)
        log.add(c_excel, "classId", "CLASSID_EXCEL", cid)
        log.add(c_bad, "classId", "CLASSID_INVALID", cid, _id_problem(cid))
        cid_valid = reads_cid & has_cid & ~c_excel & ~c_bad

        name = t["className"]
        add_class = as_add & has_cid
        log.add(add_class & blank(name), "className", "CLASSNAME_REQUIRED", name, cid)
        name_len = name.str.len()
        log.add(
            as_add & (name_len > d.CLASSNAME_MAX).to_numpy(),
            "className",
            "CLASSNAME_TOO_LONG",
            name,
            name_len.astype(str),
        )
        cgrade = t["classGrade"]
        log.add(add_class & blank(cgrade), "classGrade", "CLASSGRADE_REQUIRED", cgrade, cid)
        judged = as_add & ~blank(cgrade)
        if judged.any():
            norm, bad, changed = _class_grades(cgrade.where(judged, ""))
            # "," or " , " names no grade at all: not a grade code either
            bad_mask = judged & (bad.notna() | (norm == "")).to_numpy()

            def bad_part(idx: np.ndarray) -> list[str]:  # name it only in a list of grades
                return [
                    f" ('{b}')" if isinstance(b, str) and "," in v else ""
                    for v, b in zip(cgrade.take(idx), bad.take(idx))
                ]

            log.add(bad_mask, "classGrade", "CLASSGRADE_INVALID", cgrade, bad_part)
            log.add(
                judged & ~bad_mask & changed.to_numpy(),
                "classGrade",
                "CLASSGRADE_NORMALIZED",
                cgrade,
                norm,
            )
            t["class_grade_n"] = norm.where(~bad_mask, "")

        pt = t["primary_teacher"]
        pt_l = pt.str.lower()
        pt_true = pt_l.isin(d.TRUE_VALUES).to_numpy()
        pt_bad = as_add & ~blank(pt) & ~pt_true & ~pt_l.isin(d.FALSE_VALUES).to_numpy()
        log.add(pt_bad, "primary_teacher", "PRIMARY_TEACHER_INVALID", pt)
        log.add(as_add & pt_true & is_student, "primary_teacher", "PRIMARY_TEACHER_NOT_STAFF", pt)
        log.add(as_add & pt_true & ~has_cid, "primary_teacher", "PRIMARY_TEACHER_NO_CLASS", pt)
        t["primary"] = pt_true & is_staff

    # --- rows that disagree with each other ----------------------------------------------------
    person_rows = as_add & uid_valid
    uid_codes = _key_codes(uid)
    for col, derived in _PERSON_ATTRS.items():
        values = t[derived]
        if derived == "grade_n":
            values = values.where(~is_staff, "")
        conflict = _group_conflict(uid, values, person_rows, uid_codes)
        log.add(conflict, col, "USER_CONFLICT", t[col], uid)
    dup_rows = email_valid & uid_valid
    dup = _group_conflict(t["email_l"], uid, dup_rows)
    if dup.any():
        others = uid[dup].groupby(t["email_l"][dup]).agg(lambda s: ", ".join(sorted(set(s))[:3]))
        log.add(dup, "userEmail", "EMAIL_DUPLICATE", email, t["email_l"].map(others))
    if has_class_group:
        class_rows = as_add & cid_valid
        cid_codes = _key_codes(cid)
        log.add(
            _group_conflict(cid, t["className"], class_rows, cid_codes),
            "className",
            "CLASSNAME_CONFLICT",
            t["className"],
            cid,
        )
        log.add(
            _group_conflict(cid, t["class_grade_n"], class_rows, cid_codes),
            "classGrade",
            "CLASSGRADE_CONFLICT",
            t["classGrade"],
            cid,
        )
        org_rows = cid_valid & org_valid
        split = _group_conflict(cid, org, org_rows, cid_codes)
        log.add(
            split,
            "org_sis_id",
            "ORG_CLASS_MISMATCH",
            org,
            lambda idx: [
                f"Rows for class '{c}' give more than one org_sis_id" for c in cid.take(idx)
            ],
        )
        stored_org = lookup(cid, snap.classes["class_id"], snap.classes["org_sis_id"])
        elsewhere = (
            org_rows
            & ~split
            & stored_org.notna().to_numpy()
            & (stored_org != org).fillna(False).to_numpy()
        )
        log.add(
            elsewhere,
            "org_sis_id",
            "ORG_CLASS_MISMATCH",
            org,
            lambda idx: [
                f"Class '{c}' belongs to school '{o}'"
                for c, o in zip(cid.take(idx), stored_org.take(idx))
            ],
        )

    # --- against the stored roster -------------------------------------------------------------
    people = snap.people
    known = isin(uid, people["user_id"])
    owner = lookup(t["email_l"], people["email"].str.lower(), people["user_id"])
    foreign = isin(t["email_l"], snap.foreign_emails)
    checked = email_valid & uid_valid
    log.add(checked & foreign, "userEmail", "EMAIL_TAKEN", email, " in another district")
    other_owner = (
        checked & ~foreign & owner.notna().to_numpy() & (owner != uid).fillna(False).to_numpy()
    )
    file_ids = uid[uid_valid]
    moves = other_owner & ~known & ~isin(owner, file_ids) & ~dup
    id_changes = dict(zip(uid[moves], owner[moves]))
    log.add(moves, "userId", "USERID_CHANGED", uid, owner)
    log.add(
        other_owner & ~moves,
        "userEmail",
        "EMAIL_TAKEN",
        email,
        lambda idx: [f" (userId {o})" for o in owner.take(idx)],
    )

    stored_uid = uid.where(known, uid.map(id_changes) if id_changes else np.nan)
    stored_role = lookup(stored_uid, people["user_id"], people["role"])
    was_student = (stored_role == "student").fillna(False).to_numpy()
    was_staff = stored_role.isin(d.STAFF_ROLES).to_numpy()
    flip = as_add & uid_valid & ((was_student & is_staff) | (was_staff & is_student))
    log.add(flip, "userId", "USERID_ROLE_CHANGE", uid, np.where(was_student, "a student", "staff"))

    if has_class_group:
        stored_classes = set(snap.classes["class_id"])
        log.add(
            (is_rc | is_re) & cid_valid & ~isin(cid, stored_classes),
            "classId",
            "ACTION_CLASS_NOT_FOUND",
            cid,
        )
    log.add((is_re | is_du) & uid_valid & ~known, "userId", "ACTION_USER_NOT_FOUND", uid)
    if has_class_group and is_re.any():
        active = snap.enrollments[snap.enrollments["active"].astype(bool)]
        pairs = set(zip(active["class_id"], active["user_id"]))
        found = is_re & cid_valid & isin(cid, stored_classes) & uid_valid & known
        at = np.flatnonzero(found)
        enrolled = np.fromiter(
            (p in pairs for p in zip(cid.iloc[at], uid.iloc[at])), dtype=bool, count=len(at)
        )
        missing = np.zeros(n, dtype=bool)
        missing[at[~enrolled]] = True
        log.add(missing, "userId", "ACTION_ENROLLMENT_NOT_FOUND", uid)

    # --- the cascade of section 5 --------------------------------------------------------------
    issues = log.frame()
    errors = issues[severity_of(issues["code"]) == "error"]
    scope = scope_of(errors["code"])

    def hit(*scopes: str) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        mask[errors["idx"][scope.isin(scopes)].to_numpy()] = True
        return mask

    any_error = np.zeros(n, dtype=bool)
    any_error[errors["idx"].to_numpy()] = True
    row_reject = hit("row", "failed") | ~live | (is_remove & any_error)
    person_ok = is_add & ~row_reject & ~hit("person")
    class_ok = is_add & has_cid & ~row_reject & ~hit("class")
    enrollment_ok = person_ok & class_ok & ~hit("enrollment")
    remove_ok = is_remove & ~row_reject
    carries_class = as_add & has_cid
    if has_class_group:
        carries_class |= as_add & details
    return UsersCheck(
        t,
        issues,
        live,
        is_add,
        as_add,
        is_rc,
        is_re,
        is_du,
        carries_class,
        row_reject,
        person_ok,
        class_ok,
        enrollment_ok,
        remove_ok,
        id_changes,
    )


def _id_problem(values: pd.Series):
    """What is wrong with an invalid ID, worked out for the failing rows only."""

    def detail(idx: np.ndarray) -> np.ndarray:
        return np.where(
            values.take(idx).str.len().to_numpy() > d.ID_MAX,
            f"is longer than {d.ID_MAX} characters",
            "has characters other than letters, digits, '-', '_' and '.'",
        )

    return detail
