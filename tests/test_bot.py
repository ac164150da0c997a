"""The Slack bot end to end: a stand-in Slack on loopback, the bot in HTTP mode, signed requests.

Every assertion is on what Slack (the stand-in) received — messages, threads, reactions,
uploaded bytes, which host saw the token — or on the roster store.
"""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from roster.models import Person, Upload
from tests.conftest_slack import (
    # noqa: F401 - fixtures
    ADMIN,
    CHANNEL,
    DISTRICT,
    DM,
    GOOD_AND_BAD,
    SCHOOL,
    STRANGER,
    SUPPORT,
    SYSADMIN_ONLY,
    TP_ADMIN,
    TP_CHANNEL,
    TP_SCHOOL,
    TS,
    UNLINKED,
    bot,
    file_share_event,
    slack,
    start_bot,
    stop_bot,
    store,
    users_csv,
)
from tests.slack_standin import BOT_ID, BOT_TOKEN, BOT_USER_ID, SlackStandIn, dm_channel

USERS_HEADER_WITH_CLASS = (
    "action,org_sis_id,userId,userFirstName,userLastName,userEmail,userRole,userGrade,"
    "classId,className,classGrade,primary_teacher"
)


def people(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Person)).scalar_one()


def summary_posts(slack: SlackStandIn, thread_ts: str = TS, channel: str = CHANNEL):
    """Thread replies other than the "processing" message."""
    return [
        p
        for p in slack.posts(channel, thread_ts)
        if "Processing" not in p.get("text", "") and "Checking" not in p.get("text", "")
    ]


def blocks_text(post) -> str:
    return json.dumps(post.get("blocks") or []) + post.get("text", "")


def wait_final_reaction(slack: SlackStandIn, channel: str = CHANNEL, ts: str = TS) -> str:
    finals = {"white_check_mark", "warning", "x", "no_entry", "raised_hand"}
    found = slack.wait_for(
        lambda: [r for r in slack.reactions(channel, ts) if r in finals], what="the final reaction"
    )
    return found[0]


def share(bot, slack, name: str, content: bytes, redirect_to: str | None = None, **kw):
    fo = slack.host_file(name, content, redirect_to=redirect_to)
    assert bot.send_event(file_share_event([fo], **kw)) == 200
    return fo


# -- uploads -----------------------------------------------------------------------------------


def test_admin_upload_replies_in_thread_with_counts_and_error_report(bot, slack, store):
    share(bot, slack, "users.csv", GOOD_AND_BAD)
    assert wait_final_reaction(slack) == "warning"  # processed, some rows have errors

    assert slack.reactions(CHANNEL, TS)[0] == "eyes"  # seen first
    processing = slack.posts(CHANNEL, TS)[0]
    assert "Processing users.csv" in processing["text"]
    summary = slack.wait_for(lambda: summary_posts(slack), what="the summary")
    assert len(summary) == 1
    text = blocks_text(summary[0])
    assert "Applied, some rows rejected" in text
    assert "2 people applied; 1 school and 1 person rejected" in summary[0]["text"]
    assert "ORG_NOT_FOUND" in text and "Fix:" in text  # top issue with its one-line fix
    assert "no change" in text and "removed" in text  # the per-entity table

    report = slack.wait_for(
        lambda: len(slack.uploads) == 2 and slack.uploads, what="the error report and changes file"
    )
    # the error report first, then the changes file, both in the file's thread
    assert [u.filename for u in report] == ["users-errors.csv", "users-changes.csv"]
    assert all(u.channel_id == CHANNEL and u.thread_ts == TS for u in report)
    changes = report[1].content.decode("utf-8-sig").splitlines()
    assert changes[0] == "entity,key,change,field,before,after,row_number"
    assert len(changes) - 1 == sum(
        1 for line in changes[1:] if line.split(",")[2] == "created"
    )  # a first upload only creates
    assert "users-changes.csv" in text and "Undo upload" in json.dumps(summary[0]["blocks"])
    assert report[0].channel_id == CHANNEL and report[0].thread_ts == TS
    lines = report[0].content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("row_number,status")
    assert any(line.startswith("4,rejected") and "ORG_NOT_FOUND" in line for line in lines)

    assert people(store) == 2  # the two good rows were applied
    # the summary is a new message; the processing message was updated in place
    assert summary[0].response["ts"] != processing.response["ts"]
    assert any("results below" in u.get("text", "") for u in slack.calls("chat.update"))


