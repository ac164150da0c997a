"""Several bot replicas and workers as real OS processes on PostgreSQL (issue 17, items 3-7).

`rosterbot serve --http` replicas (job queue on) and `rosterbot worker` processes run as
subprocesses against a fresh PostgreSQL schema and the stand-in Slack of this process; the
test sends signed events as Slack does, kills processes with SIGKILL at the moments the
test hooks mark, and asks the database what happened: upload records, the roster, the
queue's own job and event tables (procrastinate_jobs, procrastinate_events).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.queue import ensure_schema
from roster.store import Store
from tests.conftest import PG_OK, PG_URL
from tests.conftest_slack import (
    ADMIN,
    CHANNEL,
    DISTRICT,
    SCHOOL,
    SIGNING_SECRET,
    BotUnderTest,
    file_share_event,
    set_up_tenancy,
    slack,  # noqa: F401 - fixture
    users_csv,
)
from tests.slack_standin import BOT_TOKEN, SlackStandIn
from tests.test_integrity import dangling

pytestmark = [pytest.mark.postgres, pytest.mark.cluster, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
HOOK_ENV = (
    "ROSTERBOT_TEST_PAUSE_BEFORE_ACK",
    "ROSTERBOT_TEST_PAUSE_BEFORE_REPLY",
    "ROSTERBOT_TEST_PAUSE_BEFORE_COMMIT",
    "ROSTERBOT_TEST_PAUSE_RELEASE",
)


@pytest.fixture
def db_url() -> Iterator[str]:
    """A fresh PostgreSQL schema with the tenancy of the bot tests and the queue's tables."""
    if not PG_OK:
        pytest.skip("PostgreSQL not configured (set ROSTERBOT_TEST_POSTGRES_URL)")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{name}"
    store = Store(url)
    set_up_tenancy(store)
    ensure_schema(store.engine)
    store.dispose()
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


class Proc:
    """A rosterbot subprocess whose stderr is collected on a thread."""

    def __init__(self, args: list[str], env: dict[str, str], tmp: Path, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.log = tmp / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *args],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with self.log.open("w") as out:
            for line in self.proc.stderr:
                self.lines.append(line)
                out.write(line)
                out.flush()

    def wait_for_line(self, marker: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(marker in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name} never printed {marker!r}:\n{''.join(self.lines)}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """Replicas and workers of one database, and the stand-in Slack they talk to."""

    def __init__(self, slack: SlackStandIn, db_url: str, tmp: Path) -> None:
        self.slack, self.db_url, self.tmp = slack, db_url, tmp
        self.procs: list[Proc] = []
        self.store = Store(db_url)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in HOOK_ENV}
        env.update(
            PYTHONPATH=str(ROOT),
            ROSTERBOT_DATABASE_URL=self.db_url,
            ROSTERBOT_JOB_QUEUE="queue",
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            ROSTERBOT_SLACK_API_URL=self.slack.api_url,
            ROSTERBOT_SLACK_RETRIES="0",
            # a dead worker is noticed within seconds, not a minute
            ROSTERBOT_WORKER_HEARTBEAT="0.5",
            ROSTERBOT_WORKER_STALLED_AFTER="6",
            ROSTERBOT_STALLED_CHECK_CRON="* * * * * *",
        )
        env.update(extra)
        return env

    def replica(self, **hooks: str) -> BotUnderTest:
        port = _free_port()
        proc = Proc(
            ["serve", "--http", "--port", str(port)],
            self.env(**hooks),
            self.tmp,
            f"replica-{len(self.procs)}",
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.proc.poll() is None, "".join(proc.lines)
                time.sleep(0.1)
        else:
            raise AssertionError("".join(proc.lines))
        server = type("Server", (), {"url": f"http://127.0.0.1:{port}/slack/events"})()
        bot = BotUnderTest(slack=self.slack, server=server, app=None)  # type: ignore[arg-type]
        bot.proc = proc  # type: ignore[attr-defined]
        return bot

    def worker(self, **hooks: str) -> Proc:
        proc = Proc(["worker"], self.env(**hooks), self.tmp, f"worker-{len(self.procs)}")
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()
        self.store.dispose()

    # -- what the database says ----------------------------------------------------------
    def query(self, sql: str, **params) -> list[tuple]:
        with self.store.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]

    def one(self, sql: str, **params):
        return self.query(sql, **params)[0][0]

    def wait_until(self, sql: str, expected, timeout: float = 90, **params) -> None:
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = self.one(sql, **params)
            if got == expected:
                return
            time.sleep(0.2)
        logs = "\n".join(f"--- {p.name}\n{''.join(p.lines[-30:])}" for p in self.procs)
        raise AssertionError(f"{sql} -> {got!r}, expected {expected!r}\n{logs}")


