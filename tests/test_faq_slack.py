"""Knowledge-base answers in Slack (issue 14): a how-to question gets its topic, in a DM, by a
mention, and by a mention in an upload's thread, where "row N" and "summary" keep working."""

from __future__ import annotations

import json

from tests.conftest_slack import (  # noqa: F401 - fixtures
    ADMIN,
    CHANNEL,
    DM,
    GOOD_AND_BAD,
    SUPPORT,
    TS,
    bot,
    file_share_event,
    slack,
    store,
)
from tests.slack_standin import BOT_USER_ID


def _text(post: dict) -> str:
    return json.dumps(post.get("blocks") or []) + post.get("text", "")


def _say(bot, text: str, ts: str, *, channel: str = CHANNEL, thread_ts: str | None = None, mention: bool = False, user: str = ADMIN) -> None:  # fmt: skip
    event = {
        "type": "app_mention" if mention else "message",
        "user": user,
        "channel": channel,
        "text": f"<@{BOT_USER_ID}> {text}" if mention else text,
        "ts": ts,
    }
    if channel == DM:
        event["channel_type"] = "im"
    elif not mention:
        event["channel_type"] = "channel"
    if thread_ts:
        event["thread_ts"] = thread_ts
    assert bot.send_event(event) == 200


def test_how_to_question_by_mention_gets_the_topic(bot, slack, store):
    _say(bot, "how do i move a student to another school?", TS, mention=True)
    answer = slack.wait_for(lambda: slack.posts(CHANNEL, TS), what="the answer")[0]
    assert "faq.move-school" in _text(answer)
    assert "REMOVE-ENROLLMENT" in _text(answer)


def test_greeting_in_a_dm_lists_the_commands(bot, slack, store):
    _say(bot, "hi", TS, channel=DM)
    answer = slack.wait_for(lambda: slack.posts(DM, TS), what="the answer")[0]
    assert "faq.help" in _text(answer) and "/rosterbot download" in _text(answer)


def test_off_topic_dm_offers_no_topics(bot, slack, store):
    _say(bot, "lunch menu", TS, channel=DM)
    answer = slack.wait_for(lambda: slack.posts(DM, TS), what="the answer")[0]
    assert "don't have a good answer" in answer["text"]
    assert "closest topics" not in answer["text"]


def test_in_an_upload_thread_rows_summary_and_how_to_questions_each_get_their_answer(
    bot, slack, store
):
    fo = slack.host_file("users.csv", GOOD_AND_BAD)
    assert bot.send_event(file_share_event([fo])) == 200
    slack.wait_for(
        lambda: [r for r in slack.reactions(CHANNEL, TS) if r in {"warning", "x"}],
        what="the final reaction",
    )

    def ask(text: str, ts: str) -> dict:
        before = len(slack.posts(CHANNEL, TS))
        _say(bot, text, ts, thread_ts=TS, mention=True, user=SUPPORT)
        return slack.wait_for(lambda: slack.posts(CHANNEL, TS)[before:], what=text)[0]

    row = ask("why did row 4 fail?", "1712000003.000001")
    assert "Row 4" in _text(row) and "ORG_NOT_FOUND" in _text(row)
    summary = ask("summary please", "1712000003.000002")
    assert "Top issues" in _text(summary)
    howto = ask("how do I add a new teacher", "1712000003.000003")
    assert "faq.add-person" in _text(howto) and "Top issues" not in _text(howto)
    column = ask("what goes in userStateId", "1712000003.000004")
    assert "columns.userStateId" in _text(column)