def test_clean_file_gets_success_reaction_and_no_report(bot, slack, store):
    share(
        bot,
        slack,
        "users.csv",
        users_csv(f",{SCHOOL},t-100,Ann,Lee,ann.lee@lincoln.example.org,teacher,"),
    )
    assert wait_final_reaction(slack) == "white_check_mark"
    assert ":white_check_mark: *users.csv* (users): *Applied* — 1 person applied" in json.dumps(
        summary_posts(slack)[0]["blocks"], ensure_ascii=False
    )
    time.sleep(0.2)
    # no error report; only the changes file (one person created)
    assert [u.filename for u in slack.uploads] == ["users-changes.csv"]
    assert b"staff,t-100,created" in slack.uploads[0].content
    assert people(store) == 1


def test_check_in_message_validates_without_applying(bot, slack, store):
    share(bot, slack, "users.csv", GOOD_AND_BAD, text="check this one please")
    assert wait_final_reaction(slack) == "warning"
    text = blocks_text(summary_posts(slack)[0])
    assert "nothing applied (check only)" in text and "an upload would apply 2 people" in text
    assert slack.wait_for(lambda: slack.uploads)[0].thread_ts == TS  # report still attached
    assert people(store) == 0


def test_dry_run_words_also_mean_check(bot, slack, store):
    share(bot, slack, "users.csv", GOOD_AND_BAD, text="Dry run")
    wait_final_reaction(slack)
    assert people(store) == 0


def test_a_sentence_that_merely_contains_check_is_an_upload(bot, slack, store):
    """product.md: only a message that STARTS with check / dry run / preview is a check."""
    share(bot, slack, "users.csv", GOOD_AND_BAD, text="final roster, no need to check")
    assert wait_final_reaction(slack) == "warning"
    text = blocks_text(summary_posts(slack)[0])
    assert "check only" not in text and "applied" in text
    assert people(store) == 2


def test_redelivered_event_and_file_shared_do_not_process_twice(bot, slack, store):
    fo = slack.host_file("users.csv", GOOD_AND_BAD)
    event = file_share_event([fo])
    assert bot.send_event(event, event_id="Ev0DUP") == 200
    assert bot.send_event(event, event_id="Ev0DUP", retry_num=1) == 200
    assert (
        bot.send_event(
            {
                "type": "file_shared",
                "channel_id": CHANNEL,
                "file_id": fo["id"],
                "user_id": ADMIN,
                "file": {"id": fo["id"]},
                "event_ts": TS,
            }
        )
        == 200
    )
    wait_final_reaction(slack)
    slack.wait_for(lambda: slack.uploads)
    assert bot.send_event(event, event_id="Ev0DUP", retry_num=2) == 200  # after it finished
    time.sleep(0.5)
    assert len(slack.paths("/files-pri/")) == 1  # downloaded once
    assert len(summary_posts(slack)) == 1
    assert slack.reactions(CHANNEL, TS).count("eyes") == 1
    # one error report and one changes file, not two of each
    assert sorted(u.filename for u in slack.uploads) == ["users-changes.csv", "users-errors.csv"]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Upload)).scalar_one() == 1


def test_both_files_in_one_message_users_first(bot, slack, store):
    pytest.importorskip("roster.demographics", reason="demographics.csv processing not built yet")
    demo = b"userId,sex\ns-200,F\n"
    users = users_csv(f",{SCHOOL},s-200,Bob,Ray,bob.ray@lincoln.example.org,student,03")
    demo_fo = slack.host_file("demographics.csv", demo)
    users_fo = slack.host_file("users.csv", users)
    assert bot.send_event(file_share_event([demo_fo, users_fo])) == 200
    assert wait_final_reaction(slack) == "white_check_mark"  # the student exists for demographics
    text = blocks_text(summary_posts(slack)[0])
    assert text.index("users.csv") < text.index("demographics.csv")


def test_progress_updates_the_processing_message(slack, store):
    running = start_bot(slack, store, progress_interval=0.0)
    try:
        share(running, slack, "users.csv", GOOD_AND_BAD)
        wait_final_reaction(slack)
    finally:
        stop_bot(running)
    processing_ts = slack.posts(CHANNEL, TS)[0].response["ts"]
    updates = [u for u in slack.calls("chat.update") if u.get("ts") == processing_ts]
    assert any("%" in u.get("text", "") for u in updates)  # a progress line
    assert "results below" in updates[-1]["text"]  # and the final state


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("user", [STRANGER, SUPPORT, SYSADMIN_ONLY])
def test_upload_without_system_and_enrollment_is_refused(bot, slack, store, user):
    share(bot, slack, "users.csv", GOOD_AND_BAD, user=user)
    assert wait_final_reaction(slack) == "no_entry"
    reply = slack.posts(CHANNEL, TS)
    assert len(reply) == 1
    assert "needs system and enrollment access" in reply[0]["text"]
    assert "Nothing was applied" in reply[0]["text"]
    assert slack.paths("/files-pri/") == []  # never even downloaded
    assert people(store) == 0


