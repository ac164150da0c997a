"""Issue 13, the Slack side: Slack's limits, escaping, file shapes, reactions, request bodies.

The stand-in Slack refuses what real Slack refuses (unknown methods, missing arguments, blocks
over a Block Kit limit, unauthorised downloads), so a message Slack would refuse fails here.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import func, select

from bot import formatting
from roster.models import Upload
from tests.conftest_slack import (  # noqa: F401 - fixtures
    ADMIN,
    CHANNEL,
    DM,
    GOOD_AND_BAD,
    SCHOOL,
    TS,
    USERS_HEADER,
    bot,
    file_share_event,
    slack,
    start_bot,
    stop_bot,
    store,
    store_on_each_backend,
    users_csv,
)
from tests.slack_standin import BOT_TOKEN, SlackStandIn, block_errors

FINALS = {"white_check_mark", "warning", "x", "no_entry", "raised_hand"}
EVIL_NAME = "<!channel> <https://evil.example|payroll>.csv"


def said(slack: SlackStandIn) -> list[str]:
    """Everything the bot put in front of people: message text and blocks, as JSON text."""
    found = [
        json.dumps({"text": r.get("text"), "blocks": r.get("blocks")}, ensure_ascii=False)
        for r in slack.requests
        if r.api_method in ("chat.postMessage", "chat.update", "chat.postEphemeral")
        or r.path.startswith("/respond/")
    ]
    return found


def replies(slack: SlackStandIn, channel: str = CHANNEL, thread_ts: str = TS) -> list:
    return [
        p
        for p in slack.posts(channel, thread_ts)
        if not any(w in (p.get("text") or "") for w in ("Processing", "Checking"))
    ]


def text_of(post) -> str:
    return json.dumps(post.get("blocks") or [], ensure_ascii=False) + (post.get("text") or "")


def final_reaction(slack: SlackStandIn, channel: str = CHANNEL, ts: str = TS) -> str:
    return slack.wait_for(
        lambda: [r for r in slack.reactions(channel, ts) if r in FINALS], what="a final reaction"
    )[0]


def uploads_recorded(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Upload)).scalar_one()


def share(bot, slack, name: str, content: bytes, **kw):
    fo = slack.host_file(name, content)
    assert bot.send_event(file_share_event([fo], **kw)) == 200
    return fo


# -- the stand-in is as strict as Slack ----------------------------------------------------------


@pytest.fixture
def client(slack) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=slack.api_url)


def refused(call) -> str:
    with pytest.raises(SlackApiError) as err:
        call()
    return err.value.response["error"]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_standin_refuses_unknown_methods_and_missing_arguments(client):
    assert refused(lambda: client.api_call("chat.postMesage", json={"channel": "C1"})) == (
        "unknown_method"
    )
    assert refused(lambda: client.chat_postMessage(channel=CHANNEL)) == "invalid_arguments"
    assert refused(lambda: client.reactions_add(channel=CHANNEL, timestamp=TS, name="")) == (
        "invalid_arguments"
    )
    assert refused(lambda: client.files_info(file="")) == "invalid_arguments"
    assert client.chat_postMessage(channel=CHANNEL, text="hello")["ok"]


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(label: str) -> dict:
    return {
        "type": "button",
        "action_id": label[:10],
        "text": {"type": "plain_text", "text": label},
    }


@pytest.mark.parametrize(
    "blocks",
    [
        [_section("x")] * 51,
        [_section("x" * 3001)],
        [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": "x"}] * 11}],
        [{"type": "actions", "elements": [_button("x" * 76)]}],
        [{"type": "actions", "elements": [_button("ok")] * 26}],
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "x"}] * 11}],
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}],
        [_section("")],
    ],
    ids=[
        "51 blocks",
        "section 3001",
        "header 151",
        "context 11",
        "button 76",
        "actions 26",
        "fields 11",
        "field 2001",
        "empty text",
    ],
)
def test_standin_refuses_blocks_over_slacks_limits(client, blocks):
    assert refused(lambda: client.chat_postMessage(channel=CHANNEL, text="t", blocks=blocks)) == (
        "invalid_blocks"
    )


def test_standin_sends_an_unauthorised_download_to_the_sign_in_page(slack):
    import urllib.error
    import urllib.request

    url = slack.host_file("users.csv", GOOD_AND_BAD)["url_private_download"]

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    for headers in ({}, {"Authorization": "Bearer xoxb-someone-else"}):
        with pytest.raises(urllib.error.HTTPError) as err:
            opener.open(urllib.request.Request(url, headers=headers))
        assert err.value.code == 302 and "/signin?redir=" in err.value.headers["Location"]
    with urllib.request.urlopen(url) as followed:  # a browser ends on the sign-in page
        assert b"Sign in" in followed.read()


# -- every message within Block Kit's limits -------------------------------------------------------


def test_sixty_header_problems_fit_one_message_and_the_summary_names_them(bot, slack, store):
    # 60 columns without a header: 60 HEADER_BLANK errors (unknown headers are only warnings)
    extra = "," * 59
    row = f",{SCHOOL},t-100,Ann,Lee,ann.lee@lincoln.example.org,teacher," + "," * 60
    share(bot, slack, "users.csv", users_csv(row, header=f"{USERS_HEADER},{extra}"))
    final_reaction(slack)
    summary = slack.wait_for(lambda: replies(slack), what="the summary")[0]
    assert summary.response["ok"], summary.response  # Slack took the full summary
    assert len(summary["blocks"]) <= 50
    assert "HEADER_BLANK" in text_of(summary)
    assert "more problems with the file" in text_of(summary)
    assert "0 errors" not in summary["text"]  # the fallback says what failed, not zeros

    status = summary_status(bot, slack)
    assert "No row issues" not in status and "HEADER_BLANK" in status


def summary_status(bot, slack) -> str:
    before = len(slack.posts(CHANNEL, TS))
    event = {
        "type": "message",
        "text": "summary",
        "user": ADMIN,
        "channel": CHANNEL,
        "channel_type": "channel",
        "ts": "1712000009.000100",
        "thread_ts": TS,
    }
    assert bot.send_event(event) == 200
    answer = slack.wait_for(lambda: slack.posts(CHANNEL, TS)[before:], what="the summary reply")
    assert answer[0].response["ok"]
    return text_of(answer[0])


FILE_ISSUE = {"code": "HEADER_UNKNOWN", "message": "x" * 2500, "fix": "y" * 600}
ROW_ISSUE = {"row": 2, "code": "EMAIL_INVALID", "message": "m" * 400, "fix": "f" * 200}


@pytest.mark.parametrize(
    "message",
    [
        lambda: formatting.upload_summary(
            [
                {
                    "file": f"users{n}.csv" + "n" * 200,
                    "kind": "users",
                    "status": "failed",
                    "file_issues": [FILE_ISSUE] * 300,
                    "counts": {"student": {"created": 1}},
                    "rows": {"total": 3},
                    "issues": [dict(ROW_ISSUE, code=f"CODE{k}") for k in range(40)],
                }
                for n in range(12)
            ],
            dry_run=False,
            reports=[f"r{n}.csv" for n in range(40)],
            held_uploads=list(range(400)),
        ),
        lambda: formatting.row_explanation(2, [ROW_ISSUE] * 200, file_name="users.csv"),
        lambda: formatting.thread_summary("users.csv", "failed", [], [FILE_ISSUE] * 500),
        lambda: formatting.thread_summary("users.csv", "completed", [ROW_ISSUE] * 500),
        lambda: formatting.processing([f"f{n}.csv" for n in range(500)], dry_run=True),
        lambda: formatting.preformatted("\n\n".join(["line\n" * 100] * 200)),
    ],
    ids=["upload summary", "row", "summary of a failed file", "summary", "processing", "text"],
)
def test_every_message_stays_within_block_kit_limits(message):
    built = message()
    assert block_errors(built.blocks) == []
    assert len(built.text) <= 40_000


# -- mention and link injection --------------------------------------------------------------------


def test_a_file_name_and_csv_values_cannot_mention_or_link(bot, slack, store):
    bad_value = users_csv(
        f",{SCHOOL},t-100,Ann,Lee,<!here> <https://evil.example|click>,teacher,",
    )
    share(bot, slack, EVIL_NAME, bad_value)
    final_reaction(slack)
    slack.wait_for(lambda: replies(slack), what="the summary")
    event = {
        "type": "message",
        "text": "why did row 2 fail?",
        "user": ADMIN,
        "channel": CHANNEL,
        "channel_type": "channel",
        "ts": "1712000009.000100",
        "thread_ts": TS,
    }
    before = len(slack.posts(CHANNEL, TS))
    assert bot.send_event(event) == 200
    row = slack.wait_for(lambda: slack.posts(CHANNEL, TS)[before:], what="the row answer")
    assert "EMAIL_INVALID" in text_of(row[0])
    sent = said(slack)
    assert any("&lt;!channel&gt;" in s for s in sent)  # shown, escaped
    for s in sent:
        for live in ("<!channel>", "<!here>", "<https://evil"):
            assert live not in s, s


def test_confirm_says_processing_again_without_a_live_mention(bot, slack, store):
    teachers = [f",{SCHOOL},t-{n},T{n},Lee,t{n}@lincoln.example.org,teacher," for n in range(5)]
    share(bot, slack, "users.csv", users_csv(*teachers))
    final_reaction(slack)
    removals = [
        f"DEACTIVATE-USER,{SCHOOL},t-{n},T{n},Lee,t{n}@lincoln.example.org,teacher,"
        for n in range(2)
    ]
    file_ts = "1712000005.000100"
    share(bot, slack, EVIL_NAME, users_csv(*removals), ts=file_ts)
    assert final_reaction(slack, ts=file_ts) == "raised_hand"  # held
    held = slack.wait_for(lambda: replies(slack, thread_ts=file_ts))[0]
    button = next(e for b in held["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert bot.click(button, user=ADMIN, channel=CHANNEL, message_ts=held.response["ts"]) == 200
    slack.wait_for(lambda: "white_check_mark" in slack.reactions(CHANNEL, file_ts), what="the ✅")
    again = [s for s in said(slack) if "again" in s]
    assert again and all("<!channel>" not in s and "<https://evil" not in s for s in again)


# -- reactions after Confirm -----------------------------------------------------------------------


def test_after_confirm_the_files_message_shows_only_the_final_reaction(bot, slack, store):
    teachers = [f",{SCHOOL},t-{n},T{n},Lee,t{n}@lincoln.example.org,teacher," for n in range(5)]
    share(bot, slack, "users.csv", users_csv(*teachers))
    final_reaction(slack)
    # the removals file is shared as a reply in the first upload's thread
    file_ts = "1712000007.000100"
    removals = [
        f"DEACTIVATE-USER,{SCHOOL},t-{n},T{n},Lee,t{n}@lincoln.example.org,teacher,"
        for n in range(2)
    ]
    share(bot, slack, "users.csv", users_csv(*removals), ts=file_ts, thread_ts=TS)
    assert final_reaction(slack, ts=file_ts) == "raised_hand"  # held
    held = slack.wait_for(
        lambda: [p for p in replies(slack) if "held_upload" in json.dumps(p.get("blocks"))]
    )[0]
    button = next(
        e for b in held["blocks"] if b.get("block_id") == "held_upload" for e in b["elements"]
    )
    root_before = slack.current_reactions(CHANNEL, TS)
    assert bot.click(button, user=ADMIN, channel=CHANNEL, message_ts=held.response["ts"]) == 200
    slack.wait_for(
        lambda: "white_check_mark" in slack.current_reactions(CHANNEL, file_ts),
        what="✅ on the message that shared the file",
    )
    assert "raised_hand" not in slack.current_reactions(CHANNEL, file_ts)
    assert slack.current_reactions(CHANNEL, TS) == root_before  # the thread root is untouched


# -- file shapes Slack sends -----------------------------------------------------------------------


@pytest.mark.parametrize("channel", [DM, CHANNEL])
def test_a_file_hidden_by_the_storage_limit_gets_the_real_reason(bot, slack, store, channel):
    hidden = slack.hidden_file()
    assert bot.send_event(file_share_event([hidden], channel=channel)) == 200
    reply = slack.wait_for(lambda: slack.posts(channel, TS), what="the reply")[0]
    text = text_of(reply)
    assert "storage limit" in text and "not one" not in text and "only CSV" not in text
    assert final_reaction(slack, channel) == "x"
    assert uploads_recorded(store) == 0


def test_a_slack_connect_file_is_read_through_files_info(bot, slack, store):
    stub = slack.connect_file("users.csv", GOOD_AND_BAD)
    assert "url_private_download" not in stub and "name" not in stub
    assert bot.send_event(file_share_event([stub])) == 200
    assert final_reaction(slack) == "warning"
    assert [c["file"] for c in slack.calls("files.info")] == [stub["id"]]


def test_a_file_broadcast_from_a_thread_is_processed_in_that_thread(bot, slack, store):
    fo = slack.host_file("users.csv", GOOD_AND_BAD)
    file_ts = "1712000003.000100"
    event = file_share_event([fo], ts=file_ts, thread_ts=TS, root={"ts": TS, "user": ADMIN})
    event["subtype"] = "thread_broadcast"
    assert bot.send_event(event) == 200
    assert final_reaction(slack, ts=file_ts) == "warning"
    assert replies(slack) and slack.posts(CHANNEL, file_ts) == []  # answered in the thread


def test_an_edited_file_message_is_not_processed_again(bot, slack, store):
    fo = share(bot, slack, "users.csv", GOOD_AND_BAD)
    final_reaction(slack)
    seen = len(slack.requests)
    original = file_share_event([fo])
    edited = {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": CHANNEL,
        "channel_type": "channel",
        "ts": "1712000010.000100",
        "event_ts": "1712000010.000100",
        "message": dict(original, text="check", edited={"user": ADMIN, "ts": "1712000010.0"}),
        "previous_message": original,
    }
    assert bot.send_event(edited) == 200
    time.sleep(0.5)
    assert slack.requests[seen:] == []


# -- odd files: a reason in the thread, never silence ------------------------------------------------


def test_a_file_name_over_255_characters_gets_a_reason(slack, store_on_each_backend):
    running = start_bot(slack, store_on_each_backend)
    try:
        share(running, slack, "u" * 300 + ".csv", GOOD_AND_BAD)
        assert final_reaction(slack) == "x"
        reply = slack.wait_for(lambda: slack.posts(CHANNEL, TS), what="the reason")[0]
    finally:
        stop_bot(running)
    assert "304 characters" in text_of(reply) and "Rename the file" in text_of(reply)


@pytest.mark.parametrize(
    "breaks", [lambda url: url.replace("127.0.0.1:", "127.0.0.1:99999"), lambda url: url + "\x07"]
)
def test_an_unusable_download_link_gets_a_reason(bot, slack, store, breaks):
    fo = slack.host_file("users.csv", GOOD_AND_BAD)
    fo["url_private"] = fo["url_private_download"] = breaks(fo["url_private_download"])
    assert bot.send_event(file_share_event([fo])) == 200
    assert final_reaction(slack) == "x"
    text = text_of(replies(slack)[-1])
    assert "cannot use" in text and "went wrong" not in text
    assert slack.paths("/files-pri/") == []


def test_a_download_sent_to_the_sign_in_page_is_a_permissions_problem(bot, slack, store):
    fo = slack.host_file("users.csv", GOOD_AND_BAD)
    slack.bot_token = "xoxb-rotated"  # the file host no longer accepts the bot's token
    try:
        assert bot.send_event(file_share_event([fo])) == 200
        slack.wait_for(lambda: slack.paths("/files-pri/"), what="the download")
    finally:
        slack.bot_token = BOT_TOKEN
    assert final_reaction(slack) == "x"
    text = text_of(replies(slack)[-1])
    assert "files:read" in text and "redirect" not in text


# -- HTTP mode: bodies over the limit are refused unread ---------------------------------------------


def raw_request(url: str, head: str, body: bytes = b"") -> int:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as s:
        s.sendall(head.format(path=parts.path).encode() + body)
        answer = s.recv(200)
    return int(answer.split()[1])


def test_a_huge_declared_body_is_refused_before_it_is_read(bot, slack, store):
    head = (
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 400000000\r\n\r\n"
    )
    assert raw_request(bot.url, head) == 413  # no body sent: the bot must not wait for it


def test_a_chunked_body_over_the_limit_is_refused(bot, slack, store):
    head = (
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    assert raw_request(bot.url, head, b"400000\r\n") == 413  # a 4 MB chunk announced


def test_a_signed_body_over_a_configured_limit_is_refused(slack, store):
    running = start_bot(slack, store, max_request_bytes=2048)
    try:
        fo = slack.host_file("users.csv", GOOD_AND_BAD)
        event = file_share_event([fo], text="x" * 4000)
        body = json.dumps(running.envelope(event)).encode()
        status, _ = running.post(body, running.signed_headers(body, "application/json"))
        small = json.dumps(running.envelope(file_share_event([fo]))).encode()
        assert len(small) < 2048
        ok, _ = running.post(small, running.signed_headers(small, "application/json"))
    finally:
        stop_bot(running)
    assert status == 413 and ok == 200
