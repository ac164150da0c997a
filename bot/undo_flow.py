"""Undo from Slack: the Undo button of an applied upload's summary and `/rosterbot undo ID`.

Both check access (enrollment access to the upload's district), run `roster.undo.undo` (the
same as `rosterbot undo`) and answer with what happened; the undo's changes file goes with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot import access, formatting
from roster.store import RosterError
from roster.undo import undo

COMMAND = "/rosterbot"


@dataclass
class UndoAnswer:
    message: formatting.Message
    #: (filename, bytes) of the undo's changes file, or None
    changes: tuple[str, bytes] | None = None


def undo_upload(
    store: Any,
    user: str,
    upload_id: int,
    *,
    channel_district: Any = None,
    confirm_removals: bool = False,
) -> UndoAnswer:
    """Undo `upload_id` for `user`; `channel_district` (the linked channel's district, if any)
    must be the upload's district."""
    record = store.upload(upload_id)
    key = store.district_key_of(record) if record is not None else None
    district = store.get_district(key) if key else None
    if district is None or (channel_district is not None and channel_district.key != key):
        where = f" in {channel_district.key}" if channel_district is not None else ""
        return UndoAnswer(formatting.refusal(f"There is no upload {upload_id}{where}."))
    decision = access.for_undo(store, user, district)
    if not decision.allowed:
        return UndoAnswer(formatting.refusal(decision.refusal.reason, decision.refusal.what_to_do))
    try:
        result = undo(store, district.key, upload_id, actor=user, confirm_removals=confirm_removals)
    except RosterError as refused:
        text = str(refused).rstrip(".") + ". Nothing was changed."
        return UndoAnswer(formatting.refusal(text[:1].upper() + text[1:]))
    changes = (result.changes_name, result.changes_bytes) if result.changes_bytes else None
    entry = result.to_json()
    blocks = [formatting._context(f"District: *{formatting.escape(district.name)}*")]
    if result.held:
        blocks += formatting.file_summary(entry, dry_run=False)
        blocks.append(
            formatting._section(
                f":raised_hand: Nothing was undone: undoing upload {upload_id} removes a large "
                f"share of the roster. If that is intended, run `{COMMAND} undo {upload_id} "
                "confirm`."
            )
        )
        text = f"Upload {upload_id} was not undone: the undo needs confirmation."
    else:
        blocks += formatting.file_summary(entry, dry_run=False)
        blocks.append(
            formatting._section(
                f":leftwards_arrow_with_hook: <@{user}> undid upload {upload_id}: every change it "
                f"made was reversed, recorded as upload {result.upload_id}. Undo that one to "
                "apply it again."
            )
        )
        text = f"Upload {upload_id} was undone (recorded as upload {result.upload_id})."
    if changes:
        blocks.append(
            formatting._context(
                f"The changes file ({changes[0]}) lists every change "
                + ("the undo would make." if result.held else "the undo made.")
            )
        )
    return UndoAnswer(formatting.Message(text, formatting.within_limits(blocks)), changes)