def test_upload_in_unlinked_channel_is_refused(bot, slack, store):
    share(bot, slack, "users.csv", GOOD_AND_BAD, channel=UNLINKED)
    wait_final_reaction(slack, UNLINKED)
    reply = slack.posts(UNLINKED, TS)
    assert "not linked to a district" in reply[0]["text"]
    assert "/rosterbot link" in reply[0]["text"]
    assert people(store) == 0


def test_unlinked_channel_uses_default_district_when_configured(slack, store):
    running = start_bot(slack, store, default_district=DISTRICT)
    try:
        share(running, slack, "users.csv", GOOD_AND_BAD, channel=UNLINKED)
        assert wait_final_reaction(slack, UNLINKED) == "warning"
    finally:
        stop_bot(running)
    assert people(store) == 2


def test_third_party_district_rejects_students_and_says_why(bot, slack, store):
    share(
        bot,
        slack,
        "users.csv",
        users_csv(
            f",{TP_SCHOOL},t-1,Tia,Moss,tia.moss@clever.example.org,teacher,",
            f",{TP_SCHOOL},s-1,Sam,Moss,sam.moss@clever.example.org,student,05",
        ),
        user=TP_ADMIN,
        channel=TP_CHANNEL,
    )
    assert wait_final_reaction(slack, TP_CHANNEL) == "warning"
    text = blocks_text(summary_posts(slack, channel=TP_CHANNEL)[0])
    assert "ROLE_NOT_ALLOWED" in text and "Clever" in text
    with store.engine.connect() as conn:
        roles = conn.execute(select(Person.role)).scalars().all()
    assert roles == ["teacher"]  # staff applied, the student not


def test_non_csv_is_ignored_in_channels_and_explained_in_dms(bot, slack, store):
    pdf = slack.host_file("roster.pdf", b"%PDF-1.4", content_type="application/pdf")
    pdf.update(filetype="pdf", mimetype="application/pdf")
    assert bot.send_event(file_share_event([pdf])) == 200
    assert bot.send_event(file_share_event([pdf], channel=DM, ts="1712000000.000200")) == 200
    reply = slack.wait_for(lambda: slack.posts(DM), what="the DM reply")
    assert "only CSV" in reply[0]["text"]
    time.sleep(0.3)
    assert slack.posts(CHANNEL) == [] and slack.reactions(CHANNEL) == []


def test_csv_in_a_dm_from_an_admin_is_processed(bot, slack, store):
    share(bot, slack, "users.csv", GOOD_AND_BAD, channel=DM)
    assert wait_final_reaction(slack, DM) == "warning"
    assert slack.wait_for(lambda: slack.uploads)[0].channel_id == DM
    assert people(store) == 2


# -- safety ------------------------------------------------------------------------------------


def test_foreign_file_host_never_receives_the_token(bot, slack, store):
    with SlackStandIn() as foreign:
        fo = foreign.host_file("users.csv", GOOD_AND_BAD)
        fo["url_private_download"] = fo["url_private"] = fo["url_private"].replace(
            "127.0.0.1", "localhost"
        )
        assert bot.send_event(file_share_event([fo])) == 200
        assert wait_final_reaction(slack) == "x"
        time.sleep(0.2)
        assert foreign.requests == []  # not even a request without the token
    assert "not a Slack file host" in blocks_text(summary_posts(slack)[-1])
    assert all(BOT_TOKEN not in json.dumps(r.headers) for r in foreign.requests)
    assert people(store) == 0


def test_redirect_is_not_followed_with_the_token(bot, slack, store):
    with SlackStandIn() as elsewhere:
        target = elsewhere.host_file("users.csv", GOOD_AND_BAD)["url_private_download"]
        share(bot, slack, "users.csv", GOOD_AND_BAD, redirect_to=target)
        assert wait_final_reaction(slack) == "x"
        time.sleep(0.2)
        assert elsewhere.requests == []
    assert "do not follow redirects" in blocks_text(summary_posts(slack)[-1])
    assert people(store) == 0


