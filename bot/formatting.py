"""Slack messages (Block Kit + fallback text) for everything the bot says.

Input is plain data: the pipeline's per-file JSON (product.md `--json` shape), knowledge-base
lookup results, stored issues.  Code titles and one-line fixes come from validation.catalog.

Two rules hold for every message built here:
- Anything a person or a file supplied (file names, CSV values, district keys typed in a
  message) goes through `escape()` before it enters `text` or a block, so `<!channel>` or
  `<https://…|label>` in a file name is shown, never acted on.
- Every list is capped (`capped()`: the first N, then "…and N more") and packed into
  sections under Slack's text limit (`sections()`), so a message stays within Block Kit's
  limits by construction; `Message` still trims anything over a limit as a last resort,
  because Slack refuses the whole message otherwise (`invalid_blocks`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot import text as words
from bot.audit_text import person
from bot.mrkdwn import escape
from roster.states import UNFINISHED_STATES, FileStatus, RecoveryAction, UploadState
from validation.catalog import CATALOG

ENTITY_ORDER = ("school", "staff", "student", "class", "enrollment", "demographics")
COUNT_COLUMNS = (
    ("created", "created"),
    ("updated", "updated"),
    ("no_change", "no change"),
    ("removed", "removed"),
    ("errors", "errors"),
)
TOP_ISSUES = 5
FILE_ISSUES_SHOWN = 10  # file-level problems listed in a summary (the report has them all)
NAMES_SHOWN = 10  # file names listed in one line

# Slack's limits (docs.slack.dev Block Kit reference; chat.postMessage `text`).
MAX_BLOCKS = 50
MAX_TEXT = 40_000
SECTION_TEXT = 3000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
BUTTON_TEXT = 75
SOURCE_NAMES = {"clever": "Clever", "classlink": "ClassLink", "gg4l": "GG4L"}

#: the emoji of each verdict (bot/text.py): the summary's icon and the file's final reaction
VERDICT_EMOJI = {
    words.Verdict.APPLIED: "white_check_mark",
    words.Verdict.APPLIED_WITH_ERRORS: "warning",
    words.Verdict.NOTHING_APPLIED: "x",
    words.Verdict.HELD: "raised_hand",
    words.Verdict.FAILED: "x",
    words.Verdict.CHECKED: "white_check_mark",
    words.Verdict.CHECKED_WITH_ERRORS: "warning",
    words.Verdict.CHECK_FAILED: "x",
}
VERDICT_ICONS = {v: f":{e}:" for v, e in VERDICT_EMOJI.items()}


def reaction(files: Sequence[Mapping[str, Any]], *, dry_run: bool) -> str:
    """The final reaction on the message that shared the files: the worst file's emoji."""
    worst = words.overall(words.verdict(f, dry_run=dry_run) for f in files)
    return VERDICT_EMOJI[worst] if worst else "x"


@dataclass
class Message:
    """What chat.postMessage / respond() get: fallback text and blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.text = _clip(self.text, MAX_TEXT)
        self.blocks = within_limits(self.blocks)

    def kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks} if self.blocks else {"text": self.text}


def names_list(names: Sequence[str], limit: int = NAMES_SHOWN) -> str:
    """File names for a sentence, escaped and capped: "a.csv, b.csv …and 3 more"."""
    return ", ".join(capped([escape(n) for n in names], limit, "more"))


def capped(lines: Sequence[str], limit: int, what: str = "more") -> list[str]:
    """The first `limit` lines, then "…and N <what>" for the rest."""
    if len(lines) <= limit:
        return list(lines)
    return [*lines[:limit], f"…and {len(lines) - limit} {what}"]


def sections(lines: Sequence[str], head: str = "") -> list[dict[str, Any]]:
    """Lines packed into as few sections as fit Slack's section text limit."""
    chunks: list[str] = []
    current = head
    for line in lines:
        line = _clip(line, SECTION_TEXT)
        if current and len(current) + 1 + len(line) > SECTION_TEXT:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return [_section(c) for c in chunks]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SECTION_TEXT)}}


def _context(text: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": _clip(text, SECTION_TEXT)}],
    }


