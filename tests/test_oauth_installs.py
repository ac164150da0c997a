"""Installs in many workspaces through Slack's OAuth flow (bot/oauth.py), over real HTTP
against the stand-in Slack, on SQLite and PostgreSQL: two bot replicas share the database.

Workspaces: T0ONE (district one, admin U0ONE), T0TWO (district two, admin U0TWO) and an
Enterprise Grid org E0ORG installed org-wide (district org, admin U0ORG of its workspace
T0ORGWS).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, func, select, text

from bot.app import create_app, start_http_server
from roster.models import Person
from roster.store import Store
from tests.conftest import PG_OK, PG_URL
from tests.conftest_slack import (
    BotUnderTest,
    bot_settings,
    file_share_event,
    slack,  # noqa: F401 - fixture
    users_csv,
)
from tests.slack_standin import CLIENT_ID, CLIENT_SECRET, SlackStandIn

ONE, TWO, ORG, ORG_WS = "T0ONE", "T0TWO", "E0ORG", "T0ORGWS"
FINALS = {"white_check_mark", "warning", "x", "no_entry"}


def _file(school: str, domain: str) -> bytes:
    return users_csv(
        f",{school},t-1,Ann,Lee,ann.lee@{domain},teacher,",
        f",{school},s-1,Bob,Ray,bob.ray@{domain},student,03",
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'r.sqlite3'}"
        return
    if not PG_OK:
        pytest.skip("PostgreSQL not configured (set ROSTERBOT_TEST_POSTGRES_URL)")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def set_up(store: Store) -> None:
    for key, team, admin, channel, school in (
        ("one", ONE, "U0ONE", "C0ONE", "S1"),
        ("two", TWO, "U0TWO", "C0TWO", "S2"),
        ("org", ORG, "U0ORG", "C0ORG", "S3"),
    ):
        store.create_district(key, f"District {key}", team_id=team)
        store.add_school(key, school, f"School {school}")
        store.grant_admin(key, admin, system=True, enrollment=True)
        store.link_channel(key, channel)
    # granted in two by mistake: still refused, being a user of workspace one
    store.grant_admin("two", "U0ONE", system=True, enrollment=True)


class Replica(BotUnderTest):
    """One bot process's app and HTTP server (a replica behind the load balancer)."""

    @property
    def base(self) -> str:
        return self.url.rsplit("/slack/", 1)[0]


def start_replica(slack: SlackStandIn, url: str) -> Replica:
    store = Store(url)  # its own engine and pool, as another process would have
    settings = bot_settings(slack, bot_token="", client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    settings.oauth_authorize_url = slack.authorize_url()
    app = create_app(settings, store)
    return Replica(slack=slack, server=start_http_server(app), app=app)


def stop_replica(replica: Replica) -> None:
    replica.server.stop()
    replica.app.rosterbot.shutdown()
    replica.app.rosterbot.store.dispose()


@pytest.fixture
def replicas(slack: SlackStandIn, db_url: str) -> Iterator[tuple[Replica, Replica]]:
    first = start_replica(slack, db_url)
    set_up(first.app.rosterbot.store)
    second = start_replica(slack, db_url)
    # the app's one registered Redirect URL: behind the load balancer, either replica
    slack.oauth_redirect_url = f"{second.base}/slack/oauth_redirect"
    for ws in ((ONE, "One"), (TWO, "Two")):
        slack.add_workspace(*ws, installer=f"U0{ws[1].upper()}")
    slack.add_workspace(None, "The Org", enterprise_id=ORG, installer="U0ORG")
    yield first, second
    stop_replica(first)
    stop_replica(second)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the test follows each redirect itself


class Browser:
    """A person's browser: keeps the cookies it is given, shows each redirect.

    Bolt's state cookie is `Secure` (the install runs over https behind the proxy); the
    replicas here speak plain http on loopback, so the cookie is sent back as a browser does
    over https, whatever the port (cookies are not per port).
    """

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}
        self.opener = urllib.request.build_opener(_NoRedirect)

    def get(self, url: str) -> tuple[int, str, str]:
        """(status, Location header, body)"""
        request = urllib.request.Request(url)
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        try:
            with self.opener.open(request, timeout=10) as resp:
                status, headers, body = resp.status, resp.headers, resp.read().decode()
        except urllib.error.HTTPError as err:
            status, headers, body = err.code, err.headers, err.read().decode()
        for cookie in headers.get_all("Set-Cookie") or []:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        return status, headers.get("Location", ""), body


