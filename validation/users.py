"""users.csv row rules (users-csv.md sections 3-5), vectorised over whole columns.

Input: the table (one column per dictionary header, trimmed text, "" for absent columns)
and a RosterSnapshot.  The columns are normalised once (`UsersDerived`); each section of
rules is one function that reads them and adds its issues to the `IssueLog`.  Output:
every issue, plus what each row may apply (the cascade of section 5).  Pure: no database,
no Slack.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from validation import dictionary as d
from validation.catalog import with_values
from validation.issues import IssueLog, scope_of, severity_of
from validation.snapshot import RosterSnapshot
from validation.templates import example_people
from validation.vector import (
    Distinct,
    conflicts,
    digits,
    isin,
    lookup,
    same_or,
    take_rows,
    values_per_key,
    zeros_matches,
)


@dataclass(frozen=True)
class UsersDerived:
    """The users.csv columns normalised once, aligned with the table's rows.

    Every section of rules and the plan read these instead of normalising again.
    """

    live: np.ndarray  # rows that are checked (not ragged)
    action: pd.Series  # upper-cased action
    is_add: np.ndarray  # add/update rows (blank action)
    is_remove_class: np.ndarray
    is_remove_enrollment: np.ndarray
    is_deactivate: np.ndarray
    bad_action: np.ndarray  # an action that is none of the known ones
    as_add: np.ndarray  # rows read as add/update: blank or unknown action
    email: pd.Series  # lower-cased userEmail
    role: pd.Series  # lower-cased userRole
    is_student: np.ndarray
    is_staff: np.ndarray
    grade_code: pd.Series  # userGrade as a grade code (alias resolved), NA when not a grade
    grade: pd.Series  # the grade to store: the code, "" for staff or when not a grade
    user_key: np.ndarray  # userId factorised (-1 = blank)
    has_class_group: bool  # the file has class columns
    has_class_id: np.ndarray
    class_details: np.ndarray  # className, classGrade, classDisplayName or classSubject given
    class_key: np.ndarray | None  # classId factorised (-1 = blank), with class columns only
    class_grade_judged: np.ndarray  # read-as-add rows with a classGrade
    class_grade_invalid: np.ndarray  # judged rows whose classGrade is not a list of grades
    class_grade_changed: np.ndarray  # judged rows whose classGrade used an alias
    class_grade_bad_part: pd.Series | None  # the first part that is not a grade
    class_grade: pd.Series  # the normalised list to store ("" when blank or invalid)
    primary_true: np.ndarray  # primary_teacher says true
    primary_false: np.ndarray  # primary_teacher says false
    primary: np.ndarray  # a staff row that is its class's primary teacher
    #: column name -> its distinct values (found once, by `distinct()`); LOWER_EMAILS: the
    #: lower-cased emails'
    columns: dict[str, Distinct] = field(default_factory=dict, repr=False)
    #: userId and classId -> their distinct values, which user_key and class_key index
    #: (kept for the plan when `columns` is let go; a small file's check has none)
    key_values: dict[str, pd.Series] = field(default_factory=dict, repr=False)

    @property
    def is_remove(self) -> np.ndarray:
        return self.is_remove_class | self.is_remove_enrollment | self.is_deactivate


@dataclass
class UsersCheck:
    #: the input table
    table: pd.DataFrame
    derived: UsersDerived
    issues: pd.DataFrame  # idx, column, code, value, detail
    carries_class: np.ndarray  # add rows that name a class or give class details
    row_reject: np.ndarray  # the whole row is rejected
    person_ok: np.ndarray  # the row's person may be applied
    class_ok: np.ndarray  # the row's class may be applied (and the row has a classId)
    enrollment_ok: np.ndarray  # the row's enrollment may be applied
    remove_ok: np.ndarray  # a remove row that may be applied
    #: new userId -> stored userId, for the ID-change rule
    id_changes: dict[str, str]

    @property
    def accepted_people(self) -> pd.DataFrame:
        """userId and lower-cased role (column "role_l") of every row whose person applies."""
        ok = self.person_ok
        return pd.DataFrame({"userId": self.table["userId"][ok], "role_l": self.derived.role[ok]})


@dataclass(frozen=True)
class _Rules:
    """What every section of rules reads: the table, its derived columns, the snapshot, and
    the log it adds its issues to."""

    t: pd.DataFrame
    v: UsersDerived
    snap: RosterSnapshot
    log: IssueLog

    @property
    def n(self) -> int:
        return len(self.t)

    def distinct(self, name: str) -> Distinct:
        """The distinct values of a column of the table (found once per check)."""
        return _distinct(self.v.columns, self.t, name)

    def by_value(self, name: str, rule, missing=False) -> np.ndarray:
        """A rule that depends on a column's value alone, run once per distinct value."""
        return self.distinct(name).apply(rule, missing)


def _distinct(cache: dict[str, Distinct], table: pd.DataFrame, name: str) -> Distinct:
    found = cache.get(name)
    if found is None:
        found = cache[name] = Distinct(table[name])
    return found


def _id_ok(s: pd.Series) -> np.ndarray:
    return s.str.fullmatch(d.ID_PATTERN).fillna(False).to_numpy()


