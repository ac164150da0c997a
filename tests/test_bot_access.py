"""Who may do what, on every Slack path (issue 7 "Access"), over real HTTP against the stand-in.

District A = lincoln (ADMIN: system + enrollment; SUPPORT: support only), district B =
clevercounty (TP_ADMIN).  An A admin can never read or change B's data — by a thread reply,
a slash command, the Confirm button or a download; a support admin reads the reports and
status of the districts they support and changes nothing.  HTTP mode accepts only requests
signed with the signing secret within five minutes.
"""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest
from sqlalchemy import func, select

from roster.models import Person
from tests.conftest_slack import (  # noqa: F401 - fixtures
    ADMIN,
    CHANNEL,
    DISTRICT,
    SCHOOL,
    SUPPORT,
    TP_ADMIN,
    TP_CHANNEL,
    TP_DISTRICT,
    TP_SCHOOL,
    UNLINKED,
    bot,
    file_share_event,
    slack,
    store,
    users_csv,
)
from tests.slack_standin import SlackStandIn

TS = "1712000000.000100"
B_FILE = users_csv(  # row 2 applied, row 3 a student: ROLE_NOT_ALLOWED in a Clever district
    f",{TP_SCHOOL},t-1,Tia,Moss,tia.moss@clever.example.org,teacher,",
    f",{TP_SCHOOL},s-1,Sam,Moss,sam.moss@clever.example.org,student,05",
)


def final_reaction(slack: SlackStandIn, channel: str, ts: str = TS) -> str:
    finals = {"white_check_mark", "warning", "x", "no_entry", "raised_hand"}
    return slack.wait_for(
        lambda: [r for r in slack.reactions(channel, ts) if r in finals], what="the final reaction"
    )[0]


def share(bot, slack, content: bytes, *, user: str, channel: str, ts: str = TS) -> None:
    fo = slack.host_file("users.csv", content)
    assert bot.send_event(file_share_event([fo], user=user, channel=channel, ts=ts)) == 200


def command(bot, slack, text: str, *, user: str, channel: str) -> dict:
    seen = len(slack.responses())
    assert bot.send_command(text, user=user, channel=channel) == 200
    return slack.wait_for(lambda: slack.responses()[seen:], what=f"/rosterbot {text}")[0].body


def thread_reply(
    bot, slack, text: str, *, user: str, channel: str, thread_ts: str, ts: str
) -> dict:
    before = len(slack.posts(channel, thread_ts))
    assert (
        bot.send_event(
            {
                "type": "message",
                "user": user,
                "channel": channel,
                "channel_type": "channel",
                "text": text,
                "ts": ts,
                "thread_ts": thread_ts,
            }
        )
        == 200
    )
    return slack.wait_for(lambda: slack.posts(channel, thread_ts)[before:], what=text)[0].body


def people(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Person)).scalar_one()


def active(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(Person).where(Person.active.is_(True))
        ).scalar_one()


# -- one district's admins never reach another district ----------------------------------------


def test_thread_triage_in_another_districts_upload_is_refused(bot, slack, store):
    share(bot, slack, B_FILE, user=TP_ADMIN, channel=TP_CHANNEL)
    assert final_reaction(slack, TP_CHANNEL) == "warning"
    own = thread_reply(
        bot,
        slack,
        "why did row 3 fail?",
        user=TP_ADMIN,
        channel=TP_CHANNEL,
        thread_ts=TS,
        ts="1712000001.000001",
    )
    assert "ROLE_NOT_ALLOWED" in json.dumps(own)  # B's admin reads B's report

    for n, (who, text) in enumerate(
        [(ADMIN, "why did row 3 fail?"), (ADMIN, "summary"), (SUPPORT, "row 3")], start=2
    ):
        reply = thread_reply(
            bot, slack, text, user=who, channel=TP_CHANNEL, thread_ts=TS, ts=f"1712000001.00000{n}"
        )
        assert f"Reading upload reports of {TP_DISTRICT} needs" in reply["text"]
        assert "ROLE_NOT_ALLOWED" not in json.dumps(reply) and "s-1" not in json.dumps(reply)


