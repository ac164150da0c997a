"""The app factory and the two ways to run it (Socket Mode, HTTP).

`create_app(settings)` builds a Bolt App whose WebClient talks to ROSTERBOT_SLACK_API_URL,
with the bot's services injected into every listener's context as `context["rosterbot"]`.
`serve()` is what `rosterbot serve [--http] [--port N]` calls; before it listens it runs
`recover(app)`, which settles the uploads a previous process left unfinished and tells
their Slack threads.
"""

from __future__ import annotations

import io
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
from bot.retention import DailyPurge
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
    retention: DailyPurge | None = None

    def shutdown(self) -> None:
        if self.retention is not None:
            self.retention.stop()
        self.uploads.shutdown(wait=True)


def create_app(settings: Settings, store: Store | None = None) -> App:
    """Build the Bolt app.  Single workspace (SLACK_BOT_TOKEN): calls auth.test once (Bolt
    learns the bot's user id from it).  Many workspaces (SLACK_CLIENT_ID / _SECRET): Bolt's
    OAuth flow, each request authorized with its install's token (bot/oauth.py)."""
    if store is None:
        from roster.store import Store

        store = Store(settings.database_url)
    # 429 (Retry-After), 500/503 and dropped connections are retried a bounded number of times;
    # Bolt copies these handlers into the client each listener gets.
    client = WebClient(
        # many workspaces: no token here, each request is authorized with its install's
        token=None if settings.multi_workspace else settings.require_bot_token(),
        base_url=settings.slack_api_url,
        retry_handlers=retry_handlers(settings),
    )
    oauth: dict[str, Any] = {}
    if settings.multi_workspace:  # installs through OAuth (bot/oauth.py, docs/deploy.md)
        from bot.oauth import locked_authorize, oauth_settings

        oauth["oauth_settings"] = oauth_settings(settings, store.engine)
        oauth["authorize"] = locked_authorize(
            settings, oauth["oauth_settings"], store.engine, client
        )
    app = App(
        client=client,
        # Socket Mode needs no signing secret; HTTP mode refuses to start without one (serve()).
        signing_secret=settings.signing_secret or "",
        logger=logging.getLogger("rosterbot.slack"),
        # The job queue: Slack is acknowledged once the listener has returned, i.e. once a
        # shared file is claimed and its job deferred in the database (bot/queue.py).
        process_before_response=settings.queued,
        **oauth,
    )
    services = Services(
        settings=settings,
        store=store,
        uploads=UploadService(settings, store),
        conversation=Conversation(settings, store),
        slash=SlashCommands(settings, store),
    )

    from roster.context import Settings as RunSettings

    services.retention = DailyPurge(
        store, RunSettings.from_env().retention_days, settings.purge_interval
    ).start()

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
        client = _client_for_district(app, item.district_key)
        if client is None:
            log.warning(
                "recovered upload %s: no install of its district's workspace to reply with: %s",
                item.upload_id,
                item.message,
            )
            continue
        report_recovered(client, services.settings, item)
    return recovered


def _client_for_district(app: App, district_key: str | None) -> WebClient | None:
    """The client to reach a district's Slack with: the app's (one workspace), or one with
    the token of the install serving the district (many workspaces; None: no install)."""
    services: Services = app.rosterbot  # type: ignore[attr-defined]
    settings = services.settings
    if not settings.multi_workspace:
        return app.client
    district = services.store.get_district(district_key) if district_key else None
    team = district.team_id if district else None
    if not team or app.installation_store is None:
        return None
    org = team.startswith("E")
    bot = app.installation_store.find_bot(
        enterprise_id=team if org else None,
        team_id=None if org else team,
        is_enterprise_install=org,
    )
    if bot is None or not bot.bot_token:
        return None
    return WebClient(
        token=bot.bot_token,
        base_url=settings.slack_api_url,
        retry_handlers=retry_handlers(settings),
    )


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


class BodyTooLarge(Exception):
    pass