def test_sign_in_page_is_reported_as_a_permissions_problem(bot, slack, store):
    slack.files_read_granted = False
    share(bot, slack, "users.csv", GOOD_AND_BAD)
    assert wait_final_reaction(slack) == "x"
    text = blocks_text(summary_posts(slack)[-1])
    assert "files:read" in text and "not a member of this channel" in text
    assert "HEADER" not in text  # not blamed on the CSV
    assert people(store) == 0


def test_file_over_the_size_cap_is_refused_before_download(slack, store):
    running = start_bot(slack, store, max_file_bytes=100)
    try:
        share(running, slack, "users.csv", GOOD_AND_BAD)
        assert wait_final_reaction(slack) == "x"
    finally:
        stop_bot(running)
    assert "over the limit" in blocks_text(summary_posts(slack)[-1])
    assert slack.paths("/files-pri/") == []


def test_bots_own_upload_and_messages_are_ignored(bot, slack, store):
    fo = slack.host_file("users-errors.csv", GOOD_AND_BAD)
    assert bot.send_event(file_share_event([fo], user=BOT_USER_ID, bot_id=BOT_ID)) == 200
    assert (
        bot.send_event(
            {
                "type": "message",
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "text": "why did row 4 fail?",
                "channel": DM,
                "channel_type": "im",
                "ts": "1712000000.000300",
            }
        )
        == 200
    )
    time.sleep(0.5)
    assert [r.path for r in slack.requests if r.path != "/api/auth.test"] == []


@pytest.mark.parametrize("how", ["unsigned", "stale", "wrong secret"])
def test_unsigned_or_stale_requests_are_rejected(bot, slack, store, how):
    fo = slack.host_file("users.csv", GOOD_AND_BAD)
    body = json.dumps(bot.envelope(file_share_event([fo]))).encode()
    if how == "unsigned":
        headers = {"Content-Type": "application/json"}
    elif how == "stale":
        headers = bot.signed_headers(body, "application/json", timestamp=int(time.time()) - 600)
    else:
        bot.secret = "not-the-secret"
        headers = bot.signed_headers(body, "application/json")
    status, _ = bot.post(body, headers)
    assert status == 401
    time.sleep(0.2)
    assert [r.path for r in slack.requests if r.path != "/api/auth.test"] == []


# -- questions and triage ----------------------------------------------------------------------


def test_question_by_mention_is_answered_in_thread_once(bot, slack, store):
    event = {
        "type": "app_mention",
        "user": STRANGER,
        "channel": CHANNEL,
        "text": f"<@{BOT_USER_ID}> what does EMAIL_TAKEN mean?",
        "ts": TS,
    }
    assert bot.send_event(event) == 200
    # Slack also delivers the same message as a message.channels event
    assert bot.send_event({**event, "type": "message", "channel_type": "channel"}) == 200
    answer = slack.wait_for(lambda: slack.posts(CHANNEL, TS), what="the answer")
    time.sleep(0.3)
    assert len(slack.posts(CHANNEL, TS)) == 1
    text = blocks_text(answer[0])
    assert "EMAIL_TAKEN" in text and "How to fix" in text
    assert "Related" in text


def test_question_by_dm_is_answered_and_no_match_offers_closest(bot, slack, store):
    assert (
        bot.send_event(
            {
                "type": "message",
                "user": ADMIN,
                "channel": DM,
                "channel_type": "im",
                "text": "how do I fix primary_teacher errors?",
                "ts": TS,
            }
        )
        == 200
    )
    answer = slack.wait_for(lambda: slack.posts(DM, TS), what="the DM answer")
    assert "primary_teacher" in blocks_text(answer[0])
    assert (
        bot.send_event(
            {
                "type": "message",
                "user": ADMIN,
                "channel": DM,
                "channel_type": "im",
                "text": "roster question please",  # a near miss: off-topic gets no topics
                "ts": "1712000000.000900",
            }
        )
        == 200
    )
    miss = slack.wait_for(lambda: slack.posts(DM, "1712000000.000900"))
    assert "don't have a good answer" in miss[0]["text"]
    assert "closest topics" in miss[0]["text"]


