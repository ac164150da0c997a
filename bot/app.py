"""The app factory and the two ways to run it (Socket Mode, HTTP).

`create_app(settings)` builds a Bolt App whose WebClient talks to ROSTERBOT_SLACK_API_URL,
with the bot's services injected into every listener's context as `context["rosterbot"]`.
`serve()` is what `rosterbot serve [--http] [--port N]` calls; before it listens it runs
`recover(app)`, which settles the uploads a previous process left unfinished and tells
their Slack threads.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App, BoltContext
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from bot.conversation import Conversation
from bot.delivery import retry_handlers
from bot.listeners import register_listeners
from bot.settings import Settings, SettingsError
from bot.slash import SlashCommands
from bot.uploads import UploadService

if TYPE_CHECKING:
    from roster.store import Store


log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


@dataclass
class Services:
    """What listeners reach through `context["rosterbot"]`."""

    settings: Settings
    store: Store
    uploads: UploadService
    conversation: Conversation
    slash: SlashCommands

    def shutdown(self) -> None:
        self.uploads.shutdown(wait=True)


def create_app(settings: Settings, store: Store | None = None) -> App:
    """Build the Bolt app.  Calls auth.test once (Bolt learns the bot's user id from it)."""
    if store is None:
        from roster.store import Store

        store = Store(settings.database_url)
    # 429 (Retry-After), 500/503 and dropped connections are retried a bounded number of times;
    # Bolt copies these handlers into the client each listener gets.
    client = WebClient(
        token=settings.require_bot_token(),
        base_url=settings.slack_api_url,
        retry_handlers=retry_handlers(settings),
    )
    app = App(
        client=client,
        # Socket Mode needs no signing secret; HTTP mode refuses to start without one (serve()).
        signing_secret=settings.signing_secret or "",
        logger=logging.getLogger("rosterbot.slack"),
    )
    services = Services(
        settings=settings,
        store=store,
        uploads=UploadService(settings, store),
        conversation=Conversation(settings, store),
        slash=SlashCommands(settings, store),
    )

    @app.middleware
    def inject_services(context: BoltContext, next: Any) -> Any:  # noqa: A002 - Bolt's name
        context["rosterbot"] = services
        return next()

    register_listeners(app)
    app.rosterbot = services  # type: ignore[attr-defined]  # for serve() and tests to shut down
    return app


# -- start-up recovery -------------------------------------------------------------------------


def recover(app: App, started_before: Any = None) -> list[Any]:
    """Settle every upload left unfinished by a previous process and tell its Slack thread.

    Runs roster.recovery.recover_unfinished (a check is re-run; an upload is not re-applied
    but re-checked and reported as "not applied - upload again").  `started_before` (a
    datetime) defaults to this process's start.  Never raises: a failure is logged.
    """
    from bot.recovery import report_recovered

    services: Services = app.rosterbot  # type: ignore[attr-defined]
    try:
        from roster.recovery import recover_unfinished

        recovered = recover_unfinished(services.store, started_before=started_before)
    except Exception:
        log.exception("start-up recovery failed; unfinished uploads stay as they are")
        return []
    for item in recovered:
        report_recovered(app.client, services.settings, item)
    return recovered


# -- HTTP mode ---------------------------------------------------------------------------------


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s - %s", self.address_string(), format % args)


@dataclass
class HttpServer:
    """A running HTTP-mode server; `url` is the events URL, `stop()` shuts it down."""

    server: WSGIServer
    thread: threading.Thread | None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        host = self.server.server_address[0]
        return f"http://{host}:{self.port}{EVENTS_PATH}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_http_server(app: App, host: str = "0.0.0.0", port: int = 3000) -> WSGIServer:
    """POST /slack/events (events, slash commands, interactivity), signature verified by Bolt."""
    return make_server(
        host,
        port,
        SlackRequestHandler(app, path=EVENTS_PATH),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )


def start_http_server(app: App, host: str = "127.0.0.1", port: int = 0) -> HttpServer:
    """Serve in a background thread (tests, embedding)."""
    server = make_http_server(app, host, port)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="rosterbot-http", daemon=True
    )
    thread.start()
    return HttpServer(server, thread)


# -- Socket Mode -------------------------------------------------------------------------------


def start_socket_mode(app: App, settings: Settings) -> Any:
    """Connect to Slack over a WebSocket (apps.connections.open with the app token).

    Returns the connected SocketModeHandler; call `.close()` to disconnect.  The WebSocket URL
    comes from the Web API at ROSTERBOT_SLACK_API_URL, through the app's own client.
    """
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    if not settings.app_token:
        raise SettingsError("Socket Mode needs SLACK_APP_TOKEN (xapp-...)")
    log.info("rosterbot connecting to Slack in Socket Mode")
    handler = SocketModeHandler(app, settings.app_token)
    handler.connect()
    return handler


# -- entry point -------------------------------------------------------------------------------


def serve(
    settings: Settings, http: bool = False, port: int = 3000, store: Store | None = None
) -> None:
    """Run until interrupted: Socket Mode by default (SLACK_APP_TOKEN), or HTTP on `port`."""
    if not settings.bot_token:
        raise SettingsError(
            "SLACK_BOT_TOKEN (xoxb-...) is not set: copy the Bot User OAuth "
            "Token from the app's Install App page"
        )
    if http and not settings.signing_secret:
        raise SettingsError("HTTP mode needs SLACK_SIGNING_SECRET to verify Slack's requests")
    if not http and not settings.app_token:
        raise SettingsError(
            "Socket Mode needs SLACK_APP_TOKEN (xapp-...); "
            "or run HTTP mode with --http and SLACK_SIGNING_SECRET"
        )
    app = create_app(settings, store)
    recover(app)  # before listening: nothing of this process is in flight yet
    try:
        if http:
            server = make_http_server(app, "0.0.0.0", port)
            log.info("rosterbot listening on http://0.0.0.0:%s%s", port, EVENTS_PATH)
            try:
                server.serve_forever()
            finally:
                server.server_close()
        else:
            handler = start_socket_mode(app, settings)
            try:
                threading.Event().wait()
            finally:
                handler.close()
    except KeyboardInterrupt:
        log.info("rosterbot stopping")
    finally:
        app.rosterbot.shutdown()  # type: ignore[attr-defined]