#: what a spreadsheet makes of an ID: scientific notation, a date, an ISO date (one pass)
_DAMAGE_PATTERN = f"(?:{d.EXCEL_PATTERN}|{d.DATE_ID_PATTERN}|{d.ISO_DATE_ID_PATTERN})"
_MONTH_NUMBER = {m: i for i, m in enumerate(d.MONTHS, start=1)}


def _excel(s: pd.Series, stored=None) -> np.ndarray:
    """IDs a spreadsheet damaged (users-csv.md section 4): scientific notation or a date.

    An ISO date (`2024-08-03`) is a valid ID, so it counts only for a key column whose stored
    IDs are given (`stored`) and only when the district does not have that ID.
    """
    hit = s.str.fullmatch(_DAMAGE_PATTERN).fillna(False).to_numpy(dtype=bool, copy=True)
    if hit.any():  # few rows: sort out the ISO dates on those only
        at = np.flatnonzero(hit)
        values = s.take(at)
        iso = values.str.fullmatch(d.ISO_DATE_ID_PATTERN).fillna(False).to_numpy()
        if iso.any():
            keep = ~iso if stored is None else ~(iso & isin(values, stored))
            hit[at[~keep]] = False
    return hit


def _probable(value: str) -> str:
    """What a date-shaped ID probably was before a spreadsheet read it as a date ("" if unsure).

    `3-Aug`, `Aug-03`, `03-Aug-24` and `8/3/2024` all come from `8-3` (month-day, as a US
    spreadsheet reads it); `2024-08-03` too.
    """
    parts = value.replace("/", "-").split("-")
    lower = [p.lower() for p in parts]
    if "/" in value and len(parts) == 3:
        month, day = parts[0], parts[1]
    elif len(parts) == 3 and len(parts[0]) == 4 and parts[0].isdigit():
        month, day = parts[1], parts[2]
    elif lower and lower[0] in _MONTH_NUMBER:
        month, day = str(_MONTH_NUMBER[lower[0]]), parts[1]
    elif len(lower) >= 2 and lower[1] in _MONTH_NUMBER:
        month, day = str(_MONTH_NUMBER[lower[1]]), parts[0]
    else:
        return ""
    if not (month.isdigit() and day.isdigit()):
        return ""
    return f"{int(month)}-{int(day)}"


def _excel_detail(values: pd.Series):
    """What the spreadsheet did, per failing row: scientific notation, or a date and what the
    ID probably was."""

    def detail(idx: np.ndarray) -> list[str]:
        out = []
        for value in values.take(idx):
            if re.fullmatch(d.EXCEL_PATTERN, value):
                out.append("into scientific notation, so the digits of the real ID are lost")
                continue
            was = _probable(value)
            out.append(f"into a date; it was probably '{was}'" if was else "into a date")
        return out

    return detail


def _blank(s: pd.Series) -> np.ndarray:
    return (s == "").to_numpy()


def _grade_code(value: str) -> tuple[str | None]:
    return (value if value in d.GRADES else d.GRADE_ALIASES.get(value.lower()),)


