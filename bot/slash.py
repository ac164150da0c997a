"""`/rosterbot SUBCOMMAND ...`: parse the text and answer (product.md "Slack behaviour")."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient

from bot import access, formatting
from bot.conversation import ask
from bot.settings import Settings

log = logging.getLogger(__name__)

COMMAND = "/rosterbot"

HELP = [
    ("help", "this list"),
    ("ask QUESTION", "answer a question from the knowledge base"),
    ("template users|demographics", "the blank CSV template"),
    ("dictionary [COLUMN]", "the users.csv / demographics.csv data dictionary"),
    ("download all|students|staff|admins [org_sis_id]", "the roster as a users.csv"),
    ("status", "recent uploads of this channel's district"),
    ("link DISTRICT", "link this channel to a district (system administrators)"),
]


@dataclass
class Reply:
    message: formatting.Message
    #: (filename, bytes) to upload into the channel, e.g. a template or a download
    files: list[tuple[str, bytes]] = field(default_factory=list)


def help_reply() -> Reply:
    lines = [f"• `{COMMAND} {usage}` — {what}" for usage, what in HELP]
    text = ("*rosterbot* — share a users.csv (and demographics.csv) in a linked channel and I "
            "validate and apply it, then reply in its thread with the counts and an error "
            "report. Put \"check\" or \"dry run\" in the message to validate without applying. "
            "In an upload's thread, ask \"why did row 14 fail?\" or \"summary\".\n"
            + "\n".join(lines))
    return Reply(formatting.Message(text.replace("*", "").replace("`", ""),
                                    [formatting._section(text)]))


def not_available(feature: str) -> Reply:
    text = (f"`{COMMAND} {feature}` is not available yet in this version of rosterbot. "
            "Ask support, or try again after the next update.")
    return Reply(formatting.Message(text))


class SlashCommands:
    def __init__(self, settings: Settings, store: Any) -> None:
        self.settings = settings
        self.store = store
        self._handlers: dict[str, Callable[[str, str, str], Reply]] = {
            "help": lambda u, c, a: help_reply(),
            "ask": self.ask,
            "template": self.template,
            "dictionary": self.dictionary,
            "download": self.download,
            "status": self.status,
            "link": self.link,
        }

    def run(self, user: str, channel: str, text: str) -> Reply:
        sub, _, rest = (text or "").strip().partition(" ")
        handler = self._handlers.get(sub.lower())
        if handler is None:
            reply = help_reply()
            if sub:
                reply.message.text = f"I don't know `{sub}`. " + reply.message.text
                reply.message.blocks.insert(0, formatting._section(
                    f"I don't know `{formatting.escape(sub)}`."))
            return reply
        return handler(user, channel, rest.strip())

    # -- subcommands -------------------------------------------------------------------------
    def ask(self, user: str, channel: str, question: str) -> Reply:
        if not question:
            return Reply(formatting.Message(f"Usage: `{COMMAND} ask QUESTION`, e.g. "
                                            f"`{COMMAND} ask what does EMAIL_TAKEN mean`"))
        decision = access.for_question(self.store, self.settings, user, channel,
                                       channel.startswith("D"))
        if not decision.allowed:
            return Reply(formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do))
        return Reply(ask(question))

    def template(self, user: str, channel: str, arg: str) -> Reply:
        kind = arg.lower() or "users"
        if kind not in ("users", "demographics"):
            return Reply(formatting.Message(f"Usage: `{COMMAND} template users|demographics`"))
        data = _template_bytes(kind)
        if data is None:
            return not_available("template")
        return Reply(formatting.Message(f"Here is the blank {kind}.csv template."),
                     [(f"{kind}.csv", data)])

    def dictionary(self, user: str, channel: str, arg: str) -> Reply:
        try:
            from validation import dictionary as d
        except ImportError:
            return not_available("dictionary")
        if not arg:
            return Reply(_dictionary_overview(d))
        found = d.column(arg) or d.column(arg, "demographics")
        if found is None:
            close = [c.name for c in (*d.USERS_COLUMNS, *d.DEMOGRAPHICS_COLUMNS)
                     if c.name.lower() == arg.lower()]
            hint = f" Did you mean `{close[0]}`? (headers are case-sensitive)" if close else ""
            return Reply(formatting.Message(f"`{arg}` is not a users.csv or demographics.csv "
                                            f"column.{hint} `{COMMAND} dictionary` lists them."))
        return Reply(_column_message(found))

    def download(self, user: str, channel: str, arg: str) -> Reply:
        exporter = _exporter()
        if exporter is None:
            return not_available("download")
        decision = access.for_upload(self.store, self.settings, user, channel,
                                     channel.startswith("D"))
        if not decision.allowed:
            return Reply(formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do))
        parts = arg.split()
        what = parts[0].lower() if parts else ""
        if what not in ("all", "students", "staff", "admins"):
            return Reply(formatting.Message(
                f"Usage: `{COMMAND} download all|students|staff|admins [org_sis_id]`"))
        school = parts[1] if len(parts) > 1 else None
        try:
            data = exporter(self.store, decision.district.key, what, school)
        except Exception as err:  # a refusal from the exporter (third party, unknown school)
            return Reply(formatting.refusal(str(err)))
        name = f"{decision.district.key}-{what}{'-' + school if school else ''}-users.csv"
        return Reply(formatting.Message(f"Here is {what} of {decision.district.key} as {name}."),
                     [(name, data)])

    def status(self, user: str, channel: str, arg: str) -> Reply:
        decision = access.for_status(self.store, self.settings, user, channel,
                                     channel.startswith("D"))
        if not decision.allowed:
            return Reply(formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do))
        district = decision.district
        uploads = self.store.recent_uploads(district.key, 10)
        if not uploads:
            return Reply(formatting.Message(f"No uploads yet for {district.name} "
                                            f"({district.key})."))
        lines = [f"*Recent uploads of {formatting.escape(district.name)} ({district.key})*"]
        for u in uploads:
            when = u.created_at.strftime("%Y-%m-%d %H:%M UTC") if u.created_at else ""
            mode = " (check only)" if u.dry_run else ""
            status = u.status or u.state
            lines.append(f"• {when} — {formatting.escape(u.file_name or 'file')}{mode} by "
                         f"<@{u.actor}>: {status}" + _count_brief(u.counts or {}))
        text = "\n".join(lines)
        return Reply(formatting.Message(text, [formatting._section(text)]))

    def link(self, user: str, channel: str, arg: str) -> Reply:
        key = arg.split()[0] if arg.split() else ""
        if not key:
            return Reply(formatting.Message(f"Usage: `{COMMAND} link DISTRICT`"))
        if channel.startswith("D"):
            return Reply(formatting.refusal("A direct message cannot be linked to a district.",
                                            "Run the command in the district's channel."))
        decision = access.for_link(self.store, user, key)
        if not decision.allowed:
            return Reply(formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do))
        self.store.link_channel(decision.district.key, channel)
        return Reply(formatting.Message(
            f":link: This channel is now linked to {decision.district.name} "
            f"({decision.district.key}). Administrators can share users.csv files here."))


def _count_brief(counts: dict) -> str:
    errors = sum(int(v.get("errors", 0)) for v in counts.values() if isinstance(v, dict))
    changed = sum(int(v.get("created", 0)) + int(v.get("updated", 0)) + int(v.get("removed", 0))
                  for v in counts.values() if isinstance(v, dict))
    return f" — {changed} changes, {errors} errors" if counts else ""


def _dictionary_overview(d: Any) -> formatting.Message:
    def names(columns: Any, kind: str) -> str:
        return ", ".join(f"`{c.name}`" for c in columns if c.kind == kind) or "—"

    text = (f"*users.csv columns*\nRequired: {names(d.USERS_COLUMNS, d.Kind.REQUIRED)}\n"
            f"Conditional: {names(d.USERS_COLUMNS, d.Kind.CONDITIONAL)}\n"
            f"Optional: {names(d.USERS_COLUMNS, d.Kind.OPTIONAL)}\n"
            f"*demographics.csv columns*\n"
            + ", ".join(f"`{c.name}`" for c in d.DEMOGRAPHICS_COLUMNS)
            + f"\n`{COMMAND} dictionary COLUMN` explains one column.")
    return formatting.Message(text.replace("*", "").replace("`", ""), [formatting._section(text)])


def _column_message(c: Any) -> formatting.Message:
    lines = [f"*`{c.name}`* — {c.kind}" + (f" ({c.condition})" if c.condition else ""),
             formatting.escape(c.meaning)]
    if c.accepted:
        lines.append(f"Accepted: {formatting.escape(c.accepted)}")
    if c.example:
        lines.append(f"Example: `{formatting.escape(c.example)}`")
    if c.codes:
        lines.append("Issue codes: " + ", ".join(f"`{code}`" for code in c.codes))
    text = "\n".join(lines)
    return formatting.Message(text.replace("*", "").replace("`", ""), [formatting._section(text)])


def _template_bytes(kind: str) -> bytes | None:
    """validation.templates.template_csv(kind), once validation/ ships it."""
    if importlib.util.find_spec("validation.templates") is None:
        return None
    return importlib.import_module("validation.templates").template_csv(kind)


def _exporter() -> Callable[..., bytes] | None:
    """roster.export.download_csv(store, district_key, kind, school) -> bytes, once it exists."""
    if importlib.util.find_spec("roster.export") is None:
        return None
    return getattr(importlib.import_module("roster.export"), "download_csv", None)


def upload_files(client: WebClient, channel: str, files: list[tuple[str, bytes]]) -> None:
    for name, data in files:
        client.files_upload_v2(channel=channel, file=data, filename=name, title=name)