def test_download_in_another_districts_channel_is_refused(bot, slack, store):
    share(bot, slack, B_FILE, user=TP_ADMIN, channel=TP_CHANNEL)
    final_reaction(slack, TP_CHANNEL)
    body = command(bot, slack, "download staff", user=ADMIN, channel=TP_CHANNEL)
    assert "Downloading roster data of Clever County" in body["text"]
    assert "needs system and enrollment access; you have no access" in body["text"]
    assert slack.calls("conversations.open") == []
    assert all(
        "users.csv" not in u.filename or u.filename.endswith("errors.csv") for u in slack.uploads
    )
    # B's own admin may download B's staff (to their DM)
    ok = command(bot, slack, "download staff", user=TP_ADMIN, channel=TP_CHANNEL)
    assert "direct message" in ok["text"]


def test_confirm_button_of_another_districts_held_upload_is_refused(bot, slack, store):
    teachers = [f",{TP_SCHOOL},t-{n},T{n},Moss,t{n}@clever.example.org,teacher," for n in range(5)]
    share(bot, slack, users_csv(*teachers), user=TP_ADMIN, channel=TP_CHANNEL)
    final_reaction(slack, TP_CHANNEL)
    held_ts = "1712000005.000100"
    removals = [
        f"DEACTIVATE-USER,{TP_SCHOOL},t-{n},T{n},Moss,t{n}@clever.example.org,teacher,"
        for n in range(2)
    ]
    share(bot, slack, users_csv(*removals), user=TP_ADMIN, channel=TP_CHANNEL, ts=held_ts)
    assert final_reaction(slack, TP_CHANNEL, held_ts) == "raised_hand"  # held, not failed
    held = slack.wait_for(
        lambda: [
            p
            for p in slack.posts(TP_CHANNEL, held_ts)
            if "actions" in json.dumps(p.get("blocks") or [])
        ]
    )[0]
    button = next(e for b in held["blocks"] if b["type"] == "actions" for e in b["elements"])

    for who in (ADMIN, SUPPORT):
        seen = len(slack.responses())
        assert bot.click(button, user=who, channel=TP_CHANNEL, message_ts=held_ts) == 200
        refused = slack.wait_for(lambda seen=seen: slack.responses()[seen:])[0].body
        assert f"needs system and enrollment access to {TP_DISTRICT}" in refused["text"]
    time.sleep(0.2)
    assert active(store) == 5


def test_confirm_button_mixing_districts_is_refused(bot, slack, store):
    """A forged button value naming A's and B's held uploads applies neither."""

    def held_upload(user: str, channel: str, school: str, domain: str, ts0: str, ts1: str):
        rows = [f",{school},x-{n},P{n},Q,p{n}@{domain}.example.org,teacher," for n in range(5)]
        share(bot, slack, users_csv(*rows), user=user, channel=channel, ts=ts0)
        final_reaction(slack, channel, ts0)
        gone = [
            f"DEACTIVATE-USER,{school},x-{n},P{n},Q,p{n}@{domain}.example.org,teacher,"
            for n in range(2)
        ]
        share(bot, slack, users_csv(*gone), user=user, channel=channel, ts=ts1)
        assert final_reaction(slack, channel, ts1) == "raised_hand"  # held
        return store.uploads_in_thread(channel, ts1)[0].id

    a = held_upload(ADMIN, CHANNEL, SCHOOL, "lincoln", "1712000001.000001", "1712000001.000002")
    b = held_upload(
        TP_ADMIN, TP_CHANNEL, TP_SCHOOL, "clever", "1712000002.000001", "1712000002.000002"
    )
    button = {"action_id": "confirm_removals", "value": json.dumps({"uploads": [a, b]})}
    seen = len(slack.responses())
    assert bot.click(button, user=ADMIN, channel=CHANNEL, message_ts="1712000001.000002") == 200
    refused = slack.wait_for(lambda: slack.responses()[seen:])[0].body
    assert "needs system and enrollment access" in refused["text"]
    time.sleep(0.2)
    assert active(store) == 10
    assert {store.upload(a).state, store.upload(b).state} == {"held"}


def test_status_in_another_districts_channel_is_refused(bot, slack, store):
    share(bot, slack, B_FILE, user=TP_ADMIN, channel=TP_CHANNEL)
    final_reaction(slack, TP_CHANNEL)
    for who in (ADMIN, SUPPORT):
        body = command(bot, slack, "status", user=who, channel=TP_CHANNEL)
        assert "needs system, enrollment or support access" in body["text"]
        assert "users.csv" not in body["text"]
    assert "users.csv" in command(bot, slack, "status", user=TP_ADMIN, channel=TP_CHANNEL)["text"]