def start_install(browser: Browser, replica: Replica, team: str) -> str:
    """/slack/install on `replica`, then Slack's consent page for `team`: the redirect back."""
    status, consent, _ = browser.get(f"{replica.base}/slack/install")
    assert status == 302 and consent.startswith(replica.slack.authorize_url()), consent
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(consent).query)
    assert query["client_id"] == [CLIENT_ID] and "files:read" in query["scope"][0]
    status, back, _ = browser.get(f"{consent}&team={team}")
    assert status == 302 and "/slack/oauth_redirect?code=" in back
    return back


def install(replicas: tuple[Replica, Replica], team: str) -> None:
    first, _second = replicas
    browser = Browser()
    back = start_install(browser, first, team)  # begun on replica 1 ...
    status, _, page = browser.get(back)  # ... finished on replica 2 (the redirect URL)
    assert status == 200, page


def people(store: Store, district: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(Person)
            .where(Person.district_id == store.district(district).id)
        ).scalar_one()


def envelope(team: str | None, event: dict, *, enterprise: str | None = None) -> dict:
    return {
        "token": "legacy",
        "team_id": team or (event.get("team") or ""),
        "enterprise_id": enterprise,
        "api_app_id": "A0ROSTERBOT",
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10]}",
        "event_time": 1712000000,
        "event": event,
        "is_ext_shared_channel": False,
        "authorizations": [
            {
                "enterprise_id": enterprise,
                "team_id": team,
                "user_id": "UROSTERBOT",
                "is_bot": True,
                "is_enterprise_install": team is None,
            }
        ],
    }


def final_reaction(slack: SlackStandIn, channel: str, ts: str) -> str:
    return slack.wait_for(
        lambda: [r for r in slack.reactions(channel, ts) if r in FINALS], what="a final reaction"
    )[0]


def test_two_workspaces_installed_each_served_with_its_own_token(replicas, slack):
    first, second = replicas
    install(replicas, ONE)
    install(replicas, TWO)
    assert len(slack.tokens_of(ONE)) == 1 and len(slack.tokens_of(TWO)) == 1
    token_one, token_two = slack.tokens_of(ONE)[0], slack.tokens_of(TWO)[0]
    store = first.app.rosterbot.store

    # each workspace's file, to either replica: downloaded and answered with its own token
    for replica, team, user, channel, school, ts in (
        (first, ONE, "U0ONE", "C0ONE", "S1", "1712000001.000001"),
        (second, TWO, "U0TWO", "C0TWO", "S2", "1712000002.000001"),
    ):
        fo = slack.host_file("users.csv", _file(school, f"{team.lower()}.example.org"), team=team)
        event = file_share_event([fo], user=user, channel=channel, ts=ts)
        assert replica.send_event(event, envelope=envelope(team, event)) == 200
        assert final_reaction(slack, channel, ts) == "white_check_mark"
    assert people(store, "one") == 2 and people(store, "two") == 2
    posted = {(r.get("channel"), slack._token(r)) for r in slack.calls("chat.postMessage")}
    assert posted == {("C0ONE", token_one), ("C0TWO", token_two)}
    downloads = {
        r.path.split("/")[2].split("-")[0]: r.headers["authorization"]
        for r in slack.paths("/files-pri/")
    }
    assert downloads == {ONE: f"Bearer {token_one}", TWO: f"Bearer {token_two}"}

    # an event of a workspace that never installed the app is not served
    event = file_share_event([], user="U0X", channel="C0X", ts="1712000003.000001")
    first.send_event(event, envelope=envelope("T0NEVER", event))
    assert slack.posts("C0X") == []


