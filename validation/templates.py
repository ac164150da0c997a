"""Templates and the data dictionary as text, read from validation/dictionary.py.

`template_csv(kind)` gives the headers and a few realistic rows that validate cleanly
(the examples of the dictionary, plus rows that make a complete class); `dictionary_text`
and `explain_column` explain a column from the same table the validator uses.
"""

from __future__ import annotations

import csv
import io

from validation import dictionary as d
from validation.catalog import CATALOG
from validation.headers import suggest

KINDS = ("users", "demographics")
#: the school the template rows use (set it up, or change org_sis_id to one of yours)
TEMPLATE_SCHOOL = d.column("org_sis_id").example


def _examples(columns: tuple[d.Column, ...]) -> dict[str, str]:
    return {c.name: c.example for c in columns}


def _users_rows() -> list[dict[str, str]]:
    student = _examples(d.USERS_COLUMNS) | {
        "primary_teacher": "N",
        "classDisplayName": "Mr. Carter - Math 5",
    }
    teacher = student | {
        "userId": "T000045",
        "userFirstName": "James",
        "userLastName": "Carter",
        "userEmail": "james.carter@example.org",
        "userRole": "teacher",
        "userGrade": "",
        "userDistrictId": "",
        "userStateId": "",
        "primary_teacher": "Y",
    }
    second = student | {
        "userId": "S000124",
        "userFirstName": "Noah",
        "userLastName": "Kim",
        "userEmail": "noah.kim@example.org",
        "userGrade": "05",
        "userDistrictId": "D-0043",
        "userStateId": "ST998878",
    }
    return [teacher, student, second]


def example_people() -> frozenset[tuple[str, str]]:
    """(userId, lower-cased userEmail) of the users template's example rows: a file that still
    holds them is refused row by row (TEMPLATE_EXAMPLE_ROW), so uploading the unchanged template
    creates nobody."""
    return frozenset((r["userId"], r["userEmail"].lower()) for r in _users_rows())


def _demographics_rows() -> list[dict[str, str]]:
    first = _examples(d.DEMOGRAPHICS_COLUMNS) | {"hispanicOrLatinoEthnicity": "Y", "white": "Y"}
    second = {c: "N" for c in d.DEMOGRAPHICS_HEADERS} | {
        "userId": "S000124",
        "birthDate": "2014-03-17",
        "sex": "M",
        "asian": "Y",
        "blackOrAfricanAmerican": "Y",
        "demographicRaceTwoOrMoreRaces": "Y",
        "englishLearner": "Y",
        "homeLanguage": "Korean",
    }
    return [first, second]


def template_csv(kind: str) -> bytes:
    """The users.csv or demographics.csv template: headers and example rows, UTF-8 with BOM."""
    if kind not in KINDS:
        raise ValueError(f"no template '{kind}': choose users or demographics")
    headers = d.USERS_HEADERS if kind == "users" else d.DEMOGRAPHICS_HEADERS
    rows = _users_rows() if kind == "users" else _demographics_rows()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows([r.get(h, "") for h in headers] for r in rows)
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


# --- the data dictionary as text ------------------------------------------------------------------
class UnknownColumn(ValueError):
    """A name that is no users.csv or demographics.csv column; the message lists them."""


def _files() -> tuple[tuple[str, tuple[d.Column, ...]], ...]:
    return (("users.csv", d.USERS_COLUMNS), ("demographics.csv", d.DEMOGRAPHICS_COLUMNS))


def _explain(file: str, c: d.Column) -> str:
    kind = str(c.kind) + (f" ({c.condition})" if c.condition else "")
    lines = [f"{c.name} ({file}) - {kind}", f"  Meaning: {c.meaning}"]
    if c.accepted:
        lines.append(f"  Accepted values: {c.accepted}")
    if c.kind is d.Kind.OPTIONAL and "blank" not in c.accepted:
        lines.append("  Blank: keeps what is stored")
    if c.example:
        lines.append(f"  Example: {c.example}")
    if c.codes:
        lines.append("  Related codes:")
        lines += [
            f"    {code} ({CATALOG[code].severity}) - {CATALOG[code].title}" for code in c.codes
        ]
    return "\n".join(lines)


def explain_column(name: str) -> str:
    """Kind, meaning, condition, accepted values and related codes of one column.

    A name in both files (userId) is explained for each.  Raises UnknownColumn, whose
    message suggests the closest column and lists them all.
    """
    found = [_explain(file, c) for file, columns in _files() for c in columns if c.name == name]
    if found:
        return "\n\n".join(found)
    names = list(dict.fromkeys(c.name for _, columns in _files() for c in columns))
    same_case = [n for n in names if n.casefold() == name.strip().casefold()]
    close = same_case[0] if same_case else suggest(name, names)
    hint = ""
    if close:
        hint = f" Did you mean {close}?" + (" (headers are case-sensitive)" if same_case else "")
    listing = "; ".join(
        f"{file}: {', '.join(c.name for c in columns)}" for file, columns in _files()
    )
    raise UnknownColumn(
        f"'{name}' is not a users.csv or demographics.csv column.{hint} "
        f"The columns are - {listing}."
    )


def dictionary_text(column: str | None = None) -> str:
    """One column explained, or (no column) every column of both files in short."""
    if column:
        return explain_column(column)
    parts = []
    for file, columns in _files():
        lines = [f"{file} columns (headers are exact and case-sensitive; column order is free):"]
        width = max(len(c.name) for c in columns)
        for c in columns:
            lines.append(f"  {c.name:<{width}}  {str(c.kind):<11}  {c.accepted or c.meaning}")
        parts.append("\n".join(lines))
    parts.append("`rosterbot dictionary COLUMN` explains one column and its issue codes.")
    return "\n\n".join(parts)
