"""What the checks need to know about the stored roster, as plain data.

The roster package loads it in a few queries; checks and the plan only read it, so every
rule can be tested with hand-made frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

PEOPLE_COLUMNS = [
    "id",
    "user_id",
    "email",
    "first_name",
    "last_name",
    "role",
    "grade",
    "district_sis_id",
    "state_sis_id",
    "active",
]
MEMBERSHIP_COLUMNS = ["user_id", "org_sis_id"]
CLASS_COLUMNS = [
    "id",
    "class_id",
    "org_sis_id",
    "name",
    "grade",
    "display_name",
    "subject",
    "active",
]
ENROLLMENT_COLUMNS = ["id", "class_id", "user_id", "is_primary", "active"]
THIRD_PARTY_NAMES = {"clever": "Clever", "classlink": "ClassLink", "gg4l": "GG4L"}


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


@dataclass
class RosterSnapshot:
    """One district's stored roster (people and classes of every status)."""

    enrollment_source: str = "batch"
    schools: frozenset[str] = frozenset()
    people: pd.DataFrame = field(default_factory=lambda: _empty(PEOPLE_COLUMNS))
    memberships: pd.DataFrame = field(default_factory=lambda: _empty(MEMBERSHIP_COLUMNS))
    classes: pd.DataFrame = field(default_factory=lambda: _empty(CLASS_COLUMNS))
    enrollments: pd.DataFrame = field(default_factory=lambda: _empty(ENROLLMENT_COLUMNS))
    #: lower-cased emails of people in OTHER districts (only those the file mentions)
    foreign_emails: frozenset[str] = frozenset()
    #: students accepted from a users.csv of the same upload (for demographics.csv)
    pending_students: frozenset[str] = frozenset()
    #: staff accepted from a users.csv of the same upload
    pending_staff: frozenset[str] = frozenset()

    @property
    def third_party(self) -> str | None:
        return THIRD_PARTY_NAMES.get(self.enrollment_source)