@pytest.fixture
def cluster(slack, db_url, tmp_path) -> Iterator[Cluster]:
    running = Cluster(slack, db_url, tmp_path)
    yield running
    running.stop()


def _people(cluster: Cluster, district: str = DISTRICT) -> int:
    return cluster.one(
        "SELECT count(*) FROM people p JOIN districts d ON d.id = p.district_id WHERE d.key = :key",
        key=district,
    )


def _file(slack: SlackStandIn, tag: str, school: str = SCHOOL, rows: int = 2) -> dict:
    lines = [
        f",{school},{tag}-{n},Ann,Lee{n},{tag}-{n}@lincoln.example.org,"
        + ("teacher," if n == 0 else "student,03")
        for n in range(rows)
    ]
    return slack.host_file(f"users-{tag}.csv", users_csv(*lines))


def _summaries(slack: SlackStandIn, thread_ts: str, channel: str = CHANNEL) -> list:
    """The bot's summaries in a thread (the message naming the district that ends a run)."""
    return [
        p
        for p in slack.posts(channel, thread_ts)
        if "Processing" not in p.get("text", "") and "users-" in json.dumps(p.get("blocks", ""))
    ]


# -- 3. the same event on both replicas at once, and Slack's retry ---------------------------------


def test_one_event_on_two_replicas_and_a_retry_is_one_job_and_one_upload(cluster, slack):
    first, second = cluster.replica(), cluster.replica()
    ts = "1712000300.000100"
    event = file_share_event([_file(slack, "dup")], ts=ts)
    envelope = first.envelope(event, event_id="EvDUPLICATE1")
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda b=b: statuses.append(b.send_event(event, envelope=envelope)))
        for b in (first, second)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses.append(first.send_event(event, envelope=envelope, retry_num=1))
    assert statuses == [200, 200, 200]
    # acknowledged means claimed and queued: the job is there before any worker runs
    assert cluster.one("SELECT count(*) FROM uploads WHERE slack_message_ts = :ts", ts=ts) == 1
    assert cluster.one("SELECT count(*) FROM procrastinate_jobs WHERE lock LIKE 'district:%'") == 1
    cluster.worker()
    cluster.wait_until("SELECT state FROM uploads WHERE slack_message_ts = :ts", "applied", ts=ts)
    assert _people(cluster) == 2
    slack.wait_for(lambda: _summaries(slack, ts), timeout=30, what="the summary")
    time.sleep(1)  # nothing more comes
    assert len(_summaries(slack, ts)) == 1
    cluster.wait_until(
        "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded' "
        "AND lock LIKE 'district:%'",
        1,
    )
    # a command on a replica that holds acknowledgements for the queue: acknowledged first,
    # answered through response_url
    assert second.send_command(f"status {DISTRICT}") == 200
    answer = slack.wait_for(lambda: slack.responses(), timeout=30, what="the status answer")[0].body
    assert "users-dup.csv" in json.dumps(answer)


# -- 4. a replica killed before it acknowledged ---------------------------------------------------


