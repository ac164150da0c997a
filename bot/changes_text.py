"""Change-log lines in words: the history timeline (CLI and Slack) and undo summaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_WHAT = {
    "created": "created",
    "removed": "removed (deactivated)",
    "reactivated": "reactivated",
}
_ENROLLMENT = {
    "created": "enrolled",
    "removed": "unenrolled",
    "reactivated": "enrolled again",
}


def describe(change: Mapping[str, Any]) -> str:
    """One change as a short sentence: "student S1: userEmail a@x → b@x"."""
    entity, key, kind = change["entity"], change["key"], change["change"]
    field, before, after = (
        change.get("field", ""),
        change.get("before", ""),
        change.get("after", ""),
    )
    if entity == "enrollment":
        class_id, _, user_id = str(key).partition("/")
        if kind == "updated":
            return f"{user_id} in class {class_id}: {field} {before or '(blank)'} → {after}"
        return f"{user_id} {_ENROLLMENT.get(kind, kind)} in class {class_id}"
    if kind != "updated":
        return f"{entity} {key}: {_WHAT.get(kind, kind)}"
    if field == "org_sis_id":
        return f"{entity} {key}: " + (
            f"added to school {after}" if after else f"left school {before}"
        )
    return f"{entity} {key}: {field} {before or '(blank)'} → {after or '(blank)'}"


def timeline_line(change: Mapping[str, Any]) -> str:
    """A history line: when, which upload, who, what."""
    at = str(change.get("at", "")).replace("T", " ").rstrip("Z")[:16]
    return f"{at} UTC  upload #{change['upload_id']} by {change.get('actor') or '?'}  {describe(change)}"
