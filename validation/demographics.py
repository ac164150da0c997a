"""demographics.csv row rules (demographics-csv.md), vectorised over whole columns.

Input: the table (one column per demographics header, trimmed text, "" for absent columns)
and a RosterSnapshot (its people, and `pending_students` accepted from a users.csv of the
same upload).  Output: every issue, the normalised values (booleans as Y/N, dates as
YYYY-MM-DD, sex as M/F/X, "" = leave what is stored) and which rows may be applied.
Pure: no database, no Slack.  The column rules are driven by the dictionary's value types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from validation import dictionary as d
from validation.issues import IssueLog, severity_of
from validation.snapshot import RosterSnapshot
from validation.vector import digits, zeros_matches

#: The columns that carry a student's values (everything but the key).
VALUE_COLUMNS: tuple[str, ...] = tuple(c.name for c in d.DEMOGRAPHICS_COLUMNS if c.name != "userId")
TWO_OR_MORE = "demographicRaceTwoOrMoreRaces"
TEXT_MAX = 64  # homeLanguage: "free text, at most 64 characters"
EARLIEST_YEAR = 1900
SEX_CODES = ("M", "F", "X")
#: Accepted spellings (case-insensitive) normalised with DEMO_VALUE_NORMALIZED.
SEX_ALIASES: dict[str, str] = {
    "male": "M",
    "female": "F",
    "non-binary": "X",
    **{c.lower(): c for c in SEX_CODES},
}

_ISO_DATE = r"^(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})$"
_US_DATE = r"^(?P<m>[0-9]{1,2})/(?P<d>[0-9]{1,2})/(?P<y>[0-9]{4})$"


@dataclass
class DemographicsCheck:
    #: userId plus the normalised value columns ("" = blank, keep what is stored)
    table: pd.DataFrame
    issues: pd.DataFrame  # idx, column, code, value, detail
    live: np.ndarray  # rows that were checked (not ragged)
    accepted: np.ndarray  # rows whose values may be applied (live, no error)


def check_demographics(
    table: pd.DataFrame,
    snap: RosterSnapshot,
    skip: np.ndarray | None = None,
    today: date | None = None,
) -> DemographicsCheck:
    """Run every demographics.csv rule.  `skip` marks rows that are not checked (ragged rows)."""
    n = len(table)
    live = np.ones(n, dtype=bool) if skip is None else ~skip
    today = today or date.today()
    log = IssueLog()
    out = pd.DataFrame({"userId": table["userId"]}, index=table.index)
    _check_user_ids(table, snap, live, log)
    for col in d.DEMOGRAPHICS_COLUMNS:
        if col.name != "userId":
            out[col.name] = _check_values(table[col.name], col, live, today, log)
    _check_race(table, out, live, log)
    issues = log.frame()
    errors = issues.loc[severity_of(issues["code"]) == "error", "idx"].to_numpy()
    accepted = live.copy()
    accepted[errors] = False
    return DemographicsCheck(out, issues, live, accepted)


def _check_user_ids(
    table: pd.DataFrame, snap: RosterSnapshot, live: np.ndarray, log: IssueLog
) -> None:
    """userId: given, a stored (or pending) student, once per file."""
    uid = table["userId"]
    filled = live & (uid != "").to_numpy()
    log.add(live & ~filled, "userId", "DEMO_USERID_REQUIRED", uid)
    people = snap.people
    roles = pd.Series(
        people["role"].to_numpy(dtype=object),
        index=pd.Index(people["user_id"].to_numpy(dtype=object)),
    )
    # a student accepted from the same upload's users.csv is a student even before it is stored
    for pending_ids, pending_role in (
        (snap.pending_students, "student"),
        (snap.pending_staff, "teacher"),
    ):
        pending = pd.Index(sorted(pending_ids), dtype=object).difference(roles.index)
        roles = pd.concat([roles, pd.Series(pending_role, index=pending, dtype=object)])
    role = pd.Series(roles.reindex(uid.to_numpy(dtype=object)).to_numpy(), index=uid.index)
    known = role.notna().to_numpy()
    missing = filled & ~known
    log.add(missing, "userId", "DEMO_USER_NOT_FOUND", uid, _zeros_hint(uid, missing, people))
    log.add(filled & known & role.isin(d.STAFF_ROLES).to_numpy(), "userId", "DEMO_NOT_STUDENT", uid)
    log.add(
        filled & uid.where(filled).duplicated(keep=False).to_numpy(),
        "userId",
        "DEMO_DUPLICATE",
        uid,
    )


def _zeros_hint(uid: pd.Series, missing: np.ndarray, people: pd.DataFrame):
    """For a userId that is a stored student's without its leading zeros: name the stored ID
    (demographics-csv.md); never applied to that student."""

    def detail(idx: np.ndarray) -> list[str]:
        rows = np.zeros(len(uid), dtype=bool)
        rows[idx[digits(uid.take(idx))]] = True
        students = people["user_id"][(people["role"] == "student").to_numpy(dtype=bool)]
        pairs = zeros_matches(uid, rows, students).drop_duplicates("at")
        stored = pd.Series(
            students.to_numpy(dtype=object)[pairs["stored_at"].to_numpy()],
            index=pairs["at"].to_numpy(),
            dtype=object,
        ).reindex(idx)
        return [
            f"; did you mean {s} (a spreadsheet may have dropped the leading zeros)?"
            if isinstance(s, str)
            else ""
            for s in stored
        ]

    return detail


def _check_values(raw: pd.Series, col, live: np.ndarray, today: date, log: IssueLog) -> pd.Series:
    """One value column, driven by its dictionary value type.  Returns the values to store
    ("" = blank, keep what is stored)."""
    judged = live & (raw != "").to_numpy()
    if col.type is d.ValueType.BOOLEAN:
        norm = _booleans(raw)  # stored as Y/N silently (no warning)
    elif col.type is d.ValueType.SEX:
        norm = raw.str.lower().map(SEX_ALIASES)
        log.add(
            judged & norm.notna().to_numpy() & (norm != raw).fillna(False).to_numpy(),
            col.name,
            "DEMO_VALUE_NORMALIZED",
            raw,
            norm,
        )
    elif col.type is d.ValueType.DATE:
        norm = _dates(raw, judged, today, log, col.name)
    else:  # free text
        too_long = (raw.str.len() > TEXT_MAX).to_numpy()
        norm = raw.where(~too_long)
    if col.type is not d.ValueType.DATE:
        log.add(judged & norm.isna().to_numpy(), col.name, "DEMO_VALUE_INVALID", raw, col.accepted)
    return norm.where(judged, "").fillna("").astype(str)


def _check_race(table: pd.DataFrame, out: pd.DataFrame, live: np.ndarray, log: IssueLog) -> None:
    """The race flags must add up with the two-or-more column."""
    yes = sum((out[c] == "Y").to_numpy().astype(int) for c in d.RACE_COLUMNS)
    two = out[TWO_OR_MORE]
    odd = live & (((two == "Y").to_numpy() & (yes < 2)) | ((two == "N").to_numpy() & (yes >= 2)))
    if odd.any():
        detail = np.where(
            yes == 0,
            "no race column is Y",
            np.where(
                yes == 1,
                "only one race column is Y",
                np.char.add(yes.astype(str), " race columns are Y"),
            ),
        )
        log.add(odd, TWO_OR_MORE, "DEMO_RACE_INCONSISTENT", table[TWO_OR_MORE], detail)


def _booleans(raw: pd.Series) -> pd.Series:
    lower = raw.str.lower()
    return pd.Series(
        np.where(lower.isin(d.TRUE_VALUES), "Y", np.where(lower.isin(d.FALSE_VALUES), "N", None)),
        index=raw.index,
        dtype=object,
    )


def _dates(
    raw: pd.Series, judged: np.ndarray, today: date, log: IssueLog, column: str
) -> pd.Series:
    """ISO dates; M/D/YYYY and MM/DD/YYYY are normalised with a warning.  NA when invalid."""
    iso, us = _extract(raw, _ISO_DATE), _extract(raw, _US_DATE)
    is_us = us["y"].notna().to_numpy()
    shaped = iso["y"].notna().to_numpy() | is_us
    year = iso["y"].fillna(us["y"])
    month = iso["m"].fillna(us["m"]).str.zfill(2)
    day = iso["d"].fillna(us["d"]).str.zfill(2)
    text = (year + "-" + month + "-" + day).where(pd.Series(shaped, index=raw.index))
    early = shaped & (pd.to_numeric(year, errors="coerce") < EARLIEST_YEAR).fillna(False).to_numpy()
    parsed = pd.to_datetime(
        text.where(~pd.Series(early, index=raw.index)), format="%Y-%m-%d", errors="coerce"
    )
    real = parsed.notna().to_numpy()
    future = real & (parsed > pd.Timestamp(today)).fillna(False).to_numpy()
    odd = judged & ~shaped
    spreadsheet = np.zeros(len(raw), dtype=bool)
    if odd.any():  # few rows: what a spreadsheet made of a date, said with the probable date
        at = np.flatnonzero(odd)
        guesses = [_spreadsheet_date(v, today) for v in raw.take(at)]
        known = np.array([g is not None for g in guesses], dtype=bool)
        spreadsheet[at[known]] = True
        hints = pd.Series([g for g in guesses if g is not None], index=at[known], dtype=object)
        log.add(spreadsheet, column, "DEMO_DATE_INVALID", raw, lambda i: hints.reindex(i).tolist())
    problems = (
        (odd & ~spreadsheet, "is not a date written YYYY-MM-DD (or M/D/YYYY)"),
        (judged & early, f"is before {EARLIEST_YEAR}"),
        (judged & shaped & ~early & ~real, "is not a real date"),
        (judged & future, "is in the future"),
    )
    for mask, detail in problems:
        log.add(mask, column, "DEMO_DATE_INVALID", raw, detail)
    ok = real & ~future
    log.add(judged & ok & is_us, column, "DEMO_VALUE_NORMALIZED", raw, text)
    return text.where(pd.Series(ok, index=raw.index))


_SERIAL = re.compile(r"([0-9]{5})(?:\.0+)?")
_SHORT_YEAR = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{2})")
#: day 0 of a spreadsheet's date numbers (Excel's 1900 system, as every spreadsheet writes it)
_SERIAL_EPOCH = date(1899, 12, 30)


def _spreadsheet_date(value: str, today: date) -> str | None:
    """Why a value a spreadsheet wrote is not taken, with the date it probably was: a date
    number (`43500`) or a two-digit year (`3/15/19`).  None for anything else."""
    if m := _SERIAL.fullmatch(value):
        try:
            was = _SERIAL_EPOCH + timedelta(days=int(m.group(1)))
        except OverflowError:
            return None
        return (
            f"is a spreadsheet's date number, not a date: it is probably {was.isoformat()}. "
            "Format the column as a date (YYYY-MM-DD) before saving"
        )
    if m := _SHORT_YEAR.fullmatch(value):
        month, day, yy = (int(g) for g in m.groups())
        year = 2000 + yy if 2000 + yy <= today.year else 1900 + yy
        try:
            was = date(year, month, day)
        except ValueError:
            return None
        return (
            f"has a two-digit year, which could be {1900 + yy} or {2000 + yy}: it is probably "
            f"{was.isoformat()}. Write the year in full"
        )
    return None


def _extract(raw: pd.Series, pattern: str) -> pd.DataFrame:
    """Named groups of `pattern` per value (NA where it does not match), in Arrow.

    `Series.str.extract` falls back to a Python loop over the rows; RE2 does not.
    """
    found = pc.extract_regex(pa.array(raw.to_numpy(dtype=object), type=pa.string()), pattern)
    matched = found.is_valid().to_numpy(zero_copy_only=False)
    # a struct's children do not carry its nulls: mask the rows that did not match
    return pd.DataFrame(
        {
            name: pd.Series(found.field(name), index=raw.index, dtype="str").where(matched)
            for name in ("y", "m", "d")
        }
    )