def _read_chunked(stream: Any, limit: int) -> bytes:
    """The body of a `Transfer-Encoding: chunked` request, reading at most `limit` bytes of
    data (and the chunk headers around them); BodyTooLarge past that."""
    body = bytearray()
    while True:
        line = stream.readline(100)  # "<hex size>[;extensions]\r\n"
        try:
            size = int(line.split(b";", 1)[0].strip() or b"x", 16)
        except ValueError:
            raise BodyTooLarge from None  # not chunked framing: refuse rather than guess
        if size == 0:
            return bytes(body)
        if len(body) + size > limit:
            raise BodyTooLarge
        body += stream.read(size)
        stream.readline(4)  # the CRLF after the chunk


def limit_request_body(wsgi_app: Any, max_bytes: int) -> Any:
    """Refuse a request body over `max_bytes` with 413 before reading it.

    Slack's requests are a few KB; Bolt reads the whole body into memory before it checks
    the signature, so without this anyone who can reach the port makes the bot hold whatever
    they send.  Content-Length is checked first; a chunked body is read up to the limit.
    """

    def app(environ: dict, start_response: Any) -> Any:
        def refuse(status: str, text: str) -> list[bytes]:
            data = text.encode()
            start_response(
                status,
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(data))),
                ],
            )
            return [data]

        too_large = f"request body over {max_bytes} bytes\n"
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            try:
                body = _read_chunked(environ["wsgi.input"], max_bytes)
            except BodyTooLarge:
                log.warning("refused a chunked request body over %s bytes", max_bytes)
                return refuse("413 Payload Too Large", too_large)
            environ = dict(environ, CONTENT_LENGTH=str(len(body)))
            environ["wsgi.input"] = io.BytesIO(body)
        else:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0:  # a negative length would make the reader take everything
                return refuse("400 Bad Request", "invalid Content-Length\n")
            if length > max_bytes:
                log.warning("refused a request body of %s bytes (limit %s)", length, max_bytes)
                return refuse("413 Payload Too Large", too_large)
        return wsgi_app(environ, start_response)

    return app


def make_http_server(app: App, host: str = "0.0.0.0", port: int = 3000) -> WSGIServer:
    """POST /slack/events (events, slash commands, interactivity), signature verified by Bolt,
    bodies over ROSTERBOT_MAX_REQUEST_BYTES refused before they are read; with OAuth installs
    also GET /slack/install and /slack/oauth_redirect (Bolt's OAuth flow)."""
    settings: Settings = app.rosterbot.settings  # type: ignore[attr-defined]
    return make_server(
        host,
        port,
        limit_request_body(SlackRequestHandler(app, path=EVENTS_PATH), settings.max_request_bytes),
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


def warm_knowledge_base() -> threading.Thread:
    """Build the knowledge base's index in the background while the bot starts: with its
    ~21,000 example questions it takes ~2.6 s, which the first question asked would otherwise
    wait for (in queued mode, before Slack is acknowledged)."""
    import faq.index

    thread = threading.Thread(target=faq.index.get_index, name="kb-warm-up", daemon=True)
    thread.start()
    return thread


def serve(
    settings: Settings, http: bool = False, port: int = 3000, store: Store | None = None
) -> None:
    """Run until interrupted: Socket Mode by default (SLACK_APP_TOKEN), or HTTP on `port`."""
    if settings.multi_workspace and not http:
        raise SettingsError(
            "installs through OAuth (SLACK_CLIENT_ID / SLACK_CLIENT_SECRET) need HTTP mode: "
            "rosterbot serve --http (docs/deploy.md)"
        )
    if not settings.bot_token and not settings.multi_workspace:
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
    warm_knowledge_base()
    if settings.queued:
        # Replicas are stateless: an unfinished upload belongs to its queued job, and a job
        # whose worker died is retried by the workers (bot/queue.py), never settled here.
        from bot.queue import require_schema

        require_schema(app.rosterbot.store.engine)  # type: ignore[attr-defined]
    else:
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
