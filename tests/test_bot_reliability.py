"""Slack misbehaving and the bot restarting (issue 7), over real HTTP against the stand-in.

* 429 with Retry-After and 5xx from the Web API and the upload URL are retried (slack_sdk's
  retry handlers on the bot's WebClient): the summary and report still arrive, the roster is
  applied once.
* Slack refusing the summary for good after the roster was applied: the roster and the upload
  record keep the result; the bot logs and tries a short fallback message.
* The file download failing or timing out: a clear reply, ❌, nothing applied, the upload
  record finished as failed (not left "received").
* Start-up recovery: an upload a previous process left unfinished is settled and its thread
  is told what happened.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import recover
from roster.models import Person, Upload, utcnow
from tests.conftest_slack import (
    # noqa: F401 - fixtures
    ADMIN,
    CHANNEL,
    DISTRICT,
    GOOD_AND_BAD,
    TS,
    file_share_event,
    slack,
    start_bot,
    stop_bot,
    store,
)
from tests.slack_standin import SlackStandIn


@pytest.fixture
def bot(slack, store):
    """The bot with short retry backoffs (Retry-After is still honoured as Slack sends it)."""
    running = start_bot(slack, store, slack_retry_backoff=0.05)
    yield running
    stop_bot(running)


def people(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Person)).scalar_one()


def uploads(store) -> list[Upload]:
    from sqlalchemy.orm import Session

    with Session(store.engine, expire_on_commit=False) as session:
        return list(session.scalars(select(Upload).order_by(Upload.id)))


def not_processing(rec: Any) -> bool:
    """Every bot post but the "processing" message (fail the summary, not the first reply)."""
    return not rec.get("text", "").startswith(":hourglass")


def final_reaction(slack: SlackStandIn, channel: str = CHANNEL, ts: str = TS) -> str:
    finals = {"white_check_mark", "warning", "x", "no_entry", "raised_hand"}
    return slack.wait_for(
        lambda: [r for r in slack.reactions(channel, ts) if r in finals], what="the final reaction"
    )[0]


def share(bot, slack, content: bytes = GOOD_AND_BAD, **kw) -> None:
    fo = slack.host_file("users.csv", content)
    assert bot.send_event(file_share_event([fo], **kw)) == 200


def thread_text(slack: SlackStandIn, thread_ts: str = TS, channel: str = CHANNEL) -> str:
    return "\n".join(str(p.body) for p in slack.posts(channel, thread_ts) if p.status == 200)


# -- retries -----------------------------------------------------------------------------------


def test_rate_limited_summary_is_posted_after_retry_after(bot, slack, store):
    limited = slack.fail("chat.postMessage", 429, retry_after=1, match=not_processing)
    share(bot, slack)
    assert final_reaction(slack) == "warning"

    attempts = [p for p in slack.posts(CHANNEL, TS) if not_processing(p)]
    assert limited.hits == 1
    assert [p.status for p in attempts] == [429, 200]  # retried once, then accepted
    assert attempts[0].body == attempts[1].body  # the same summary
    assert attempts[1].at - attempts[0].at >= 1.0  # Retry-After: 1 was honoured
    assert "Applied, some rows rejected" in str(attempts[1].body)
    slack.wait_for(lambda: len(slack.uploads) == 2, what="the error report and changes file")
    assert [u.filename for u in slack.uploads] == ["users-errors.csv", "users-changes.csv"]
    assert people(store) == 2
    assert [u.state for u in uploads(store)] == ["applied"]  # applied once


def test_server_errors_on_the_report_upload_are_retried(bot, slack, store):
    url_fault = slack.fail("upload", 500)
    complete_fault = slack.fail("files.completeUploadExternal", 500)
    share(bot, slack)
    assert final_reaction(slack) == "warning"

    report = slack.wait_for(lambda: len(slack.uploads) == 2 and slack.uploads, what="the files")
    time.sleep(0.2)
    assert url_fault.hits == 1 and complete_fault.hits == 1
    # one report in the thread, not two (and the changes file after it)
    assert [u.filename for u in slack.uploads] == ["users-errors.csv", "users-changes.csv"]
    assert report[0].thread_ts == TS and report[0].filename == "users-errors.csv"
    assert b"ORG_NOT_FOUND" in report[0].content
    # the report: refused once, then accepted; then the changes file
    assert [p.status for p in slack.calls("files.completeUploadExternal")] == [500, 200, 200]
    assert people(store) == 2
    assert [u.state for u in uploads(store)] == ["applied"]


def test_summary_refused_for_good_keeps_the_applied_roster_and_tries_a_fallback(
    bot, slack, store, caplog
):
    caplog.set_level(logging.WARNING)
    slack.fail("chat.postMessage", 500, times=None, match=not_processing)
    share(bot, slack)
    assert final_reaction(slack) == "warning"  # the reactions still tell the outcome

    attempts = [p for p in slack.posts(CHANNEL, TS) if not_processing(p)]
    assert all(p.status == 500 for p in attempts)
    assert len(attempts) == 6  # summary and fallback, each tried 1 + 2 retries
    fallback = attempts[-1]
    assert "could not post the full summary" in fallback["text"]
    assert "2 people applied" in fallback["text"]
    assert "blocks" not in fallback.body  # short text only

    # the one roster transaction was committed and the record keeps the result
    assert people(store) == 2
    (record,) = uploads(store)
    assert record.state == "applied" and record.status == "completed_with_errors"
    assert record.counts["staff"]["created"] == 1 and record.issues
    assert record.report is not None
    assert slack.wait_for(lambda: slack.uploads)[0].thread_ts == TS  # the report still went
    assert any(
        "posting to" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records
    )


# -- the file download failing -----------------------------------------------------------------


def test_file_download_server_error_is_reported_and_nothing_applied(bot, slack, store):
    slack.fail("file_host", 500, times=None)
    share(bot, slack)
    assert final_reaction(slack) == "x"
    reply = slack.posts(CHANNEL, TS)[-1]["text"]
    assert "Slack answered 500" in reply and "Nothing was applied" in reply
    assert people(store) == 0
    (record,) = uploads(store)
    assert record.state == "failed" and record.status == "failed"
    assert record.finished_at is not None
    assert "500" in record.file_issues[0]["message"]


def test_file_download_timeout_is_reported_and_nothing_applied(slack, store):
    running = start_bot(slack, store, download_timeout=0.3)
    try:
        slack.fail("file_host", None, delay=1.0)
        share(running, slack)
        assert final_reaction(slack) == "x"
    finally:
        stop_bot(running)
    reply = slack.posts(CHANNEL, TS)[-1]["text"]
    assert "within 0.3 seconds" in reply and "Nothing was applied" in reply
    assert people(store) == 0
    (record,) = uploads(store)
    assert record.state == "failed" and record.finished_at is not None


# -- start-up recovery -------------------------------------------------------------------------


def unfinished(
    store,
    *,
    file_id: str,
    thread_ts: str,
    payload: bytes | None,
    dry_run: bool = False,
    channel: str = CHANNEL,
) -> int:
    """An upload record as a process killed mid-upload leaves it (created an hour ago)."""
    upload_id = store.claim_slack_file(
        file_id, DISTRICT, channel, thread_ts, ADMIN, "users.csv", dry_run=dry_run
    )
    values: dict = dict(created_at=utcnow() - timedelta(hours=1))
    if payload is not None:
        values.update(state="processing", kind="users", payload=payload)
    store.update_upload(upload_id, **values)
    return upload_id


def test_start_up_recovery_tells_every_unfinished_upload_its_outcome(bot, slack, store):
    applying = unfinished(
        store, file_id="F0APPLY", thread_ts="1711000000.000001", payload=GOOD_AND_BAD
    )
    checking = unfinished(
        store, file_id="F0CHECK", thread_ts="1711000000.000002", payload=GOOD_AND_BAD, dry_run=True
    )
    never_downloaded = unfinished(
        store, file_id="F0RECV", thread_ts="1711000000.000003", payload=None
    )

    recovered = recover(bot.app)
    assert [r.upload_id for r in recovered] == [applying, checking, never_downloaded]

    apply_thread = thread_text(slack, "1711000000.000001")
    assert "NOT applied" in apply_thread and "upload the file again" in apply_thread
    assert "would apply 2 people" in apply_thread  # what the file would do now, as a check
    assert "ORG_NOT_FOUND" in apply_thread
    check_thread = thread_text(slack, "1711000000.000002")
    assert "checked again" in check_thread and "Nothing was applied" in check_thread
    recv_thread = thread_text(slack, "1711000000.000003")
    assert "NOT applied" in recv_thread and "upload the file again" in recv_thread
    assert "x" in slack.reactions(CHANNEL, "1711000000.000001")
    reports = {u.thread_ts for u in slack.uploads}
    assert reports == {"1711000000.000001", "1711000000.000002"}  # the re-checks' reports

    assert people(store) == 0  # nothing re-applied
    states = {u.id: (u.state, u.payload) for u in uploads(store)}
    assert states == {
        applying: ("abandoned", None),
        checking: ("checked", None),
        never_downloaded: ("abandoned", None),
    }
    assert recover(bot.app) == []  # settled once


def test_recovery_survives_slack_refusing_the_message(bot, slack, store, caplog):
    caplog.set_level(logging.WARNING)
    upload_id = unfinished(
        store, file_id="F0APPLY", thread_ts="1711000000.000001", payload=GOOD_AND_BAD
    )
    slack.fail("chat.postMessage", 500, times=None)
    assert [r.upload_id for r in recover(bot.app)] == [upload_id]
    assert uploads(store)[0].state == "abandoned"  # finished, and the failure is logged
    assert any(f"recovered upload {upload_id}" in r.getMessage() for r in caplog.records)