def test_an_admin_of_one_workspace_cannot_reach_anothers_district(replicas, slack):
    first, second = replicas
    install(replicas, ONE)
    install(replicas, TWO)
    store = first.app.rosterbot.store

    # U0ONE (workspace one, granted in two by mistake) shares a file in two's channel,
    # shared with workspace one (Slack Connect): refused, nothing downloaded or applied
    fo = slack.host_file("users.csv", _file("S2", "two.example.org"), team=TWO)
    ts = "1712000004.000001"
    event = file_share_event([fo], user="U0ONE", channel="C0TWO", ts=ts)
    event.update(user_team=ONE, source_team=ONE, team=ONE)
    body = envelope(TWO, event)
    body["is_ext_shared_channel"] = True
    assert second.send_event(event, envelope=body) == 200
    assert final_reaction(slack, "C0TWO", ts) == "no_entry"
    refusal = slack.posts("C0TWO", ts)[0]
    assert "District two (two) is served in Slack workspace T0TWO" in refusal["text"]
    assert f"you are a user of workspace {ONE}" in refusal["text"]
    assert slack._token(refusal) == slack.tokens_of(TWO)[0]
    assert slack.paths("/files-pri/") == [] and people(store, "two") == 0

    # from workspace one, naming district two: refused
    seen = len(slack.responses())
    form = {
        "token": "legacy",
        "team_id": ONE,
        "team_domain": "one",
        "channel_id": "C0ONE",
        "channel_name": "roster",
        "user_id": "U0ONE",
        "user_name": "one",
        "command": "/rosterbot",
        "text": "status two",
        "api_app_id": "A0ROSTERBOT",
        "response_url": slack.response_url(),
        "trigger_id": "1.2.3",
    }
    raw = urllib.parse.urlencode(form).encode()
    status, _ = first.post(raw, first.signed_headers(raw, "application/x-www-form-urlencoded"))
    assert status == 200
    answer = slack.wait_for(lambda: slack.responses()[seen:])[0].body
    assert f"you are a user of workspace {ONE}" in answer["text"]

    # a district set up before the installs, with no workspace: nobody's
    store.create_district("legacy", "Legacy USD")
    store.grant_admin("legacy", "U0ONE", system=True, enrollment=True)
    seen = len(slack.responses())
    form.update(text="status legacy", response_url=slack.response_url())
    raw = urllib.parse.urlencode(form).encode()
    first.post(raw, first.signed_headers(raw, "application/x-www-form-urlencoded"))
    answer = slack.wait_for(lambda: slack.responses()[seen:])[0].body
    assert "is not assigned to a Slack workspace" in answer["text"]


def test_an_org_wide_install_resolves(replicas, slack):
    first, _ = replicas
    install(replicas, ORG)  # Slack hands the org's token; the install has no team id
    assert len(slack.tokens_of(ORG)) == 1
    store = first.app.rosterbot.store
    fo = slack.host_file("users.csv", _file("S3", "org.example.org"), team=ORG)
    ts = "1712000005.000001"
    event = file_share_event([fo], user="U0ORG", channel="C0ORG", ts=ts)
    event.update(user_team=ORG_WS, team=ORG_WS)
    assert first.send_event(event, envelope=envelope(None, event, enterprise=ORG)) == 200
    assert final_reaction(slack, "C0ORG", ts) == "white_check_mark", slack.posts("C0ORG")[0]["text"]
    assert people(store, "org") == 2
    assert {slack._token(r) for r in slack.calls("chat.postMessage")} == set(slack.tokens_of(ORG))


def test_a_state_from_one_replica_is_accepted_by_the_other_once(replicas, slack):
    first, second = replicas
    browser = Browser()
    back = start_install(browser, first, ONE)  # the state was issued by replica 1
    assert back.startswith(second.base)  # Slack sends the person to replica 2
    status, _, page = browser.get(back)
    assert status == 200, page
    assert len(slack.tokens_of(ONE)) == 1
    # the same redirect again (a reload, or someone who copied the URL): refused, nothing
    # traded, to either replica
    for replica in (second, first):
        status, _, page = browser.get(back.replace(second.base, replica.base))
        assert status == 400, page
    assert len(slack.calls("oauth.v2.access")) == 1
    # a state nobody issued is refused too
    status, _, _ = Browser().get(f"{second.base}/slack/oauth_redirect?code=x&state=forged")
    assert status == 400