def test_mention_in_unlinked_channel_is_refused(bot, slack, store):
    assert (
        bot.send_event(
            {
                "type": "app_mention",
                "user": ADMIN,
                "channel": UNLINKED,
                "text": f"<@{BOT_USER_ID}> what is EMAIL_TAKEN",
                "ts": TS,
            }
        )
        == 200
    )
    reply = slack.wait_for(lambda: slack.posts(UNLINKED, TS))
    assert "not linked" in reply[0]["text"]


def test_row_and_summary_in_an_upload_thread(bot, slack, store):
    share(bot, slack, "users.csv", GOOD_AND_BAD)
    wait_final_reaction(slack)

    def ask(text: str, ts: str, user: str = SUPPORT):
        before = len(slack.posts(CHANNEL, TS))
        assert (
            bot.send_event(
                {
                    "type": "message",
                    "user": user,
                    "channel": CHANNEL,
                    "channel_type": "channel",
                    "text": text,
                    "ts": ts,
                    "thread_ts": TS,
                }
            )
            == 200
        )
        return slack.wait_for(lambda: slack.posts(CHANNEL, TS)[before:], what=text)[0]

    row4 = ask("why did row 4 fail?", "1712000001.000001")
    assert "Row 4" in blocks_text(row4) and "ORG_NOT_FOUND" in blocks_text(row4)
    assert "NOSUCHSCHOOL" in blocks_text(row4) and "Fix" in blocks_text(row4)
    row2 = ask("row 2?", "1712000001.000002")
    assert "no issues" in row2["text"]
    summary = ask("summary", "1712000001.000003")
    assert "ORG_NOT_FOUND" in blocks_text(summary) and "Top issues" in blocks_text(summary)
    refused = ask("why did row 4 fail?", "1712000001.000004", user=STRANGER)
    assert "support access" in refused["text"]


def test_a_partly_applied_row_says_in_its_thread_what_was_saved_and_what_was_not(bot, slack, store):
    header = USERS_HEADER_WITH_CLASS
    share(
        bot,
        slack,
        "users.csv",
        users_csv(
            f",{SCHOOL},t-100,Ann,Lee,ann.lee@lincoln.example.org,teacher,,MATH5,Math 5,05,Y",
            f",{SCHOOL},s-200,Bob,Ray,,student,05,MATH5,Math 5,05,N",  # no email: partly
            ",NOSUCHSCHOOL,s-201,Cy,Ray,cy.ray@lincoln.example.org,student,05,,,,",
            header=header,
        ),
    )
    wait_final_reaction(slack)

    def ask(text: str, ts: str) -> dict:
        before = len(slack.posts(CHANNEL, TS))
        event = {
            "type": "message",
            "user": ADMIN,
            "channel": CHANNEL,
            "channel_type": "channel",
            "text": text,
            "ts": ts,
            "thread_ts": TS,
        }
        assert bot.send_event(event) == 200
        return slack.wait_for(lambda: slack.posts(CHANNEL, TS)[before:], what=text)[0]

    saved = "class MATH5 saved; the person and the enrollment were not."
    row3 = ask("why did row 3 fail?", "1712000001.000011")
    assert saved in row3["text"] and saved in json.dumps(row3["blocks"])
    assert f"Row 3 of users.csv: {saved} EMAIL_REQUIRED" in row3["text"]
    # the same words as the error report's details column
    report = store.uploads_in_thread(CHANNEL, TS)[-1].report.decode("utf-8-sig")
    assert saved in report
    row4 = ask("why did row 4 fail?", "1712000001.000012")  # wholly rejected: nothing saved
    assert "ORG_NOT_FOUND" in row4["text"] and "saved" not in blocks_text(row4)


def test_a_code_named_in_an_upload_thread_is_answered_without_a_mention(bot, slack, store):
    share(bot, slack, "users.csv", GOOD_AND_BAD)
    wait_final_reaction(slack)

    def say(text: str, ts: str, thread_ts: str = TS) -> None:
        assert (
            bot.send_event(
                {
                    "type": "message",
                    "user": ADMIN,
                    "channel": CHANNEL,
                    "channel_type": "channel",
                    "text": text,
                    "ts": ts,
                    "thread_ts": thread_ts,
                }
            )
            == 200
        )

    before = len(slack.posts(CHANNEL, TS))
    say("thanks, I'll fix the school ids", "1712000002.000001")  # talk among people
    say("what does org-not-found mean?", "1712000002.000002")
    answer = slack.wait_for(lambda: slack.posts(CHANNEL, TS)[before:], what="the answer")
    assert len(answer) == 1 and "ORG_NOT_FOUND" in blocks_text(answer[0])
    # a thread that is not an upload's: only a mention or a DM is a question
    say("what does ORG_NOT_FOUND mean?", "1712000002.000003", thread_ts="1712000009.000001")
    time.sleep(1.0)
    assert slack.posts(CHANNEL, "1712000009.000001") == []
    assert len(slack.posts(CHANNEL, TS)) == before + 1