def test_linking_another_district_or_taking_over_its_channel_is_refused(bot, slack, store):
    body = command(bot, slack, f"link {TP_DISTRICT}", user=ADMIN, channel=UNLINKED)
    assert "needs system access" in body["text"]
    assert store.district_for_channel(UNLINKED) is None
    # A's system admin re-pointing B's channel at A would take it from B's admins
    body = command(bot, slack, f"link {DISTRICT}", user=ADMIN, channel=TP_CHANNEL)
    assert f"linked to Clever County ({TP_DISTRICT})" in body["text"]
    assert store.district_for_channel(TP_CHANNEL).key == TP_DISTRICT
    # re-linking one's own district's channel is fine
    assert (
        "now linked" in command(bot, slack, f"link {DISTRICT}", user=ADMIN, channel=CHANNEL)["text"]
    )


def test_upload_into_another_districts_channel_is_refused(bot, slack, store):
    share(
        bot,
        slack,
        users_csv(f",{TP_SCHOOL},t-9,Al,Bo,al.bo@x.example.org,teacher,"),
        user=ADMIN,
        channel=TP_CHANNEL,
    )
    assert final_reaction(slack, TP_CHANNEL) == "no_entry"
    assert slack.paths("/files-pri/") == []
    assert people(store) == 0


# -- support: reads its districts, changes nothing ---------------------------------------------


def test_support_reads_reports_and_status_but_changes_nothing(bot, slack, store):
    share(
        bot,
        slack,
        users_csv(
            f",{SCHOOL},t-100,Ann,Lee,ann.lee@lincoln.example.org,teacher,",
            ",NOSUCHSCHOOL,s-201,Cy,Ray,cy.ray@lincoln.example.org,student,03",
        ),
        user=ADMIN,
        channel=CHANNEL,
    )
    assert final_reaction(slack, CHANNEL) == "warning"
    # reads: any upload's report of the district, and its status
    row = thread_reply(
        bot,
        slack,
        "why did row 3 fail",
        user=SUPPORT,
        channel=CHANNEL,
        thread_ts=TS,
        ts="1712000001.000001",
    )
    assert "ORG_NOT_FOUND" in json.dumps(row)
    summary = thread_reply(
        bot, slack, "summary", user=SUPPORT, channel=CHANNEL, thread_ts=TS, ts="1712000001.000002"
    )
    assert "Top issues" in json.dumps(summary)
    status = command(bot, slack, "status", user=SUPPORT, channel=CHANNEL)
    assert "users.csv" in status["text"] and f"<@{ADMIN}>" in status["text"]
    # changes nothing: upload, download, link (Confirm: tests above and test_bot.py)
    share(
        bot,
        slack,
        users_csv(f",{SCHOOL},t-101,Al,Bo,al.bo@lincoln.example.org,teacher,"),
        user=SUPPORT,
        channel=CHANNEL,
        ts="1712000002.000001",
    )
    assert final_reaction(slack, CHANNEL, "1712000002.000001") == "no_entry"
    assert (
        "needs system and enrollment"
        in command(bot, slack, "download all", user=SUPPORT, channel=CHANNEL)["text"]
    )
    assert (
        "needs system access"
        in command(bot, slack, f"link {DISTRICT}", user=SUPPORT, channel=UNLINKED)["text"]
    )
    assert people(store) == 1
    assert slack.calls("conversations.open") == []


# -- request signatures (HTTP mode) ------------------------------------------------------------


def _command_body(
    user: str = ADMIN,
    channel: str = CHANNEL,
    text: str = "status",
    response_url: str = "http://127.0.0.1:9/respond/x",
) -> bytes:
    return urllib.parse.urlencode(
        {
            "team_id": "T0STANDIN",
            "channel_id": channel,
            "user_id": user,
            "command": "/rosterbot",
            "text": text,
            "response_url": response_url,
            "trigger_id": "1",
        }
    ).encode()