@pytest.mark.slow
def test_a_token_about_to_expire_is_refreshed_once_under_load(replicas, slack):
    """Token rotation: replicas and threads asking at once refresh it exactly once."""
    first, second = replicas
    slack.token_rotation = True
    slack.token_lifetime = 60  # the installed token expires within the refresh window ...
    install(replicas, ONE)
    slack.token_lifetime = 12 * 3600  # ... the refreshed one does not
    errors: list[str] = []

    def question(replica: Replica, n: int) -> None:
        event = {
            "type": "app_mention",
            "user": "U0ONE",
            "channel": "C0ONE",
            "text": "<@UROSTERBOT> what does primary_teacher mean?",
            "ts": f"1712000100.{n:06d}",
            "event_ts": f"1712000100.{n:06d}",
        }
        if replica.send_event(event, envelope=envelope(ONE, event)) != 200:
            errors.append(f"event {n}")

    threads = [
        threading.Thread(target=question, args=((first, second)[n % 2], n)) for n in range(12)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    slack.wait_for(lambda: len(slack.posts("C0ONE")) >= 12, timeout=30, what="12 answers")
    assert slack.refreshes == [ONE]  # exactly one refresh
    refused = [r for r in slack.calls("oauth.v2.access") if not r.response.get("ok")]
    assert refused == []  # no invalid_refresh_token
    newest = slack.tokens_of(ONE)[-1]
    assert len(slack.tokens_of(ONE)) == 2
    assert {slack._token(r) for r in slack.posts("C0ONE")} == {newest}


def test_a_replica_waits_for_the_install_lock_another_holds(replicas, slack, db_url):
    """PostgreSQL: while another replica holds the install's advisory lock (it is refreshing
    the token), a replica needing the same token waits, then uses the token the other saved:
    one refresh, no `invalid_refresh_token`."""
    if not db_url.startswith("postgresql"):
        pytest.skip("the advisory lock is PostgreSQL's (SQLite runs one process)")
    from slack_sdk import WebClient

    from bot.oauth import _lock_key

    first, _ = replicas
    slack.token_rotation = True
    slack.token_lifetime = 60
    install(replicas, ONE)
    slack.token_lifetime = 12 * 3600
    installs = first.app.installation_store
    installed = installs.find_installation(enterprise_id=None, team_id=ONE)
    key = _lock_key(installed)

    other = create_engine(db_url)  # the other replica, mid-refresh
    with other.connect() as conn:
        conn.execute(text(f"SELECT pg_advisory_lock({key})"))
        event = {
            "type": "app_mention",
            "user": "U0ONE",
            "channel": "C0ONE",
            "text": "<@UROSTERBOT> what does primary_teacher mean?",
            "ts": "1712000200.000001",
            "event_ts": "1712000200.000001",
        }
        sent = threading.Thread(
            target=first.send_event, args=(event,), kwargs={"envelope": envelope(ONE, event)}
        )
        sent.start()
        with other.connect() as watch:  # the replica is waiting for the lock
            slack.wait_for(
                lambda: watch.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    )
                ).scalar(),
                what="the replica waiting for the install's lock",
            )
        assert slack.refreshes == []
        # the other replica refreshes and saves, then lets go
        fresh = WebClient(base_url=slack.api_url).oauth_v2_access(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            grant_type="refresh_token",
            refresh_token=installed.bot_refresh_token,
        )
        installed.bot_token = fresh["access_token"]
        installed.bot_refresh_token = fresh["refresh_token"]
        installed.bot_token_expires_at = int(time.time()) + fresh["expires_in"]
        installs.save(installed)
        conn.execute(text(f"SELECT pg_advisory_unlock({key})"))
    other.dispose()
    sent.join()
    answer = slack.wait_for(lambda: slack.posts("C0ONE"), what="the answer")[0]
    assert slack._token(answer) == fresh["access_token"]
    assert slack.refreshes == [ONE]
    assert [r.response.get("error") for r in slack.calls("oauth.v2.access")] == [None, None]


def test_start_up_recovery_replies_with_the_districts_install(replicas, slack):
    from datetime import timedelta

    from bot.app import recover
    from roster.models import utcnow

    first, _ = replicas
    install(replicas, ONE)
    install(replicas, TWO)
    store = first.app.rosterbot.store
    left = {}
    for key, channel, ts in (
        ("one", "C0ONE", "1711000000.000001"),
        ("two", "C0TWO", "1711000000.000002"),
    ):
        upload_id = store.claim_slack_file(f"F0{key}", key, channel, ts, "U0X", "users.csv")
        store.update_upload(upload_id, created_at=utcnow() - timedelta(hours=1))
        left[key] = upload_id
    store.create_district("nobody", "Nobody USD")  # no workspace: nothing to reply with
    orphan = store.claim_slack_file("F0nobody", "nobody", "C0NOBODY", "1711000000.000003", "U0X")
    store.update_upload(orphan, created_at=utcnow() - timedelta(hours=1))

    recovered = recover(first.app)
    assert sorted(r.upload_id for r in recovered) == sorted([*left.values(), orphan])
    replies = {(r["channel"], slack._token(r)) for r in slack.posts()}
    assert replies == {("C0ONE", slack.tokens_of(ONE)[0]), ("C0TWO", slack.tokens_of(TWO)[0])}