def within_limits(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The blocks trimmed to Slack's limits: text lengths, element counts, 50 blocks (the
    last kept block then says how many were left out)."""
    fitted = []
    for block in blocks:
        kind = block.get("type")
        block = dict(block)
        if kind == "section" and isinstance(block.get("text"), dict):
            block["text"] = dict(block["text"], text=_clip(block["text"]["text"], SECTION_TEXT))
        elif kind == "header" and isinstance(block.get("text"), dict):
            block["text"] = dict(block["text"], text=_clip(block["text"]["text"], HEADER_TEXT))
        elif kind == "context":
            block["elements"] = [
                dict(e, text=_clip(e["text"], SECTION_TEXT)) if "text" in e else e
                for e in block.get("elements", [])[:CONTEXT_ELEMENTS]
            ]
        elif kind == "actions":
            block["elements"] = [
                dict(e, text=dict(e["text"], text=_clip(e["text"]["text"], BUTTON_TEXT)))
                if e.get("type") == "button"
                else e
                for e in block.get("elements", [])
            ]
        fitted.append(block)
    if len(fitted) > MAX_BLOCKS:
        # keep an actions block (a Confirm button) if there is one at the end
        tail = [b for b in fitted[MAX_BLOCKS - 1 :] if b.get("type") == "actions"][-1:]
        keep = fitted[: MAX_BLOCKS - 1 - len(tail)]
        left = len(fitted) - len(keep) - len(tail)
        fitted = [
            *keep,
            _context(f"…and {left} more parts left out of this message (Slack's limit)."),
            *tail,
        ]
    return fitted


def source_name(enrollment_source: str | None) -> str:
    return SOURCE_NAMES.get((enrollment_source or "").lower(), enrollment_source or "")


# -- uploads ---------------------------------------------------------------------------------


def processing(names: Sequence[str], dry_run: bool, skipped: Sequence[str] = ()) -> Message:
    what = "Checking" if dry_run else "Processing"
    text = f":hourglass_flowing_sand: {what} {names_list(names)}…"
    if dry_run:
        text += " (check only — nothing will be applied)"
    if skipped:
        text += f"\nSkipped (not CSV): {names_list(skipped)}"
    return Message(text)


def progress(names: Sequence[str], stage: str, fraction: float, dry_run: bool) -> Message:
    what = "Checking" if dry_run else "Processing"
    pct = max(0, min(100, int(round(fraction * 100))))
    return Message(f":hourglass_flowing_sand: {what} {names_list(names)}… {escape(stage)} ({pct}%)")


def processed(names: Sequence[str], dry_run: bool) -> Message:
    what = "Checked" if dry_run else "Processed"
    return Message(f"{what} {names_list(names)} — results below.")


def count_table(counts: Mapping[str, Mapping[str, int]]) -> str:
    """A monospace table: one line per entity that has any count."""
    entities = [e for e in ENTITY_ORDER if e in counts] + sorted(set(counts) - set(ENTITY_ORDER))
    header = f"{'':<13}" + "".join(f"{label:>11}" for _, label in COUNT_COLUMNS)
    lines = [header]
    for entity in entities:
        row = counts[entity]
        lines.append(
            f"{entity:<13}" + "".join(f"{int(row.get(key, 0)):>11}" for key, _ in COUNT_COLUMNS)
        )
    return "```\n" + "\n".join(lines) + "\n```"


def top_issue_lines(issues: Iterable[Mapping[str, Any]], limit: int = TOP_ISSUES) -> list[str]:
    """`CODE` ×n — title. Fix: one line (from the catalog): errors first, then warnings,
    each most frequent first."""
    ranked = words.ranked_codes(issues)
    lines = []
    for code, n, severity in ranked[:limit]:
        entry = CATALOG.get(code)
        title = entry.title if entry else code
        fix = _fix_line(entry.fix) if entry else ""
        sev = " (warning)" if severity == "warning" else ""
        line = f"• `{code}` ×{n}{sev} — {escape(title)}."
        lines.append(line + (f" _Fix:_ {escape(fix)}" if fix else ""))
    if len(ranked) > limit:
        lines.append(f"…and {len(ranked) - limit} more kinds of issue (see the error report).")
    return lines


def _fix_line(fix: str) -> str:
    return fix.format(column="the column", value="the value", detail="the suggested value")


def verdict_line(f: Mapping[str, Any], *, dry_run: bool) -> str:
    """The first line of a file's summary: icon, file, label, and what was applied."""
    v = words.verdict(f, dry_run=dry_run)
    return (
        f"{VERDICT_ICONS[v]} *{escape(f.get('file', 'file'))}* ({escape(f.get('kind', ''))}): "
        f"*{words.LABELS[v]}* — {escape(words.outcome(f, dry_run=dry_run))}."
    )