def test_a_replica_killed_before_acknowledging_loses_nothing_and_the_retry_runs_once(
    cluster, slack, tmp_path
):
    never = tmp_path / "never-released"
    doomed = cluster.replica(ROSTERBOT_TEST_PAUSE_BEFORE_ACK=str(never))
    healthy = cluster.replica()
    ts = "1712000400.000100"
    event = file_share_event([_file(slack, "ack")], ts=ts)
    envelope = doomed.envelope(event, event_id="EvKILLED0001")
    answers: list = []

    def send() -> None:
        try:
            answers.append(doomed.send_event(event, envelope=envelope))
        except OSError as lost:  # the connection dies with the replica
            answers.append(lost)

    sent = threading.Thread(target=send)
    sent.start()
    doomed.proc.wait_for_line("claimed and deferred, not committed")
    doomed.proc.kill()  # the claim and the job die with its transaction; Slack got no 200
    sent.join(15)
    assert answers and answers[0] != 200  # Slack was not acknowledged
    assert cluster.one("SELECT count(*) FROM uploads WHERE slack_message_ts = :ts", ts=ts) == 0
    # Slack retries the unacknowledged event (to whichever replica the balancer picks)
    assert healthy.send_event(event, envelope=envelope, retry_num=1) == 200
    assert healthy.send_event(event, envelope=envelope, retry_num=2) == 200
    cluster.worker()
    cluster.wait_until("SELECT state FROM uploads WHERE slack_message_ts = :ts", "applied", ts=ts)
    assert cluster.one("SELECT count(*) FROM uploads WHERE slack_message_ts = :ts", ts=ts) == 1
    assert cluster.one("SELECT count(*) FROM procrastinate_jobs WHERE lock LIKE 'district:%'") == 1
    assert _people(cluster) == 2
    slack.wait_for(lambda: _summaries(slack, ts), timeout=30, what="the summary")


# -- 5. a worker killed in the middle of the apply ------------------------------------------------


def test_a_worker_killed_mid_apply_is_retried_and_the_roster_is_one_apply(cluster, slack):
    replica = cluster.replica()
    doomed = cluster.worker(ROSTERBOT_TEST_PAUSE_BEFORE_COMMIT="120")
    ts = "1712000500.000100"
    assert replica.send_event(file_share_event([_file(slack, "mid", rows=3)], ts=ts)) == 200
    doomed.wait_for_line("paused before commit")  # every row written, nothing committed
    # no file bytes in the database: not on the record, not in the job (a retry downloads)
    assert cluster.one("SELECT payload IS NULL FROM uploads") is True
    assert "Ann" not in json.dumps(
        cluster.one("SELECT args FROM procrastinate_jobs WHERE lock LIKE 'district:%'")
    )
    doomed.kill()
    assert _people(cluster) == 0
    cluster.worker()  # notices the dead worker's silence and retries its job
    cluster.wait_until("SELECT state FROM uploads WHERE slack_message_ts = :ts", "applied", ts=ts)
    assert _people(cluster) == 3
    assert cluster.one("SELECT count(*) FROM uploads") == 1
    upload_id = cluster.one("SELECT id FROM uploads")
    # one apply: the log stands for each created person once, not twice (a run of created
    # rows is one line standing for last_id - first_id + 1 of them: roster.models.Change)
    assert (
        cluster.one(
            "SELECT sum(CASE WHEN first_id IS NULL THEN 1 ELSE last_id - first_id + 1 END) "
            "FROM changes WHERE upload_id = :u AND change = 'created' "
            "AND entity IN ('staff', 'student', 'person')",
            u=upload_id,
        )
        == 3
    )
    # two runs of the one job: the killed one and the retry (procrastinate counts a run when
    # it finishes: after the reply)
    cluster.wait_until(
        "SELECT status FROM procrastinate_jobs WHERE lock LIKE 'district:%'", "succeeded"
    )
    assert cluster.one("SELECT attempts FROM procrastinate_jobs WHERE lock LIKE 'district:%'") == 2
    assert dangling(cluster.store) == {}
    slack.wait_for(lambda: _summaries(slack, ts), timeout=30, what="the summary")


# -- 6. a worker killed after the commit, before the reply ----------------------------------------


