"""The Slack surface of the app as data: events, scopes, the slash command, action ids.

`manifest.yml` must declare exactly this, the listeners register exactly this, and
tests/test_manifest.py checks the three agree.
"""

from __future__ import annotations

SLASH_COMMAND = "/rosterbot"

#: Bot event subscription (manifest name) -> (event type a listener handles, scope it needs).
BOT_EVENTS: dict[str, tuple[str, str]] = {
    "message.channels": ("message", "channels:history"),  # file shares, thread triage
    "message.groups": ("message", "groups:history"),  # the same in private channels
    "message.im": ("message", "im:history"),  # DMs: files and questions
    "app_mention": ("app_mention", "app_mentions:read"),  # questions in channels
    "file_shared": ("file_shared", "files:read"),  # acknowledged only (see listeners/events)
}

#: Scopes the Web API calls need -> what for.
API_SCOPES: dict[str, str] = {
    "chat:write": "chat.postMessage / chat.update: processing message, summary, answers",
    "reactions:write": "reactions.add: seen / success / errors / failure",
    "files:read": "download url_private_download, files.info for Slack Connect shares",
    "files:write": "files_upload_v2: the error report (and templates) into the thread",
    "im:write": "conversations.open: the DM a /rosterbot download is delivered in",
    "commands": f"the {SLASH_COMMAND} slash command",
}

#: block_actions action_ids the app handles (interactivity).
ACTION_IDS: tuple[str, ...] = ("confirm_removals", "undo_upload")


def bot_scopes() -> set[str]:
    return {scope for _, scope in BOT_EVENTS.values()} | set(API_SCOPES)