def file_summary(f: Mapping[str, Any], *, dry_run: bool) -> list[dict[str, Any]]:
    v = words.verdict(f, dry_run=dry_run)
    blocks = [_section(verdict_line(f, dry_run=dry_run))]
    if v == words.Verdict.HELD:
        blocks.extend(sections(held_lines(f)))
    problems = [
        f"• `{escape(issue.get('code'))}` {escape(issue.get('message', ''))}"
        + (f"\n  _Fix:_ {escape(issue.get('fix'))}" if issue.get("fix") else "")
        for issue in f.get("file_issues") or []
        if not (v == words.Verdict.HELD and issue.get("code") in words.GUARDS)
    ]
    blocks.extend(sections(capped(problems, FILE_ISSUES_SHOWN, "more problems with the file")))
    counts = f.get("counts") or {}
    rows = f.get("rows") or {}
    if f.get("status") == FileStatus.FAILED and not rows.get("total"):
        return blocks  # the file could not be read: no table of zeros, only why (above)
    if counts and v != words.Verdict.FAILED:  # a refused commit created nothing (as the CLI)
        blocks.append(_section(count_table(counts)))
    if rows:
        total, blank = rows.get("total", 0), rows.get("blank_skipped", 0)
        # a check, a held file and a commit the database refused applied nothing
        nothing = dry_run or v in (words.Verdict.HELD, words.Verdict.FAILED)
        applied = "applicable" if nothing else "applied"
        blocks.append(
            _context(
                f"{total} row{'' if total == 1 else 's'} · {rows.get('rejected', 0)} rejected · "
                f"{rows.get('partly_applied', 0)} partly {applied} · "
                f"{rows.get('with_warnings', 0)} with warnings · "
                f"{blank} blank row{'' if blank == 1 else 's'} skipped"
            )
        )
    issues = f.get("issues") or []
    if issues:
        blocks.append(
            _section("*Top issues* (errors first)\n" + "\n".join(top_issue_lines(issues)))
        )
    return blocks


def held_lines(f: Mapping[str, Any]) -> list[str]:
    """A held file: what it would do, the first items, where the full list is, what to
    press (in Slack: the Confirm button, never a command-line flag)."""
    changes = f.get("changes_file")
    report = f"the error report ({f.get('kind', 'users')}-errors.csv) attached in this thread"
    return [
        escape(line)
        for line in words.held_lines(
            words.holds_of(f),
            slack=True,
            report=report,
            changes=(
                f"the changes file ({f.get('kind', 'users')}-changes.csv) attached in this thread"
                if changes
                else ""
            ),
        )
    ]


def upload_summary(
    files: Sequence[Mapping[str, Any]],
    *,
    dry_run: bool,
    enrollment_source: str | None = None,
    reports: Sequence[str] = (),
    held_uploads: Sequence[int] = (),
    message_ts: str | None = None,
    district: str = "",
    changes: Sequence[str] = (),
    undo_uploads: Sequence[int] = (),
    sync: bool = False,
) -> Message:
    """`district`: "Name (key)", said first (every summary names its district)."""
    blocks: list[dict[str, Any]] = []
    if district:
        blocks.append(_context(f"District: *{escape(district)}*"))
    for f in files:
        if blocks:
            blocks.append({"type": "divider"})
        blocks.extend(file_summary(f, dry_run=dry_run))
    if any(i.get("code") == "ROLE_NOT_ALLOWED" for f in files for i in f.get("issues") or []):
        blocks.append(_section(third_party_note(enrollment_source)))
    if reports:
        blocks.append(
            _context(
                f"The error report ({names_list(reports)}) is attached in this thread: each row says "
                "what is wrong and how to fix it. Fix the rows and share the file again."
            )
        )
    if changes:
        blocks.append(_context(changes_note(changes, dry_run=dry_run, held=bool(held_uploads))))
    if held_uploads:
        blocks.extend(confirm_button(held_uploads, message_ts, sync=sync))
    if undo_uploads and not dry_run:
        blocks.extend(undo_buttons(undo_uploads))
    text = "; ".join(_file_text(f, dry_run) for f in files) or "No file was processed."
    return Message(f"{escape(district)}: {text}" if district else text, blocks)