def test_a_worker_killed_after_commit_is_retried_replies_and_applies_nothing_again(
    cluster, slack, tmp_path
):
    replica = cluster.replica()
    doomed = cluster.worker(ROSTERBOT_TEST_PAUSE_BEFORE_REPLY=str(tmp_path / "never"))
    ts = "1712000600.000100"
    assert replica.send_event(file_share_event([_file(slack, "late")], ts=ts)) == 200
    doomed.wait_for_line("committed, not replied")
    doomed.kill()
    assert cluster.one("SELECT state FROM uploads") == "applied"
    assert _summaries(slack, ts) == []  # the person has heard nothing yet
    changes = cluster.one("SELECT count(*) FROM changes")
    cluster.worker()
    summary = slack.wait_for(lambda: _summaries(slack, ts), timeout=60, what="the reply")
    assert "users-late.csv" in json.dumps(summary[0]["blocks"])
    cluster.wait_until(
        "SELECT status FROM procrastinate_jobs WHERE lock LIKE 'district:%'", "succeeded"
    )
    assert cluster.one("SELECT count(*) FROM changes") == changes  # not applied again
    assert _people(cluster) == 2
    assert "white_check_mark" in slack.current_reactions(CHANNEL, ts)


# -- 7. many districts on three workers ------------------------------------------------------------

DISTRICTS = 20
PER_DISTRICT = 5


def test_uploads_apply_in_claim_order_per_district_and_districts_run_in_parallel(cluster, slack):
    for n in range(DISTRICTS):
        key = f"many{n:02d}"
        cluster.store.create_district(key, f"District {n}")
        cluster.store.add_school(key, "S1", "School")
        cluster.store.grant_admin(key, ADMIN, system=True, enrollment=True)
        cluster.store.link_channel(key, f"C0MANY{n:02d}")
    replicas = [cluster.replica(), cluster.replica()]
    sent = 0
    for round_ in range(PER_DISTRICT):
        for n in range(DISTRICTS):
            event = file_share_event(
                [_file(slack, f"m{n:02d}r{round_}", school="S1")],
                channel=f"C0MANY{n:02d}",
                ts=f"17120007{n:02d}.{round_:06d}",
            )
            assert replicas[sent % 2].send_event(event) == 200
            sent += 1
    for _ in range(3):
        cluster.worker()
    cluster.wait_until(
        "SELECT count(*) FROM uploads WHERE state = 'applied'", DISTRICTS * PER_DISTRICT, 240
    )
    cluster.wait_until(  # every job finished (after its reply)
        "SELECT count(*) FROM procrastinate_jobs WHERE lock LIKE 'district:%' "
        "AND status = 'succeeded'",
        DISTRICTS * PER_DISTRICT,
    )
    runs = cluster.query(
        """
        SELECT j.lock, (j.args->'job'->'files'->0->>'upload_id')::int AS upload_id,
               min(e.at) FILTER (WHERE e.type = 'started') AS started,
               max(e.at) FILTER (WHERE e.type = 'succeeded') AS ended
          FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id
         WHERE j.lock LIKE 'district:%'
         GROUP BY j.id, j.lock
        """
    )
    assert len(runs) == DISTRICTS * PER_DISTRICT
    by_district: dict[str, list[tuple]] = {}
    for lock, upload_id, started, ended in runs:
        by_district.setdefault(lock, []).append((upload_id, started, ended))
    assert len(by_district) == DISTRICTS
    for lock, jobs in by_district.items():
        claimed = sorted(jobs)  # upload ids are claimed in the order the files were shared
        applied = sorted(jobs, key=lambda j: j[1])
        assert [j[0] for j in applied] == [j[0] for j in claimed], lock
        for before, after in zip(applied, applied[1:]):
            assert before[2] <= after[1], f"{lock}: {before} overlaps {after}"
    # different districts ran at the same time: intervals of two districts intersect
    spans = sorted((s, e, lock) for lock, jobs in by_district.items() for _, s, e in jobs)
    overlapping = {
        (a[2], b[2])
        for i, a in enumerate(spans)
        for b in spans[i + 1 :]
        if b[0] < a[1] and a[2] != b[2]
    }
    busy = sum((e - s).total_seconds() for s, e, _ in spans)
    wall = (max(e for _, e, _ in spans) - spans[0][0]).total_seconds()
    print(
        f"\n{len(overlapping)} pairs of districts ran at the same time; {len(spans)} jobs in "
        f"{wall:.1f} s, {busy / wall:.2f} jobs running on average (3 workers)"
    )
    assert overlapping
    assert dangling(cluster.store) == {}


# -- the Confirm and Undo buttons, pressed on two replicas at once ---------------------------------


