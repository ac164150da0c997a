"""A real `rosterbot upload` killed mid-apply (SIGKILL) and start-up recovery (issue #7).

The kill lands deterministically inside the upload's one transaction: the test hook
ROSTERBOT_TEST_PAUSE_BEFORE_COMMIT (roster/steps.py) pauses after every change is written
and the district lock is taken, right before the commit, and prints a marker line on stderr.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from roster.models import utcnow
from roster.recovery import recover_unfinished
from roster.store import Store
from tests.builders import class_of, row, student, teacher, users_csv
from tests.roster_helpers import person, roster_state, upload

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"rosterbot-test-hook: upload (\d+) paused before commit")


class CliUpload:
    """A `rosterbot upload` subprocess whose stderr is read on a thread."""

    def __init__(
        self,
        db_url: str,
        district: str,
        path: Path,
        cwd: Path,
        pause: float | None = None,
        release: Path | None = None,
        verb: str = "upload",
    ) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in (
                "ROSTERBOT_DATABASE_URL",
                "ROSTERBOT_TEST_PAUSE_BEFORE_COMMIT",
                "ROSTERBOT_TEST_PAUSE_RELEASE",
            )
        }
        env["PYTHONPATH"] = str(ROOT)
        if pause is not None:
            env["ROSTERBOT_TEST_PAUSE_BEFORE_COMMIT"] = str(pause)
        if release is not None:
            env["ROSTERBOT_TEST_PAUSE_RELEASE"] = str(release)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "--db",
                db_url,
                verb,
                district,
                str(path),
                "--json",
                "--report-dir",
                str(cwd / f"out-{path.stem}"),
            ],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.upload_id: int | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def wait_paused(self, timeout: float = 90) -> int:
        """Block until the process is paused inside its transaction; the upload id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            found = MARKER.search(line)
            if found:
                self.upload_id = int(found.group(1))
                return self.upload_id
        self.proc.kill()
        out, _ = self.proc.communicate(timeout=30)
        raise AssertionError("the upload never reached the commit: " + "".join(self.stderr) + out)

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        out, _ = self.proc.communicate(timeout=timeout)
        time.sleep(0.05)  # let the reader thread drain stderr
        return self.proc.returncode, out

    def kill(self) -> int:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=30)
        return self.proc.returncode


def sqlite_path(store: Store) -> str | None:
    return store.url.split("sqlite:///", 1)[1] if store.dialect == "sqlite" else None


def peek_state(store: Store, upload_id: int) -> str:
    """The record's state, read without waiting for a writer (a plain WAL read on SQLite)."""
    path = sqlite_path(store)
    if path is None:
        return store.upload(upload_id).state
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute("select state from uploads where id = ?", (upload_id,)).fetchone()[0]
    finally:
        con.close()


def assert_lock_free(store: Store, district: str = "d1", within: float = 15.0) -> float:
    """The district's upload lock can be taken right away (retrying briefly); seconds it took."""
    start = time.monotonic()
    last: Exception | None = None
    while time.monotonic() - start < within:
        try:
            path = sqlite_path(store)
            if path is not None:
                con = sqlite3.connect(path, timeout=0.2, isolation_level=None)
                try:
                    con.execute("BEGIN IMMEDIATE")
                    con.execute("ROLLBACK")
                finally:
                    con.close()
            else:
                engine = create_engine(store.url)
                try:
                    with engine.begin() as conn:
                        conn.execute(
                            text("select id from districts where key = :k for update nowait"),
                            {"k": district},
                        )
                finally:
                    engine.dispose()
            return time.monotonic() - start
        except Exception as exc:  # locked: retry until `within`
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"the district lock is still held {within}s after the kill: {last}")


def first_roster() -> list[dict]:
    return class_of(6) + class_of(1, class_id="SCI5", className="Science 5")


def second_roster() -> list[dict]:
    """Touches every table: new people, a rename, a new class, a deactivation, new enrollments."""
    return [
        teacher(),
        student(1, userFirstName="Renamed"),
        student(7, classId="ART5", className="Art 5"),
        teacher(userId="T9", userEmail="t9@example.org", classId="ART5", className="Art 5"),
        row(action="DEACTIVATE-USER", userId="S3", userEmail="s3@example.org"),
    ]


