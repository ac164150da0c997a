"""Tenancy (issue 13 "Tenancy and access"), over real HTTP against the stand-in Slack.

District A = lincoln (ADMIN: system + enrollment), district B = clevercounty (TP_ADMIN).
A district named in a DM decides; a thread's uploads are read per district; re-linking a
channel that serves another district needs system access to both; a re-shared file is a new
upload; a user of another Slack workspace (Slack Connect) is refused.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from roster.models import Person, Upload
from tests.conftest_slack import (  # noqa: F401 - fixtures
    ADMIN,
    CHANNEL,
    DISTRICT,
    SCHOOL,
    TP_ADMIN,
    TP_CHANNEL,
    TP_DISTRICT,
    TP_SCHOOL,
    UNLINKED,
    BotUnderTest,
    bot,
    file_share_event,
    slack,
    start_bot,
    stop_bot,
    store,
    users_csv,
)
from tests.slack_standin import TEAM_ID, SlackStandIn

TS = "1712000000.000100"
DM = "D0ADMIN"
OTHER_TEAM = "T0PARTNER"  # another organisation's workspace (Slack Connect)

A_FILE = users_csv(  # row 3 rejected: ORG_NOT_FOUND
    f",{SCHOOL},t-100,Ann,Lee,ann.lee@lincoln.example.org,teacher,",
    ",NOSUCHSCHOOL,s-201,Cy,Ray,cy.ray@lincoln.example.org,student,03",
)
B_FILE = users_csv(  # row 3 rejected: ROLE_NOT_ALLOWED (students come from Clever)
    f",{TP_SCHOOL},t-1,Tia,Moss,tia.moss@clever.example.org,teacher,",
    f",{TP_SCHOOL},s-1,Sam,Moss,sam.moss@clever.example.org,student,05",
)
FINALS = {"white_check_mark", "warning", "x", "no_entry", "raised_hand"}


@pytest.fixture
def bot_with_default(slack: SlackStandIn, store) -> Iterator[BotUnderTest]:
    """An install whose unlinked channels (and DMs) default to lincoln."""
    running = start_bot(slack, store, default_district=DISTRICT)
    yield running
    stop_bot(running)


def final_reaction(slack: SlackStandIn, channel: str, ts: str = TS) -> str:
    return slack.wait_for(
        lambda: [r for r in slack.reactions(channel, ts) if r in FINALS], what="a final reaction"
    )[0]


def people(store, district: str | None = None) -> int:
    query = select(func.count()).select_from(Person)
    if district is not None:
        query = query.where(Person.district_id == store.district(district).id)
    with store.engine.connect() as conn:
        return conn.execute(query).scalar_one()


def share(bot, slack, content: bytes, *, user: str, channel: str, ts: str = TS, **kw) -> dict:
    fo = slack.host_file("users.csv", content)
    assert bot.send_event(file_share_event([fo], user=user, channel=channel, ts=ts, **kw)) == 200
    return fo


def command(
    bot, slack, text: str, *, user: str, channel: str, team: str = TEAM_ID, **extra
) -> dict:
    form = {
        "token": "legacy",
        "team_id": team,
        "team_domain": "standin",
        "channel_id": channel,
        "channel_name": "roster",
        "user_id": user,
        "user_name": "someone",
        "command": "/rosterbot",
        "text": text,
        "api_app_id": "A0ROSTERBOT",
        "response_url": slack.response_url(),
        "trigger_id": "1.2.3",
        **extra,
    }
    seen = len(slack.responses())
    body = urllib.parse.urlencode(form).encode()
    status, _ = bot.post(body, bot.signed_headers(body, "application/x-www-form-urlencoded"))
    assert status == 200
    return slack.wait_for(lambda: slack.responses()[seen:], what=f"/rosterbot {text}")[0].body


def ask_in_thread(bot, slack, text: str, *, user: str, channel: str, ts: str) -> dict:
    before = len(slack.posts(channel, TS))
    event = {
        "type": "message",
        "user": user,
        "channel": channel,
        "channel_type": "channel",
        "text": text,
        "ts": ts,
        "thread_ts": TS,
    }
    assert bot.send_event(event) == 200
    return slack.wait_for(lambda: slack.posts(channel, TS)[before:], what=text)[0].body


def summary_post(slack: SlackStandIn, channel: str, ts: str) -> dict:
    return slack.wait_for(
        lambda: [p.body for p in slack.posts(channel, ts) if "District:" in json.dumps(p.body)],
        what="the upload summary",
    )[0]


# -- 1. a district named in a DM decides -------------------------------------------------------


def test_a_district_named_in_a_dm_is_never_replaced_by_the_users_only_district(bot, slack, store):
    # ADMIN uploads to lincoln only; the message names clevercounty: refused, nothing applied
    share(bot, slack, B_FILE, user=ADMIN, channel=DM, text=f"roster for {TP_DISTRICT}")
    assert final_reaction(slack, DM) == "no_entry"
    refusal = slack.posts(DM, TS)[0].body
    assert f"Clever County ({TP_DISTRICT}) needs system and enrollment access" in refusal["text"]
    assert "Nothing was applied" in refusal["text"]
    assert slack.paths("/files-pri/") == []
    assert people(store) == 0
    assert store.recent_uploads(DISTRICT) == [] and store.recent_uploads(TP_DISTRICT) == []

    # named and allowed: applied there, and the summary says which district
    share(bot, slack, A_FILE, user=ADMIN, channel=DM, ts="1712000001.000001", text="lincoln")
    assert final_reaction(slack, DM, "1712000001.000001") == "warning"
    summary = summary_post(slack, DM, "1712000001.000001")
    assert summary["text"].startswith(f"Lincoln Unified ({DISTRICT}): ")
    assert summary["blocks"][0] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f"District: *Lincoln Unified ({DISTRICT})*"}],
    }
    assert people(store, DISTRICT) == 1


def test_a_district_named_in_a_dm_is_never_replaced_by_the_default_district(
    bot_with_default, slack, store
):
    bot = bot_with_default
    share(bot, slack, A_FILE, user=ADMIN, channel=CHANNEL)
    assert final_reaction(slack, CHANNEL) == "warning"  # lincoln has one upload

    # `status clevercounty` shows clevercounty, or is refused -- never lincoln's uploads
    refused = command(bot, slack, f"status {TP_DISTRICT}", user=ADMIN, channel=DM)["text"]
    assert f"Reading upload reports of {TP_DISTRICT} needs" in refused
    assert "users.csv" not in refused and "Lincoln" not in refused
    # ... in a channel too: the argument is explicit
    refused = command(bot, slack, f"status {TP_DISTRICT}", user=ADMIN, channel=CHANNEL)["text"]
    assert f"Reading upload reports of {TP_DISTRICT} needs" in refused
    own = command(bot, slack, f"status {DISTRICT}", user=ADMIN, channel=DM)["text"]
    assert f"Recent uploads of Lincoln Unified ({DISTRICT})" in own and "users.csv" in own
    empty = command(bot, slack, f"status {TP_DISTRICT}", user=TP_ADMIN, channel="D0TP")["text"]
    assert empty.startswith(f"No uploads yet for Clever County ({TP_DISTRICT}).")

    # a file "for clevercounty" in a DM is not applied to the default district
    share(
        bot,
        slack,
        B_FILE,
        user=ADMIN,
        channel=DM,
        ts="1712000002.000001",
        text=f"users for {TP_DISTRICT}",
    )
    assert final_reaction(slack, DM, "1712000002.000001") == "no_entry"
    assert people(store) == 1 and len(store.recent_uploads(DISTRICT)) == 1

    # two districts named: refused, asking for one
    share(
        bot,
        slack,
        A_FILE,
        user=ADMIN,
        channel=DM,
        ts="1712000003.000001",
        text=f"{DISTRICT} or {TP_DISTRICT}?",
    )
    assert final_reaction(slack, DM, "1712000003.000001") == "no_entry"
    assert "names several districts" in slack.posts(DM, "1712000003.000001")[0]["text"]


# -- 2. thread questions read each upload's own district ---------------------------------------


def test_thread_questions_read_only_the_uploads_of_districts_the_asker_may_read(bot, slack, store):
    share(bot, slack, A_FILE, user=ADMIN, channel=CHANNEL)
    assert final_reaction(slack, CHANNEL) == "warning"
    # the channel is re-linked to B, and B's admin shares B's file in the same thread
    store.link_channel(TP_DISTRICT, CHANNEL)
    b_ts = "1712000001.000001"
    share(bot, slack, B_FILE, user=TP_ADMIN, channel=CHANNEL, ts=b_ts, thread_ts=TS)
    assert final_reaction(slack, CHANNEL, b_ts) == "warning"
    assert [store.district_key_of(u) for u in store.uploads_in_thread(CHANNEL, TS)] == [
        DISTRICT,
        TP_DISTRICT,
    ]

    a_summary = ask_in_thread(
        bot, slack, "summary", user=ADMIN, channel=CHANNEL, ts="1712000002.000001"
    )
    dumped = json.dumps(a_summary)
    assert "ORG_NOT_FOUND" in dumped and "ROLE_NOT_ALLOWED" not in dumped
    assert f"District: Lincoln Unified ({DISTRICT})" in a_summary["text"]
    assert "1 other upload in this thread belongs to a district you cannot read" in dumped

    b_summary = ask_in_thread(
        bot, slack, "summary", user=TP_ADMIN, channel=CHANNEL, ts="1712000002.000002"
    )
    dumped = json.dumps(b_summary)
    assert "ROLE_NOT_ALLOWED" in dumped and "ORG_NOT_FOUND" not in dumped
    assert f"District: Clever County ({TP_DISTRICT})" in b_summary["text"]

    b_row = ask_in_thread(
        bot, slack, "why did row 3 fail?", user=TP_ADMIN, channel=CHANNEL, ts="1712000002.000003"
    )
    assert "ROLE_NOT_ALLOWED" in json.dumps(b_row) and "ORG_NOT_FOUND" not in json.dumps(b_row)
    a_row = ask_in_thread(
        bot, slack, "why did row 3 fail?", user=ADMIN, channel=CHANNEL, ts="1712000002.000004"
    )
    assert "ORG_NOT_FOUND" in json.dumps(a_row) and "ROLE_NOT_ALLOWED" not in json.dumps(a_row)

    # someone of neither district reads nothing
    store.create_district("third", "Third District")
    store.grant_admin("third", "U0THIRD", support=True)
    none = ask_in_thread(
        bot, slack, "summary", user="U0THIRD", channel=CHANNEL, ts="1712000002.000005"
    )
    assert "Reading upload reports of" in none["text"]
    assert "ORG_NOT_FOUND" not in json.dumps(none) and "ROLE_NOT_ALLOWED" not in json.dumps(none)


# -- 3. link respects the district a channel serves ---------------------------------------------


def test_relinking_a_channel_that_serves_the_default_district_needs_system_access_to_both(
    bot_with_default, slack, store
):
    bot = bot_with_default
    # UNLINKED serves lincoln (the default district); B's system admin cannot take it over
    body = command(bot, slack, f"link {TP_DISTRICT}", user=TP_ADMIN, channel=UNLINKED)
    assert f"serves the default district Lincoln Unified ({DISTRICT})" in body["text"]
    assert f"needs system access to both {DISTRICT} and {TP_DISTRICT}" in body["text"]
    assert "Nothing was changed" in body["text"]
    assert store.district_for_channel(UNLINKED) is None

    # with system access to both it moves, and the reply says what it served before
    store.grant_admin(DISTRICT, TP_ADMIN, system=True)
    body = command(bot, slack, f"link {TP_DISTRICT}", user=TP_ADMIN, channel=UNLINKED)
    assert f"now linked to Clever County ({TP_DISTRICT})" in body["text"]
    assert f"It served Lincoln Unified ({DISTRICT}) until now" in body["text"]
    assert store.district_for_channel(UNLINKED).key == TP_DISTRICT


def test_relinking_a_linked_channel_needs_system_access_to_both_districts(bot, slack, store):
    # B's system admin with no access to A cannot point A's channel at B
    body = command(bot, slack, f"link {TP_DISTRICT}", user=TP_ADMIN, channel=CHANNEL)
    assert f"linked to Lincoln Unified ({DISTRICT})" in body["text"]
    assert f"needs system access to both {DISTRICT} and {TP_DISTRICT}" in body["text"]
    assert store.district_for_channel(CHANNEL).key == DISTRICT
    # A's system admin without system access to B cannot either
    store.grant_admin(TP_DISTRICT, ADMIN, support=True)
    body = command(bot, slack, f"link {TP_DISTRICT}", user=ADMIN, channel=CHANNEL)
    assert f"you have system and enrollment access to {DISTRICT}" in body["text"].replace(
        "You have", "you have"
    )
    assert store.district_for_channel(CHANNEL).key == DISTRICT
    store.grant_admin(TP_DISTRICT, ADMIN, system=True)
    body = command(bot, slack, f"link {TP_DISTRICT}", user=ADMIN, channel=CHANNEL)
    assert f"It served Lincoln Unified ({DISTRICT}) until now" in body["text"]
    assert store.district_for_channel(CHANNEL).key == TP_DISTRICT


# -- 4. a re-shared file is a new upload; a re-delivered event is not ---------------------------


def test_sharing_the_same_slack_file_again_applies_it_after_a_check(bot, slack, store):
    fo = slack.host_file("users.csv", A_FILE)
    check = file_share_event([fo], user=ADMIN, channel=CHANNEL, ts=TS, text="check")
    assert bot.send_event(check) == 200
    assert final_reaction(slack, CHANNEL) == "warning"
    assert people(store) == 0  # a check applies nothing

    again_ts = "1712000001.000001"  # the same file (same id), shared again to apply
    again = file_share_event([fo], user=ADMIN, channel=CHANNEL, ts=again_ts)
    assert bot.send_event(again, event_id="EvRESHARE1") == 200
    assert final_reaction(slack, CHANNEL, again_ts) == "warning"
    assert people(store) == 1
    assert "1 person applied" in summary_post(slack, CHANNEL, again_ts)["text"]

    # Slack re-delivers the re-share's event: it is not processed twice
    posts = len(slack.posts(CHANNEL, again_ts))
    assert bot.send_event(again, event_id="EvRESHARE1", retry_num=1) == 200
    assert bot.send_event(again, event_id="EvRESHARE2") == 200  # same file, same message
    time.sleep(0.5)
    assert len(slack.posts(CHANNEL, again_ts)) == posts
    with store.engine.connect() as conn:
        shares = conn.execute(
            select(Upload.slack_message_ts, Upload.dry_run)
            .where(Upload.slack_file_id == fo["id"])
            .order_by(Upload.id)
        ).all()
    assert [tuple(s) for s in shares] == [(TS, True), (again_ts, False)]


# -- 5. workspaces -------------------------------------------------------------------------------


def _connect_envelope(bot: BotUnderTest, event: dict) -> dict:
    """An event from a Slack Connect channel shared with another organisation."""
    envelope = bot.envelope(event)
    envelope["is_ext_shared_channel"] = True
    return envelope


def test_a_user_of_another_workspace_in_a_slack_connect_channel_is_refused(bot, slack, store):
    partner = "U0PARTNER"  # granted by mistake: a user of the connected organisation
    store.grant_admin(DISTRICT, partner, system=True, enrollment=True)
    fo = slack.host_file("users.csv", A_FILE)
    event = file_share_event([fo], user=partner, channel=CHANNEL, ts=TS)
    event.update(user_team=OTHER_TEAM, source_team=OTHER_TEAM, team=OTHER_TEAM)
    assert bot.send_event(event, envelope=_connect_envelope(bot, event)) == 200
    assert final_reaction(slack, CHANNEL) == "no_entry"
    refusal = slack.posts(CHANNEL, TS)[0]["text"]
    assert f"Lincoln Unified ({DISTRICT}) is served in Slack workspace {TEAM_ID}" in refusal
    assert f"you are a user of workspace {OTHER_TEAM}" in refusal
    assert slack.paths("/files-pri/") == [] and people(store) == 0

    # the district's own admin in the same shared channel is served
    mine = file_share_event([fo], user=ADMIN, channel=CHANNEL, ts="1712000001.000001")
    mine.update(user_team=TEAM_ID, source_team=TEAM_ID, team=TEAM_ID)
    assert bot.send_event(mine, envelope=_connect_envelope(bot, mine)) == 200
    assert final_reaction(slack, CHANNEL, "1712000001.000001") == "warning"
    assert people(store) == 1

    # a thread question from the partner: refused, no row data
    question = {
        "type": "message",
        "user": partner,
        "user_team": OTHER_TEAM,
        "team": OTHER_TEAM,
        "channel": CHANNEL,
        "channel_type": "channel",
        "text": "why did row 3 fail?",
        "ts": "1712000002.000001",
        "thread_ts": "1712000001.000001",
    }
    assert bot.send_event(question, envelope=_connect_envelope(bot, question)) == 200
    answer = slack.wait_for(
        lambda: [p for p in slack.posts(CHANNEL, "1712000001.000001") if "workspace" in p["text"]]
    )[0]
    assert f"you are a user of workspace {OTHER_TEAM}" in answer["text"]
    assert "ORG_NOT_FOUND" not in json.dumps(answer.body)


def test_commands_and_buttons_from_another_workspace_are_refused(bot, slack, store):
    share(bot, slack, A_FILE, user=ADMIN, channel=CHANNEL)
    final_reaction(slack, CHANNEL)
    for text in ("status", f"status {DISTRICT}", "download staff", f"link {DISTRICT}"):
        body = command(bot, slack, text, user=ADMIN, channel=CHANNEL, team=OTHER_TEAM)
        assert f"you are a user of workspace {OTHER_TEAM}" in body["text"], text
        assert "users.csv" not in body["text"]
    assert slack.calls("conversations.open") == []
    # from the district's workspace the same command works
    assert "users.csv" in command(bot, slack, "status", user=ADMIN, channel=CHANNEL)["text"]

    seen = len(slack.responses())
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "standin"},
        "user": {"id": ADMIN, "username": "someone", "team_id": OTHER_TEAM},
        "is_ext_shared_channel": True,
        "api_app_id": "A0ROSTERBOT",
        "token": "legacy",
        "trigger_id": "1.2.3",
        "container": {"type": "message", "message_ts": TS, "channel_id": CHANNEL},
        "channel": {"id": CHANNEL, "name": "roster"},
        "message": {"type": "message", "ts": TS, "text": "", "bot_id": "B"},
        "response_url": slack.response_url(),
        "actions": [
            {
                "action_id": "confirm_removals",
                "block_id": "held_upload",
                "type": "button",
                "value": json.dumps({"uploads": [store.recent_uploads(DISTRICT)[0].id]}),
                "action_ts": str(time.time()),
            }
        ],
    }
    # a held upload to confirm
    store.update_upload(store.recent_uploads(DISTRICT)[0].id, state="held")
    assert bot.send_action(payload) == 200
    refused = slack.wait_for(lambda: slack.responses()[seen:])[0].body
    assert f"you are a user of workspace {OTHER_TEAM}" in refused["text"]
    assert store.recent_uploads(DISTRICT)[0].state == "held"


def test_a_district_of_another_workspace_is_not_served_from_this_one(bot, slack, store):
    """`district create --team T...`: a district served in another workspace (the bot token
    belongs to TEAM_ID) refuses this workspace's users, even ones granted by mistake."""
    store.create_district("elsewhere", "Elsewhere USD", team_id=OTHER_TEAM)
    store.add_school("elsewhere", "EHS", "Elsewhere High")
    store.grant_admin("elsewhere", ADMIN, system=True, enrollment=True)
    share(
        bot,
        slack,
        users_csv(",EHS,t-5,Al,Bo,al.bo@elsewhere.example.org,teacher,"),
        user=ADMIN,
        channel=DM,
        text="elsewhere",
    )
    assert final_reaction(slack, DM) == "no_entry"
    assert f"is served in Slack workspace {OTHER_TEAM}" in slack.posts(DM, TS)[0]["text"]
    body = command(bot, slack, "link elsewhere", user=ADMIN, channel=UNLINKED)
    assert f"is served in Slack workspace {OTHER_TEAM}" in body["text"]
    assert store.district_for_channel(UNLINKED) is None and people(store) == 0


def test_a_grant_for_a_user_of_another_workspace_does_not_count_here(bot, slack, store):
    store.grant_admin(TP_DISTRICT, ADMIN, system=True, enrollment=True, team_id=OTHER_TEAM)
    share(bot, slack, B_FILE, user=ADMIN, channel=TP_CHANNEL)
    assert final_reaction(slack, TP_CHANNEL) == "no_entry"
    assert people(store) == 0


def test_a_link_records_the_workspace_it_was_made_from(bot, slack, store):
    assert (
        "now linked"
        in command(bot, slack, f"link {DISTRICT}", user=ADMIN, channel=UNLINKED)["text"]
    )
    assert store.channel_link(UNLINKED)[1] == TEAM_ID