def _class_grade_parts(value: str) -> tuple[str, str | None, bool]:
    """One classGrade cell: (normalised list, first part that is not a grade, alias used?)."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    norm = [p if p in d.GRADES else d.GRADE_ALIASES.get(p.lower()) for p in parts]
    bad = next((p for p, n in zip(parts, norm) if n is None), None)
    changed = any(n is not None and n != p for p, n in zip(parts, norm))
    # a code listed twice is kept once: the list stays short (classes.grade is 128 characters)
    return ("" if bad is not None else ",".join(dict.fromkeys(norm))), bad, changed


#: an unknown action that asks to take something away (DELETE, REMOVE, DROP, ...): such a row is
#: never read as an add row
_REMOVE_LIKE = r".*(?:DEL|REMOV|DEACT|INACT|DROP|WITHDR|UNENROL|DISABL|ARCHIV|TERMIN|EXIT).*"
_ADD_LIKE = frozenset({"ADD", "A", "NEW", "CREATE", "INSERT", "UPDATE", "U", "UPSERT", "CHANGE"})


def _closest_action(value: str) -> str:
    """The action an unknown value most probably meant: "" for an add or update, "?" when
    nothing is close."""
    from rapidfuzz import process, utils  # only for a file with an invalid action

    upper = value.upper()
    if re.fullmatch(_REMOVE_LIKE, upper):
        if "CLAS" in upper:
            return "REMOVE-CLASS"
        if "ENROL" in upper:
            return "REMOVE-ENROLLMENT"
        return "DEACTIVATE-USER"  # delete / remove / drop a person: deactivate (history is kept)
    if upper in _ADD_LIKE:
        return ""
    found = process.extractOne(
        value, list(d.ACTIONS), processor=utils.default_process, score_cutoff=80
    )
    return found[0] if found else "?"


def _suggest_action(values: pd.Series) -> pd.Series:
    hints = {}
    for v in values.unique():
        closest = _closest_action(v)
        hints[v] = (
            "; leave it blank to add or update"
            if closest == ""
            else ""
            if closest == "?"
            else f"; did you mean {closest}?"
        )
    return values.map(hints)


#: the columns with the most distinct values (a userId is on ~3 rows): hashing each of them
#: is the largest single cost of the rules (~0.1 s per 1,000,000 rows)
_WIDE_COLUMNS = ("userId", "userEmail", "userDistrictId", "userStateId", "classId")


class _DistinctAhead:
    """The distinct values of the widest columns, found in two threads while `derive` works
    on the narrow ones: Arrow's hashing lets go of the GIL, so on a machine with two cores
    the four ~320,000-valued columns of a 1,000,000-row file cost little of the check's time.
    Small files: nothing ahead (each column is found when first asked for)."""

    def __init__(self, table: pd.DataFrame) -> None:
        self._names = [c for c in _WIDE_COLUMNS if c in table.columns]
        self._pool = None
        if len(table) >= _AHEAD_ROWS and (os.cpu_count() or 1) >= 2:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="distinct")
            self._found = [self._pool.submit(Distinct, table[name]) for name in self._names]
            self._pool.shutdown(wait=False)

    def result(self) -> dict[str, Distinct]:
        if self._pool is None:
            return {}
        return {name: f.result() for name, f in zip(self._names, self._found)}


#: below this many rows a thread costs more than it saves
_AHEAD_ROWS = 50_000

#: UsersDerived.columns' entry for the distinct lower-cased emails (derive works them out)
LOWER_EMAILS = "userEmail, lower-cased"


def _cased(
    columns: dict[str, Distinct], table: pd.DataFrame, name: str, case
) -> tuple[pd.Series, Distinct]:
    """`case(column)` (upper or lower case) and its distinct values.  The column itself when
    `case` changes none of its distinct values (it is then shared, not copied): decided on
    the distinct values, so a column already in the right case is never changed cell by cell."""
    distinct = _distinct(columns, table, name)
    found = distinct.mapped(case)
    if found.values is distinct.values:  # mapped: the same values when case changed none
        return table[name], found
    return same_or(table[name], case(table[name])), found


def _key_codes(keys: pd.Series) -> np.ndarray:
    return Distinct(keys).key_codes()


def derive(
    table: pd.DataFrame, has_class_group: bool, skip: np.ndarray | None = None
) -> UsersDerived:
    """Normalise the columns every rule and the plan read, once."""
    t = table
    n = len(t)
    live = np.ones(n, dtype=bool) if skip is None else ~skip
    ahead = _DistinctAhead(t)  # the wide columns hashed while the narrow ones are worked on
    columns: dict[str, Distinct] = {}
    action, _ = _cased(columns, t, "action", lambda values: values.str.upper())
    is_add = _blank(action) & live
    is_rc = (action == "REMOVE-CLASS").to_numpy() & live
    is_re = (action == "REMOVE-ENROLLMENT").to_numpy() & live
    is_du = (action == "DEACTIVATE-USER").to_numpy() & live
    bad_action = live & ~is_add & ~(is_rc | is_re | is_du)
    # an unknown action still gets its values checked, unless it asks to remove something: a
    # DELETE row carries no names or emails, and reading it as an add row would bury the one
    # real problem under five "required" errors
    remove_like = np.zeros(n, dtype=bool)
    if bad_action.any():
        at = np.flatnonzero(bad_action)
        remove_like[at] = action.take(at).str.fullmatch(_REMOVE_LIKE).fillna(False).to_numpy()
    as_add = is_add | (bad_action & ~remove_like)

    role, _ = _cased(columns, t, "userRole", lambda values: values.str.lower())
    is_student = (role == "student").to_numpy()
    is_staff = role.isin(d.STAFF_ROLES).to_numpy()
    grades = _distinct(columns, t, "userGrade")
    codes = np.asarray([_grade_code(g)[0] for g in grades.values], dtype=object)
    grade_code = pd.Series(grades.rows(codes, None), index=t.index, dtype=object)
    # one shared Python string per grade code, not one per row
    stored_grade = grades.rows(np.asarray([c or "" for c in codes], dtype=object), "")
    stored_grade[is_staff] = ""

    no_rows = np.zeros(n, dtype=bool)
    class_grade = pd.Series("", index=t.index, dtype=object)
    columns.update(ahead.result())
    judged, invalid, changed, bad_part = no_rows, no_rows, no_rows, None
    details, primary_true, primary_false, class_key = no_rows, no_rows, no_rows, None
    if has_class_group:
        details = ~(
            _blank(t["className"])
            & _blank(t["classGrade"])
            & _blank(t["classDisplayName"])
            & _blank(t["classSubject"])
        )
        cgrade = t["classGrade"]
        judged = as_add & ~_blank(cgrade)
        if judged.any():
            cgrades = _distinct(columns, t, "classGrade")
            parts = [_class_grade_parts(g) for g in cgrades.values]
            norm = cgrades.rows(np.asarray([p[0] for p in parts], dtype=object), "")
            bad = cgrades.rows(np.asarray([p[1] for p in parts], dtype=object), None)
            bad[~judged] = None
            # "," or " , " names no grade at all: not a grade code either
            invalid = judged & (pd.notna(bad) | (norm == ""))
            changed = judged & cgrades.rows(np.asarray([p[2] for p in parts], dtype=bool))
            bad_part = pd.Series(bad, index=t.index, dtype=object)
            class_grade = pd.Series(
                np.where(judged & ~invalid, norm, ""), index=t.index, dtype=object
            )
        pt = _distinct(columns, t, "primary_teacher")
        primary_true = pt.apply(lambda values: values.str.lower().isin(d.TRUE_VALUES).to_numpy())
        primary_false = pt.apply(lambda values: values.str.lower().isin(d.FALSE_VALUES).to_numpy())
        class_key = _distinct(columns, t, "classId").key_codes()
    email, columns[LOWER_EMAILS] = _cased(columns, t, "userEmail", lambda v: v.str.lower())
    return UsersDerived(
        live=live,
        action=action,
        is_add=is_add,
        is_remove_class=is_rc,
        is_remove_enrollment=is_re,
        is_deactivate=is_du,
        bad_action=bad_action,
        as_add=as_add,
        email=email,
        role=role,
        is_student=is_student,
        is_staff=is_staff,
        grade_code=grade_code,
        grade=pd.Series(stored_grade, index=t.index, dtype=object),
        user_key=_distinct(columns, t, "userId").key_codes(),
        has_class_group=has_class_group,
        has_class_id=~_blank(t["classId"]),
        class_details=details,
        class_key=class_key,
        class_grade_judged=judged,
        class_grade_invalid=invalid,
        class_grade_changed=changed,
        class_grade_bad_part=bad_part,
        class_grade=class_grade,
        primary_true=primary_true,
        primary_false=primary_false,
        primary=primary_true & is_staff,
        columns=columns,
    )


def check_users(
    table: pd.DataFrame, snap: RosterSnapshot, has_class_group: bool, skip: np.ndarray | None = None
) -> UsersCheck:
    """Run every users.csv rule.  `skip` marks rows that are not checked (ragged rows)."""
    examples = _template_rows(table, skip)
    if examples.any():  # an example row is not checked either: it is refused as a whole
        skip = examples if skip is None else skip | examples
    v = derive(table, has_class_group, skip)
    r = _Rules(table, v, snap, IssueLog())
    r.log.add(
        examples,
        "userId",
        "TEMPLATE_EXAMPLE_ROW",
        table["userId"],
        lambda idx: [
            f"userId '{u}', {e}"
            for u, e in zip(table["userId"].take(idx), table["userEmail"].take(idx))
        ],
    )
    _check_action(r)
    org_valid = _check_org(r)
    uid_valid = _check_ids(r)
    _check_names(r)
    email_valid = _check_email(r)
    _check_role_grade(r)
    cid_valid = _check_class(r)
    dup = _check_conflicts(r, uid_valid, email_valid, cid_valid, org_valid)
    id_changes = _check_against_store(r, uid_valid, email_valid, cid_valid, dup)
    return _cascade(r, id_changes)


def _template_rows(table: pd.DataFrame, skip: np.ndarray | None) -> np.ndarray:
    """Rows that are the users template's example rows (the same userId and email)."""
    examples = example_people()
    uid = table["userId"]
    hit = isin(uid, sorted({u for u, _ in examples}))
    if skip is not None:
        hit &= ~skip
    if hit.any():
        at = np.flatnonzero(hit)
        pairs = zip(uid.take(at), table["userEmail"].take(at).str.lower())
        hit[at] = np.fromiter((p in examples for p in pairs), dtype=bool, count=len(at))
    return hit