def test_sigkill_mid_apply_leaves_the_store_exactly_as_before(store, district, tmp_path):
    assert upload(store, first_roster()).applied
    before = roster_state(store)
    before_ids = {u.id for u in store.recent_uploads("d1")}
    path = tmp_path / "users.csv"
    data = users_csv(second_roster())
    path.write_bytes(data)

    proc = CliUpload(store.url, "d1", path, tmp_path, pause=120)
    upload_id = proc.wait_paused()
    assert upload_id not in before_ids
    assert peek_state(store, upload_id) == "processing"
    assert proc.kill() == -signal.SIGKILL

    # nothing of the killed upload is visible, and its record is left unfinished (a
    # command-line run does not keep the file's bytes: only Slack uploads are re-checked)
    assert roster_state(store) == before
    record = store.upload(upload_id)
    assert record.state == "processing" and record.finished_at is None
    assert record.file_sha256 == hashlib.sha256(data).hexdigest()
    assert record.payload is None and record.dry_run is False
    assert [u.id for u in store.unfinished_uploads()] == [upload_id]

    # the lock died with the process: the next upload is not blocked
    assert assert_lock_free(store) < 10
    started = time.monotonic()
    again = upload(store, second_roster())
    assert time.monotonic() - started < 30
    assert again.applied and again.status == "completed", again.file_issues
    assert person(store, "S1")["first_name"] == "Renamed"
    assert person(store, "S3")["active"] is False
    assert roster_state(store) != before
    # the killed one is still reported (never silently dropped) until recovery settles it
    assert [u.id for u in store.unfinished_uploads()] == [upload_id]


def test_recovery_after_a_kill_reports_the_upload_as_not_applied(store, district, tmp_path):
    assert upload(store, first_roster()).applied
    before = roster_state(store)
    path = tmp_path / "users.csv"
    path.write_bytes(users_csv(second_roster()))
    proc = CliUpload(store.url, "d1", path, tmp_path, pause=120)
    upload_id = proc.wait_paused()
    assert proc.kill() == -signal.SIGKILL

    done = recover_unfinished(store, started_before=utcnow() + timedelta(seconds=1))
    assert [(r.upload_id, r.action, r.state) for r in done] == [
        (upload_id, "abandoned", "abandoned")
    ]
    message = done[0].message
    assert "command-line upload" in message and "nothing in it was applied" in message
    assert "upload the file again" in message
    # the roster is untouched; a command-line run keeps no bytes, so there is no preview
    # (a Slack upload's stored file is re-checked: test_recovery_* below and test_bot_reliability)
    assert roster_state(store) == before
    record = store.upload(upload_id)
    assert record.state == "abandoned" and record.status == "failed"
    assert [i["code"] for i in record.file_issues] == ["FAILED"]
    assert "command-line upload" in record.file_issues[0]["message"]
    assert record.payload is None and record.finished_at is not None
    assert store.unfinished_uploads() == []


# --- start-up recovery (roster/recovery.py) ---------------------------------------------------
def unfinished(
    store: Store, data: bytes | None, dry_run: bool, state: str = "processing", district: str = "d1"
) -> int:
    upload_id = store.new_upload(district, "users.csv", "U1", dry_run)
    store.update_upload(upload_id, state=state, payload=data)
    return upload_id


def later():
    return utcnow() + timedelta(seconds=1)


def test_recovery_reruns_an_interrupted_check_and_finishes_it(store, district):
    assert upload(store, first_roster()).applied
    before = roster_state(store)
    check_id = unfinished(store, users_csv(second_roster()), dry_run=True)
    broken_id = unfinished(store, b"", dry_run=True)
    done = recover_unfinished(store, started_before=later())
    assert [(r.upload_id, r.action, r.state) for r in done] == [
        (check_id, "rechecked", "checked"),
        (broken_id, "rechecked", "failed"),
    ]
    assert roster_state(store) == before
    record = store.upload(check_id)
    assert record.state == "checked" and record.status == "completed"
    assert record.counts["student"]["created"] == 1 and record.payload is None
    assert done[0].result.counts == record.counts and "Nothing was applied" in done[0].message
    assert store.upload(broken_id).file_issues[0]["code"] == "FILE_EMPTY"
    assert store.unfinished_uploads() == []
    assert recover_unfinished(store, started_before=later()) == []  # idempotent