# -- slash command -----------------------------------------------------------------------------


def command(bot, slack, text: str, **kw) -> dict:
    seen = len(slack.responses())
    assert bot.send_command(text, **kw) == 200
    responses = slack.wait_for(lambda: slack.responses()[seen:], what=f"/rosterbot {text}")
    return responses[0].body


def test_slash_help_and_unknown(bot, slack, store):
    body = command(bot, slack, "help")
    for sub in ("ask", "template", "dictionary", "download", "status", "link"):
        assert sub in body["text"]
    assert body["response_type"] == "ephemeral"
    assert "don't know `frobnicate`" in command(bot, slack, "frobnicate")["text"]


def test_slash_ask(bot, slack, store):
    body = command(bot, slack, "ask what does EMAIL_TAKEN mean")
    assert "EMAIL_TAKEN" in blocks_text(body)
    assert "Usage" in command(bot, slack, "ask")["text"]


def test_slash_template(bot, slack, store):
    body = command(bot, slack, "template users")
    assert "users.csv template" in body["text"]
    upload = slack.wait_for(lambda: slack.uploads, what="the template upload")
    assert upload[0].filename == "users.csv" and upload[0].channel_id == CHANNEL
    assert upload[0].content.lstrip(b"\xef\xbb\xbf").startswith(b"action,org_sis_id")
    from validation.templates import template_csv

    assert upload[0].content == template_csv("users")  # headers and example rows
    command(bot, slack, "template demographics")
    demo = slack.wait_for(lambda: slack.uploads[1:], what="the demographics template")[0]
    assert demo.filename == "demographics.csv" and demo.content == template_csv("demographics")
    assert "Usage" in command(bot, slack, "template grades")["text"]


def test_slash_dictionary(bot, slack, store):
    overview = blocks_text(command(bot, slack, "dictionary"))
    assert "userEmail" in overview and "birthDate" in overview
    column = blocks_text(command(bot, slack, "dictionary userEmail"))
    assert "EMAIL_TAKEN" in column
    unknown = command(bot, slack, "dictionary useremail")["text"]
    assert "Did you mean userEmail?" in unknown and "case-sensitive" in unknown
    assert "userId (demographics.csv)" in blocks_text(command(bot, slack, "dictionary userId"))


def test_slash_download(bot, slack, store):
    share(bot, slack, "users.csv", GOOD_AND_BAD)
    wait_final_reaction(slack)
    report = slack.wait_for(lambda: slack.uploads, what="the error report")[0]
    body = command(bot, slack, "download staff")
    assert "staff" in body["text"] and "direct message" in body["text"]
    assert body["response_type"] == "ephemeral"
    # the roster goes to the requester's DM (conversations.open), never into the channel
    assert [c.get("users") for c in slack.calls("conversations.open")] == [ADMIN]
    downloads = [
        u for u in slack.uploads if u.file_id != report.file_id and "changes" not in u.filename
    ]
    assert len(downloads) == 1
    assert downloads[0].channel_id == dm_channel(ADMIN) and downloads[0].thread_ts is None
    assert downloads[0].filename == f"{DISTRICT}-staff-users.csv"
    content = downloads[0].content.decode("utf-8-sig")
    assert content.startswith("action,org_sis_id")
    assert "t-100" in content and "s-200" not in content  # staff only
    assert [
        u for u in slack.uploads if u.channel_id == CHANNEL and "changes" not in u.filename
    ] == [report]
    assert "Usage" in command(bot, slack, "download everything")["text"]


def test_slash_download_refusals(bot, slack, store):
    assert (
        "needs system and enrollment" in command(bot, slack, "download staff", user=SUPPORT)["text"]
    )
    third_party = command(bot, slack, "download students", user=TP_ADMIN, channel=TP_CHANNEL)
    assert "Clever" in third_party["text"]
    assert slack.uploads == []


