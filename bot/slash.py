"""`/rosterbot SUBCOMMAND ...`: parse the text and answer (product.md "Slack behaviour")."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from slack_sdk import WebClient

from bot import access, audit_text, formatting
from bot.conversation import ask
from bot.delivery import describe, open_dm, upload_file
from bot.settings import Settings
from roster.ids import is_slack_user_id, slack_user_id_problem
from roster.store import ACCESS_KINDS

if TYPE_CHECKING:
    from roster.store import Store


log = logging.getLogger(__name__)

COMMAND = "/rosterbot"

#: (who may use them, [(usage, what it does)]) — only what works, grouped by who may use it
HELP = [
    (
        "Anyone in a linked channel",
        [
            ("help", "this list"),
            ("ask QUESTION", "answer a question from the knowledge base"),
            ("template users|demographics", "the blank CSV template"),
            ("dictionary [COLUMN]", "the users.csv / demographics.csv data dictionary"),
        ],
    ),
    (
        "Administrators of the district (system, enrollment or support access)",
        [
            (
                "status [DISTRICT]",
                "recent uploads and set-up changes of this channel's district, or the one named",
            ),
            ("history USER_ID|CLASS_ID", "every change to one person or class, oldest first"),
        ],
    ),
    (
        "System and enrollment access",
        [("download all|students|staff|admins [org_sis_id]", "the roster as a users.csv")],
    ),
    (
        "Enrollment access",
        [
            (
                "undo UPLOAD_ID [confirm]",
                "reverse every change an applied upload made (or the Undo button on its summary)",
            )
        ],
    ),
    (
        "System administrators of the district",
        [
            ("admins", "who has which access"),
            ("grant @person system|enrollment|support", "give access (adds to theirs)"),
            ("revoke @person [system|enrollment|support]", "take access away (none named: all)"),
            ("schools", "the district's schools and their IDs"),
            ("channels", "the channels linked to the district"),
            ("link DISTRICT", "link this channel to a district"),
        ],
    ),
]


@dataclass
class Reply:
    message: formatting.Message
    #: (filename, bytes) to upload into the channel, e.g. a template
    files: list[tuple[str, bytes]] = field(default_factory=list)
    #: (filename, bytes) to upload to the requester only, in the bot's DM with them (roster data)
    dm_files: list[tuple[str, bytes]] = field(default_factory=list)


def help_reply() -> Reply:
    groups = []
    for who, commands in HELP:
        lines = [f"• `{COMMAND} {usage}` — {what}" for usage, what in commands]
        groups.append(f"*{who}*\n" + "\n".join(lines))
    intro = (
        "*rosterbot* — share a users.csv (and demographics.csv) in a linked channel and I "
        "validate and apply it, then reply in its thread with the counts and an error "
        'report (system and enrollment access). Start the message with "check", "dry run" or '
        '"preview" to validate without applying. In an upload\'s thread, administrators of '
        'the district ask "why did row 14 fail?" or "summary". In a direct message, a district named ("status '
        'd2", "admins d2", or its key in the message with the file) decides the district, and '
        "is refused if you have no access there."
    )
    text = intro + "\n\n" + "\n\n".join(groups)
    blocks = [formatting._section(intro)] + [formatting._section(g) for g in groups]
    return Reply(formatting.Message(text.replace("*", "").replace("`", ""), blocks))


STATUS_LIMIT = 10
HISTORY_LINES = 40


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
            "history": self.history,
            "undo": self.undo,
            "link": self.link,
            "admins": self.admins,
            "grant": self.grant,
            "revoke": self.revoke,
            "schools": self.schools,
            "channels": self.channels,
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
        """The audit trail: the district's recent uploads and set-up changes (any grant of
        that district)."""
        decision = access.for_status(
            self.store, self.settings, user, channel, channel.startswith("D"), arg
        )
        if not decision.allowed:
            return Reply(formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do))
        district = decision.district
        # failed checks are folded into one line, so read more than are shown
        uploads = self.store.recent_uploads(district.key, STATUS_LIMIT * 5)
        trail = self.store.audit_trail(district.key, STATUS_LIMIT)
        if uploads:
            head = (
                f"*Recent uploads of {formatting.escape(district.name)} ({district.key})* — "
                "when, file, SHA-256, who, what happened, each entity's counts"
            )
            lines = formatting.status_lines(uploads, STATUS_LIMIT)
        else:
            head, lines = (
                f"No uploads yet for {formatting.escape(district.name)} ({district.key}).",
                [],
            )
        sections = [(head, lines)]
        if trail:
            sections.append(
                (
                    "*Set-up changes* (access, channels, schools) — newest first",
                    ["• " + audit_text.describe(e, slack=True) for e in trail],
                )
            )
        return Reply(_sectioned(sections))

    def history(self, user: str, channel: str, arg: str) -> Reply:
        """Every change to one person (userId) or class (classId), oldest first (any grant of
        the district: support access included)."""
        from bot.changes_text import timeline_line
        from roster.undo import history

        words = arg.split()
        usage = f"Usage: `{COMMAND} history USER_ID|CLASS_ID`"
        decision = access.for_status(
            self.store, self.settings, user, channel, channel.startswith("D"), arg
        )
        if not decision.allowed:
            return Reply(formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do))
        district = decision.district
        words = [w for w in words if w.casefold() != district.key.casefold()] or words[:0]
        if len(words) != 1:
            return Reply(formatting.Message(usage))
        wanted = words[0]
        changes, what = [], ""
        for kind, label in (("user_id", "userId"), ("class_id", "classId")):
            try:
                changes = history(self.store, district.key, **{kind: wanted})
                what = f"{label} {wanted}"
                break
            except Exception:  # RosterError: no such person; try a class
                continue
        if not what:
            return Reply(
                formatting.Message(
                    f"{formatting.escape(district.name)} ({district.key}) has no person or "
                    f"class `{formatting.escape(wanted)}`.\n{usage}"
                )
            )
        head = (
            f"*History of {formatting.escape(what)} in {formatting.escape(district.name)} "
            f"({district.key})* — oldest first"
        )
        lines = [formatting.escape(timeline_line(c)) for c in changes]
        shown = lines[-HISTORY_LINES:]
        if len(lines) > len(shown):
            shown.insert(
                0,
                f"…{len(lines) - len(shown)} earlier change(s) not shown; "
                f"`rosterbot history {district.key} --{'user' if what.startswith('userId') else 'class'} "
                f"{formatting.escape(wanted)}` lists them all",
            )
        return Reply(
            _sectioned([(head, [f"• {line}" for line in shown] or ["no change recorded"])])
        )

    def undo(self, user: str, channel: str, arg: str) -> Reply:
        from bot.undo_flow import undo_upload

        words = arg.lower().split()
        confirm = "confirm" in words
        ids = [w.lstrip("#") for w in words if w.lstrip("#").isdigit()]
        if len(ids) != 1 or len(words) != len(ids) + int(confirm):
            return Reply(formatting.Message(f"Usage: `{COMMAND} undo UPLOAD_ID [confirm]`"))
        linked = (
            None
            if channel.startswith("D")
            else access.channel_district(self.store, self.settings, channel)
        )
        answer = undo_upload(
            self.store, user, int(ids[0]), channel_district=linked, confirm_removals=confirm
        )
        return Reply(answer.message, dm_files=[answer.changes] if answer.changes else [])

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
        self.store.link_channel(district.key, channel, team_id=access.requesting_team(), actor=user)
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

    # -- self-service for a district's system administrators -------------------------------
    def _admin_district(self, user: str, channel: str, leftover: list[str], what: str):
        """(district, None) or (None, refusal Reply) for a self-service command; `leftover`
        are the words that are not part of the command (a district key, in a DM)."""
        if len(leftover) > 1:
            return None, Reply(
                formatting.Message(f"I don't understand `{formatting.escape(' '.join(leftover))}`.")
            )
        decision = access.for_district_admin(
            self.store,
            self.settings,
            user,
            channel,
            channel.startswith("D"),
            leftover[0] if leftover else "",
            what,
        )
        if not decision.allowed:
            return None, Reply(
                formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do)
            )
        return decision.district, None

    def admins(self, user: str, channel: str, arg: str) -> Reply:
        district, refused = self._admin_district(user, channel, arg.split(), "Listing access")
        if refused:
            return refused
        grants = self.store.admins(district.key)
        head = f"*Administrators of {formatting.escape(district.name)} ({district.key})*"
        lines = [f"• <@{g.slack_user_id}> — {', '.join(g.access)}" for g in grants]
        return Reply(
            _sectioned(
                [
                    (head, lines or ["nobody yet"]),
                    (
                        f"Change it with `{COMMAND} grant @person system|enrollment|support` "
                        f"or `{COMMAND} revoke @person [system|enrollment|support]`.",
                        [],
                    ),
                ]
            )
        )

    def grant(self, user: str, channel: str, arg: str) -> Reply:
        return self._change_access(user, channel, arg, grant=True)

    def revoke(self, user: str, channel: str, arg: str) -> Reply:
        return self._change_access(user, channel, arg, grant=False)

    def _change_access(self, user: str, channel: str, arg: str, grant: bool) -> Reply:
        from roster.store import RosterError

        verb = "grant" if grant else "revoke"
        usage = (
            f"Usage: `{COMMAND} grant @person system|enrollment|support` (one or more kinds)"
            if grant
            else f"Usage: `{COMMAND} revoke @person [system|enrollment|support]` (none: all access)"
        )
        parsed = parse_access_command(arg)
        if parsed.problem:
            return Reply(formatting.Message(f"{parsed.problem}\n{usage}"))
        unknown = [w for w in parsed.leftover if self.store.get_district(w) is None]
        if unknown:  # "enrolment", "admin": not a kind of access, not a district
            return Reply(
                formatting.Message(
                    f"I don't understand `{formatting.escape(' '.join(unknown))}`: the kinds of "
                    f"access are system, enrollment and support.\n{usage}"
                )
            )
        if grant and not parsed.kinds:
            return Reply(formatting.Message(f"Say which access to grant.\n{usage}"))
        district, refused = self._admin_district(
            user, channel, parsed.leftover, "Granting access" if grant else "Revoking access"
        )
        if refused:
            return refused
        flags = {kind: kind in parsed.kinds for kind in ACCESS_KINDS}
        who = f"<@{parsed.user}>"
        where = f"{formatting.escape(district.name)} ({district.key})"
        held = self.store.grant(district.key, parsed.user)
        try:
            if grant:
                now = self.store.grant_admin(district.key, parsed.user, **flags, actor=user)
                after = now.access
            else:
                _, now = self.store.revoke_admin(district.key, parsed.user, **flags, actor=user)
                after = now.access if now else []
        except RosterError as refused_change:
            return Reply(
                formatting.refusal(
                    _sentence(str(refused_change).replace(parsed.user, who)),
                    "Nothing was changed.",
                )
            )
        log.info(
            "%s %s %s in %s by %s", verb, parsed.kinds or "all", parsed.user, district.key, user
        )
        left = f"{', '.join(after)} access" if after else "no access"
        if held is not None and held.access == after:
            return Reply(
                formatting.Message(f"{who} already has {left} to {where}; nothing changed.")
            )
        return Reply(
            formatting.Message(
                f":white_check_mark: {who} now has {left} to {where}. "
                f"Recorded in `{COMMAND} status`."
            )
        )

    def schools(self, user: str, channel: str, arg: str) -> Reply:
        district, refused = self._admin_district(user, channel, arg.split(), "Listing schools")
        if refused:
            return refused
        schools = self.store.schools(district.key)
        head = (
            f"*Schools of {formatting.escape(district.name)} ({district.key})* — the ID to use "
            "in org_sis_id, and the name"
        )
        lines = [f"• `{org}` {formatting.escape(name)}" for org, name in schools]
        tail = (
            "Schools are added and renamed by whoever runs rosterbot "
            "(`rosterbot school add|rename`)."
        )
        return Reply(_sectioned([(head, lines or ["none yet"]), (tail, [])]))

    def channels(self, user: str, channel: str, arg: str) -> Reply:
        district, refused = self._admin_district(user, channel, arg.split(), "Listing channels")
        if refused:
            return refused
        linked = self.store.channels(district.key)
        head = f"*Channels linked to {formatting.escape(district.name)} ({district.key})*"
        lines = [f"• <#{c}>" for c in linked]
        tail = f"Link another with `{COMMAND} link {district.key}` in that channel."
        return Reply(_sectioned([(head, lines or ["none"]), (tail, [])]))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:].rstrip(".") + "."


@dataclass(frozen=True)
class AccessCommand:
    """`grant|revoke @person [kinds] [DISTRICT]`, parsed."""

    user: str = ""
    kinds: tuple[str, ...] = ()
    leftover: list[str] = field(default_factory=list)
    problem: str = ""


#: a user as Slack escapes it in a slash command: <@U123|name> or <@U123>
_USER_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")


def parse_access_command(arg: str) -> AccessCommand:
    mentions = _USER_MENTION.findall(arg)
    words = [w for w in re.split(r"[\s,]+", _USER_MENTION.sub(" ", arg)) if w]
    kinds = tuple(k for k in ACCESS_KINDS if k in {w.lower() for w in words})
    rest = [w for w in words if w.lower() not in ACCESS_KINDS]
    if not mentions:  # a member id typed as is (U012AB3CD)
        mentions = [w for w in rest if is_slack_user_id(w)]
        rest = [w for w in rest if not is_slack_user_id(w)]
    if len(mentions) != 1:
        typed = next((w for w in rest if w.startswith("@")), "")
        if typed:
            return AccessCommand(
                problem=f"I cannot tell who `{formatting.escape(typed)}` is: pick the person from "
                "the list Slack shows as you type @ (or give their member id, U…)."
            )
        return AccessCommand(
            problem="Name exactly one person, as a mention (@name picked from Slack's list)."
        )
    problem = slack_user_id_problem(mentions[0])
    if problem:
        return AccessCommand(problem=_sentence(problem))
    return AccessCommand(mentions[0], kinds, rest)


def _sectioned(sections: list[tuple[str, list[str]]]) -> formatting.Message:
    """A message of headed bullet lists, each section under Slack's 3000 characters."""
    blocks: list[dict] = []
    text_parts: list[str] = []
    for head, lines in sections:
        text_parts.append("\n".join([head, *lines]))
        chunk = [head]
        for line in lines:
            if sum(len(c) + 1 for c in chunk) + len(line) > 2900:
                blocks.append(formatting._section("\n".join(chunk)))
                chunk = []
            chunk.append(line)
        blocks.append(formatting._section("\n".join(chunk)))
    return formatting.Message("\n\n".join(text_parts), blocks)


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