def _check_action(r: _Rules) -> None:
    t, v = r.t, r.v
    if v.bad_action.any():
        r.log.add(
            v.bad_action,
            "action",
            "ACTION_INVALID",
            t["action"],
            _suggest_action(t["action"].where(v.bad_action, "")),
        )


def _check_org(r: _Rules) -> np.ndarray:
    """org_sis_id: given, not mangled by a spreadsheet, a known school.  Returns the valid rows."""
    org, live, snap = r.t["org_sis_id"], r.v.live, r.snap
    org_blank = _blank(org) & live
    org_excel = r.by_value("org_sis_id", lambda values: _excel(values, snap.schools)) & live
    org_known = r.by_value("org_sis_id", lambda values: values.isin(snap.schools).to_numpy())
    org_missing = live & ~org_blank & ~org_excel & ~org_known
    r.log.add(org_blank, "org_sis_id", "ORG_REQUIRED", org)
    r.log.add(org_excel, "org_sis_id", "ORG_EXCEL", org, _excel_detail(org))
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

        r.log.add(org_missing, "org_sis_id", "ORG_NOT_FOUND", org, zeros_hint)
    return live & org_known


def _check_ids(r: _Rules) -> np.ndarray:
    """userId and the secondary IDs.  Returns the rows with a valid userId."""
    t, v, log = r.t, r.v, r.log
    uid = t["userId"]
    reads_uid = v.as_add | v.is_remove_enrollment | v.is_deactivate
    uid_blank = _blank(uid) & reads_uid
    stored = r.snap.people["user_id"]
    uid_excel = r.by_value("userId", lambda values: _excel(values, stored)) & reads_uid
    uid_bad = reads_uid & ~uid_blank & ~uid_excel & ~r.by_value("userId", _id_ok)
    log.add(uid_blank, "userId", "USERID_REQUIRED", uid)
    log.add(uid_excel, "userId", "USERID_EXCEL", uid, _excel_detail(uid))
    log.add(uid_bad, "userId", "USERID_INVALID", uid, _id_problem(uid))
    for col in ("userDistrictId", "userStateId"):
        s = t[col]
        filled = v.as_add & ~_blank(s)
        if not filled.any():
            continue
        s_excel = filled & r.by_value(col, _excel)
        log.add(s_excel, col, "USERID_EXCEL", s, _excel_detail(s))
        s_bad = filled & ~s_excel & ~r.by_value(col, _id_ok)
        log.add(s_bad, col, "USERID_INVALID", s, _id_problem(s))
    return reads_uid & ~uid_blank & ~uid_excel & ~uid_bad