def changes_note(names: Sequence[str], *, dry_run: bool, held: bool) -> str:
    """Where the changes file is, and what it lists (a check and a held file: what would change)."""
    if held:
        what = "lists who and what this file would change, removals included, one line each"
    elif dry_run:
        what = "lists every change this file would make, one line per person, class or enrollment"
    else:
        what = "lists every change that was made, one line per person, class or enrollment"
    return f"The changes file ({names_list(names)}) attached in this thread {what}."


def undo_buttons(upload_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The Undo button of each applied upload (enrollment access to its district may press it);
    one actions block per upload, so every button has the same action id."""
    return [
        {
            "type": "actions",
            "block_id": f"undo_upload_{i}",
            "elements": [
                {
                    "type": "button",
                    "action_id": "undo_upload",
                    "text": {"type": "plain_text", "text": f"Undo upload {i}"},
                    "value": json.dumps({"upload": i}),
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Undo this upload?"},
                        "text": {
                            "type": "mrkdwn",
                            "text": f"Every change upload {i} made is reversed, as listed in its "
                            "changes file. Refused if a later upload changed the same people.",
                        },
                        "confirm": {"type": "plain_text", "text": "Undo"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
                }
            ],
        }
        for i in list(upload_ids)[:5]
    ]


def confirm_button(
    upload_ids: Sequence[int], message_ts: str | None = None, sync: bool = False
) -> list[dict[str, Any]]:
    """The Confirm button of an upload held by a guard (mass removal, mass ID change).  Its
    value carries the uploads and the ts of the message that shared the file (where the
    reactions go).  Pressing it applies the file that was reviewed, with every held change;
    what it holds and what to press is said above it (`held_lines`)."""
    value = {"uploads": list(upload_ids)} | ({"ts": message_ts} if message_ts else {})
    if sync:
        value["sync"] = True
    return [
        {
            "type": "actions",
            "block_id": "held_upload",
            "elements": [
                {
                    "type": "button",
                    "action_id": "confirm_removals",
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Confirm and apply"},
                    "value": json.dumps(value),
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Apply the held file?"},
                        "text": {
                            "type": "mrkdwn",
                            "text": "The file will be applied as it was reviewed, with every "
                            "removal and ID change it holds.",
                        },
                        "confirm": {"type": "plain_text", "text": "Apply"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
                }
            ],
        },
    ]


def third_party_note(enrollment_source: str | None) -> str:
    name = source_name(enrollment_source) or "your rostering provider"
    return (
        f":information_source: This district's students come from its {escape(name)} roster, "
        "so student rows were not applied (`ROLE_NOT_ALLOWED`). Add or fix students in "
        f"{escape(name)}; staff rows in this file were processed as usual."
    )


def _file_text(f: Mapping[str, Any], dry_run: bool) -> str:
    v = words.verdict(f, dry_run=dry_run)
    name = escape(f.get("file") or "file")
    problems = [i for i in f.get("file_issues") or [] if isinstance(i, Mapping)]
    if f.get("status") == FileStatus.FAILED and problems and not (f.get("rows") or {}).get("total"):
        # the file could not be read: why, not a row of zeros
        return f"{name}: {words.LABELS[v]} — " + _problem_codes(problems)
    return f"{name}: {words.LABELS[v]} — {escape(words.outcome(f, dry_run=dry_run))}"


def _problem_codes(file_issues: Sequence[Mapping[str, Any]]) -> str:
    n = len(file_issues)
    codes = Counter(str(i.get("code")) for i in file_issues).most_common()
    listed = capped([escape(c) + (f" ×{k}" if k > 1 else "") for c, k in codes], TOP_ISSUES)
    return f"{n} problem{'' if n == 1 else 's'} with the file: " + ", ".join(listed)


def changed_since_review(names: Sequence[str]) -> Message:
    """A Confirm pressed after the held file was edited in Slack: nothing is applied."""
    text = (
        f"{names_list(names)} changed after it was reviewed and held, so nothing was applied: "
        "a Confirm applies only the file that was reviewed. Share the new file to have it "
        "checked."
    )  # names_list escapes the names
    return Message(f":x: {text}", [_section(f":x: {text}")])


def download_problem(reason: str) -> Message:
    text = reason if "nothing was applied" in reason.lower() else f"{reason} Nothing was applied."
    return Message(f":x: {escape(text)}", [_section(f":x: {escape(text)}")])


def internal_error(applied: Sequence[str] = ()) -> Message:
    """Processing broke on our side; `applied` names files whose changes were committed."""
    if applied:
        text = (
            f":warning: {names_list(applied)} was applied, but something "
            "went wrong on my side afterwards, so the rest was not processed. Reply "
            '"summary" here or use `/rosterbot status` to see what was applied, and tell '
            "support if it keeps happening."
        )
    else:
        text = (
            ":x: Something went wrong on my side while processing the file; nothing was "
            "applied. Please share it again in a few minutes, and tell support if it keeps "
            "failing."
        )
    return Message(text)


def summary_fallback(
    files: Sequence[Mapping[str, Any]], *, dry_run: bool, district: str = ""
) -> Message:
    """A one-line-per-file reply for when Slack refused the full summary (blocks)."""
    lines = [_file_text(f, dry_run) for f in files]
    if district:
        lines.insert(0, f"District: {escape(district)}")
    text = (
        "\n".join(lines) + '\nI could not post the full summary. Reply "summary" in this '
        "thread, or use /rosterbot status, to see it."
    )
    return Message(text)


# -- start-up recovery -----------------------------------------------------------------------


def recovered(item: Any) -> Message:
    """What happened to an upload that a previous rosterbot process left unfinished."""
    name = escape(item.file_name or "the file")
    result = getattr(item, "result", None)
    if item.action == RecoveryAction.RECHECKED:
        head = (
            f":arrows_counterclockwise: rosterbot restarted while checking *{name}*, so "
            "it was checked again. Nothing was applied (it was a check)."
        )
    elif item.action == RecoveryAction.ALREADY_FINISHED:
        head = (
            f":information_source: *{name}* was finished by another rosterbot process "
            f"({escape(item.state)})."
        )
    else:
        head = f":x: *{name} was NOT applied.* {escape(item.reason[:1].upper() + item.reason[1:])}."
        if result is not None:
            head += (
                "\nBelow is what the file would do now, as a check (nothing was applied). "
                "If it is still what you want, share it again."
            )
    blocks = [_section(head)]
    if result is not None and item.action != RecoveryAction.ALREADY_FINISHED:
        blocks.extend(file_summary(result.to_json(), dry_run=True))
    text = escape(item.message)
    if result is not None and item.action != RecoveryAction.ALREADY_FINISHED:
        text += " Check result now: " + _file_text(result.to_json(), True)
    return Message(text, blocks)


def recovered_reaction(item: Any) -> str | None:
    if item.action == RecoveryAction.ALREADY_FINISHED:
        return None
    result = getattr(item, "result", None)
    if item.action == RecoveryAction.RECHECKED and result is not None:
        return {
            FileStatus.COMPLETED: "white_check_mark",
            FileStatus.COMPLETED_WITH_ERRORS: "warning",
        }.get(result.status, "x")
    return "x"


# -- audit trail (/rosterbot status) ---------------------------------------------------------


def audit_line(upload: Any) -> str:
    """who, when, file name, short hash, what happened and each entity's own counts of one
    upload record."""
    when = upload.created_at.strftime("%Y-%m-%d %H:%M UTC") if upload.created_at else "?"
    name = escape(upload.file_name or "file")
    sha = f" `{upload.file_sha256[:12]}`" if upload.file_sha256 else ""
    mode = " (check)" if upload.dry_run else ""
    who = person(upload.actor, slack=True)  # a Slack user as a mention; `cli:alice` as text
    line = f"• {when} — *{name}*{sha}{mode} by {who}: "
    if upload.state in UNFINISHED_STATES:
        return line + escape(f"{upload.state}, not finished yet")
    v = words.verdict(upload, dry_run=bool(upload.dry_run))
    line += f"{VERDICT_ICONS[v]} {escape(words.LABELS[v])}"
    if upload.state == UploadState.ABANDONED:
        line += " (abandoned) — nothing was applied"
    else:
        line += f" — {escape(words.outcome(upload, dry_run=bool(upload.dry_run)))}"
    # a failed upload created nothing: its counts are what it would have done
    totals = [] if v == words.Verdict.FAILED else words.entity_totals(upload.counts)
    if totals and upload.state != UploadState.ABANDONED:
        line += f" ({escape('; '.join(totals))})"
    codes = file_issue_codes(upload.file_issues)
    return line + (f" — file: {codes}" if codes else "")


def status_lines(uploads: Sequence[Any], limit: int) -> list[str]:
    """The `status` list: recent uploads, failed checks folded into one line at the end."""
    shown, folded = words.collapse_failed_checks(uploads, limit)
    lines = [audit_line(u) for u in shown]
    if folded:
        lines.append("• " + escape(words.folded_checks_line(folded)))
    return lines


def file_issue_codes(file_issues: Iterable[Mapping[str, Any]] | None) -> str:
    """The file-level issue codes of a stored upload, most frequent first: why a failed upload
    failed, at a glance ("HEADER_MISSING ×15, HEADER_UNKNOWN")."""
    per_code = Counter(str(i.get("code")) for i in file_issues or [] if isinstance(i, Mapping))
    return ", ".join(code + (f" ×{n}" if n > 1 else "") for code, n in per_code.most_common())


# -- the data dictionary ---------------------------------------------------------------------


def preformatted(text: str, limit: int = 2900) -> Message:
    """Plain text (the data dictionary) as code blocks, split at blank lines under the limit."""
    chunks: list[str] = []
    for part in text.split("\n\n"):
        while len(part) > limit:  # one paragraph over the limit: cut at a line break
            cut = part.rfind("\n", 0, limit)
            cut = cut if cut > 0 else limit
            chunks.append(part[:cut])
            part = part[cut:].lstrip("\n")
        if chunks and len(chunks[-1]) + len(part) + 2 <= limit:
            chunks[-1] += "\n\n" + part
        else:
            chunks.append(part)
    return Message(text, [_section(f"```{escape(c)}```") for c in chunks if c])


def unreadable_files(files: Sequence[tuple[Any, str]]) -> Message:
    """Files shared that the bot cannot read at all, each with the reason (SharedFile, str)."""
    lines = capped(
        [
            f"• *{escape(f.name if f.name != 'file' else f.id or 'file')}*: {escape(reason)}"
            for f, reason in files
        ],
        NAMES_SHOWN,
        "more files",
    )
    head = ":x: I could not read the file you shared; nothing was applied."
    if len(files) > 1:
        head = ":x: I could not read these files; nothing of them was applied."
    return Message(head + "\n" + "\n".join(lines), sections(lines, head=head))


def csv_only(names: Sequence[str]) -> Message:
    listed = names_list(names)
    return Message(
        f"I read only CSV, text and Excel .xlsx files ({listed} is not one). Save the roster as "
        "'CSV UTF-8 (Comma delimited)' and share the .csv file here."
    )


# -- refusals --------------------------------------------------------------------------------


_USER_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]{2,})&gt;")


def _escape_keeping_user_mentions(value: str) -> str:
    """Escaped, except plain user mentions (`<@U123>`): a refusal names the district's system
    administrators by mention.  Broadcasts (`<!channel>`) and links stay escaped."""
    return _USER_MENTION.sub(r"<@\1>", escape(value))


def refusal(reason: str, what_to_do: str = "") -> Message:
    reason, what_to_do = map(_escape_keeping_user_mentions, (reason, what_to_do))
    text = f":no_entry: {reason}" + (f" {what_to_do}" if what_to_do else "")
    return Message(
        text, [_section(f":no_entry: {reason}" + (f"\n{what_to_do}" if what_to_do else ""))]
    )


# -- knowledge base --------------------------------------------------------------------------


def kb_answer(result: Any) -> Message:
    """A faq.LookupResult as a threaded answer: best match, how to fix, related topics."""
    doc = getattr(result, "best", None)
    if doc is None:
        closest = [f"`{m.id}` ({escape(m.title)})" for m in getattr(result, "suggestions", [])]
        text = "Sorry, I don't have a good answer to that."
        if closest:
            text += " The closest topics I know: " + ", ".join(closest) + "."
        text += " Try an error code (like `EMAIL_TAKEN`) or a column name (like `userEmail`)."
        return Message(text, [_section(text)])
    blocks = [_section(f"*{escape(doc.title)}* (`{doc.id}`)"), _section(_mrkdwn(doc.body))]
    fix = doc.readable_fix() if hasattr(doc, "readable_fix") else getattr(doc, "fix", None)
    if fix:
        blocks.append(_section(f"*How to fix:* {escape(fix)}"))
    related = list(getattr(doc, "related", ()) or ())
    others = [
        m.id for m in getattr(result, "matches", []) if m.id != doc.id and m.id not in related
    ]
    if related or others:
        blocks.append(_context("Related: " + ", ".join(f"`{r}`" for r in related + others)))
    text = f"{doc.title} ({doc.id})" + (f" — How to fix: {fix}" if fix else "")
    return Message(text, blocks)


def _mrkdwn(markdown: str) -> str:
    """Knowledge-base markdown → Slack mrkdwn (bold, headings)."""
    out = []
    for line in escape(markdown.strip()).splitlines():
        stripped = line.lstrip("#").strip() if line.startswith("#") else None
        out.append(f"*{stripped}*" if stripped else line)
    return "\n".join(out).replace("**", "*")


# -- triage in an upload's thread ------------------------------------------------------------


def row_explanation(
    row: int,
    issues: Sequence[Mapping[str, Any]],
    *,
    file_name: str,
    total_rows: int | None = None,
    saved: str = "",
) -> Message:
    """A row's issues; `saved`: what of a partly applied row was saved and what was not (the
    sentence its error report's details start with)."""
    name = escape(file_name)
    if not issues:
        if total_rows is not None and (row < 2 or row > total_rows + 1):
            text = (
                f"{name} has no row {row}: row 1 is the header and the records are rows 2–"
                f"{total_rows + 1}."
            )
        else:
            text = f"Row {row} of {name} has no issues: it was processed as written."
        return Message(text, [_section(text)])
    lines = []
    for issue in issues:
        column = f" in `{escape(issue.get('column'))}`" if issue.get("column") else ""
        value = f" (value `{escape(issue.get('value'))}`)" if issue.get("value") else ""
        sev = "warning" if issue.get("severity") == "warning" else "error"
        lines.append(
            f"• `{issue.get('code')}` ({sev}){column}{value}: {escape(issue.get('message', ''))}"
        )
        if issue.get("fix"):
            lines[-1] += f"\n  _Fix:_ {escape(issue.get('fix'))}"
    said = f" {escape(saved)}" if saved else ""
    text = f"Row {row} of {name}:{said} " + "; ".join(
        capped([f"{escape(i.get('code'))}: {escape(i.get('message', ''))}" for i in issues], 10)
    )
    shown = capped(lines, 20, "more issues on this row (see the error report)")
    head = f"*Row {row} of {name}*" + (f"\n{escape(saved)}" if saved else "")
    return Message(text, sections(shown, head=head))


def thread_summary(
    file_name: str,
    status: str | None,
    issues: Sequence[Mapping[str, Any]],
    file_issues: Sequence[Mapping[str, Any]] | None = None,
    upload: Any = None,
) -> Message:
    """ "summary" in an upload's thread; `upload` (the stored record) says what was applied."""
    record = upload if upload is not None else {"status": status, "file_issues": file_issues}
    dry_run = bool(getattr(upload, "dry_run", False))
    v = words.verdict(record, dry_run=dry_run)
    label = f"{words.LABELS[v]} — {words.outcome(record, dry_run=dry_run)}"
    name = escape(file_name)
    head = f"{VERDICT_ICONS[v]} *{name}*: {escape(label)}"
    label = escape(label).rstrip(".")
    problems = [i for i in file_issues or [] if isinstance(i, Mapping)]
    if problems and not issues:  # the file itself was refused (header, encoding, size...)
        text = f"{name}: {label}. {_problem_codes(problems)}."
        lines = capped(
            [f"• `{escape(i.get('code'))}` {escape(i.get('message', ''))}" for i in problems],
            FILE_ISSUES_SHOWN,
            "more problems with the file",
        )
        return Message(text, sections(lines, head=f"{head}\n*Problems with the file*"))
    if not issues:
        text = f"{name}: {label}. No row issues."
        return Message(text, [_section(f"{head}\nNo row issues.")])
    lines = top_issue_lines(issues)
    text = f"{name}: {label}. Top issues: " + ", ".join(
        escape(code) for code, _, _ in words.ranked_codes(issues)[:TOP_ISSUES]
    )
    return Message(text, [_section(f"{head}\n*Top issues* (errors first)\n" + "\n".join(lines))])
