"""What a log line may say about an error: its kind and code, never its text.

A database error's text carries the values it refused (PostgreSQL's DETAIL "Failing row
contains (…, ava@example.org, …)", COPY's CONTEXT line, SQLAlchemy's "[parameters: …]"), so a
traceback logged as it is puts student data in the log.  `error_code()` names an error
without it; `RedactedErrors` makes every logged traceback keep its frames (where) and codes
(what kind) and drop the messages.
"""

from __future__ import annotations

import logging
import traceback


def error_code(exc: BaseException) -> str:
    """ "IntegrityError 23505", "OperationalError SQLITE_BUSY", "KeyError": type and code."""
    orig = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    code = (
        getattr(orig, "sqlstate", None)
        or getattr(orig, "pgcode", None)
        or getattr(orig, "sqlite_errorname", None)
    )
    return type(orig).__name__ + (f" {code}" if code else "")


def redacted_traceback(exc: BaseException) -> str:
    """The traceback's frames and each exception's code, without any exception's message."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.insert(0, f"Traceback (most recent call last):\n{frames}{error_code(current)}\n")
        current = current.__cause__ or current.__context__
    note = "(exception messages left out of the log: they may hold roster data)\n"
    return note + "\nwhich led to:\n".join(parts).rstrip("\n")


class RedactedErrors(logging.Filter):
    """For a log handler: records with an exception keep where and what kind, not the text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redacted_traceback(record.exc_info[1])
            record.exc_info = None
        return True