def _check_names(r: _Rules) -> None:
    for col, code in (
        ("userFirstName", "FIRSTNAME_REQUIRED"),
        ("userLastName", "LASTNAME_REQUIRED"),
    ):
        s = r.t[col]
        r.log.add(r.v.as_add & _blank(s), col, code, s)
        lengths = s.str.len()
        r.log.add(
            r.v.as_add & (lengths > d.NAME_MAX).to_numpy(),
            col,
            "NAME_TOO_LONG",
            s,
            lengths.astype(str),
        )


def _check_email(r: _Rules) -> np.ndarray:
    """userEmail: given, well formed, not an Amplify address.  Returns the valid rows."""
    email, as_add, log = r.t["userEmail"], r.v.as_add, r.log
    email_blank = as_add & _blank(email)
    shape_ok = r.by_value(
        "userEmail", lambda values: values.str.fullmatch(d.EMAIL_PATTERN).fillna(False).to_numpy()
    )
    too_long = r.by_value("userEmail", lambda values: (values.str.len() > d.EMAIL_MAX).to_numpy())
    email_bad = as_add & ~email_blank & (~shape_ok | too_long)
    log.add(email_blank, "userEmail", "EMAIL_REQUIRED", email)
    log.add(
        email_bad,
        "userEmail",
        "EMAIL_INVALID",
        email,
        lambda idx: np.where(too_long[idx], " (over 254 characters)", ""),
    )
    amplify = r.by_value("userEmail", lambda values: _amplify(values.str.lower()))
    log.add(as_add & amplify, "userEmail", "EMAIL_AMPLIFY_DOMAIN", email)
    return as_add & ~email_blank & ~email_bad & ~amplify


def _amplify(lower: pd.Series) -> np.ndarray:
    """EMAIL_AMPLIFY_DOMAIN on lower-cased emails."""
    amplify = lower.str.contains("amplify.", regex=False).to_numpy(dtype=bool, copy=True)
    if amplify.any():  # few values: the exact rule on those only
        amplify[amplify] = lower[amplify].str.contains(d.AMPLIFY_EMAIL_PATTERN).to_numpy()
    return amplify


def _check_role_grade(r: _Rules) -> None:
    t, v, log = r.t, r.v, r.log
    as_add, is_student, is_staff = v.as_add, v.is_student, v.is_staff
    log.add(as_add & ~is_student & ~is_staff, "userRole", "ROLE_INVALID", t["userRole"])
    if r.snap.third_party:
        log.add(
            as_add & is_student, "userRole", "ROLE_NOT_ALLOWED", t["userRole"], r.snap.third_party
        )
    grade, grade_n = t["userGrade"], v.grade_code
    grade_filled = ~_blank(grade)
    log.add(as_add & is_student & ~grade_filled, "userGrade", "USERGRADE_REQUIRED", grade)
    log.add(as_add & is_staff & grade_filled, "userGrade", "USERGRADE_IGNORED", grade)
    judged = as_add & ~is_staff & grade_filled
    codes = r.by_value("userGrade", lambda values: [_grade_code(g)[0] for g in values], None)
    log.add(judged & pd.isna(codes), "userGrade", "USERGRADE_INVALID", grade)
    changed = r.by_value(
        "userGrade", lambda values: [_grade_code(g)[0] not in (None, g) for g in values]
    )
    log.add(judged & changed, "userGrade", "USERGRADE_NORMALIZED", grade, grade_n)


def _check_class(r: _Rules) -> np.ndarray:
    """The class columns.  Returns the rows with a valid classId."""
    t, v, log = r.t, r.v, r.log
    cid = t["classId"]
    has_cid = v.has_class_id
    # a class removal needs a classId even when the file has no class columns at all
    log.add(
        (v.is_remove_class | v.is_remove_enrollment) & ~has_cid,
        "action",
        "ACTION_NEEDS_CLASS",
        t["action"],
    )
    if not v.has_class_group:
        return np.zeros(r.n, dtype=bool)
    as_add = v.as_add
    log.add(as_add & ~has_cid & v.class_details, "classId", "CLASSID_REQUIRED", cid)
    reads_cid = as_add | v.is_remove_class | v.is_remove_enrollment
    stored = r.snap.classes["class_id"]
    c_excel = reads_cid & has_cid & r.by_value("classId", lambda values: _excel(values, stored))
    c_bad = reads_cid & has_cid & ~c_excel & ~r.by_value("classId", _id_ok)
    log.add(c_excel, "classId", "CLASSID_EXCEL", cid, _excel_detail(cid))
    log.add(c_bad, "classId", "CLASSID_INVALID", cid, _id_problem(cid))
    _check_class_name_grade(r)
    _check_primary_teacher(r)
    return reads_cid & has_cid & ~c_excel & ~c_bad