def _button(slack: SlackStandIn, ts: str, action: str) -> dict:
    def find():
        for post in slack.posts(CHANNEL, ts):
            for block in post.get("blocks") or []:
                for element in block.get("elements", []) if block["type"] == "actions" else []:
                    if element.get("action_id") == action:
                        return [element]
        return []

    return slack.wait_for(find, timeout=60, what=f"the {action} button")[0]


def _press_on_both(replicas: list[BotUnderTest], button: dict, ts: str) -> list[int]:
    statuses: list[int] = []
    threads = [
        threading.Thread(
            target=lambda r=r: statuses.append(
                r.click(button, user=ADMIN, channel=CHANNEL, message_ts=ts)
            )
        )
        for r in replicas
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def test_confirm_and_undo_pressed_on_two_replicas_act_once(cluster, slack):
    replicas = [cluster.replica(), cluster.replica()]
    cluster.worker()
    students = [
        f",{SCHOOL},s-{i},Kid{i},Lee,kid{i}@lincoln.example.org,student,03" for i in range(11)
    ]
    first = slack.host_file("users.csv", users_csv(*students))
    assert replicas[0].send_event(file_share_event([first], ts="1712000800.000100")) == 200
    cluster.wait_until("SELECT count(*) FROM uploads WHERE state = 'applied'", 1)
    held_ts = "1712000801.000100"
    renamed = slack.host_file("users.csv", users_csv(*(s.replace(",s-", ",n-") for s in students)))
    assert replicas[1].send_event(file_share_event([renamed], ts=held_ts)) == 200
    cluster.wait_until("SELECT count(*) FROM uploads WHERE state = 'held'", 1)

    assert _press_on_both(replicas, _button(slack, held_ts, "confirm_removals"), held_ts) == [
        200,
        200,
    ]
    cluster.wait_until("SELECT count(*) FROM uploads WHERE state = 'applied'", 2)
    # one press re-ran the upload (jobs: the first file, the held one, ONE confirmed re-run);
    # the other was told it was already confirmed
    assert cluster.one("SELECT count(*) FROM procrastinate_jobs WHERE lock LIKE 'district:%'") == 3
    said = slack.wait_for(
        lambda: [r for r in slack.responses() if "already confirmed" in json.dumps(r.body)],
        timeout=30,
        what="the second presser's answer",
    )
    assert len(said) == 1
    assert cluster.one("SELECT count(*) FROM people WHERE user_id LIKE 'n-%' AND active") == 11

    undo = _button(slack, held_ts, "undo_upload")
    assert _press_on_both(replicas, undo, held_ts) == [200, 200]
    slack.wait_for(
        lambda: [
            p for p in slack.posts(CHANNEL, held_ts) if "already undone" in json.dumps(p.body)
        ],
        timeout=60,
        what="the second undo refused",
    )
    assert cluster.one("SELECT count(*) FROM uploads WHERE undo_of IS NOT NULL") == 1
    assert cluster.one("SELECT count(*) FROM people WHERE user_id LIKE 's-%' AND active") == 11


# -- the acknowledgement waits for the claim ----------------------------------------------------


def test_slack_is_not_acknowledged_when_the_claim_cannot_be_saved(slack, db_url, monkeypatch):
    """In-process: the replica answers Slack only after the claim and the job are committed;
    a claim the database refuses answers 500, so Slack sends the event again."""
    from tests.conftest_slack import start_bot, stop_bot

    store = Store(db_url)
    bot = start_bot(slack, store, job_queue="queue")
    try:
        event = file_share_event([_file(slack, "down")], ts="1712000900.000100")

        def database_down(*args, **kwargs):
            raise OSError("connection refused")

        monkeypatch.setattr(store, "claim_slack_files", database_down)
        assert bot.send_event(event, event_id="EvDOWN000001") == 500
        monkeypatch.undo()
        assert bot.send_event(event, event_id="EvDOWN000001", retry_num=1) == 200
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM procrastinate_jobs")).scalar() == 1
            assert conn.execute(text("SELECT state FROM uploads")).scalar() == "received"
    finally:
        stop_bot(bot)
        store.dispose()
