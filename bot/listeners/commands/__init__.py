"""The `/rosterbot` slash command: acknowledge at once, then answer through response_url."""

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.slack_surface import SLASH_COMMAND
from bot.slash import upload_files


def handle_rosterbot(ack: Ack, command: dict, respond: Respond, client: WebClient,
                     context: BoltContext) -> None:
    ack()
    reply = context["rosterbot"].slash.run(command.get("user_id", ""),
                                           command.get("channel_id", ""), command.get("text", ""))
    respond(response_type="ephemeral", **reply.message.kwargs())
    if reply.files:
        upload_files(client, command.get("channel_id", ""), reply.files)


def register(app: App) -> None:
    app.command(SLASH_COMMAND)(handle_rosterbot)
