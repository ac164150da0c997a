"""The Confirm button of an upload held by the ID-change guard, over the stand-in Slack: it
applies the file that was reviewed, and nothing when the Slack file changed since (product.md
"Guards") — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from roster.models import Person
from tests.conftest_slack import (  # noqa: F401 - fixtures
    ADMIN,
    CHANNEL,
    SCHOOL,
    file_share_event,
    slack,
    start_bot,
    stop_bot,
    store_on_each_backend,
    users_csv,
)
from tests.slack_standin import SlackStandIn

FIRST_TS = "1712000100.000100"
HELD_TS = "1712000200.000100"


def people_file(prefix: str, n: int = 11) -> bytes:
    return users_csv(
        *(
            f",{SCHOOL},{prefix}-{i},Kid{i},Lee,kid{i}@lincoln.example.org,student,03"
            for i in range(n)
        )
    )


def user_ids(store) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.execute(select(Person.user_id)).scalars())


def final_reaction(slack: SlackStandIn, ts: str) -> str:
    finals = {"white_check_mark", "warning", "x", "no_entry", "raised_hand"}
    return slack.wait_for(
        lambda: [r for r in slack.reactions(CHANNEL, ts) if r in finals], what="a final reaction"
    )[0]


def texts(slack: SlackStandIn, ts: str) -> list[str]:
    return [json.dumps(p.get("blocks") or []) + p.get("text", "") for p in slack.posts(CHANNEL, ts)]


@pytest.fixture
def held(slack, store_on_each_backend):
    """A district with 11 students s-0..s-10, and the same students renamed n-0..n-10 shared
    and held by the ID-change guard.  Yields (bot, store, the held file object, the button)."""
    store = store_on_each_backend
    bot = start_bot(slack, store)
    try:
        first = slack.host_file("users.csv", people_file("s"))
        assert bot.send_event(file_share_event([first], ts=FIRST_TS)) == 200
        assert final_reaction(slack, FIRST_TS) == "white_check_mark"
        renamed = slack.host_file("users.csv", people_file("n"))
        assert bot.send_event(file_share_event([renamed], ts=HELD_TS)) == 200
        assert final_reaction(slack, HELD_TS) == "raised_hand"  # held, not failed
        summary = slack.wait_for(
            lambda: [t for t in texts(slack, HELD_TS) if "ID_CHANGES_NEED_CONFIRMATION" in t],
            what="the held summary",
        )
        assert summary
        post = next(
            p
            for p in slack.posts(CHANNEL, HELD_TS)
            if "actions" in json.dumps(p.get("blocks") or [])
        )
        button = next(e for b in post["blocks"] if b["type"] == "actions" for e in b["elements"])
        assert user_ids(store) == {f"s-{i}" for i in range(11)}  # nothing applied while held
        yield bot, store, renamed, button
    finally:
        stop_bot(bot)


def test_confirm_applies_the_held_id_changes(slack, held):
    bot, store, _, button = held
    assert bot.click(button, user=ADMIN, channel=CHANNEL, message_ts=HELD_TS) == 200
    slack.wait_for(
        lambda: "white_check_mark" in slack.reactions(CHANNEL, HELD_TS), what="the applied file"
    )
    assert user_ids(store) == {f"n-{i}" for i in range(11)}


def test_confirm_after_the_file_changed_applies_nothing(slack, held):
    bot, store, renamed, button = held
    slack.host_file("users.csv", people_file("x"), file_id=renamed["id"])  # edited in Slack
    assert bot.click(button, user=ADMIN, channel=CHANNEL, message_ts=HELD_TS) == 200
    said = slack.wait_for(
        lambda: [t for t in texts(slack, HELD_TS) if "changed after it was reviewed" in t],
        what="the changed-file reply",
    )
    assert "nothing was applied" in said[0]
    time.sleep(0.3)
    assert user_ids(store) == {f"s-{i}" for i in range(11)}
    assert "white_check_mark" not in slack.reactions(CHANNEL, HELD_TS)