def test_one_event_sent_to_both_replicas_and_retried_is_one_upload(replicas, slack):
    """The same signed event delivered to both replicas at once, then Slack's retry: the
    file share is claimed once (a unique key in the shared database), applied once."""
    first, second = replicas
    install(replicas, ONE)
    store = first.app.rosterbot.store
    fo = slack.host_file("users.csv", _file("S1", "one.example.org"), team=ONE)
    ts = "1712000300.000001"
    event = file_share_event([fo], user="U0ONE", channel="C0ONE", ts=ts)
    body = envelope(ONE, event)
    statuses: list[int] = []
    sends = [
        threading.Thread(target=lambda r=r: statuses.append(r.send_event(event, envelope=body)))
        for r in (first, second)
    ]
    for t in sends:
        t.start()
    for t in sends:
        t.join()
    assert statuses == [200, 200]
    assert final_reaction(slack, "C0ONE", ts) == "white_check_mark"
    assert second.send_event(event, envelope=body, retry_num=1) == 200  # Slack's retry
    with store.engine.connect() as conn:
        from roster.models import Upload

        records = conn.execute(select(Upload.state).where(Upload.slack_file_id == fo["id"])).all()
    assert [r.state for r in records] == ["applied"]
    assert people(store, "one") == 2
    assert len(slack.paths("/files-pri/")) == 1


def test_installs_through_oauth_are_configured_from_the_environment():
    from bot.app import serve
    from bot.settings import Settings, SettingsError

    settings = Settings.from_env(
        {
            "SLACK_CLIENT_ID": CLIENT_ID,
            "SLACK_CLIENT_SECRET": CLIENT_SECRET,
            "SLACK_SIGNING_SECRET": "s",
            "SLACK_REDIRECT_URI": "https://rosterbot.example.org/slack/oauth_redirect",
        }
    )
    assert settings.multi_workspace and not settings.bot_token
    assert settings.oauth_redirect_uri == "https://rosterbot.example.org/slack/oauth_redirect"
    assert settings.oauth_authorize_url == "https://slack.com/oauth/v2/authorize"
    with pytest.raises(SettingsError, match="need HTTP mode"):
        serve(settings, http=False)
    assert not Settings.from_env({"SLACK_CLIENT_ID": CLIENT_ID}).multi_workspace


def test_a_queued_job_is_run_with_its_districts_install_token(replicas, slack):
    """What a `rosterbot worker` does with a job (bot.uploads.UploadService.run_queued): no
    Slack request to authorize, so the token comes from the district's workspace install."""
    from bot.files import SharedFile
    from bot.queue import slack_client
    from bot.uploads import UploadJob, UploadService

    first, _ = replicas
    install(replicas, ONE)
    install(replicas, TWO)
    install(replicas, ORG)
    store, settings = first.app.rosterbot.store, first.app.rosterbot.settings
    tokens = {key: slack_client(settings, store, key).token for key in ("one", "two", "org")}
    assert tokens == {
        "one": slack.tokens_of(ONE)[-1],
        "two": slack.tokens_of(TWO)[-1],
        "org": slack.tokens_of(ORG)[-1],
    }
    store.create_district("nobody", "Nobody USD", team_id="T0NOTINSTALLED")
    assert slack_client(settings, store, "nobody") is None

    fo = slack.host_file("users.csv", _file("S2", "two.example.org"), team=TWO)
    ts = "1712000009.000001"
    upload_id = store.claim_slack_file(fo["id"], "two", "C0TWO", ts, "U0TWO", "users.csv")
    job = UploadJob(
        channel="C0TWO",
        message_ts=ts,
        thread_ts=ts,
        user="U0TWO",
        district=store.district("two"),
        dry_run=False,
        files=[(SharedFile.from_event(fo), upload_id)],
        announced=False,
    )
    uploads = UploadService(settings, store)
    try:
        uploads.run_queued(json.loads(json.dumps(job.to_json())))  # as the queue stores it
    finally:
        uploads.shutdown()
    assert people(store, "two") == 2
    assert final_reaction(slack, "C0TWO", ts) == "white_check_mark"
    assert {slack._token(r) for r in slack.calls("chat.postMessage")} == {slack.tokens_of(TWO)[-1]}
