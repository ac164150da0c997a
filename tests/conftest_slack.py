"""Fixtures for the Slack bot tests: a stand-in Slack, a tmp SQLite roster, the bot over HTTP.

Import the fixtures into a test module (`from tests.conftest_slack import *`); tests/conftest.py
belongs to the roster/validation suite.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.app import HttpServer, create_app, start_http_server
from bot.settings import Settings
from roster.store import Store
from tests.slack_standin import BOT_TOKEN, BOT_USER_ID, TEAM_ID, SlackStandIn

SIGNING_SECRET = "standin-signing-secret"

# Tenancy set up for every bot test.
DISTRICT = "lincoln"  # batch district
TP_DISTRICT = "clevercounty"  # students come from Clever
SCHOOL = "LHS"
TP_SCHOOL = "CCHS"
ADMIN = "U0ADMIN"  # system + enrollment in DISTRICT
SUPPORT = "U0SUPPORT"  # support only in DISTRICT
SYSADMIN_ONLY = "U0SYSONLY"  # system only in DISTRICT
TP_ADMIN = "U0TPADMIN"  # system + enrollment in TP_DISTRICT
STRANGER = "U0STRANGER"  # no grant anywhere
CHANNEL = "C0LINKED"  # linked to DISTRICT
TP_CHANNEL = "C0CLEVER"  # linked to TP_DISTRICT
UNLINKED = "C0UNLINKED"
DM = "D0ADMIN"  # the admin's DM with the bot

USERS_HEADER = "action,org_sis_id,userId,userFirstName,userLastName,userEmail,userRole,userGrade"


def users_csv(*rows: str, header: str = USERS_HEADER) -> bytes:
    return ("\n".join((header, *rows)) + "\n").encode()


#: a message timestamp, and a file with two good rows and one rejected (unknown school)
TS = "1712000000.000100"

GOOD_AND_BAD = users_csv(
    f",{SCHOOL},t-100,Ann,Lee,ann.lee@lincoln.example.org,teacher,",
    f",{SCHOOL},s-200,Bob,Ray,bob.ray@lincoln.example.org,student,03",
    ",NOSUCHSCHOOL,s-201,Cy,Ray,cy.ray@lincoln.example.org,student,03",
)


def set_up_tenancy(s: Store) -> Store:
    """The districts, schools, grants and channel links every bot test starts from."""
    s.create_district(DISTRICT, "Lincoln Unified")
    s.add_school(DISTRICT, SCHOOL, "Lincoln High")
    s.grant_admin(DISTRICT, ADMIN, system=True, enrollment=True)
    s.grant_admin(DISTRICT, SUPPORT, support=True)
    s.grant_admin(DISTRICT, SYSADMIN_ONLY, system=True)
    s.link_channel(DISTRICT, CHANNEL)
    s.create_district(TP_DISTRICT, "Clever County", enrollment_source="clever")
    s.add_school(TP_DISTRICT, TP_SCHOOL, "Clever County High")
    s.grant_admin(TP_DISTRICT, TP_ADMIN, system=True, enrollment=True)
    s.link_channel(TP_DISTRICT, TP_CHANNEL)
    return s


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    s = set_up_tenancy(Store(f"sqlite:///{tmp_path}/r.sqlite3"))
    yield s
    s.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_on_each_backend(request, tmp_path) -> Iterator[Store]:
    """The same tenancy on SQLite and on PostgreSQL (which enforces column lengths)."""
    from tests.conftest import PG_OK, make_pg_store

    if request.param == "sqlite":
        s = set_up_tenancy(Store(f"sqlite:///{tmp_path}/r.sqlite3"))
        yield s
        s.dispose()
        return
    if not PG_OK:
        pytest.skip("PostgreSQL not configured (set ROSTERBOT_TEST_POSTGRES_URL)")
    s, drop = make_pg_store()
    try:
        yield set_up_tenancy(s)
    finally:
        drop()


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as standin:
        yield standin


@dataclass
class BotUnderTest:
    """The bot running in HTTP mode on loopback, and a way to talk to it as Slack does."""

    slack: SlackStandIn
    server: HttpServer
    app: Any
    secret: str = SIGNING_SECRET
    _events: Any = field(default_factory=lambda: iter(range(1, 10**6)))

    @property
    def url(self) -> str:
        return self.server.url

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def signed_headers(
        self,
        body: bytes,
        content_type: str,
        timestamp: int | None = None,
        extra: dict[str, str] | None = None,
    ) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        sig = SignatureVerifier(self.secret).generate_signature(timestamp=ts, body=body.decode())
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sig,
            **(extra or {}),
        }

    def envelope(self, event: dict, event_id: str | None = None) -> dict:
        return {
            "token": "legacy",
            "team_id": TEAM_ID,
            "api_app_id": "A0ROSTERBOT",
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._events):08d}",
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [
                {
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
        }

    def send_event(
        self,
        event: dict,
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        envelope: dict | None = None,
    ) -> int:
        body = json.dumps(envelope or self.envelope(event, event_id)).encode()
        extra = (
            {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
            if retry_num is not None
            else None
        )
        status, _ = self.post(body, self.signed_headers(body, "application/json", extra=extra))
        return status

    def send_command(self, text: str, *, user: str = ADMIN, channel: str = CHANNEL) -> int:
        form = {
            "token": "legacy",
            "team_id": TEAM_ID,
            "team_domain": "standin",
            "channel_id": channel,
            "channel_name": "roster",
            "user_id": user,
            "user_name": "someone",
            "command": "/rosterbot",
            "text": text,
            "api_app_id": "A0ROSTERBOT",
            "response_url": self.slack.response_url(),
            "trigger_id": "1.2.3",
        }
        body = urllib.parse.urlencode(form).encode()
        status, _ = self.post(body, self.signed_headers(body, "application/x-www-form-urlencoded"))
        return status

    def send_action(self, payload: dict) -> int:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        status, _ = self.post(body, self.signed_headers(body, "application/x-www-form-urlencoded"))
        return status

    def click(self, button: dict, *, user: str, channel: str, message_ts: str) -> int:
        """Press a Block Kit button the bot posted."""
        return self.send_action(
            {
                "type": "block_actions",
                "team": {"id": TEAM_ID, "domain": "standin"},
                "user": {"id": user, "username": "someone", "team_id": TEAM_ID},
                "api_app_id": "A0ROSTERBOT",
                "token": "legacy",
                "trigger_id": "1.2.3",
                "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
                "channel": {"id": channel, "name": "roster"},
                "message": {"type": "message", "ts": message_ts, "text": "", "bot_id": "B"},
                "response_url": self.slack.response_url(),
                "actions": [
                    {
                        "action_id": button["action_id"],
                        "block_id": "held_upload",
                        "type": "button",
                        "value": button["value"],
                        "action_ts": str(time.time()),
                    }
                ],
            }
        )


def file_share_event(
    file_objects: list[dict],
    *,
    user: str = ADMIN,
    channel: str = CHANNEL,
    ts: str = "1712000000.000100",
    text: str = "",
    **extra: Any,
) -> dict:
    return {
        "type": "message",
        "subtype": "file_share",
        "text": text,
        "user": user,
        "channel": channel,
        "channel_type": "im" if channel.startswith("D") else "channel",
        "ts": ts,
        "event_ts": ts,
        "upload": False,
        "display_as_bot": False,
        "files": file_objects,
        **extra,
    }


def bot_settings(slack: SlackStandIn, **overrides: Any) -> Settings:
    values = dict(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        progress_interval=3.0,
    )
    values.update(overrides)
    return Settings(**values)


def start_bot(slack: SlackStandIn, store: Store, **overrides: Any) -> BotUnderTest:
    app = create_app(bot_settings(slack, **overrides), store)
    return BotUnderTest(slack=slack, server=start_http_server(app), app=app)


def stop_bot(bot: BotUnderTest) -> None:
    bot.server.stop()
    bot.app.rosterbot.shutdown()


@pytest.fixture
def bot(slack: SlackStandIn, store: Store) -> Iterator[BotUnderTest]:
    running = start_bot(slack, store)
    yield running
    stop_bot(running)
