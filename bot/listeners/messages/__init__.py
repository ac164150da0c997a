"""`message` events: file shares (uploads), DMs (questions), replies in upload threads (triage).

`app.message()` never fires for a file share without text, so this listens to every
`message` event and routes on `subtype` and `files`.
"""

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.access import acting_from
from bot.listeners.tenancy import request_workspace

#: Subtypes that are a person writing or sharing; edits, deletions, joins... are ignored.
_PERSON_SUBTYPES = (None, "file_share", "thread_broadcast")


def handle_message(event: dict, client: WebClient, context: BoltContext) -> None:
    if event.get("bot_id") or event.get("user") in (None, context.bot_user_id):
        return  # never our own (or another bot's) messages and uploads
    if event.get("subtype") not in _PERSON_SUBTYPES:
        return
    services = context["rosterbot"]
    with acting_from(request_workspace(context)):
        if event.get("files"):
            services.uploads.accept(client, event)
            return
        mention = f"<@{context.bot_user_id}>" if context.bot_user_id else None
        in_dm = event.get("channel_type") == "im"
        if mention and mention in (event.get("text") or "") and not in_dm:
            return  # the app_mention event answers it
        services.conversation.handle(client, event, mentioned=False)


def register(app: App) -> None:
    app.event("message")(handle_message)
