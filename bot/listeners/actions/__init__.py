"""Interactivity: the Confirm button of an upload held by the mass-removal guard, and the
Undo button of an applied upload."""

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.access import acting_from
from bot.listeners.tenancy import request_workspace


def handle_confirm_removals(
    ack: Ack, body: dict, respond: Respond, client: WebClient, context: BoltContext
) -> None:
    ack()
    with acting_from(request_workspace(context, body)):
        context["rosterbot"].uploads.confirm(client, body, respond)


def handle_undo_upload(
    ack: Ack, body: dict, respond: Respond, client: WebClient, context: BoltContext
) -> None:
    ack()
    with acting_from(request_workspace(context, body)):
        context["rosterbot"].uploads.undo_pressed(client, body, respond)


def register(app: App) -> None:
    app.action("confirm_removals")(handle_confirm_removals)
    app.action("undo_upload")(handle_undo_upload)
