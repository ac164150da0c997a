"""Plain-text and JSON answers for the terminal and ``rosterbot ask --json``.

Slack formatting lives in ``bot/``; it builds its own blocks from ``LookupResult`` and
``Document``.
"""

from __future__ import annotations

import re
from typing import Any

from faq.documents import get_document
from faq.lookup import LookupResult, Match, lookup

_HEADING = re.compile(r"^#+\s*", re.MULTILINE)
_EMPHASIS = re.compile(r"\*\*(.+?)\*\*")

NO_MATCH = "Sorry, I don't have a good answer to that."


def answer_text(result: LookupResult) -> str:
    """The best document as terminal text: title, explanation, how to fix, related topics."""
    if result.best is None:
        lines = [NO_MATCH]
        if result.suggestions:
            lines.append("Closest topics: " + _list(result.suggestions))
        lines.append("Try an error code (like EMAIL_TAKEN) or a column name (like userEmail).")
        return "\n".join(lines)

    doc = result.best
    parts = [f"{doc.title} ({doc.id})", _plain(doc.body)]
    fix = doc.readable_fix()
    if fix:
        parts.append(f"How to fix: {fix}")
    if doc.related:
        parts.append("Related: " + ", ".join(doc.related))
    others = [m for m in result.matches if m.id != doc.id]
    if others:
        parts.append("Did you mean: " + _list(others))
    return "\n\n".join(parts)


def ask_json(question: str) -> dict[str, Any]:
    """``{"query", "matches": [{"id", "title", "score"}], "answer"}``; answer None if no match."""
    result = lookup(question)
    return {
        "query": question,
        "matches": [{"id": m.id, "title": m.title, "score": m.score} for m in result.matches],
        "answer": answer_text(result) if result.best is not None else None,
    }


def _plain(markdown: str) -> str:
    return _EMPHASIS.sub(r"\1", _HEADING.sub("", markdown)).strip()


def _list(matches: list[Match]) -> str:
    return ", ".join(f"{m.id} ({get_document(m.id).title})" for m in matches)
