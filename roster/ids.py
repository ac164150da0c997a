"""Which IDs the district set-up accepts (product.md revision 2), and why one is refused.

Each `*_problem` function returns None for an ID that can work, else the reason, written for
the person who typed it.  Slack ids are what Slack sends in events (`U…`/`W…` users, `C…`/`G…`
channels, upper-case letters and digits); a name, a mention or an email never matches one.
"""

from __future__ import annotations

import re

from validation.dictionary import ID_MAX, ID_PATTERN

SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{1,31}")
SLACK_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{1,31}")
_SCHOOL_ID = re.compile(ID_PATTERN)

_FIND_USER = "in Slack: the person's profile → ⋮ (more) → Copy member ID"
_FIND_CHANNEL = "in Slack: the channel's name → About → the Channel ID at the bottom"


def is_slack_user_id(value: str) -> bool:
    return SLACK_USER_ID.fullmatch(value or "") is not None


def _looks_like(value: str) -> str:
    if "@" in value and "." in value.rpartition("@")[2] and not value.startswith("@"):
        return "an email address"
    if value.startswith("@"):
        return "a display name"
    if value.startswith("#"):
        return "a channel name"
    if value.startswith("<"):
        return "a Slack mention"
    return ""


def slack_user_id_problem(value: str) -> str | None:
    if SLACK_USER_ID.fullmatch(value):
        return None
    if not value:
        return f"a Slack user id is needed, like U012AB3CD ({_FIND_USER})"
    looks = _looks_like(value)
    if looks:
        why = f"'{value}' is {looks}, not a Slack user id"
    elif SLACK_USER_ID.fullmatch(value.upper()):
        why = f"'{value}' has lower-case letters; Slack user ids are upper-case ({value.upper()})"
    elif SLACK_CHANNEL_ID.fullmatch(value):
        why = f"'{value}' is a channel id, not a user id"
    else:
        why = f"'{value}' is not a Slack user id"
    return (
        f"{why}: a user id starts with U or W followed by upper-case letters and digits, "
        f"like U012AB3CD ({_FIND_USER})"
    )


def slack_channel_id_problem(value: str) -> str | None:
    if SLACK_CHANNEL_ID.fullmatch(value):
        return None
    if not value:
        return f"a Slack channel id is needed, like C012AB3CD ({_FIND_CHANNEL})"
    looks = _looks_like(value)
    if looks:
        why = f"'{value}' is {looks}, not a Slack channel id"
    elif SLACK_CHANNEL_ID.fullmatch(value.upper()):
        why = (
            f"'{value}' has lower-case letters; Slack channel ids are upper-case ({value.upper()})"
        )
    elif re.fullmatch(r"D[A-Z0-9]+", value):
        why = f"'{value}' is a direct message, which cannot be linked to a district"
    elif SLACK_USER_ID.fullmatch(value):
        why = f"'{value}' is a user id, not a channel id"
    else:
        why = f"'{value}' is not a Slack channel id"
    return (
        f"{why}: a channel id starts with C or G followed by upper-case letters and digits, "
        f"like C012AB3CD ({_FIND_CHANNEL})"
    )


def school_id_problem(value: str) -> str | None:
    """The users.csv ID rule (users-csv.md): letters, digits, `-`, `_`, `.`; at most 64."""
    if _SCHOOL_ID.fullmatch(value):
        return None
    if not value.strip():
        return "a school ID (org_sis_id) is needed"
    if len(value) > ID_MAX:
        return f"school ID '{value[:20]}…' has {len(value)} characters; at most {ID_MAX}"
    bad = sorted({c for c in value if not re.fullmatch(r"[A-Za-z0-9_.\-]", c)})
    shown = ", ".join("space" if c == " " else f"'{c}'" for c in bad)
    return (
        f"school ID '{value}' contains {shown}: an ID has only letters, digits, - _ . "
        "(the ID the district's files use in org_sis_id, not the school's name; the name goes "
        "in --name)"
    )
