"""A stand-in Slack for tests: Web API + file host + upload URL + response_url + Socket Mode.

Started by the tests on 127.0.0.1 port 0 in a thread.  Every HTTP request is recorded with
its path, headers, parsed body and raw bytes, so tests assert on what Slack would have
received (thread_ts, channel, the uploaded file's bytes, which host saw the token).

It is as strict as Slack where the bot could get it wrong: a method it does not know answers
`unknown_method`; a call missing a required argument `invalid_arguments` (METHODS lists each
method the bot uses with its required arguments, from Slack's method reference); blocks over
a Block Kit limit `invalid_blocks` (see `block_errors`); text over 40,000 characters
`msg_too_long`; reactions are kept per message (`already_reacted`, `no_reaction`), so a test
sees the reactions a person would see (`current_reactions`).

The file host behaves like files.slack.com: with `Authorization: Bearer <bot token>` it
returns the file; without it, or with another token, it answers 302 to the workspace's
sign-in page (`/signin?redir=...`, which answers 200 HTML); when `files_read_granted` is
False (the token lacks `files:read`) it answers 200 with the sign-in page itself.

Files are shared in the shapes Slack sends: `host_file` (an ordinary file object),
`connect_file` (Slack Connect: `file_access: check_file_info`, no name or URLs; the bot must
call files.info) and `hidden_file` (`mode: hidden_by_limit`: the workspace's storage limit
hides it, files.info gives nothing more).

Workspaces: the default one (TEAM_ID, token `bot_token`) always exists.  `add_workspace()`
adds more for the OAuth flow: `/oauth/v2/authorize` (a person picking the workspace, given
as `team=`) issues a one-time code and redirects to the app's redirect URI; `oauth.v2.access`
trades the code (with the app's client id and secret and the same redirect URI) for that
workspace's own bot token, and -- when token rotation is on -- a refresh token that can be
used once (`invalid_refresh_token` after) for a new token; an expired token answers
`token_expired`.  Every Web API method answers for the workspace of the token it gets
(auth.test says which), and the file host serves a workspace's files only to its token.

Failures are programmable per target with `fail()`: a Web API method name
("chat.postMessage"), "upload" (the files_upload_v2 upload URL) or "file_host" (file
downloads) answers e.g. 429 with Retry-After, or 500, or sleeps first (timeouts), for the
next N matching requests or for good.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

BOT_TOKEN = "xoxb-standin-bot-token"
APP_TOKEN = "xapp-standin-app-token"
BOT_USER_ID = "UROSTERBOT"
BOT_ID = "BROSTERBOT"
TEAM_ID = "T0STANDIN"

#: What Slack's Web API requires of each method the bot calls (docs.slack.dev method
#: reference).  A string is a required argument; a tuple means "at least one of these".
METHODS: dict[str, tuple[str | tuple[str, ...], ...]] = {
    "auth.test": (),
    "apps.connections.open": (),
    "chat.postMessage": ("channel", ("text", "blocks", "attachments")),
    "chat.update": ("channel", "ts"),
    "chat.postEphemeral": ("channel", "user", ("text", "blocks", "attachments")),
    "reactions.add": ("channel", "name", "timestamp"),
    "reactions.remove": ("name", ("timestamp", "file", "file_comment")),
    "files.info": ("file",),
    "files.getUploadURLExternal": ("filename", "length"),
    "files.completeUploadExternal": ("files",),
    "conversations.open": (("channel", "users"),),
    "conversations.info": ("channel",),
    "users.info": ("user",),
    # the client id and secret come as HTTP Basic auth (or client_id / client_secret fields)
    "oauth.v2.access": (("code", "refresh_token"),),
}

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "standin-client-secret"
APP_ID = "A0ROSTERBOT"


@dataclass
class Workspace:
    """A workspace (or, `org_install`, an Enterprise Grid org) the app can be installed in."""

    team_id: str | None  # None: an org-wide install (the org's id is `enterprise_id`)
    name: str
    enterprise_id: str | None = None
    installer: str = "U0INSTALLER"
    bot_user_id: str = BOT_USER_ID
    bot_id: str = BOT_ID

    @property
    def key(self) -> str:
        return self.team_id or self.enterprise_id or ""


@dataclass
class Grant:
    """A bot token handed out by oauth.v2.access."""

    workspace: Workspace
    expires_at: float | None = None  # None: a token that does not expire


#: Block Kit limits Slack enforces on messages (docs.slack.dev "Block Kit" reference).
MAX_BLOCKS = 50
MAX_TEXT = 40_000
SECTION_TEXT = 3000
SECTION_FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ID_LENGTH = 255  # block_id, action_id
BLOCK_TYPES = {"section", "header", "context", "actions", "divider", "image", "rich_text", "input"}

SIGN_IN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Slack</title></head>"
    b"<body><h1>Sign in to your workspace</h1></body></html>"
)


def dm_channel(user: str) -> str:
    """The DM channel id conversations.open returns for a user (U0ADMIN -> D0ADMIN)."""
    return "D" + user[1:]


@dataclass
class Fault:
    """An injected failure: answer `status` (after `delay` seconds) to matching requests."""

    target: str  # API method, "upload" or "file_host"
    status: int | None = 500  # None: only delay, then answer normally
    times: int | None = 1  # None: every matching request
    retry_after: int | None = None
    delay: float = 0.0
    match: Any = None  # callable(Recorded) -> bool, or None for all
    hits: int = 0
    gate: Any = None  # a threading.Event: the answer waits until it is set (at most 60 s)

    def takes(self, target: str, rec: Recorded) -> bool:
        if target != self.target or (self.times is not None and self.hits >= self.times):
            return False
        return self.match is None or bool(self.match(rec))


@dataclass
class Recorded:
    method: str  # HTTP method
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    raw: bytes
    body: dict[str, Any]  # parsed JSON or form fields ({} for raw uploads)
    response: dict[str, Any] = field(default_factory=dict)  # what the stand-in answered (API)
    status: int = 200  # the HTTP status the stand-in answered
    at: float = field(default_factory=time.monotonic)  # when it arrived

    @property
    def api_method(self) -> str | None:
        return self.path[len("/api/") :] if self.path.startswith("/api/") else None

    def get(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.body[key]


@dataclass
class UploadedFile:
    """A file the bot uploaded with files_upload_v2, once completeUploadExternal shared it."""

    file_id: str
    filename: str
    title: str | None
    content: bytes
    channel_id: str | None
    thread_ts: str | None
    initial_comment: str | None


@dataclass
class HostedFile:
    id: str
    name: str
    content: bytes
    content_type: str = "text/csv"
    redirect_to: str | None = None  # answer 302 to this URL instead of the file


@dataclass
class _State:
    requests: list[Recorded] = field(default_factory=list)
    files: dict[str, HostedFile] = field(default_factory=dict)
    pending_uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: list[UploadedFile] = field(default_factory=list)
    file_objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    reactions: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    messages: set[tuple[str, str]] = field(default_factory=set)  # (channel, ts) posted
    workspaces: dict[str, Workspace] = field(default_factory=dict)  # by team (or org) id
    tokens: dict[str, Grant] = field(default_factory=dict)  # tokens handed out by OAuth
    refresh_tokens: dict[str, Workspace] = field(default_factory=dict)  # still usable
    codes: dict[str, tuple[Workspace, str]] = field(default_factory=dict)  # code -> redirect
    refreshes: list[str] = field(default_factory=list)  # workspaces whose token was refreshed
    file_teams: dict[str, str] = field(default_factory=dict)  # file id -> workspace key


class SlackStandIn:
    """Start with `with SlackStandIn() as slack:`; `slack.api_url` is the Web API base URL."""

    def __init__(self, *, bot_token: str = BOT_TOKEN) -> None:
        self.bot_token = bot_token
        #: OAuth: rotate tokens (hand out refresh tokens); a token lives this many seconds
        self.token_rotation = False
        self.token_lifetime = 12 * 3600
        #: OAuth: the app's one registered Redirect URL (used when the app sends none)
        self.oauth_redirect_url: str | None = None
        self.files_read_granted = True
        self.socket_url: str | None = None
        self.socket_received: list[dict[str, Any]] = []
        self._ws_connections: list[Any] = []
        self._ws_server: Any = None
        self._state = _State()
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                standin._handle(self)

            def do_POST(self) -> None:
                standin._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> SlackStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._ws_server is not None:
            self._ws_server.shutdown()
        self._server.shutdown()
        self._server.server_close()

    # -- Socket Mode --------------------------------------------------------------------------
    def start_socket_mode(self) -> str:
        """Start a WebSocket server; apps.connections.open will hand out its URL."""
        from websockets.sync.server import serve

        self._ws_server = serve(self._ws_session, "127.0.0.1", 0)
        threading.Thread(target=self._ws_server.serve_forever, daemon=True).start()
        port = self._ws_server.socket.getsockname()[1]
        self.socket_url = f"ws://127.0.0.1:{port}/link/?ticket=standin"
        return self.socket_url

    def _ws_session(self, conn: Any) -> None:
        with self._lock:
            self._ws_connections.append(conn)
        conn.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "connection_info": {"app_id": "A0ROSTERBOT"},
                    "debug_info": {"host": "standin"},
                }
            )
        )
        try:
            for message in conn:
                with self._lock:
                    self.socket_received.append(json.loads(message))
        except Exception:  # the client went away
            pass

    def send_envelope(self, envelope: dict[str, Any]) -> None:
        """Send an envelope (events_api, slash_commands, interactive) to the connected app."""
        self.wait_for(lambda: self._ws_connections, what="a Socket Mode connection")
        with self._lock:
            conn = self._ws_connections[-1]
        conn.send(json.dumps(envelope))

    def socket_acks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.socket_received if "envelope_id" in m]

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    # -- test helpers -----------------------------------------------------------------------
    def host_file(
        self,
        name: str,
        content: bytes,
        *,
        file_id: str | None = None,
        content_type: str = "text/csv",
        redirect_to: str | None = None,
        team: str = TEAM_ID,
    ) -> dict[str, Any]:
        """Put a file on the stand-in file host; returns the Slack file object for events.
        `team`: the workspace it was shared in (only that workspace's token downloads it)."""
        file_id = file_id or f"F{next(self._ids):08d}"
        with self._lock:
            self._state.files[file_id] = HostedFile(
                file_id, name, content, content_type, redirect_to
            )
            self._state.file_teams[file_id] = team
        obj = file_object(
            file_id,
            name,
            len(content),
            f"{self.base_url}/files-pri/{team}-{file_id}/download/{quote(name, safe='')}",
        )
        with self._lock:
            self._state.file_objects[file_id] = obj
        return obj

    def connect_file(self, name: str, content: bytes, **kw: Any) -> dict[str, Any]:
        """A file shared from a Slack Connect channel: the event carries only its id (and
        `file_access: check_file_info`); files.info returns the full object."""
        full = self.host_file(name, content, **kw)
        return {
            "id": full["id"],
            "mode": "file_access",
            "file_access": "check_file_info",
            "created": full["created"],
            "timestamp": full["timestamp"],
            "user": full["user"],
        }

    def hidden_file(self, file_id: str | None = None) -> dict[str, Any]:
        """A file hidden by the workspace's file storage limit (free plans): no name, no URL,
        and files.info returns the same stub."""
        file_id = file_id or f"F{next(self._ids):08d}"
        obj = {"id": file_id, "mode": "hidden_by_limit"}
        with self._lock:
            self._state.file_objects[file_id] = dict(obj)
        return obj

    def add_workspace(
        self,
        team_id: str | None,
        name: str = "",
        *,
        enterprise_id: str | None = None,
        installer: str = "U0INSTALLER",
    ) -> Workspace:
        """A workspace the app can be installed in (team_id None: an org-wide install)."""
        ws = Workspace(team_id, name or (team_id or enterprise_id or ""), enterprise_id, installer)
        with self._lock:
            self._state.workspaces[ws.key] = ws
        return ws

    def authorize_url(self) -> str:
        return f"{self.base_url}/oauth/v2/authorize"

    def tokens_of(self, key: str) -> list[str]:
        """Every token handed out for a workspace (or org) id, oldest first."""
        with self._lock:
            return [t for t, g in self._state.tokens.items() if g.workspace.key == key]

    @property
    def refreshes(self) -> list[str]:
        """The workspaces whose token was refreshed, once per refresh."""
        with self._lock:
            return list(self._state.refreshes)

    def tokens_used(self, api_method: str) -> list[str | None]:
        """The token each call of a Web API method carried."""
        return [self._token(r) for r in self.calls(api_method)]

    def current_reactions(self, channel: str, ts: str) -> list[str]:
        """The reactions the bot has on a message now (added and not removed)."""
        with self._lock:
            return list(self._state.reactions.get((channel, ts), []))

    def fail(
        self,
        target: str,
        status: int | None = 500,
        *,
        times: int | None = 1,
        retry_after: int | None = None,
        delay: float = 0.0,
        match: Any = None,
        gate: Any = None,
    ) -> Fault:
        """Make the next `times` requests to `target` (None: all of them) fail with `status`
        (None: answer normally), after `delay` seconds or once `gate` (an Event) is set."""
        fault = Fault(target, status, times, retry_after, delay, match, gate=gate)
        with self._lock:
            self._state.faults.append(fault)
        return fault

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._state.requests)

    def calls(self, api_method: str) -> list[Recorded]:
        return [r for r in self.requests if r.api_method == api_method]

    def paths(self, prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    @property
    def uploads(self) -> list[UploadedFile]:
        with self._lock:
            return list(self._state.uploads)

    def posts(self, channel: str | None = None, thread_ts: str | None = None) -> list[Recorded]:
        found = self.calls("chat.postMessage")
        if channel is not None:
            found = [r for r in found if r.get("channel") == channel]
        if thread_ts is not None:
            found = [r for r in found if r.get("thread_ts") == thread_ts]
        return found

    def reactions(self, channel: str | None = None, timestamp: str | None = None) -> list[str]:
        return [
            r.get("name")
            for r in self.calls("reactions.add")
            if (channel is None or r.get("channel") == channel)
            and (timestamp is None or r.get("timestamp") == timestamp)
        ]

    def responses(self) -> list[Recorded]:
        """What the bot sent to slash-command response_urls."""
        return self.paths("/respond/")

    def response_url(self) -> str:
        return f"{self.base_url}/respond/{next(self._ids)}"

    def wait_for(self, predicate, timeout: float = 10.0, what: str = "the stand-in Slack") -> Any:
        """Poll until predicate() is truthy; return its value or fail with what was recorded."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                seen = [f"{r.method} {r.path} {json.dumps(r.body)[:300]}" for r in self.requests]
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; requests seen:\n"
                    + "\n".join(seen)
                )
            time.sleep(0.02)

    # -- request handling -------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        body: dict[str, Any] = {}
        ctype = headers.get("content-type", "")
        parse = split.path.startswith(("/api/", "/respond/"))
        if not parse:
            pass
        elif raw and "application/json" in ctype:
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
        elif raw and "application/x-www-form-urlencoded" in ctype:
            body = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        if h.command == "GET" and split.path.startswith("/api/"):
            body = dict(query)
        rec = Recorded(h.command, split.path, query, headers, raw, body)
        target = rec.api_method or (
            "upload"
            if split.path.startswith("/upload/v1/")
            else "file_host"
            if split.path.startswith("/files-pri/")
            else ""
        )
        with self._lock:
            self._state.requests.append(rec)
            fault = next((f for f in self._state.faults if f.takes(target, rec)), None)
            if fault is not None:
                fault.hits += 1
        if fault is not None:
            if fault.gate is not None:
                fault.gate.wait(60)
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                rec.status = fault.status
                extra = (
                    {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                )
                payload = {
                    "ok": False,
                    "error": "ratelimited" if fault.status == 429 else "fatal_error",
                }
                self._send(
                    h,
                    fault.status,
                    json.dumps(payload).encode(),
                    "application/json; charset=utf-8",
                    extra,
                )
                return

        if split.path.startswith("/api/"):
            status, payload = self._api(rec)
            rec.response = payload
            self._send(h, status, json.dumps(payload).encode(), "application/json; charset=utf-8")
        elif split.path.startswith("/files-pri/"):
            self._file_host(h, rec)
        elif split.path.startswith("/upload/v1/"):
            self._raw_upload(h, rec)
        elif split.path.startswith("/respond/"):
            refused = message_errors(rec.body)
            if refused is not None:
                rec.status = 400
                self._send(h, 400, json.dumps(refused).encode(), "application/json")
            else:
                self._send(h, 200, b"ok", "text/plain")
        elif split.path == "/oauth/v2/authorize":
            self._authorize(h, rec)
        elif split.path == "/signin":
            self._send(h, 200, SIGN_IN_PAGE, "text/html; charset=utf-8")
        else:
            self._send(h, 404, b"not found", "text/plain")

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler,
        status: int,
        data: bytes,
        ctype: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(data)
        except OSError:  # the client gave up (a timeout test)
            h.close_connection = True

    def _token(self, rec: Recorded) -> str | None:
        auth = rec.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :]
        return rec.body.get("token")

    def _next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.{next(self._ts):06d}"

    def _api(self, rec: Recorded) -> tuple[int, dict[str, Any]]:
        method = rec.api_method or ""
        token = self._token(rec)
        if method == "apps.connections.open":
            if token != APP_TOKEN:
                return 200, {"ok": False, "error": "invalid_auth"}
            if not self.socket_url:
                return 200, {"ok": False, "error": "socket_mode_not_enabled"}
            return 200, {"ok": True, "url": self.socket_url}
        if method not in METHODS:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}
        b = rec.body
        if method == "oauth.v2.access":
            return self._oauth_access(rec)
        workspace, refused = self._workspace_of(token)
        if refused:
            return 200, {"ok": False, "error": refused}
        missing = missing_arguments(method, b)
        if missing:
            return 200, {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {
                    "messages": [f"[ERROR] missing required field: {m}" for m in missing]
                },
            }
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            refused = message_errors(b)
            if refused is not None:
                return 200, refused
        if method == "auth.test":
            return 200, {
                "ok": True,
                "url": "https://standin.slack.com/",
                "team": workspace.name,
                "user": "rosterbot",
                "team_id": workspace.team_id,
                "enterprise_id": workspace.enterprise_id,
                "user_id": workspace.bot_user_id,
                "bot_id": workspace.bot_id,
                "is_enterprise_install": workspace.team_id is None,
            }
        if method == "chat.postMessage":
            ts = self._next_ts()
            with self._lock:
                self._state.messages.add((str(b.get("channel")), ts))
            return 200, {
                "ok": True,
                "channel": b.get("channel"),
                "ts": ts,
                "message": {
                    "text": b.get("text"),
                    "ts": ts,
                    "user": BOT_USER_ID,
                    "bot_id": BOT_ID,
                    "thread_ts": b.get("thread_ts"),
                },
            }
        if method == "chat.update":
            with self._lock:
                known = (str(b.get("channel")), str(b.get("ts"))) in self._state.messages
            if not known:
                return 200, {"ok": False, "error": "message_not_found"}
            return 200, {
                "ok": True,
                "channel": b.get("channel"),
                "ts": b.get("ts"),
                "text": b.get("text"),
            }
        if method == "chat.postEphemeral":
            return 200, {"ok": True, "message_ts": self._next_ts()}
        if method in ("reactions.add", "reactions.remove"):
            key = (str(b.get("channel")), str(b.get("timestamp")))
            name = str(b.get("name"))
            with self._lock:
                names = self._state.reactions.setdefault(key, [])
                if method == "reactions.add":
                    if name in names:
                        return 200, {"ok": False, "error": "already_reacted"}
                    names.append(name)
                else:
                    if name not in names:
                        return 200, {"ok": False, "error": "no_reaction"}
                    names.remove(name)
            return 200, {"ok": True}
        if method == "files.info":
            with self._lock:
                obj = self._state.file_objects.get(b.get("file", ""))
            if obj is None:
                return 200, {"ok": False, "error": "file_not_found"}
            return 200, {"ok": True, "file": obj}
        if method == "files.getUploadURLExternal":
            file_id = f"FUP{next(self._ids):07d}"
            with self._lock:
                self._state.pending_uploads[file_id] = {
                    "filename": b.get("filename"),
                    "length": b.get("length"),
                    "content": b"",
                }
            return 200, {
                "ok": True,
                "file_id": file_id,
                "upload_url": f"{self.base_url}/upload/v1/{file_id}",
            }
        if method == "files.completeUploadExternal":
            files = json.loads(b.get("files") or "[]")
            shared = []
            with self._lock:
                for f in files:
                    pending = self._state.pending_uploads.pop(f["id"], None)
                    if pending is None:
                        return 200, {"ok": False, "error": "file_not_found"}
                    self._state.uploads.append(
                        UploadedFile(
                            file_id=f["id"],
                            filename=pending["filename"],
                            title=f.get("title"),
                            content=pending["content"],
                            channel_id=b.get("channel_id"),
                            thread_ts=b.get("thread_ts"),
                            initial_comment=b.get("initial_comment"),
                        )
                    )
                    shared.append(
                        {
                            "id": f["id"],
                            "title": f.get("title") or pending["filename"],
                            "name": pending["filename"],
                        }
                    )
            return 200, {"ok": True, "files": shared}
        if method == "users.info":
            return 200, {
                "ok": True,
                "user": {"id": b.get("user"), "name": "someone", "tz": "America/Chicago"},
            }
        if method == "conversations.open":
            user = (b.get("users") or "").split(",")[0]
            if not user:
                return 200, {"ok": False, "error": "users_list_not_supplied"}
            return 200, {"ok": True, "channel": {"id": dm_channel(user)}}
        if method == "conversations.info":
            cid = b.get("channel", "")
            return 200, {
                "ok": True,
                "channel": {
                    "id": cid,
                    "is_im": cid.startswith("D"),
                    "is_channel": cid.startswith("C"),
                },
            }
        raise AssertionError(f"METHODS lists {method} but the stand-in does not answer it")

    def _workspace_of(self, token: str | None) -> tuple[Workspace | None, str | None]:
        """The workspace a bot token belongs to, or Slack's refusal of the token."""
        if token and token == self.bot_token:
            return Workspace(TEAM_ID, "Stand-in"), None
        with self._lock:
            grant = self._state.tokens.get(token or "")
        if grant is None:
            return None, "invalid_auth"
        if grant.expires_at is not None and grant.expires_at < time.time():
            return None, "token_expired"
        return grant.workspace, None

    def _authorize(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        """The page where a person approves the install, having picked the workspace
        (`team`): back to the app's redirect URI with a one-time code and the app's state."""
        q = rec.query
        with self._lock:
            ws = self._state.workspaces.get(q.get("team", ""))
        redirect = q.get("redirect_uri") or self.oauth_redirect_url
        if q.get("client_id") != CLIENT_ID or ws is None or not redirect or not q.get("scope"):
            self._send(h, 400, b"invalid_client_id, unknown workspace or no scope", "text/plain")
            return
        code = f"code-{next(self._ids)}"
        with self._lock:  # the redirect_uri oauth.v2.access must repeat ("" if none was sent)
            self._state.codes[code] = (ws, q.get("redirect_uri", ""))
        sep = "&" if "?" in redirect else "?"
        target = f"{redirect}{sep}code={code}&state={quote(q.get('state', ''))}"
        h.send_response(302)
        h.send_header("Location", target)
        h.send_header("Content-Length", "0")
        h.end_headers()

    def _oauth_access(self, rec: Recorded) -> tuple[int, dict[str, Any]]:
        b = rec.body
        missing = missing_arguments("oauth.v2.access", b)
        if missing:
            return 200, {"ok": False, "error": "invalid_arguments"}
        client_id, client_secret = b.get("client_id"), b.get("client_secret")
        auth = rec.headers.get("authorization", "")
        if auth.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
        if client_id != CLIENT_ID:
            return 200, {"ok": False, "error": "invalid_client_id"}
        if client_secret != CLIENT_SECRET:
            return 200, {"ok": False, "error": "bad_client_secret"}
        with self._lock:
            if b.get("grant_type") == "refresh_token":
                ws = self._state.refresh_tokens.pop(b.get("refresh_token", ""), None)
                if ws is None:
                    return 200, {"ok": False, "error": "invalid_refresh_token"}
                self._state.refreshes.append(ws.key)
                installer = None
            else:
                found = self._state.codes.pop(b.get("code", ""), None)
                if found is None:
                    return 200, {"ok": False, "error": "invalid_code"}
                ws, redirect_uri = found
                if (b.get("redirect_uri") or "") != redirect_uri:
                    return 200, {"ok": False, "error": "bad_redirect_uri"}
                installer = ws.installer
            token = f"xoxb-{ws.key}-{next(self._ids)}"
            expires_in = self.token_lifetime if self.token_rotation else None
            self._state.tokens[token] = Grant(
                ws, time.time() + expires_in if expires_in is not None else None
            )
            refresh = None
            if self.token_rotation:
                refresh = f"xoxe-1-{ws.key}-{next(self._ids)}"
                self._state.refresh_tokens[refresh] = ws
        answer: dict[str, Any] = {
            "ok": True,
            "app_id": APP_ID,
            "access_token": token,
            "token_type": "bot",
            "scope": "chat:write,files:read",
            "bot_user_id": ws.bot_user_id,
            "team": {"id": ws.team_id, "name": ws.name} if ws.team_id else None,
            "enterprise": (
                {"id": ws.enterprise_id, "name": ws.enterprise_id} if ws.enterprise_id else None
            ),
            "is_enterprise_install": ws.team_id is None,
        }
        if installer is not None:
            answer["authed_user"] = {"id": installer}
        if refresh is not None:
            answer.update(refresh_token=refresh, expires_in=expires_in)
        return 200, answer

    def _file_host(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        file_id = rec.path.split("/")[2].split("-", 1)[-1]
        with self._lock:
            hosted = self._state.files.get(file_id)
        auth = rec.headers.get("authorization", "")
        workspace, refused = self._workspace_of(auth[len("Bearer ") :] if auth else None)
        with self._lock:
            file_team = self._state.file_teams.get(file_id, TEAM_ID)
        authorized = not refused and workspace.key == file_team
        if not authorized:  # as files.slack.com does: off to the workspace's sign-in page
            h.send_response(302)
            h.send_header("Location", f"{self.base_url}/signin?redir={quote(rec.path, safe='')}")
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif not self.files_read_granted:
            self._send(h, 200, SIGN_IN_PAGE, "text/html; charset=utf-8")
        elif hosted is None:
            self._send(h, 404, b"not found", "text/plain")
        elif hosted.redirect_to:
            h.send_response(302)
            h.send_header("Location", hosted.redirect_to)
            h.send_header("Content-Length", "0")
            h.end_headers()
        else:
            self._send(h, 200, hosted.content, hosted.content_type)

    def _raw_upload(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        file_id = rec.path.rsplit("/", 1)[-1]
        with self._lock:
            pending = self._state.pending_uploads.get(file_id)
            if pending is not None:
                pending["content"] = _upload_bytes(rec)
        if pending is None:
            self._send(h, 404, b"unknown upload", "text/plain")
        else:
            self._send(h, 200, f"OK - {len(rec.raw)}".encode(), "text/plain")


def _upload_bytes(rec: Recorded) -> bytes:
    """The file bytes of the raw upload POST (slack_sdk sends them as the body or multipart)."""
    ctype = rec.headers.get("content-type", "")
    if "multipart/form-data" not in ctype:
        return rec.raw
    boundary = ctype.split("boundary=", 1)[1].strip().strip('"').encode()
    for part in rec.raw.split(b"--" + boundary):
        head, sep, payload = part.partition(b"\r\n\r\n")
        if sep and b"filename=" in head:
            return payload[:-2] if payload.endswith(b"\r\n") else payload
    return rec.raw


def file_object(file_id: str, name: str, size: int, url: str) -> dict[str, Any]:
    """A Slack file object as it appears in message/file_share events and files.info."""
    return {
        "id": file_id,
        "created": 1_700_000_000,
        "timestamp": 1_700_000_000,
        "name": name,
        "title": name,
        "mimetype": "text/csv",
        "filetype": "csv",
        "pretty_type": "CSV",
        "user": "U0ADMIN",
        "mode": "hosted",
        "editable": True,
        "is_external": False,
        "external_type": "",
        "size": size,
        "url_private": url,
        "url_private_download": url,
        "permalink": f"https://standin.slack.com/files/U0ADMIN/{file_id}/{name}",
    }


def missing_arguments(method: str, body: dict[str, Any]) -> list[str]:
    """The required arguments of `method` that `body` lacks (empty values count as missing)."""
    missing = []
    for need in METHODS[method]:
        names = need if isinstance(need, tuple) else (need,)
        if not any(body.get(n) not in (None, "", [], "[]") for n in names):
            missing.append(" or ".join(names))
    if method == "reactions.remove" and body.get("timestamp") and not body.get("channel"):
        missing.append("channel")
    return missing


def message_errors(body: dict[str, Any]) -> dict[str, Any] | None:
    """Slack's refusal of a message's text or blocks, or None when Slack would take it."""
    if len(str(body.get("text") or "")) > MAX_TEXT:
        return {"ok": False, "error": "msg_too_long"}
    blocks = body.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return {"ok": False, "error": "invalid_blocks_format"}
    errors = block_errors(blocks or [])
    if errors:
        return {
            "ok": False,
            "error": "invalid_blocks",
            "errors": errors,
            "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]},
        }
    return None


def block_errors(blocks: Any) -> list[str]:
    """Every Block Kit limit a message's blocks break, worded like Slack's error details."""
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    errors = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            errors.append(f"unknown block type [json-pointer:{at}/type]")
            continue
        if len(str(block.get("block_id", ""))) > ID_LENGTH:
            errors.append(
                f"must be less than {ID_LENGTH + 1} characters [json-pointer:{at}/block_id]"
            )
        kind = block["type"]
        if kind == "section":
            if "text" not in block and "fields" not in block:
                errors.append(f"must provide text or fields [json-pointer:{at}]")
            if "text" in block:
                errors += _text_errors(block["text"], SECTION_TEXT, f"{at}/text")
            fields = block.get("fields") or []
            if len(fields) > SECTION_FIELDS:
                errors.append(
                    f"no more than {SECTION_FIELDS} items allowed [json-pointer:{at}/fields]"
                )
            for j, f in enumerate(fields):
                errors += _text_errors(f, FIELD_TEXT, f"{at}/fields/{j}")
        elif kind == "header":
            errors += _text_errors(block.get("text"), HEADER_TEXT, f"{at}/text", plain=True)
        elif kind == "context":
            elements = block.get("elements") or []
            if not elements or len(elements) > CONTEXT_ELEMENTS:
                errors.append(
                    f"must have 1 to {CONTEXT_ELEMENTS} items [json-pointer:{at}/elements]"
                )
            for j, e in enumerate(elements):
                if e.get("type") in ("mrkdwn", "plain_text"):
                    errors += _text_errors(e, SECTION_TEXT, f"{at}/elements/{j}")
        elif kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > ACTIONS_ELEMENTS:
                errors.append(
                    f"must have 1 to {ACTIONS_ELEMENTS} items [json-pointer:{at}/elements]"
                )
            for j, e in enumerate(elements):
                where = f"{at}/elements/{j}"
                if len(str(e.get("action_id", ""))) > ID_LENGTH:
                    errors.append(
                        f"must be less than {ID_LENGTH + 1} characters [json-pointer:{where}/action_id]"
                    )
                if e.get("type") == "button":
                    errors += _text_errors(e.get("text"), BUTTON_TEXT, f"{where}/text", plain=True)
                    if len(str(e.get("value", ""))) > BUTTON_VALUE:
                        errors.append(
                            f"must be less than {BUTTON_VALUE + 1} characters [json-pointer:{where}/value]"
                        )
    return errors


def _text_errors(obj: Any, limit: int, at: str, plain: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        return [f"must be a text object [json-pointer:{at}]"]
    if plain and obj["type"] != "plain_text":
        return [f"must be plain_text [json-pointer:{at}/type]"]
    text = str(obj.get("text", ""))
    if not text:
        return [f"must be more than 0 characters [json-pointer:{at}/text]"]
    if len(text) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{at}/text]"]
    return []