def _check_class_name_grade(r: _Rules) -> None:
    t, v, log = r.t, r.v, r.log
    cid, name, cgrade = t["classId"], t["className"], t["classGrade"]
    add_class = v.as_add & v.has_class_id
    log.add(add_class & _blank(name), "className", "CLASSNAME_REQUIRED", name, cid)
    name_len = name.str.len()
    log.add(
        v.as_add & (name_len > d.CLASSNAME_MAX).to_numpy(),
        "className",
        "CLASSNAME_TOO_LONG",
        name,
        name_len.astype(str),
    )
    log.add(add_class & _blank(cgrade), "classGrade", "CLASSGRADE_REQUIRED", cgrade, cid)
    bad = v.class_grade_bad_part

    def bad_part(idx: np.ndarray) -> list[str]:  # name it only in a list of grades
        return [
            f" ('{b}')" if isinstance(b, str) and "," in c else ""
            for c, b in zip(cgrade.take(idx), bad.take(idx))
        ]

    invalid = v.class_grade_invalid
    log.add(invalid, "classGrade", "CLASSGRADE_INVALID", cgrade, bad_part)
    normalised = v.class_grade_judged & ~invalid & v.class_grade_changed
    log.add(normalised, "classGrade", "CLASSGRADE_NORMALIZED", cgrade, v.class_grade)


def _check_primary_teacher(r: _Rules) -> None:
    v, log, pt = r.v, r.log, r.t["primary_teacher"]
    pt_bad = v.as_add & ~_blank(pt) & ~v.primary_true & ~v.primary_false
    log.add(pt_bad, "primary_teacher", "PRIMARY_TEACHER_INVALID", pt)
    says_true = v.as_add & v.primary_true
    log.add(says_true & v.is_student, "primary_teacher", "PRIMARY_TEACHER_NOT_STAFF", pt)
    log.add(says_true & ~v.has_class_id, "primary_teacher", "PRIMARY_TEACHER_NO_CLASS", pt)


def _check_conflicts(
    r: _Rules,
    uid_valid: np.ndarray,
    email_valid: np.ndarray,
    cid_valid: np.ndarray,
    org_valid: np.ndarray,
) -> np.ndarray:
    """Rows that disagree with each other.  Returns the EMAIL_DUPLICATE rows."""
    t, v, log = r.t, r.v, r.log
    uid, email = t["userId"], t["userEmail"]
    person_rows = v.as_add & uid_valid
    emails = v.columns[LOWER_EMAILS]
    grades = r.distinct("userGrade").mapped(
        lambda values: pd.Series([_grade_code(g)[0] or "" for g in values], dtype=object),
        override=v.is_staff,
    )
    compared = {  # column -> the values compared for USER_CONFLICT (and their distinct values)
        "userFirstName": (t["userFirstName"], r.distinct("userFirstName")),
        "userLastName": (t["userLastName"], r.distinct("userLastName")),
        "userEmail": (v.email, emails),
        "userRole": (v.role, r.distinct("userRole").mapped(lambda values: values.str.lower())),
        "userGrade": (v.grade, grades),
        "userDistrictId": (t["userDistrictId"], r.distinct("userDistrictId")),
        "userStateId": (t["userStateId"], r.distinct("userStateId")),
    }
    for col, (values, distinct) in compared.items():
        conflict = conflicts(v.user_key, distinct, person_rows)
        log.add(conflict, col, "USER_CONFLICT", t[col], _naming(v.user_key, values, uid))
    dup = conflicts(emails.key_codes(), r.distinct("userId"), email_valid & uid_valid)
    if dup.any():
        others = uid[dup].groupby(v.email[dup]).agg(lambda s: ", ".join(sorted(set(s))[:3]))
        log.add(dup, "userEmail", "EMAIL_DUPLICATE", email, v.email.map(others))
    if v.has_class_group:
        _check_class_conflicts(r, cid_valid, org_valid)
    return dup


def _naming(key_codes: np.ndarray, values: pd.Series, keys: pd.Series):
    """A conflict's detail for the failing rows only: its key and the values that differ."""
    return lambda idx: with_values(
        take_rows(keys, idx).tolist(), values_per_key(key_codes, values, idx)
    )


def _class_grade_values(r: _Rules) -> Distinct:
    """v.class_grade (the normalised classGrade, "" where not judged or invalid) as a
    Distinct, worked out on the distinct classGrade values."""
    v = r.v
    return r.distinct("classGrade").mapped(
        lambda values: pd.Series([_class_grade_parts(g)[0] for g in values], dtype=object),
        override=~v.class_grade_judged | v.class_grade_invalid,
    )


