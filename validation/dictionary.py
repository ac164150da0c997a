"""The data dictionaries of users.csv and demographics.csv, as data.

Header checks, value checks, templates, `rosterbot dictionary` and the knowledge base
all read these tables.  Changing a column rule means changing one row here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    REQUIRED = "required"
    CONDITIONAL = "conditional"
    OPTIONAL = "optional"


class ValueType(StrEnum):
    ACTION = "action"
    ID = "id"
    NAME = "name"
    EMAIL = "email"
    ROLE = "role"
    GRADE = "grade"
    GRADES = "grade list"
    BOOLEAN = "boolean"
    TEXT = "text"
    DATE = "date"
    SEX = "sex"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    type: ValueType
    meaning: str
    condition: str = ""
    accepted: str = ""
    codes: tuple[str, ...] = field(default_factory=tuple)
    example: str = ""


GRADES: tuple[str, ...] = (
    "IT",
    "PR",
    "PK",
    "TK",
    "KG",
    "01",
    "02",
    "03",
    "04",
    "05",
    "06",
    "07",
    "08",
    "09",
    "10",
    "11",
    "12",
    "13",
    "PS",
    "UG",
    "Other",
)

#: Accepted spellings that are normalised with a *_NORMALIZED warning (keys lower-case).
GRADE_ALIASES: dict[str, str] = {
    "k": "KG",
    "kindergarten": "KG",
    "pre-k": "PK",
    "prek": "PK",
    **{str(n): f"{n:02d}" for n in range(1, 10)},
    # a grade code written in another letter case is read as the code
    **{g.lower(): g for g in GRADES},
}

TRUE_VALUES = frozenset({"y", "yes", "true", "1"})
FALSE_VALUES = frozenset({"n", "no", "false", "0"})

ROLES = ("student", "teacher", "administrator")
STAFF_ROLES = frozenset({"teacher", "administrator"})

ACTIONS = ("REMOVE-CLASS", "REMOVE-ENROLLMENT", "DEACTIVATE-USER")

ID_PATTERN = r"[A-Za-z0-9_.\-]{1,64}"
EXCEL_PATTERN = r"[0-9]+(?:\.[0-9]+)?[Ee][+-]?[0-9]+"
#: An ID a spreadsheet turned into a date (users-csv.md section 4): `3-Aug`, `Aug-03`,
#: `03-Aug-24` (a day or year and an English month abbreviation, any case) and the numeric
#: dates a spreadsheet writes back (`8/3/2024`, `8/3/24`).  Letter case is spelt out in
#: character classes: pandas wraps a pattern in a group, where an inline `(?i)` is refused.
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MON = "(?:" + "|".join("".join(f"[{c.upper()}{c}]" for c in m) for m in MONTHS) + ")"
DATE_ID_PATTERN = (
    r"(?:[0-9]{1,2}-" + _MON + r"(?:-[0-9]{2}(?:[0-9]{2})?)?"
    r"|" + _MON + r"-[0-9]{1,4}"
    r"|[0-9]{1,2}/[0-9]{1,2}/[0-9]{2}(?:[0-9]{2})?)"
)
#: An ISO date (`2024-08-03`): a valid ID, so it is damage only when the district does not
#: already have it.
ISO_DATE_ID_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
#: local@domain.tld: one @, no spaces, no empty domain label ("a@b..org", "a@.org")
# Whitespace spelled out rather than \s: pandas runs patterns with \s through Python's re
# row by row, and RE2 (pyarrow) a thousand times faster without it.
_NOT_AT_OR_SPACE = "[^@ \t\r\n\f\v\u00a0\u2007\u202f"
EMAIL_PATTERN = (
    _NOT_AT_OR_SPACE + "]+@(?:" + _NOT_AT_OR_SPACE + ".]+\\.)+" + _NOT_AT_OR_SPACE + ".]+"
)
#: EMAIL_AMPLIFY_DOMAIN, on the lower-cased email: the domain (after the last @) is amplify.com,
#: a subdomain of it, or starts with "amplify.".
AMPLIFY_EMAIL_PATTERN = r"@(?:[^@]*\.)?amplify\.com$|@amplify\.[^@]*$"
ID_MAX = 64
NAME_MAX = 100
CLASSNAME_MAX = 255
EMAIL_MAX = 254
CLASS_SIZE_MAX = 80

_GRADE_TEXT = " ".join(GRADES)
_BOOL_TEXT = "Y, N, YES, NO, TRUE, FALSE, 1, 0 (any letter case); blank = N"

USERS_COLUMNS: tuple[Column, ...] = (
    Column(
        "action",
        Kind.OPTIONAL,  # a file without it is all add/update rows
        ValueType.ACTION,
        "What to do with the row: blank adds or updates; REMOVE-CLASS, REMOVE-ENROLLMENT and "
        "DEACTIVATE-USER remove.",
        accepted="blank, REMOVE-CLASS, REMOVE-ENROLLMENT, DEACTIVATE-USER (any letter case)",
        codes=(
            "ACTION_INVALID",
            "ACTION_NEEDS_CLASS",
            "ACTION_CLASS_NOT_FOUND",
            "ACTION_USER_NOT_FOUND",
            "ACTION_ENROLLMENT_NOT_FOUND",
        ),
        example="",
    ),
    Column(
        "org_sis_id",
        Kind.REQUIRED,
        ValueType.ID,
        "The school's ID in the district; the school must already be set up.",
        accepted="letters, digits, - _ . (at most 64)",
        codes=("ORG_REQUIRED", "ORG_NOT_FOUND", "ORG_EXCEL", "ORG_CLASS_MISMATCH"),
        example="0101",
    ),
    Column(
        "userId",
        Kind.REQUIRED,
        ValueType.ID,
        "The person's primary ID, unique in the district, case-sensitive.",
        accepted="letters, digits, - _ . (at most 64)",
        codes=(
            "USERID_REQUIRED",
            "USERID_INVALID",
            "USERID_EXCEL",
            "USER_CONFLICT",
            "USERID_ROLE_CHANGE",
            "USERID_CHANGED",
            "USERID_ZEROS_LOST",
        ),
        example="S000123",
    ),
    Column(
        "userFirstName",
        Kind.REQUIRED,
        ValueType.NAME,
        "First name.",
        accepted="text, at most 100 characters",
        codes=("FIRSTNAME_REQUIRED", "NAME_TOO_LONG"),
        example="Maria",
    ),
    Column(
        "userLastName",
        Kind.REQUIRED,
        ValueType.NAME,
        "Last name.",
        accepted="text, at most 100 characters",
        codes=("LASTNAME_REQUIRED", "NAME_TOO_LONG"),
        example="Lopez",
    ),
    Column(
        "userEmail",
        Kind.REQUIRED,
        ValueType.EMAIL,
        "The person's email, unique across all districts.",
        accepted="name@domain.tld, at most 254 characters; no amplify.com addresses",
        codes=(
            "EMAIL_REQUIRED",
            "EMAIL_INVALID",
            "EMAIL_AMPLIFY_DOMAIN",
            "EMAIL_DUPLICATE",
            "EMAIL_TAKEN",
        ),
        example="maria.lopez@example.org",
    ),
    Column(
        "userRole",
        Kind.REQUIRED,
        ValueType.ROLE,
        "The person's role.",
        accepted="student, teacher, administrator (any letter case)",
        codes=("ROLE_INVALID", "ROLE_NOT_ALLOWED"),
        example="student",
    ),
    Column(
        "userGrade",
        Kind.CONDITIONAL,
        ValueType.GRADE,
        "The student's grade.",
        condition="required when any row has userRole = student",
        accepted=f"{_GRADE_TEXT}; K/Kindergarten = KG, 1-9 = 01-09, Pre-K/PreK = PK",
        codes=(
            "USERGRADE_REQUIRED",
            "USERGRADE_INVALID",
            "USERGRADE_NORMALIZED",
            "USERGRADE_IGNORED",
        ),
        example="05",
    ),
    Column(
        "userDistrictId",
        Kind.OPTIONAL,
        ValueType.ID,
        "Secondary ID (district).",
        accepted="letters, digits, - _ . (at most 64); blank keeps what is stored",
        codes=("USERID_INVALID", "USERID_EXCEL"),
        example="D-0042",
    ),
    Column(
        "userStateId",
        Kind.OPTIONAL,
        ValueType.ID,
        "Secondary ID (state).",
        accepted="letters, digits, - _ . (at most 64); blank keeps what is stored",
        codes=("USERID_INVALID", "USERID_EXCEL"),
        example="ST998877",
    ),
    Column(
        "classId",
        Kind.CONDITIONAL,
        ValueType.ID,
        "The class's ID, unique in the district, case-sensitive.",
        condition="class group: needed when any class column is present",
        accepted="letters, digits, - _ . (at most 64)",
        codes=("CLASSID_REQUIRED", "CLASSID_INVALID", "CLASSID_EXCEL", "CLASSID_ZEROS_LOST"),
        example="MATH5-01",
    ),
    Column(
        "className",
        Kind.CONDITIONAL,
        ValueType.NAME,
        "The class name.",
        condition="class group: needed when any class column is present",
        accepted="text, at most 255 characters",
        codes=("CLASSNAME_REQUIRED", "CLASSNAME_CONFLICT", "CLASSNAME_TOO_LONG"),
        example="Math 5",
    ),
    Column(
        "classGrade",
        Kind.CONDITIONAL,
        ValueType.GRADES,
        "The class's grade(s).",
        condition="class group: needed when any class column is present",
        accepted=f'{_GRADE_TEXT}; several separated by commas in one quoted cell ("03,04")',
        codes=(
            "CLASSGRADE_REQUIRED",
            "CLASSGRADE_INVALID",
            "CLASSGRADE_CONFLICT",
            "CLASSGRADE_NORMALIZED",
        ),
        example="05",
    ),
    Column(
        "primary_teacher",
        Kind.CONDITIONAL,
        ValueType.BOOLEAN,
        "Whether this staff member is a primary teacher of the class.",
        condition="class group: needed when any class column is present",
        accepted=_BOOL_TEXT,
        codes=(
            "PRIMARY_TEACHER_INVALID",
            "PRIMARY_TEACHER_NOT_STAFF",
            "PRIMARY_TEACHER_NO_CLASS",
            "CLASS_NO_PRIMARY_TEACHER",
            "CLASS_MULTIPLE_PRIMARY",
        ),
        example="Y",
    ),
    Column(
        "classDisplayName",
        Kind.OPTIONAL,
        ValueType.TEXT,
        "The class name shown to teachers and students.",
        accepted="text; blank keeps what is stored",
        example="Ms. Lopez - Math",
    ),
    Column(
        "classSubject",
        Kind.OPTIONAL,
        ValueType.TEXT,
        "Free-text subject.",
        accepted="text; blank keeps what is stored",
        example="Math",
    ),
)

USERS_HEADERS: tuple[str, ...] = tuple(c.name for c in USERS_COLUMNS)
CLASS_GROUP: tuple[str, ...] = (
    "classId",
    "className",
    "classGrade",
    "primary_teacher",
    "classDisplayName",
    "classSubject",
)
CLASS_GROUP_REQUIRED: tuple[str, ...] = ("classId", "className", "classGrade", "primary_teacher")

#: Columns the error report adds; recognised and dropped when a report is uploaded again.
REPORT_COLUMNS: tuple[str, ...] = ("row_number", "status", "issues", "details", "how_to_fix")

_DEMO_BOOL = dict(
    kind=Kind.OPTIONAL,
    type=ValueType.BOOLEAN,
    accepted="Y or N (also YES, NO, TRUE, FALSE, 1, 0 in any letter case; stored "
    "as Y/N); blank keeps what is stored",
    codes=("DEMO_VALUE_INVALID",),
    example="N",
)
#: the race flags and demographicRaceTwoOrMoreRaces are also checked against each other
_DEMO_RACE = {**_DEMO_BOOL, "codes": ("DEMO_VALUE_INVALID", "DEMO_RACE_INCONSISTENT")}

DEMOGRAPHICS_COLUMNS: tuple[Column, ...] = (
    Column(
        "userId",
        Kind.REQUIRED,
        ValueType.ID,
        "A student already stored for the district, or in a users.csv of the same upload.",
        accepted="the student's userId from users.csv",
        codes=("DEMO_USERID_REQUIRED", "DEMO_USER_NOT_FOUND", "DEMO_NOT_STUDENT", "DEMO_DUPLICATE"),
        example="S000123",
    ),
    Column(
        "birthDate",
        Kind.OPTIONAL,
        ValueType.DATE,
        "Date of birth.",
        accepted="YYYY-MM-DD (M/D/YYYY and MM/DD/YYYY accepted); not in the future, "
        "not before 1900",
        codes=("DEMO_DATE_INVALID", "DEMO_VALUE_NORMALIZED"),
        example="2014-09-02",
    ),
    Column(
        "sex",
        Kind.OPTIONAL,
        ValueType.SEX,
        "Sex.",
        accepted="M, F, X (non-binary); male, female, non-binary accepted",
        codes=("DEMO_VALUE_INVALID", "DEMO_VALUE_NORMALIZED"),
        example="F",
    ),
    Column("hispanicOrLatinoEthnicity", meaning="Hispanic or Latino ethnicity.", **_DEMO_BOOL),
    Column(
        "americanIndianOrAlaskaNative",
        meaning="Race: American Indian or Alaska Native.",
        **_DEMO_RACE,
    ),
    Column("asian", meaning="Race: Asian.", **_DEMO_RACE),
    Column("blackOrAfricanAmerican", meaning="Race: Black or African American.", **_DEMO_RACE),
    Column(
        "nativeHawaiianOrOtherPacificIslander",
        meaning="Race: Native Hawaiian or Other Pacific Islander.",
        **_DEMO_RACE,
    ),
    Column("white", meaning="Race: White.", **_DEMO_RACE),
    Column("demographicRaceTwoOrMoreRaces", meaning="Two or more races.", **_DEMO_RACE),
    Column("englishLearner", meaning="English learner.", **_DEMO_BOOL),
    Column("specialEducation", meaning="Special education (has an IEP).", **_DEMO_BOOL),
    Column("section504", meaning="Has a Section 504 plan.", **_DEMO_BOOL),
    Column("economicallyDisadvantaged", meaning="Economically disadvantaged.", **_DEMO_BOOL),
    Column("migrant", meaning="Migrant.", **_DEMO_BOOL),
    Column("homeless", meaning="Homeless.", **_DEMO_BOOL),
    Column("gifted", meaning="Gifted.", **_DEMO_BOOL),
    Column(
        "homeLanguage",
        Kind.OPTIONAL,
        ValueType.TEXT,
        "Language spoken at home.",
        accepted="free text, at most 64 characters",
        codes=("DEMO_VALUE_INVALID",),
        example="Spanish",
    ),
)

DEMOGRAPHICS_HEADERS: tuple[str, ...] = tuple(c.name for c in DEMOGRAPHICS_COLUMNS)
RACE_COLUMNS: tuple[str, ...] = (
    "americanIndianOrAlaskaNative",
    "asian",
    "blackOrAfricanAmerican",
    "nativeHawaiianOrOtherPacificIslander",
    "white",
)


def column(name: str, kind: str = "users") -> Column | None:
    table = USERS_COLUMNS if kind == "users" else DEMOGRAPHICS_COLUMNS
    return next((c for c in table if c.name == name), None)