def test_slash_status_lists_recent_uploads(bot, slack, store):
    assert "No uploads yet" in command(bot, slack, "status")["text"]
    share(bot, slack, "users.csv", GOOD_AND_BAD)
    wait_final_reaction(slack)
    body = command(bot, slack, "status")
    record = store.recent_uploads(DISTRICT, 1)[0]
    line = body["text"].splitlines()[1]  # the audit trail: who, when, file, hash, state, counts
    assert "users.csv" in line and f"<@{ADMIN}>" in line
    assert record.file_sha256[:12] in line and record.created_at.strftime("%Y-%m-%d") in line
    assert "Applied, some rows rejected — 2 people applied; 1 school and 1 person rejected" in line
    # each entity's own totals, never added together ("2 created (3 rows)")
    assert "staff members: 1 created; students: 1 created, 1 rejected" in line
    assert "file:" not in line  # no file-level issue
    assert "support access" in command(bot, slack, "status", user=STRANGER)["text"]


def test_slash_status_says_why_a_failed_file_failed(bot, slack, store):
    # (a ;-separated file is read now: FILE_DELIMITER); misspelt headers still fail it
    share(
        bot,
        slack,
        "users.csv",
        GOOD_AND_BAD.replace(b"userEmail", b"usrEmail").replace(b"org_sis_id", b"school"),
    )
    wait_final_reaction(slack)
    line = command(bot, slack, "status")["text"].splitlines()[1]
    assert (
        "Failed — nothing was applied" in line
        and "file: HEADER_MISSING ×" in line
        and "HEADER_UNKNOWN" in line
    )


def test_slash_link_requires_a_system_admin_of_that_district(bot, slack, store):
    refused = command(bot, slack, f"link {DISTRICT}", user=SUPPORT, channel=UNLINKED)
    assert "needs system access" in refused["text"]
    assert store.district_for_channel(UNLINKED) is None
    assert "no district" in command(bot, slack, "link nowhere", channel=UNLINKED)["text"]
    ok = command(bot, slack, f"link {DISTRICT}", user=SYSADMIN_ONLY, channel=UNLINKED)
    assert "now linked" in ok["text"]
    assert store.district_for_channel(UNLINKED).key == DISTRICT


# -- Socket Mode -------------------------------------------------------------------------------


def test_socket_mode_acks_the_envelope_and_processes_the_upload(slack, store):
    from bot.app import create_app, start_socket_mode
    from tests.conftest_slack import bot_settings
    from tests.slack_standin import APP_TOKEN

    slack.start_socket_mode()
    app = create_app(bot_settings(slack, app_token=APP_TOKEN, signing_secret=None), store)
    handler = start_socket_mode(app, app.rosterbot.settings)
    try:
        assert (
            slack.calls("apps.connections.open")[0].headers["authorization"]
            == f"Bearer {APP_TOKEN}"
        )
        fo = slack.host_file("users.csv", GOOD_AND_BAD)
        payload = {
            "token": "legacy",
            "team_id": "T0STANDIN",
            "api_app_id": "A0ROSTERBOT",
            "type": "event_callback",
            "event_id": "Ev0SOCKET",
            "event_time": 1712000000,
            "event": file_share_event([fo]),
            "authorizations": [{"team_id": "T0STANDIN", "user_id": BOT_USER_ID, "is_bot": True}],
        }
        slack.send_envelope(
            {
                "envelope_id": "env-1",
                "type": "events_api",
                "accepts_response_payload": False,
                "retry_attempt": 0,
                "retry_reason": "",
                "payload": payload,
            }
        )
        acks = slack.wait_for(slack.socket_acks, what="the envelope ack")
        assert acks[0]["envelope_id"] == "env-1"
        assert wait_final_reaction(slack) == "warning"
        assert slack.wait_for(lambda: slack.uploads)[0].thread_ts == TS
        # a retried envelope for the same file is acknowledged but not processed again
        slack.send_envelope(
            {
                "envelope_id": "env-2",
                "type": "events_api",
                "accepts_response_payload": False,
                "retry_attempt": 1,
                "retry_reason": "timeout",
                "payload": payload,
            }
        )
        slack.wait_for(lambda: len(slack.socket_acks()) == 2, what="the second ack")
        time.sleep(0.3)
        assert len(slack.paths("/files-pri/")) == 1
    finally:
        handler.close()
        app.rosterbot.shutdown()
    assert people(store) == 2


# -- mass-removal guard: the Confirm button ----------------------------------------------------