def _check_class_conflicts(r: _Rules, cid_valid: np.ndarray, org_valid: np.ndarray) -> None:
    t, v, log = r.t, r.v, r.log
    cid, org, snap = t["classId"], t["org_sis_id"], r.snap
    class_rows = v.as_add & cid_valid
    log.add(
        conflicts(v.class_key, r.distinct("className"), class_rows),
        "className",
        "CLASSNAME_CONFLICT",
        t["className"],
        _naming(v.class_key, t["className"], cid),
    )
    log.add(
        conflicts(v.class_key, _class_grade_values(r), class_rows),
        "classGrade",
        "CLASSGRADE_CONFLICT",
        t["classGrade"],
        _naming(v.class_key, v.class_grade, cid),
    )
    org_rows = cid_valid & org_valid
    split = conflicts(v.class_key, r.distinct("org_sis_id"), org_rows)
    log.add(
        split,
        "org_sis_id",
        "ORG_CLASS_MISMATCH",
        org,
        lambda idx: [
            f"Rows for class '{c}' give more than one org_sis_id ({schools})"
            for c, schools in zip(cid.take(idx), values_per_key(v.class_key, org, idx))
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


def _check_against_store(
    r: _Rules,
    uid_valid: np.ndarray,
    email_valid: np.ndarray,
    cid_valid: np.ndarray,
    dup: np.ndarray,
) -> dict[str, str]:
    """Rules against the stored roster.  Returns the ID changes (new userId -> stored one)."""
    t, v, log, people = r.t, r.v, r.log, r.snap.people
    uid, email = t["userId"], t["userEmail"]
    known = isin(uid, people["user_id"])
    zeros = _check_user_zeros(r, uid_valid, known)
    owner = lookup(v.email, people["email"].str.lower(), people["user_id"])
    foreign = isin(v.email, r.snap.foreign_emails)
    checked = email_valid & uid_valid & ~zeros
    log.add(checked & foreign, "userEmail", "EMAIL_TAKEN", email, " in another district")
    other_owner = (
        checked & ~foreign & owner.notna().to_numpy() & (owner != uid).fillna(False).to_numpy()
    )
    moves = other_owner & ~known & ~dup
    if moves.any():  # an email stored for another userId, which the file does not name itself
        at = np.flatnonzero(moves)
        moves[at] = ~isin(owner.take(at), uid[uid_valid])
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
    flip = v.as_add & uid_valid & ((was_student & v.is_staff) | (was_staff & v.is_student))
    log.add(
        flip,
        "userId",
        "USERID_ROLE_CHANGE",
        uid,
        lambda idx: np.where(was_student[idx], "a student", "staff"),
    )
    class_zeros = _check_class_zeros(r, cid_valid)
    _check_removals_found(r, uid_valid, cid_valid & ~class_zeros, known)
    return id_changes


_ZEROS_HINT = "; did you mean {} (a spreadsheet may have dropped the leading zeros)?"


def _check_user_zeros(r: _Rules, uid_valid: np.ndarray, known: np.ndarray) -> np.ndarray:
    """USERID_ZEROS_LOST: an unknown all-digit userId that is a stored person's once leading
    zeros are stripped from both, with the same email or the same first and last name.
    Returns those rows (never a new person, never an ID change)."""
    t, v, people = r.t, r.v, r.snap.people
    uid = t["userId"]
    zeros = np.zeros(r.n, dtype=bool)
    unknown = v.as_add & uid_valid & ~known
    if not len(people) or not unknown.any():
        return zeros
    at = np.flatnonzero(unknown)
    unknown[at[~digits(uid.take(at))]] = False
    pairs = zeros_matches(uid, unknown, people["user_id"])
    if not len(pairs):
        return zeros
    rows, stored = pairs["at"].to_numpy(), pairs["stored_at"].to_numpy()

    def same(row_values: pd.Series, stored_values: pd.Series) -> np.ndarray:
        a = pd.Series(row_values.to_numpy(dtype=object)[rows], dtype=object).str.casefold()
        b = pd.Series(stored_values.to_numpy(dtype=object)[stored], dtype=object).str.casefold()
        return (a == b).fillna(False).to_numpy()

    match = same(t["userEmail"], people["email"]) | (
        same(t["userFirstName"], people["first_name"])
        & same(t["userLastName"], people["last_name"])
    )
    first = pairs[match].drop_duplicates("at")
    zeros[first["at"].to_numpy()] = True
    stored_id = pd.Series(
        people["user_id"].to_numpy(dtype=object)[first["stored_at"].to_numpy()],
        index=first["at"].to_numpy(),
    )
    r.log.add(
        zeros, "userId", "USERID_ZEROS_LOST", uid, lambda idx: stored_id.reindex(idx).tolist()
    )
    return zeros


def _check_class_zeros(r: _Rules, cid_valid: np.ndarray) -> np.ndarray:
    """CLASSID_ZEROS_LOST: an unknown all-digit classId that is a stored class of the same
    school (its org_sis_id compared without leading zeros too) once leading zeros are stripped
    from both.  Returns those rows."""
    t, classes = r.t, r.snap.classes
    zeros = np.zeros(r.n, dtype=bool)
    if not r.v.has_class_group or not len(classes) or not cid_valid.any():
        return zeros
    cid, org = t["classId"], t["org_sis_id"]
    unknown = cid_valid & ~isin(cid, classes["class_id"])
    if not unknown.any():
        return zeros
    at = np.flatnonzero(unknown)
    unknown[at[~digits(cid.take(at))]] = False
    pairs = zeros_matches(
        cid, unknown, classes["class_id"], {"school": (org, classes["org_sis_id"])}
    ).drop_duplicates("at")
    if not len(pairs):
        return zeros
    zeros[pairs["at"].to_numpy()] = True
    stored_id = pd.Series(
        classes["class_id"].to_numpy(dtype=object)[pairs["stored_at"].to_numpy()],
        index=pairs["at"].to_numpy(),
    )
    r.log.add(
        zeros, "classId", "CLASSID_ZEROS_LOST", cid, lambda idx: stored_id.reindex(idx).tolist()
    )
    return zeros


def _check_removals_found(
    r: _Rules, uid_valid: np.ndarray, cid_valid: np.ndarray, known: np.ndarray
) -> None:
    """What a remove row names must be stored, or added by an add row of the same file
    (removals apply after adds).  A name that is a stored one without its leading zeros is
    said."""
    t, v, log, snap = r.t, r.v, r.log, r.snap
    uid, cid = t["userId"], t["classId"]
    is_re = v.is_remove_enrollment
    removes_user = (is_re | v.is_deactivate) & uid_valid
    removes_class = (v.is_remove_class | is_re) & cid_valid & v.has_class_group
    class_known = isin(cid, snap.classes["class_id"]) if removes_class.any() else removes_class
    added = None
    if (removes_user & ~known).any() or (removes_class & ~class_known).any() or is_re.any():
        added = _accepts(r, r.log.frame())  # what the add rows apply, as far as checked
        known = known | isin(uid, uid[added.person_ok])
        class_known = class_known | isin(cid, cid[added.class_ok])
    user_missing = removes_user & ~known
    class_missing = removes_class & ~class_known
    log.add(
        class_missing,
        "classId",
        "ACTION_CLASS_NOT_FOUND",
        cid,
        _zeros_hint(
            cid,
            class_missing,
            snap.classes["class_id"],
            (t["org_sis_id"], snap.classes["org_sis_id"]),
        ),
    )
    log.add(
        user_missing,
        "userId",
        "ACTION_USER_NOT_FOUND",
        uid,
        _zeros_hint(uid, user_missing, snap.people["user_id"]),
    )
    if v.has_class_group and is_re.any():
        active = snap.enrollments[snap.enrollments["active"].astype(bool)]
        pairs = set(zip(active["class_id"], active["user_id"]))
        ok = added.enrollment_ok
        pairs |= set(zip(cid[ok], uid[ok]))
        found = is_re & removes_class & class_known & removes_user & known
        at = np.flatnonzero(found)
        enrolled = np.fromiter(
            (p in pairs for p in zip(cid.iloc[at], uid.iloc[at])), dtype=bool, count=len(at)
        )
        missing = np.zeros(r.n, dtype=bool)
        missing[at[~enrolled]] = True
        log.add(missing, "userId", "ACTION_ENROLLMENT_NOT_FOUND", uid)


def _zeros_hint(values: pd.Series, rows: np.ndarray, stored_ids: pd.Series, school=None):
    """ "; did you mean 004500 ...?" for the rows whose ID is a stored one without its leading
    zeros (of the same school when `school` = (row org_sis_id, stored org_sis_id)), else ""."""

    def detail(idx: np.ndarray) -> list[str]:
        mask = np.zeros(len(values), dtype=bool)
        mask[idx] = True
        mask[idx[~digits(values.take(idx))]] = False
        pairs = zeros_matches(
            values, mask, stored_ids, {"school": school} if school is not None else None
        ).drop_duplicates("at")
        stored = pd.Series(
            pd.Series(stored_ids).to_numpy(dtype=object)[pairs["stored_at"].to_numpy()],
            index=pairs["at"].to_numpy(),
            dtype=object,
        )
        return [_ZEROS_HINT.format(s) if isinstance(s, str) else "" for s in stored.reindex(idx)]

    return detail


@dataclass(frozen=True)
class _Accepted:
    row_reject: np.ndarray
    person_ok: np.ndarray
    class_ok: np.ndarray
    enrollment_ok: np.ndarray
    remove_ok: np.ndarray


def _accepts(r: _Rules, issues: pd.DataFrame) -> _Accepted:
    """Section 5: what each row may apply, given the errors found on it."""
    v, n = r.v, r.n
    errors = issues[severity_of(issues["code"]) == "error"]
    scope = scope_of(errors["code"])

    def hit(*scopes: str) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        mask[errors["idx"][scope.isin(scopes)].to_numpy()] = True
        return mask

    any_error = np.zeros(n, dtype=bool)
    any_error[errors["idx"].to_numpy()] = True
    row_reject = hit("row", "failed") | ~v.live | (v.is_remove & any_error)
    person_ok = v.is_add & ~row_reject & ~hit("person")
    class_ok = v.is_add & v.has_class_id & ~row_reject & ~hit("class")
    return _Accepted(
        row_reject=row_reject,
        person_ok=person_ok,
        class_ok=class_ok,
        enrollment_ok=person_ok & class_ok & ~hit("enrollment"),
        remove_ok=v.is_remove & ~row_reject,
    )


def _cascade(r: _Rules, id_changes: dict[str, str]) -> UsersCheck:
    """The check's answer: every issue and what each row may apply."""
    v = r.v
    issues = r.log.frame()
    ok = _accepts(r, issues)
    # the columns' distinct values served the rules; the plan reads only those of the two
    # keys (~10 MB), not the codes of every column (~130 MB for a 1,000,000-row file, held
    # through the plan and the changes file)
    v.key_values.update(
        (name, v.columns[name].values) for name in ("userId", "classId") if name in v.columns
    )
    v.columns.clear()
    return UsersCheck(
        table=r.t,
        derived=v,
        issues=issues,
        carries_class=v.as_add & (v.has_class_id | v.class_details),
        row_reject=ok.row_reject,
        person_ok=ok.person_ok,
        class_ok=ok.class_ok,
        enrollment_ok=ok.enrollment_ok,
        remove_ok=ok.remove_ok,
        id_changes=id_changes,
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
