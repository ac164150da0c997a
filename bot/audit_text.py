"""How a set-up change (roster.store.AuditRecord) and its actor read, in Slack and on a terminal.

An actor is a Slack user id (shown in Slack as a mention) or `cli:LOGIN` for a change made
from the operator's shell, which is always shown as text: `<@cli:alice>` would be a broken
mention.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from bot.mrkdwn import escape as _escape
from roster.ids import is_slack_user_id


def person(actor: str, slack: bool) -> str:
    """Who did something: a mention in Slack for a Slack user, the text itself otherwise."""
    if not actor:
        return "unknown"
    if slack:
        return f"<@{actor}>" if is_slack_user_id(actor) else _escape(actor)
    return actor


def _channel(channel_id: str, slack: bool) -> str:
    return f"<#{channel_id}>" if slack and channel_id[:1] in "CG" else channel_id


def _list(text: str) -> list[str]:
    return [k.strip() for k in text.split(",") if k.strip()]


def describe(entry: Any, slack: bool = False) -> str:
    """One line: when, who, what changed (`entry` is a roster.store.AuditRecord)."""
    when = entry.at.strftime("%Y-%m-%d %H:%M UTC") if entry.at else "?"
    who = person(entry.actor, slack)
    subject = entry.subject
    text = (lambda v: _escape(v)) if slack else (lambda v: v)
    if entry.action in ("grant", "revoke"):
        before, after = _list(entry.before), _list(entry.after)
        changed = [
            k
            for k in (after if entry.action == "grant" else before)
            if k not in (before if entry.action == "grant" else after)
        ]
        now = ", ".join(after) if after else "no access"
        verb = "granted" if entry.action == "grant" else "revoked"
        to = "to" if entry.action == "grant" else "from"
        what = f"{verb} {' and '.join(changed)} access {to} {person(subject, slack)} (now: {now})"
    elif entry.action == "link":
        what = f"linked channel {_channel(subject, slack)}" + (
            f" (taken from {text(entry.before)})" if entry.before else ""
        )
    elif entry.action == "unlink":
        what = f"unlinked channel {_channel(subject, slack)}" + (
            f" (now linked to {text(entry.after)})" if entry.after else ""
        )
    elif entry.action == "school_add":
        what = f"added school {text(subject)} ({text(entry.after)})"
    elif entry.action == "school_rename":
        what = (
            f"renamed school {text(subject)} from “{text(entry.before)}” to “{text(entry.after)}”"
        )
    else:
        what = f"{text(entry.action)} {text(subject)}"
    return f"{when} — {who} {what}"


def _utc(at: datetime) -> datetime:
    # SQLite hands back the stored UTC time without its zone
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def to_json(entry: Any) -> dict[str, Any]:
    return {
        "at": _utc(entry.at).isoformat() if entry.at else None,
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "before": entry.before,
        "after": entry.after,
    }
