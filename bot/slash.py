"""`/rosterbot SUBCOMMAND ...`: parse the text and answer (product.md "Slack behaviour")."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from slack_sdk import WebClient

from bot import access, formatting
from bot.conversation import ask
from bot.delivery import describe, open_dm, upload_file
from bot.settings import Settings

if TYPE_CHECKING:
    from roster.store import Store


log = logging.getLogger(__name__)

COMMAND = "/rosterbot"

HELP = [
    ("help", "this list"),
    ("ask QUESTION", "answer a question from the knowledge base"),
    ("template users|demographics", "the blank CSV template"),
    ("dictionary [COLUMN]", "the users.csv / demographics.csv data dictionary"),
    ("download all|students|staff|admins [org_sis_id]", "the roster as a users.csv"),
    ("status [DISTRICT]", "recent uploads of this channel's district, or the one named"),
    ("link DISTRICT", "link this channel to a district (system administrators)"),
]


@dataclass
class Reply:
    message: formatting.Message
    #: (filename, bytes) to upload into the channel, e.g. a template
    files: list[tuple[str, bytes]] = field(default_factory=list)
    #: (filename, bytes) to upload to the requester only, in the bot's DM with them (roster data)
    dm_files: list[tuple[str, bytes]] = field(default_factory=list)


def help_reply() -> Reply:
    lines = [f"• `{COMMAND} {usage}` — {what}" for usage, what in HELP]
    text = (
        "*rosterbot* — share a users.csv (and demographics.csv) in a linked channel and I "
        "validate and apply it, then reply in its thread with the counts and an error "
        'report. Put "check" or "dry run" in the message to validate without applying. '
        'In an upload\'s thread, ask "why did row 14 fail?" or "summary". In a direct '
        'message, a district named ("status d2", or its key in the message with the file) '
        "decides the district, and is refused if you have no access there.\n" + "\n".join(lines)
    )
    return Reply(
        formatting.Message(text.replace("*", "").replace("`", ""), [formatting._section(text)])
    )


STATUS_LIMIT = 10


class SlashCommands:
    def __init__(self, settings: Settings, store: Store) -> None:
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
                reply.message.blocks.insert(
                    0, formatting._section(f"I don't know `{formatting.escape(sub)}`.")
                )
            return reply
        return handler(user, channel, rest.strip())

    # -- subcommands -------------------------------------------------------------------------
    def ask(self, user: str, channel: str, question: str) -> Reply:
        if not question:
            return Reply(
                formatting.Message(
                    f"Usage: `{COMMAND} ask QUESTION`, e.g. "
                    f"`{COMMAND} ask what does EMAIL_TAKEN mean`"
                )
            )
        decision = access.for_question(
            self.store, self.settings, user, channel, channel.startswith("D")
        )
        if not decision.allowed:
            return Reply(formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do))
        return Reply(ask(question))

    def template(self, user: str, channel: str, arg: str) -> Reply:
        from validation.templates import KINDS, template_csv

        kind = arg.lower() or "users"
        if kind not in KINDS:
            return Reply(formatting.Message(f"Usage: `{COMMAND} template users|demographics`"))
        return Reply(
            formatting.Message(
                f"Here is the blank {kind}.csv template, with example rows to replace."
            ),
            [(f"{kind}.csv", template_csv(kind))],
        )

    def dictionary(self, user: str, channel: str, arg: str) -> Reply:
        from validation.templates import UnknownColumn, dictionary_text

        try:
            text = dictionary_text(arg or None)
        except UnknownColumn as unknown:
            return Reply(formatting.Message(str(unknown)))
        return Reply(formatting.preformatted(text))

    def download(self, user: str, channel: str, arg: str) -> Reply:
        from roster.export import download_csv
        from roster.store import RosterError

        decision = access.for_download(
            self.store, self.settings, user, channel, channel.startswith("D"), arg
        )
        if not decision.allowed:
            return Reply(formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do))
        parts = arg.split()
        if channel.startswith("D") and len(parts) > 1:  # "students d2": the DM named its district
            parts = parts[:1] + [
                p for p in parts[1:] if p.casefold() != decision.district.key.casefold()
            ]
        what = parts[0].lower() if parts else ""
        if what not in ("all", "students", "staff", "admins") or len(parts) > 2:
            return Reply(
                formatting.Message(
                    f"Usage: `{COMMAND} download all|students|staff|admins [org_sis_id]`"
                )
            )
        school = parts[1] if len(parts) > 1 else None
        key = decision.district.key
        try:
            data = download_csv(self.store, key, what, school)
        except RosterError as refused:  # third party asking for students, unknown school
            return Reply(formatting.refusal(str(refused).rstrip(".") + "."))
        name = f"{key}-{what}{'-' + school if school else ''}-users.csv"
        log.info("download %s of %s by %s", what + (f" {school}" if school else ""), key, user)
        return Reply(
            formatting.Message(
                f":lock: Roster data is personal data, so I sent {name} ({what} of {key}) to you "
                "in a direct message."
            ),
            dm_files=[(name, data)],
        )

    def status(self, user: str, channel: str, arg: str) -> Reply:
        """The audit trail of the district's recent uploads (any grant of that district)."""
        decision = access.for_status(
            self.store, self.settings, user, channel, channel.startswith("D"), arg
        )
        if not decision.allowed:
            return Reply(formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do))
        district = decision.district
        uploads = self.store.recent_uploads(district.key, STATUS_LIMIT)
        if not uploads:
            return Reply(
                formatting.Message(f"No uploads yet for {district.name} ({district.key}).")
            )
        head = (
            f"*Recent uploads of {formatting.escape(district.name)} ({district.key})* — "
            "when, file, SHA-256, who, state, counts"
        )
        lines = [formatting.audit_line(u) for u in uploads]
        text = "\n".join([head, *lines])
        blocks = [formatting._section(head)]
        chunk: list[str] = []
        for line in lines:  # a section holds at most 3000 characters
            if chunk and sum(len(c) + 1 for c in chunk) + len(line) > 2900:
                blocks.append(formatting._section("\n".join(chunk)))
                chunk = []
            chunk.append(line)
        blocks.append(formatting._section("\n".join(chunk)))
        return Reply(formatting.Message(text, blocks))

    def link(self, user: str, channel: str, arg: str) -> Reply:
        key = arg.split()[0] if arg.split() else ""
        if not key:
            return Reply(formatting.Message(f"Usage: `{COMMAND} link DISTRICT`"))
        if channel.startswith("D"):
            return Reply(
                formatting.refusal(
                    "A direct message cannot be linked to a district.",
                    "Run the command in the district's channel.",
                )
            )
        before = access.channel_district(self.store, self.settings, channel)
        decision = access.for_link(self.store, user, key, channel, self.settings)
        if not decision.allowed:
            return Reply(formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do))
        district = decision.district
        self.store.link_channel(district.key, channel, team_id=access.requesting_team())
        moved = (
            f" It served {formatting.escape(before.name)} ({before.key}) until now; uploads "
            f"and status here are {district.key}'s from now on."
            if before is not None and before.key != district.key
            else ""
        )
        return Reply(
            formatting.Message(
                f":link: This channel is now linked to {formatting.escape(district.name)} "
                f"({district.key}).{moved} Administrators can share users.csv files here."
            )
        )


def deliver(
    client: WebClient, user: str, channel: str, reply: Reply, retry_backoff: float = 0.5
) -> formatting.Message:
    """Upload the reply's files (channel files into the channel, roster data into the
    requester's DM); the message to answer with, or why the files could not be delivered."""
    try:
        for name, data in reply.files:
            upload_file(client, channel=channel, data=data, filename=name, backoff=retry_backoff)
        if reply.dm_files:
            dm = open_dm(client, user)
            for name, data in reply.dm_files:
                upload_file(client, channel=dm, data=data, filename=name, backoff=retry_backoff)
    except Exception as err:
        log.error(
            "delivering %s to %s failed: %s",
            [n for n, _ in reply.files + reply.dm_files],
            user,
            describe(err),
        )
        return formatting.Message(
            f":x: I could not send the file ({describe(err)}). Try again in a few minutes; if "
            "it keeps failing, ask your Slack admin to reinstall rosterbot so it has the "
            "`files:write` and `im:write` permissions."
        )
    return reply.message
