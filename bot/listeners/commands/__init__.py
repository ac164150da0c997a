"""The `/rosterbot` slash command: acknowledge at once, then answer through response_url.

Files go out before the answer, so the answer can say where they went — or why they could
not be delivered.  Roster data (downloads) goes only to the requester's DM with the bot.
"""

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from sqlalchemy.exc import OperationalError

from bot.access import acting_from
from bot.listeners.tenancy import request_workspace
from bot.slack_surface import SLASH_COMMAND
from bot.slash import deliver


def handle_rosterbot(
    ack: Ack, command: dict, respond: Respond, client: WebClient, context: BoltContext
) -> None:
    ack()
    answer_rosterbot(command, respond, client, context, context["rosterbot"])


def answer_rosterbot(
    command: dict, respond: Respond, client: WebClient, context: BoltContext, services: Any
) -> None:
    user, channel = command.get("user_id", ""), command.get("channel_id", "")
    try:
        with acting_from(request_workspace(context)):
            reply = services.slash.run(user, channel, command.get("text", ""))
    except OperationalError as exc:
        if "locked" not in str(exc):
            raise
        # a change waited its full time for SQLite's write lock (a long upload is running)
        respond(
            response_type="ephemeral",
            text="Another upload is still running and holds the roster database, so nothing "
            "was changed. Try again when it has finished.",
        )
        return
    message = reply.message
    if reply.files or reply.dm_files:
        message = deliver(client, user, channel, reply, services.settings.slack_retry_backoff)
    respond(response_type="ephemeral", **message.kwargs())


def acknowledge(ack: Ack) -> None:
    ack()


def register(app: App) -> None:
    if app.process_before_response:
        # The job queue holds Slack's acknowledgement until a listener returns (bot/queue.py);
        # a command's answer (a download, say) may take longer than Slack's 3 seconds, so
        # it is acknowledged first and answered by a lazy listener on its own thread.
        # (A lazy listener gets a copy of the context, without the services: the app's.)
        def answer_later(
            command: dict, respond: Respond, client: WebClient, context: BoltContext
        ) -> None:
            answer_rosterbot(command, respond, client, context, app.rosterbot)

        app.command(SLASH_COMMAND)(ack=acknowledge, lazy=[answer_later])
        return
    app.command(SLASH_COMMAND)(handle_rosterbot)