def test_held_upload_is_applied_after_confirm_button(bot, slack, store):
    teachers = [f",{SCHOOL},t-{n},T{n},Lee,t{n}@lincoln.example.org,teacher," for n in range(5)]
    share(bot, slack, "users.csv", users_csv(*teachers))
    assert wait_final_reaction(slack) == "white_check_mark"

    removal_ts = "1712000005.000100"
    removals = [
        f"DEACTIVATE-USER,{SCHOOL},t-{n},T{n},Lee,t{n}@lincoln.example.org,teacher,"
        for n in range(2)
    ]  # 40% of the people, over the 20% guard
    share(bot, slack, "users.csv", users_csv(*removals), ts=removal_ts)
    assert wait_final_reaction(slack, ts=removal_ts) == "raised_hand"  # held, not failed
    held = slack.wait_for(lambda: summary_posts(slack, removal_ts))[0]
    said = json.dumps(held["blocks"], ensure_ascii=False)
    # labelled held, nothing applied said once, who would go, what to press, no CLI flag
    assert ":raised_hand:" in said and "*Held* — nothing applied yet" in said
    assert ":x:" not in said and "failed" not in said.lower()
    assert said.lower().count("nothing applied") + said.lower().count("nothing was applied") == 1
    assert "T0 Lee t-0: deactivated" in said and "T1 Lee t-1: deactivated" in said
    assert "press *Confirm and apply*" in said and "--confirm" not in said
    button = next(e for b in held["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert (
        button["action_id"] == "confirm_removals" and button["text"]["text"] == "Confirm and apply"
    )

    def active() -> int:
        with store.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(Person).where(Person.active.is_(True))
            ).scalar_one()

    assert active() == 5  # nothing applied while held
    seen = len(slack.responses())
    assert bot.click(button, user=SUPPORT, channel=CHANNEL, message_ts=removal_ts) == 200
    refused = slack.wait_for(lambda: slack.responses()[seen:], what="the refusal")
    assert "needs system and enrollment" in refused[0].body["text"]
    assert active() == 5

    assert bot.click(button, user=ADMIN, channel=CHANNEL, message_ts=removal_ts) == 200
    slack.wait_for(
        lambda: "white_check_mark" in slack.reactions(CHANNEL, removal_ts),
        what="the success reaction after confirming",
    )
    applied = summary_posts(slack, removal_ts)[-1]
    said = json.dumps(applied["blocks"], ensure_ascii=False) + applied["text"]
    assert "2 people removed" in said and "confirm_removals" not in said
    assert "undo_upload" in said  # the Undo button of an applied upload instead
    assert "Nothing" not in said and "nothing" not in said  # one story: it was applied
    taken_off = [c.get("name") for c in slack.calls("reactions.remove")]
    assert "raised_hand" in taken_off  # the held run's ✋ no longer says what happened
    assert active() == 3


# -- the real entry point ----------------------------------------------------------------------


def test_rosterbot_serve_http_verifies_and_processes(slack, store, tmp_path):
    import os
    import socket
    import subprocess
    import sys
    from datetime import timedelta
    from pathlib import Path

    from roster.models import utcnow
    from tests.conftest_slack import SIGNING_SECRET, BotUnderTest

    # an upload a killed predecessor left half-done: serve() settles it before listening
    stranded = store.claim_slack_file(
        "F0STRANDED", DISTRICT, CHANNEL, "1711000000.000001", ADMIN, "users.csv"
    )
    store.update_upload(
        stranded, state="processing", payload=GOOD_AND_BAD, created_at=utcnow() - timedelta(hours=1)
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "ROSTERBOT_SLACK_API_URL": slack.api_url,
        "ROSTERBOT_DATABASE_URL": store.url,
    }
    env.pop("SLACK_APP_TOKEN", None)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--http", "--port", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        slack.wait_for(
            lambda: listening() or proc.poll() is not None,
            timeout=20,
            what="rosterbot serve --http to listen",
        )
        assert proc.poll() is None, proc.stderr.read().decode()

        class Server:  # what BotUnderTest needs from a running server
            url = f"http://127.0.0.1:{port}/slack/events"

        told = slack.posts(CHANNEL, "1711000000.000001")
        assert told and "NOT applied" in told[0]["text"]  # before the server listened
        assert store.upload(stranded).state == "abandoned"

        remote = BotUnderTest(slack=slack, server=Server(), app=None)
        status, _ = remote.post(b"{}", {"Content-Type": "application/json"})
        assert status == 401  # unsigned
        share(remote, slack, "users.csv", GOOD_AND_BAD)
        assert wait_final_reaction(slack) == "warning"
        assert slack.wait_for(lambda: [u for u in slack.uploads if u.thread_ts == TS])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert people(store) == 2
