"""Two uploads at once (issue #7, users-csv.md section 6), with real `rosterbot upload` processes.

One district: serialised by the database's own lock (a row lock on PostgreSQL, the write lock on
SQLite), both succeed, and the result equals applying them one after the other.
Different districts on PostgreSQL: the second finishes while the first holds its lock.
The first upload is held inside its transaction by ROSTERBOT_TEST_PAUSE_BEFORE_COMMIT and let
go by creating the ROSTERBOT_TEST_PAUSE_RELEASE file.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import text

from roster.store import Store
from tests.builders import class_of, row, student, teacher, users_csv
from tests.conftest import PG_OK, make_pg_store, set_up_district
from tests.roster_helpers import roster_state, upload
from tests.test_crash import CliUpload

pg_only = pytest.mark.skipif(
    not PG_OK, reason="PostgreSQL not configured (set ROSTERBOT_TEST_POSTGRES_URL)"
)


def base_rows() -> list[dict]:
    return class_of(6)


def file_one() -> list[dict]:
    """Renames S1, adds S10 and a class; file_two depends on it."""
    return [
        teacher(),
        student(1, userFirstName="One"),
        student(10),
        teacher(classId="ART5", className="Art 5"),
    ]


def file_two() -> list[dict]:
    """Renames S1 again, enrolls S10 (created by file_one) in ART5 (created by file_one)."""
    return [
        student(1, userFirstName="Two"),
        student(10, classId="ART5", className="Art 5"),
        row(action="REMOVE-ENROLLMENT", userId="S2", userEmail="s2@example.org"),
    ]


def with_app_name(url: str, name: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


def result_of(done: tuple[int, str]) -> dict:
    code, out = done
    assert code == 0, out
    payload = json.loads(out)["files"][0]
    assert payload["applied"] is True and payload["status"] == "completed", payload
    return payload


def blocking_pids(store: Store, app_name: str) -> list[int]:
    with store.engine.connect() as conn:
        found = conn.execute(
            text("select pg_blocking_pids(pid) from pg_stat_activity where application_name = :a"),
            {"a": app_name},
        ).all()
    return [pid for (pids,) in found for pid in pids]


def backend_pids(store: Store, app_name: str) -> set[int]:
    with store.engine.connect() as conn:
        return set(
            conn.execute(
                text("select pid from pg_stat_activity where application_name = :a"),
                {"a": app_name},
            ).scalars()
        )


def paused_then_second(tmp_path, first_url: str, second_url: str) -> tuple:
    """file_one by a first `rosterbot upload`, paused before its commit (district d1 lock
    held), then file_two by a second process.  Returns (first, second, release file)."""
    (tmp_path / "one.csv").write_bytes(users_csv(file_one()))
    (tmp_path / "two.csv").write_bytes(users_csv(file_two()))
    release = tmp_path / "release"
    first = CliUpload(first_url, "d1", tmp_path / "one.csv", tmp_path, pause=90, release=release)
    first.wait_paused()
    second = CliUpload(second_url, "d1", tmp_path / "two.csv", tmp_path)
    return first, second, release


def sequential_state(make_store, rows_one, rows_two) -> dict:
    """The roster after applying the two files one after the other, on a fresh store."""
    fresh, cleanup = make_store()
    try:
        set_up_district(fresh, "d1")
        assert upload(fresh, base_rows()).applied
        assert upload(fresh, rows_one).applied
        assert upload(fresh, rows_two).applied
        return roster_state(fresh)
    finally:
        cleanup()


@pg_only
def test_postgres_same_district_uploads_are_serialised_by_the_row_lock(tmp_path):
    store, drop = make_pg_store()
    try:
        set_up_district(store, "d1")
        assert upload(store, base_rows()).applied
        tag = uuid.uuid4().hex[:8]
        first, second, release = paused_then_second(
            tmp_path, with_app_name(store.url, f"rb1_{tag}"), with_app_name(store.url, f"rb2_{tag}")
        )
        # the second process really waits on the first one's row lock
        deadline = time.monotonic() + 60
        while not blocking_pids(store, f"rb2_{tag}") and time.monotonic() < deadline:
            assert second.proc.poll() is None, second.finish()
            time.sleep(0.1)
        assert set(blocking_pids(store, f"rb2_{tag}")) <= backend_pids(store, f"rb1_{tag}")
        assert blocking_pids(store, f"rb2_{tag}")
        time.sleep(0.5)
        assert second.proc.poll() is None, "the second upload did not wait for the first"
        release.touch()
        one, two = result_of(first.finish()), result_of(second.finish())
        assert one["counts"]["student"]["created"] == 1
        # the second saw the first's commit: S10 and ART5 already existed
        assert two["counts"]["class"]["created"] == 0 and two["counts"]["student"]["created"] == 0
        assert roster_state(store) == sequential_state(
            lambda: make_pg_store(), file_one(), file_two()
        )
    finally:
        drop()


@pg_only
def test_postgres_other_districts_do_not_wait(tmp_path):
    store, drop = make_pg_store()
    try:
        set_up_district(store, "d1")
        set_up_district(store, "d2")
        (tmp_path / "a.csv").write_bytes(users_csv(class_of(3)))
        other = [dict(r, userEmail=r["userEmail"].replace("@", "@d2.")) for r in class_of(3)]
        (tmp_path / "b.csv").write_bytes(users_csv(other))
        release = tmp_path / "release"
        first = CliUpload(store.url, "d1", tmp_path / "a.csv", tmp_path, pause=90, release=release)
        first.wait_paused()
        started = time.monotonic()
        second = CliUpload(store.url, "d2", tmp_path / "b.csv", tmp_path)
        done = result_of(second.finish(timeout=60))
        assert first.proc.poll() is None, "the first upload should still be paused"
        assert done["counts"]["student"]["created"] == 3
        assert time.monotonic() - started < 60
        release.touch()
        assert result_of(first.finish())["counts"]["student"]["created"] == 3
        people = roster_state(store)["people"]
        assert len(people) == 8  # T1, S1..S3 in each district, the same userIds
    finally:
        drop()


def test_sqlite_second_upload_waits_for_the_write_lock_then_succeeds(tmp_path):
    db = tmp_path / "roster.sqlite3"
    store = Store(f"sqlite:///{db}")
    try:
        set_up_district(store, "d1")
        assert upload(store, base_rows()).applied
        first, second, release = paused_then_second(tmp_path, store.url, store.url)
        time.sleep(4)  # ample time for an unblocked upload of three rows to finish
        assert second.proc.poll() is None, "the second upload did not wait for the write lock"
        release.touch()
        one, two = result_of(first.finish()), result_of(second.finish())
        assert one["counts"]["class"]["created"] == 1 and two["counts"]["class"]["created"] == 0
        state = roster_state(store)
    finally:
        store.dispose()

    def fresh():
        s = Store(f"sqlite:///{tmp_path / 'seq.sqlite3'}")
        return s, s.dispose

    assert state == sequential_state(fresh, file_one(), file_two())