def test_recovery_never_reapplies_an_upload(store, district):
    assert upload(store, first_roster()).applied
    before = roster_state(store)
    upload_id = unfinished(store, users_csv(second_roster()), dry_run=False)
    [done] = recover_unfinished(store, started_before=later())
    assert (done.action, done.state, done.applied) == ("abandoned", "abandoned", False)
    assert done.result is not None and done.result.counts["student"]["created"] == 1
    assert roster_state(store) == before
    record = store.upload(upload_id)
    assert (record.state, record.status) == ("abandoned", "failed")
    assert "upload the file again" in record.file_issues[0]["message"]


def test_recovery_reports_files_that_were_never_read(store, district):
    slack_id = store.claim_slack_file("F1", "d1", "C1", "111.222", "U1", "users.csv")
    orphan_id = store.claim_slack_file("F2", None, "C9", "333.444", "U2", "users.csv")
    done = {r.upload_id: r for r in recover_unfinished(store, started_before=later())}
    assert set(done) == {slack_id, orphan_id}
    assert (done[slack_id].slack_channel, done[slack_id].slack_thread_ts) == ("C1", "111.222")
    assert (
        done[slack_id].action == "abandoned"
        and "before this file was stored" in done[slack_id].reason
    )
    assert (
        done[orphan_id].district_key is None
        and "not linked to a district" in done[orphan_id].reason
    )
    assert {store.upload(i).state for i in done} == {"abandoned"}


def test_recovery_leaves_uploads_of_the_running_process_alone(store, district):
    upload_id = unfinished(store, users_csv(second_roster()), dry_run=False)
    assert recover_unfinished(store) == []  # default cutoff: when this process started
    assert recover_unfinished(store, started_before=utcnow() - timedelta(minutes=5)) == []
    assert store.upload(upload_id).state == "processing"


def test_recovery_does_not_overwrite_an_upload_another_process_finished(
    store, district, monkeypatch
):
    import roster.recovery as recovery

    upload_id = unfinished(store, users_csv(second_roster()), dry_run=False)

    def finished_meanwhile(store_, district_, record, settings):
        store.update_upload(record.id, state="applied", status="completed")
        raise RuntimeError("re-check failed too")

    monkeypatch.setattr(recovery, "_dry_run", finished_meanwhile)
    [done] = recover_unfinished(store, started_before=later())
    assert (done.action, done.state) == ("already_finished", "applied")
    assert store.upload(upload_id).state == "applied"


def test_recovery_abandons_with_the_reason_when_the_recheck_crashes(store, district, monkeypatch):
    import roster.recovery as recovery

    upload_id = unfinished(store, users_csv(second_roster()), dry_run=True)
    monkeypatch.setattr(recovery, "_dry_run", lambda *a: 1 / 0)
    [done] = recover_unfinished(store, started_before=later())
    assert done.action == "abandoned" and "re-checking the stored file also failed" in done.reason
    assert store.upload(upload_id).state == "abandoned"


def test_only_a_slack_upload_keeps_its_file_while_it_runs(store, district, monkeypatch):
    """Recovery can re-check a Slack upload (and tell its thread); a command-line run keeps no
    copy of the file in the database."""
    import roster.pipeline as pipeline

    kept: dict[str, bytes | None] = {}
    real = pipeline._steps

    def spy(ctx, job, result):
        kept[result.file] = store.upload(result.upload_id).payload
        return real(ctx, job, result)

    monkeypatch.setattr(pipeline, "_steps", spy)
    data = users_csv(first_roster())
    slack = pipeline.run(
        store,
        "d1",
        [pipeline.InputFile("from-slack.csv", data, "F0SLACK")],
        apply=True,
        settings=pipeline.Settings(),
    )
    cli = pipeline.run(
        store,
        "d1",
        [pipeline.InputFile("from-cli.csv", data)],
        apply=True,
        settings=pipeline.Settings(),
    )
    assert kept == {"from-slack.csv": data, "from-cli.csv": None}
    for done in (slack, cli):  # finished records never keep it
        assert store.upload(done.files[0].upload_id).payload is None
