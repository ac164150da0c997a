"""All listeners, grouped by kind; `register_listeners(app)` wires them into an App."""

from slack_bolt import App

from bot.listeners import actions, commands, events, messages


def register_listeners(app: App) -> None:
    events.register(app)
    messages.register(app)
    commands.register(app)
    actions.register(app)
