"""Text addressed to the bot: knowledge-base questions, and triage in an upload's thread.

* In an upload's thread, "row 14" / "why did row 14 fail?" explains that row from the stored
  upload record (a partly applied row first says what was saved and what was not, in its
  error report's words) and "summary" repeats the top issues (no mention needed).  Access is decided
  per upload: a thread can hold uploads of several districts (the channel was re-linked),
  and only those of districts the asker may read are used.
* A mention (`app_mention`) or any DM is a question, answered from `faq.lookup()`; so is a
  message in an upload's thread that names an error code ("what does CLASSNAME_CONFLICT
  mean?"), the natural follow-up to the summary.  Other thread talk is left to the people.
Everything is answered in the thread of the message.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient

from bot import access, formatting
from bot.settings import Settings
from bot.uploads import RecentKeys, is_dm
from validation.report import saved_note_of

if TYPE_CHECKING:
    from roster.store import Store


_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
_ROW = re.compile(r"\brow\s*(?:number\s*|no\.?\s*|#\s*)?(\d{1,7})\b", re.IGNORECASE)
_SUMMARY = re.compile(r"\b(summary|summarize|summarise|top issues)\b", re.IGNORECASE)
#: a word shaped like an error code: letters and digits joined by _ or - (EMAIL_TAKEN)
_CODE_WORD = re.compile(r"\b[A-Za-z]+(?:[_-][A-Za-z0-9]+)+\b")


def names_a_code(text: str) -> bool:
    """Whether the text names one of the catalog's error codes (any letter case, _ or -)."""
    from validation.catalog import CATALOG

    return any(w.upper().replace("-", "_") in CATALOG for w in _CODE_WORD.findall(text))


def strip_mentions(text: str | None) -> str:
    return _MENTION.sub("", text or "").strip()


def ask(question: str) -> formatting.Message:
    import faq

    return formatting.kb_answer(faq.lookup(question))


class Conversation:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._answered = RecentKeys()

    def handle(self, client: WebClient, event: dict, *, mentioned: bool) -> None:
        text = strip_mentions(event.get("text"))
        channel, ts, user = event["channel"], event["ts"], event.get("user", "")
        thread_ts = event.get("thread_ts")
        dm = is_dm(event)

        message = None
        if thread_ts and (_ROW.search(text) or _SUMMARY.search(text)):
            uploads = self.store.uploads_in_thread(channel, thread_ts)
            if uploads:
                message = self._triage(user, text, uploads)
        if message is None and (
            dm
            or mentioned
            or (
                thread_ts
                and names_a_code(text)
                and self.store.uploads_in_thread(channel, thread_ts)
            )
        ):
            message = self._answer(user, channel, dm, text)
        if message is None:
            return  # channel chatter not addressed to the bot
        # Slack may deliver one message twice (a retry, or app_mention + message): answer once.
        if self._answered.first_time(f"{channel}:{ts}"):
            client.chat_postMessage(channel=channel, thread_ts=thread_ts or ts, **message.kwargs())

    def _answer(self, user: str, channel: str, dm: bool, text: str) -> formatting.Message:
        decision = access.for_question(self.store, self.settings, user, channel, dm)
        if not decision.allowed:
            return formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do)
        if not text:
            return formatting.Message(
                'Ask me about an error code or a column ("what does EMAIL_TAKEN mean?"), '
                "or share a users.csv here. `/rosterbot help` lists the commands."
            )
        return ask(text)

    def _triage(self, user: str, text: str, uploads: list[Any]) -> formatting.Message:
        readable: list[tuple[Any, Any]] = []  # (upload, district)
        refused: list[access.Access] = []
        for upload in uploads:
            decision = access.for_triage(self.store, user, self.store.district_key_of(upload))
            if decision.allowed:
                readable.append((upload, decision.district))
            else:
                refused.append(decision)
        if not readable:
            refusal = refused[-1].refusal
            return formatting.refusal(refusal.reason, refusal.what_to_do)
        if (row := _ROW.search(text)) is not None:
            upload, district = _pick(readable, text)
            number = int(row.group(1))
            issues = [i for i in (upload.issues or []) if _row_of(i) == number]
            rows = upload.rows or {}
            last = int(rows.get("total", 0)) + int(rows.get("blank_skipped", 0)) if rows else None
            saved = saved_note_of(upload.report, number, [i.get("message", "") for i in issues])
            answer = formatting.row_explanation(
                number, issues, file_name=upload.file_name, total_rows=last, saved=saved
            )
            return _naming(answer, [district], len(refused))
        parts = [
            formatting.thread_summary(
                u.file_name, u.status, u.issues or [], u.file_issues, upload=u
            )
            for u, _ in readable
        ]
        summary = formatting.Message(
            "\n".join(p.text for p in parts), [b for p in parts for b in p.blocks]
        )
        return _naming(summary, [d for _, d in readable], len(refused))


def _row_of(issue: dict) -> int | None:
    try:
        return int(issue.get("row"))
    except (TypeError, ValueError):
        return None


def _pick(readable: list[tuple[Any, Any]], text: str) -> tuple[Any, Any]:
    """Users file unless the question names the demographics file; the latest of its kind
    (after a re-share or a re-link, the thread's latest upload is the one asked about)."""
    want = "demographics" if "demographic" in text.lower() else "users"
    kind = [pair for pair in readable if (pair[0].kind or "users") == want]
    return (kind or readable)[-1]


def _naming(message: formatting.Message, districts: list[Any], hidden: int) -> formatting.Message:
    """Say which district(s) the answer is about, and that uploads of others were left out."""
    names = list(dict.fromkeys(f"{d.name} ({d.key})" for d in districts))
    head = "District: " + ", ".join(names)
    if hidden:
        head += (
            f". {hidden} other upload{'s' if hidden > 1 else ''} in this thread belong"
            f"{'' if hidden > 1 else 's'} to a district you cannot read, so "
            f"{'they are' if hidden > 1 else 'it is'} left out"
        )
    return formatting.Message(
        f"{formatting.escape(head)}.\n{message.text}",
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": formatting.escape(head)}]}]
        + message.blocks,
    )