@pytest.mark.parametrize(
    "how",
    [
        "replayed after 5 minutes",
        "from the future",
        "tampered body",
        "unsigned",
        "signature of another body",
    ],
)
def test_forged_or_replayed_requests_are_rejected(bot, slack, store, how):
    form = "application/x-www-form-urlencoded"
    body = _command_body()
    now = int(time.time())
    if how == "replayed after 5 minutes":
        headers = bot.signed_headers(body, form, timestamp=now - 301)
    elif how == "from the future":
        headers = bot.signed_headers(body, form, timestamp=now + 600)
    elif how == "tampered body":  # signed for status, sent as a link of another district
        headers = bot.signed_headers(body, form)
        body = _command_body(text=f"link {TP_DISTRICT}")
    elif how == "unsigned":
        headers = {"Content-Type": form, "X-Slack-Request-Timestamp": str(now)}
    else:
        headers = bot.signed_headers(_command_body(user=TP_ADMIN), form)
    status, _ = bot.post(body, headers)
    assert status == 401
    action = urllib.parse.urlencode(
        {
            "payload": json.dumps(
                {
                    "type": "block_actions",
                    "user": {"id": ADMIN},
                    "actions": [{"action_id": "confirm_removals", "value": '{"uploads": [1]}'}],
                }
            )
        }
    ).encode()
    stale = bot.signed_headers(action, form, timestamp=now - 301)
    assert bot.post(action, stale)[0] == 401
    time.sleep(0.2)
    assert [r.path for r in slack.requests if r.path != "/api/auth.test"] == []
    assert store.district_for_channel(CHANNEL).key == DISTRICT


def test_a_fresh_signed_request_is_accepted(bot, slack, store):
    body = _command_body(text="help", response_url=slack.response_url())
    status, _ = bot.post(
        body,
        bot.signed_headers(
            body, "application/x-www-form-urlencoded", timestamp=int(time.time()) - 60
        ),
    )
    assert status == 200
    assert "link DISTRICT" in slack.wait_for(slack.responses)[0].body["text"]


# -- an administrator of several districts, in a DM -------------------------------------------
def test_several_districts_in_a_dm_name_the_one_meant(bot, slack, store):
    store.grant_admin(TP_DISTRICT, ADMIN, system=True, enrollment=True)  # ADMIN: both districts
    dm = "D0ADMIN"

    # a question needs no district: answered
    assert (
        bot.send_event(
            {
                "type": "message",
                "user": ADMIN,
                "channel": dm,
                "channel_type": "im",
                "text": "what does EMAIL_TAKEN mean?",
                "ts": "1712000100.000001",
            }
        )
        == 200
    )
    answer = slack.wait_for(lambda: slack.posts(dm, "1712000100.000001"), what="the answer")[0]
    assert "EMAIL_TAKEN" in json.dumps(answer.body) and "several districts" not in answer["text"]

    # a file without a district named: refused, naming the keys to choose from
    share(bot, slack, B_FILE, user=ADMIN, channel=dm, ts="1712000100.000002")
    refusal = slack.wait_for(lambda: slack.posts(dm, "1712000100.000002"), what="refusal")[0]
    assert "several districts" in refusal["text"]
    assert DISTRICT in refusal["text"] and TP_DISTRICT in refusal["text"]

    # the same file with the district's key in the message: processed for that district
    fo = slack.host_file("users.csv", B_FILE)
    assert (
        bot.send_event(
            file_share_event(
                [fo],
                user=ADMIN,
                channel=dm,
                ts="1712000100.000003",
                text=f"roster for {TP_DISTRICT}",
            )
        )
        == 200
    )
    assert final_reaction(slack, dm, "1712000100.000003") == "warning"  # ROLE_NOT_ALLOWED row
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Person)).scalar_one() == 1  # t-1
    assert store.recent_uploads(TP_DISTRICT, 1)[0].actor == ADMIN
    assert store.recent_uploads(DISTRICT, 1) == []

    # slash commands in the DM name it too
    assert "several districts" in command(bot, slack, "status", user=ADMIN, channel=dm)["text"]
    status = command(bot, slack, f"status {TP_DISTRICT}", user=ADMIN, channel=dm)["text"]
    assert "users.csv" in status and TP_DISTRICT in status
    sent = command(bot, slack, f"download staff {TP_DISTRICT}", user=ADMIN, channel=dm)["text"]
    assert f"{TP_DISTRICT}-staff-users.csv" in sent
    delivered = slack.wait_for(lambda: slack.uploads, what="the download")
    assert b"t-1" in delivered[-1].content
