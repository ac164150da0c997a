"""Issue #15 in Slack: the changes file in the thread, the Undo button, `/rosterbot history`,
`/rosterbot undo` and a message starting with "sync" — against the stand-in Slack."""

from __future__ import annotations

import json

from sqlalchemy import select

from roster.models import Person
from tests.conftest_slack import (  # noqa: F401 - fixtures
    ADMIN,
    CHANNEL,
    SCHOOL,
    STRANGER,
    SUPPORT,
    SYSADMIN_ONLY,
    TS,
    bot,
    slack,
    store,
    users_csv,
)
from tests.test_bot import blocks_text, command, share, summary_posts, wait_final_reaction

FIRST = users_csv(
    f",{SCHOOL},t-100,Ann,Lee,ann.lee@lincoln.example.org,teacher,",
    f",{SCHOOL},s-200,Bob,Ray,bob.ray@lincoln.example.org,student,03",
    f",{SCHOOL},s-201,Cy,Ray,cy.ray@lincoln.example.org,student,03",
)
SECOND_TS = "1712000009.000100"


def active(store) -> dict[str, bool]:
    with store.engine.connect() as conn:
        return dict(conn.execute(select(Person.user_id, Person.active)).all())


def names(store) -> dict[str, str]:
    with store.engine.connect() as conn:
        return dict(conn.execute(select(Person.user_id, Person.first_name)).all())


def test_the_undo_button_reverses_the_upload_in_its_thread(bot, slack, store):
    share(bot, slack, "users.csv", FIRST)
    wait_final_reaction(slack)
    rename = users_csv(f",{SCHOOL},s-200,Robert,Ray,bob.ray@lincoln.example.org,student,03")
    share(bot, slack, "users.csv", rename, ts=SECOND_TS)
    wait_final_reaction(slack, ts=SECOND_TS)
    assert names(store)["s-200"] == "Robert"
    summary = summary_posts(slack, SECOND_TS)[-1]
    # the changes file is attached in the thread and the summary says so
    changes = slack.wait_for(
        lambda: [u for u in slack.uploads if u.thread_ts == SECOND_TS], what="changes file"
    )
    assert [u.filename for u in changes] == ["users-changes.csv"]
    assert b"student,s-200,updated,userFirstName,Bob,Robert,2" in changes[0].content
    assert "users-changes.csv" in blocks_text(summary)
    button = next(
        e
        for b in summary["blocks"]
        if b.get("block_id", "").startswith("undo_upload")
        for e in b["elements"]
    )
    # support access may not undo; nothing changes
    assert (
        bot.click(button, user=SUPPORT, channel=CHANNEL, message_ts=summary.response["ts"]) == 200
    )
    refused = slack.wait_for(
        lambda: [p for p in slack.posts(CHANNEL, SECOND_TS) if "needs enrollment" in p["text"]],
        what="the refusal",
    )
    assert "Nothing was changed" in refused[0]["text"] and names(store)["s-200"] == "Robert"
    assert bot.click(button, user=ADMIN, channel=CHANNEL, message_ts=summary.response["ts"]) == 200
    done = slack.wait_for(
        lambda: [p for p in slack.posts(CHANNEL, SECOND_TS) if "was undone" in p["text"]],
        what="the undo's answer",
    )
    assert names(store)["s-200"] == "Bob"
    assert "undid upload" in blocks_text(done[0])
    undo_file = slack.wait_for(
        lambda: [u for u in slack.uploads if u.thread_ts == SECOND_TS][1:], what="undo changes"
    )[0]
    assert b"student,s-200,updated,userFirstName,Robert,Bob," in undo_file.content


def test_slash_history_for_support_and_undo_for_enrollment(bot, slack, store):
    share(bot, slack, "users.csv", FIRST)
    wait_final_reaction(slack)
    share(
        bot,
        slack,
        "users.csv",
        users_csv(f",{SCHOOL},s-200,Bob,Ray-Lee,bob.ray@lincoln.example.org,student,03"),
        ts=SECOND_TS,
    )
    wait_final_reaction(slack, ts=SECOND_TS)
    body = command(bot, slack, "history s-200", user=SUPPORT)
    text = blocks_text(body)
    assert "History of userId s-200" in text
    assert "student s-200: created" in text and "userLastName Ray → Ray-Lee" in text
    assert (
        "needs system, enrollment or support"
        in command(bot, slack, "history s-200", user=STRANGER)["text"]
    )
    assert "no person or class" in command(bot, slack, "history nobody", user=ADMIN)["text"]
    # /rosterbot undo: enrollment access; the changes file goes to the requester's DM
    upload_id = 2
    refused = command(bot, slack, f"undo {upload_id}", user=SYSADMIN_ONLY)["text"]
    assert "needs enrollment access" in refused
    done = command(bot, slack, f"undo {upload_id}", user=ADMIN)
    assert f"Upload {upload_id} was undone" in done["text"]
    with store.engine.connect() as conn:
        last = conn.execute(select(Person.last_name).where(Person.user_id == "s-200")).scalar_one()
    assert last == "Ray"
    again = command(bot, slack, f"undo {upload_id}", user=ADMIN)["text"]
    assert "already undone" in again
    assert "Usage" in command(bot, slack, "undo last", user=ADMIN)["text"]


def test_a_message_starting_with_sync_removes_what_the_file_no_longer_mentions(bot, slack, store):
    rows = [f",{SCHOOL},t-100,Ann,Lee,ann.lee@lincoln.example.org,teacher,"] + [
        f",{SCHOOL},s-{n},S{n},Ray,s{n}@lincoln.example.org,student,03" for n in range(6)
    ]
    share(bot, slack, "users.csv", users_csv(*rows))
    wait_final_reaction(slack)
    # "sync" in the middle of a sentence is an ordinary upload: nothing is removed
    share(bot, slack, "users.csv", users_csv(rows[0]), ts=SECOND_TS, text="not a sync, just Ann")
    wait_final_reaction(slack, ts=SECOND_TS)
    assert all(active(store).values())
    third = "1712000019.000100"
    share(bot, slack, "users.csv", users_csv(*rows[:-1]), ts=third, text=f"<@{ADMIN}> sync")
    wait_final_reaction(slack, ts=third)
    assert [u for u, on in active(store).items() if not on] == ["s-5"]
    summary = summary_posts(slack, third)[-1]
    assert "1 person removed" in summary["text"]
    changes = [u for u in slack.uploads if u.thread_ts == third]
    assert b"student,s-5,removed" in changes[-1].content
    assert json.dumps(summary["blocks"]).count('"action_id": "undo_upload"') == 1
