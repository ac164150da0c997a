"""Availability of the one bot process that serves every district (issue #13).

* Progress updates never run inside the roster transaction: Slack holding or refusing a
  chat.update (429 with Retry-After) neither lengthens the upload nor keeps the database lock
  from another district's upload.
* While another process holds SQLite's write lock (a command-line upload), a file share and
  `/rosterbot status` still get a reply: the file is queued behind the upload and processed
  when the lock frees.
"""

from __future__ import annotations

import threading

import pytest

from roster.pipeline import InputFile, run
from roster.store import Store
from tests.conftest_slack import (  # noqa: F401 - fixtures
    CHANNEL,
    DISTRICT,
    GOOD_AND_BAD,
    SCHOOL,
    TP_DISTRICT,
    TP_SCHOOL,
    TS,
    file_share_event,
    slack,
    start_bot,
    stop_bot,
    store,
    users_csv,
)
from tests.slack_standin import SlackStandIn
from tests.test_crash import CliUpload

FINALS = {"white_check_mark", "warning", "x", "no_entry"}


def final_reaction(slack: SlackStandIn, ts: str = TS, timeout: float = 15.0) -> str:
    return slack.wait_for(
        lambda: [r for r in slack.reactions(CHANNEL, ts) if r in FINALS],
        timeout=timeout,
        what="the final reaction",
    )[0]


def is_progress(rec) -> bool:
    """A progress update of the "processing" message (not its final "results below")."""
    return "%)" in rec.get("text", "")


def other_district_upload(url: str) -> threading.Thread:
    """An upload of another district, from its own connection, on a thread (its result in
    `.result`)."""

    def go() -> None:
        other = Store(url)
        try:
            rows = [f",{TP_SCHOOL},t-9,Tia,Ko,tia.ko@clever.example.org,teacher,"]
            worker.result = run(
                other, TP_DISTRICT, [InputFile("u.csv", users_csv(*rows))], apply=True
            )
        finally:
            other.dispose()

    worker = threading.Thread(target=go, daemon=True)
    worker.result = None
    worker.start()
    return worker


# -- progress is best-effort and outside the transaction ---------------------------------------


def test_slack_holding_progress_updates_neither_stalls_the_upload_nor_other_districts(slack, store):
    # Slack answers no progress update until the test lets it; with progress inside the
    # transaction the upload (and the database lock) would wait on Slack
    held = threading.Event()
    slack.fail("chat.update", None, times=None, match=is_progress, gate=held)
    running = start_bot(slack, store, progress_interval=0.0)
    try:
        fo = slack.host_file("users.csv", GOOD_AND_BAD)
        assert running.send_event(file_share_event([fo])) == 200
        slack.wait_for(
            lambda: [u for u in slack.calls("chat.update") if is_progress(u)],
            what="a progress update",
        )
        other = other_district_upload(store.url)
        other.join(20)
        assert other.result is not None, "another district's upload waited on Slack"
        assert other.result.files[0].applied
        # the upload itself finished and reported while its progress update was unanswered
        assert final_reaction(slack) == "warning"
        assert not held.is_set()
        assert store.recent_uploads("lincoln")[0].state == "applied"
    finally:
        held.set()
        stop_bot(running)


def test_a_rate_limited_progress_update_is_dropped_not_retried(slack, store):
    slack.fail("chat.update", 429, times=None, retry_after=30, match=is_progress)
    running = start_bot(slack, store, progress_interval=0.0)
    try:
        fo = slack.host_file("users.csv", GOOD_AND_BAD)
        assert running.send_event(file_share_event([fo])) == 200
        # Retry-After 30 s: an upload that waited for it would not report within the timeout
        assert final_reaction(slack) == "warning"
    finally:
        stop_bot(running)
    progress = [u for u in slack.calls("chat.update") if is_progress(u)]
    assert len(progress) == 1, "after a 429 no progress update is sent before Retry-After"
    final = [u for u in slack.calls("chat.update") if not is_progress(u)]
    assert final and "results below" in final[-1]["text"]


# -- SQLite's write lock held by another process -------------------------------------------------


def test_while_a_command_line_upload_holds_the_lock_a_share_and_status_still_get_replies(
    slack, store, tmp_path
):
    (tmp_path / "cli.csv").write_bytes(GOOD_AND_BAD)
    release = tmp_path / "release"
    running = start_bot(slack, store)
    cli = CliUpload(store.url, DISTRICT, tmp_path / "cli.csv", tmp_path, pause=90, release=release)
    try:
        cli.wait_paused()  # its transaction holds SQLite's write lock
        fo = slack.host_file("users.csv", GOOD_AND_BAD)
        assert running.send_event(file_share_event([fo])) == 200
        queued = slack.wait_for(
            lambda: [p for p in slack.posts(CHANNEL, TS) if "Queued behind" in p.get("text", "")],
            what="the thread told the file is queued",
        )
        assert "Nothing has been applied yet" in queued[0]["text"]
        assert running.send_command("status") == 200
        status = str(slack.wait_for(slack.responses, what="the status answer")[0].body)
        assert "Recent uploads" in status and "cli.csv" in status
        assert not any(r in FINALS for r in slack.reactions(CHANNEL, TS))  # not processed yet
        release.touch()
        assert final_reaction(slack, timeout=60) == "warning"
        code, _ = cli.finish()
        assert code == 0
    finally:
        release.touch()
        stop_bot(running)
    # the queued share was recorded and applied once the command-line upload finished
    records = store.recent_uploads(DISTRICT)
    assert [(r.file_name, r.state) for r in records] == [
        ("users.csv", "applied"),
        ("cli.csv", "applied"),
    ]
    texts = " ".join(p.get("text", "") for p in slack.posts(CHANNEL, TS))
    assert "went wrong" not in texts
    processing_ts = queued[0].response["ts"]
    final = [u for u in slack.calls("chat.update") if u.get("ts") == processing_ts]
    assert "results below" in final[-1]["text"]  # the queued message became the processing one


# -- retention: the bot purges old upload data itself ----------------------------------------------


def test_the_bot_purges_uploads_past_retention_when_it_starts(slack, store):
    import time
    from datetime import timedelta

    from roster.models import utcnow

    old = store.new_upload(DISTRICT, "old.csv", "U0ADMIN", dry_run=True)
    recent = store.new_upload(DISTRICT, "recent.csv", "U0ADMIN", dry_run=True)
    issue = {
        "row": 2,
        "column": "userEmail",
        "code": "EMAIL_INVALID",
        "value": "ava@",
        "message": "x",
    }
    for upload_id, days in ((old, 91), (recent, 5)):
        store.update_upload(
            upload_id,
            state="checked",
            report=b"row,userEmail\n2,ava@\n",
            issues=[issue],
            created_at=utcnow() - timedelta(days=days),
        )
    running = start_bot(slack, store)
    try:
        deadline = time.monotonic() + 15
        while store.upload(old).purged_at is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop_bot(running)
    purged, kept = store.upload(old), store.upload(recent)
    assert purged.purged_at is not None and purged.report is None
    assert purged.issues[0]["code"] == "EMAIL_INVALID" and purged.issues[0]["value"] == ""
    assert kept.purged_at is None and kept.report is not None and kept.issues == [issue]
