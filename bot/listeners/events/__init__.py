"""Events other than `message`: mentions (questions) and `file_shared` (acknowledged only)."""

from logging import Logger

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.access import acting_from
from bot.listeners.tenancy import request_workspace


def handle_app_mention(event: dict, client: WebClient, context: BoltContext) -> None:
    if event.get("files"):
        return  # a file shared with a mention: the message/file_share event processes it
    with acting_from(request_workspace(context)):
        context["rosterbot"].conversation.handle(client, event, mentioned=True)


def acknowledge_file_shared(event: dict, logger: Logger) -> None:
    # Slack sends file_shared *and* message/file_share for one upload; the message event
    # carries the text ("check") and the thread, so it is the one processed.  This listener
    # exists so the event is acknowledged (no 404 and no retries).
    logger.debug("file_shared %s acknowledged", event.get("file_id"))


def register(app: App) -> None:
    app.event("app_mention")(handle_app_mention)
    app.event("file_shared")(acknowledge_file_shared)
