"""Text addressed to the bot: knowledge-base questions, and triage in an upload's thread.

* In an upload's thread, "row 14" / "why did row 14 fail?" explains that row from the stored
  upload record and "summary" repeats the top issues (no mention needed).
* A mention (`app_mention`) or any DM is a question, answered from `faq.lookup()`.
Everything is answered in the thread of the message.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_sdk import WebClient

from bot import access, formatting
from bot.settings import Settings
from bot.store_adapter import uploads_in_thread
from bot.uploads import RecentKeys, is_dm

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
_ROW = re.compile(r"\brow\s*(?:number\s*|no\.?\s*|#\s*)?(\d{1,7})\b", re.IGNORECASE)
_SUMMARY = re.compile(r"\b(summary|summarize|summarise|top issues)\b", re.IGNORECASE)


def strip_mentions(text: str | None) -> str:
    return _MENTION.sub("", text or "").strip()


def ask(question: str) -> formatting.Message:
    import faq

    return formatting.kb_answer(faq.lookup(question))


class Conversation:
    def __init__(self, settings: Settings, store: Any) -> None:
        self.settings = settings
        self.store = store
        self._answered = RecentKeys()

    def handle(self, client: WebClient, event: dict, *, mentioned: bool) -> None:
        # A mention fires both app_mention and message; answer a message once.
        if not self._answered.first_time(f"{event.get('channel')}:{event.get('ts')}"):
            return
        text = strip_mentions(event.get("text"))
        channel, ts, user = event["channel"], event["ts"], event.get("user", "")
        thread_ts = event.get("thread_ts")
        reply_ts = thread_ts or ts
        dm = is_dm(event)

        if thread_ts and (_ROW.search(text) or _SUMMARY.search(text)):
            uploads = uploads_in_thread(self.store, channel, thread_ts)
            if uploads:
                self._triage(client, channel, reply_ts, user, text, uploads)
                return
        if not (dm or mentioned):
            return  # channel chatter not addressed to the bot
        decision = access.for_question(self.store, self.settings, user, channel, dm)
        if not decision.allowed:
            message = formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do)
        elif not text:
            message = formatting.Message(
                "Ask me about an error code or a column (\"what does EMAIL_TAKEN mean?\"), "
                "or share a users.csv here. `/rosterbot help` lists the commands.")
        else:
            message = ask(text)
        client.chat_postMessage(channel=channel, thread_ts=reply_ts, **message.kwargs())

    def _triage(self, client: WebClient, channel: str, reply_ts: str, user: str, text: str,
                uploads: list[Any]) -> None:
        decision = access.for_triage(self.store, user, _district_key(self.store, uploads[0]))
        if not decision.allowed:
            message = formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do)
        elif (row := _ROW.search(text)) is not None:
            upload = _pick(uploads, text)
            number = int(row.group(1))
            issues = [i for i in (upload.issues or []) if _row_of(i) == number]
            rows = upload.rows or {}
            last = int(rows.get("total", 0)) + int(rows.get("blank_skipped", 0)) if rows else None
            message = formatting.row_explanation(number, issues, file_name=upload.file_name,
                                                 total_rows=last)
        else:
            parts = [formatting.thread_summary(u.file_name, u.status, u.issues or [])
                     for u in uploads]
            message = formatting.Message("\n".join(p.text for p in parts),
                                         [b for p in parts for b in p.blocks])
        client.chat_postMessage(channel=channel, thread_ts=reply_ts, **message.kwargs())


def _row_of(issue: dict) -> int | None:
    try:
        return int(issue.get("row"))
    except (TypeError, ValueError):
        return None


def _pick(uploads: list[Any], text: str) -> Any:
    """Users file unless the question names the demographics file."""
    want = "demographics" if "demographic" in text.lower() else "users"
    return next((u for u in uploads if (u.kind or "users") == want), uploads[0])


def _district_key(store: Any, upload: Any) -> str | None:
    from bot.store_adapter import district_key_of

    return district_key_of(store, upload)
