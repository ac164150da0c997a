"""What the command line leaves on disk and prints, for an operator (issue #13): reports named
apart, terminal output that cannot carry escape sequences, owner-only files, retention."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.builders import class_of, row, users_csv
from tests.conftest import PG_OK, make_pg_store, set_up_district
from tests.test_cli import cli, setup  # noqa: F401 - fixture


def test_two_input_files_with_the_same_name_get_a_report_each(setup):
    for folder, bad in (("north", "north-bad"), ("south", "south-bad")):
        (setup / folder).mkdir()
        rows = class_of(2) + [row(userId="S9", userEmail=bad)]
        (setup / folder / "users.csv").write_bytes(users_csv(rows))
    done = cli(
        setup, "check", "d1", "north/users.csv", "south/users.csv", "--json", "--report-dir", "out"
    )
    assert done.returncode == 0, done.stderr
    files = json.loads(done.stdout)["files"]
    reports = [f["error_report"] for f in files]
    assert len(set(reports)) == 2, reports
    assert reports[0].endswith("users-errors.csv")  # the first keeps the name product.md gives
    texts = [open(r, encoding="utf-8-sig").read() for r in reports]
    assert "north-bad" in texts[0] and "south-bad" not in texts[0]
    assert "south-bad" in texts[1] and "north-bad" not in texts[1]


def test_status_prints_csv_values_and_file_names_without_terminal_escapes(setup):
    red, clear = "\x1b[31mRED\x1b[0m", "\x1b[2J"
    name = f"users{clear}.csv"
    (setup / name).write_bytes(
        users_csv(
            class_of(1) + [row(userId="S9", userEmail=f"x{red}@", userFirstName="\u202eevil")]
        )
    )
    done = cli(setup, "upload", "d1", name, "--report-dir", "out")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\\u001b[2J" in done.stdout
    status = cli(setup, "status", "d1", "--upload", "1")
    assert status.returncode == 0, status.stderr
    assert "\x1b" not in status.stdout and "\u202e" not in status.stdout
    assert "\\u001b[31mRED\\u001b[0m" in status.stdout  # the value is shown, as text
    listing = cli(setup, "status", "d1")
    assert "\x1b" not in listing.stdout and "\\u001b[2J" in listing.stdout
    # --json keeps the exact values (JSON's own escapes), still inert on a terminal
    as_json = cli(setup, "status", "d1", "--upload", "1", "--json")
    assert "\x1b" not in as_json.stdout and "\u202e" not in as_json.stdout
    record = json.loads(as_json.stdout)["uploads"][0]
    assert record["file"] == name
    assert any(red in (i["value"] or "") for i in record["issues"])


def mode(path) -> int:
    return path.stat().st_mode & 0o777


def test_files_the_product_writes_are_owner_only(tmp_path):
    # the database in a var/ directory that does not exist yet, as on a fresh install
    db = tmp_path / "var" / "roster.sqlite3"
    url = f"sqlite:///{db}"
    for args in (
        ("district", "create", "d1", "--name", "D"),
        ("school", "add", "d1", "0101", "--name", "L"),
    ):
        assert cli(tmp_path, *args, db=url).returncode == 0
    (tmp_path / "users.csv").write_bytes(
        users_csv(class_of(2) + [row(userId="S9", userEmail="bad")])
    )
    done = cli(tmp_path, "upload", "d1", "users.csv", "--report-dir", "out/reports", db=url)
    assert done.returncode == 0, done.stderr
    got = cli(tmp_path, "download", "d1", "all", "-o", "roster.csv", db=url)
    assert got.returncode == 0, got.stderr
    written = [db, tmp_path / "out" / "reports" / "users-errors.csv", tmp_path / "roster.csv"]
    written += [
        p for p in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")) if p.exists()
    ]
    assert {str(p.relative_to(tmp_path)): mode(p) for p in written} == {
        str(p.relative_to(tmp_path)): 0o600 for p in written
    }
    for folder in (db.parent, tmp_path / "out", tmp_path / "out" / "reports"):
        assert mode(folder) == 0o700, folder


@pytest.mark.skipif(not PG_OK, reason="PostgreSQL not configured (set ROSTERBOT_TEST_POSTGRES_URL)")
def test_a_database_refusal_is_logged_by_its_code_without_the_rows_values(tmp_path):
    store, drop = make_pg_store()
    try:
        set_up_district(store, "d1")
        # the database refuses one person; PostgreSQL's error quotes the whole failing row
        with store.engine.begin() as conn:
            conn.execute(
                text("ALTER TABLE people ADD CONSTRAINT no_leak CHECK (email NOT LIKE 'leak%')")
            )
        rows = class_of(1) + [row(userId="S9", userEmail="leak.ava@example.org")]
        (tmp_path / "users.csv").write_bytes(users_csv(rows))
        done = cli(tmp_path, "upload", "d1", "users.csv", "--json", db=store.url)
    finally:
        drop()
    assert done.returncode == 2, done.stderr
    result = json.loads(done.stdout)["files"][0]
    assert result["applied"] is False and result["file_issues"][0]["code"] == "FAILED"
    assert "23514" in done.stderr  # the error's code is logged (check_violation)
    assert "leak.ava" not in done.stderr and "Ava" not in done.stderr


def age(db: str, upload_id: int, days: int) -> None:
    import sqlite3
    from datetime import datetime, timedelta, timezone

    con = sqlite3.connect(db)
    when = datetime.now(timezone.utc) - timedelta(days=days)
    con.execute("update uploads set created_at = ? where id = ?", (when.isoformat(" "), upload_id))
    con.commit()
    con.close()


def test_purge_removes_old_reports_values_and_bytes_and_keeps_counts_and_the_audit_line(setup):
    bad = "ava.secret@"
    (setup / "users.csv").write_bytes(users_csv(class_of(2) + [row(userId="S9", userEmail=bad)]))
    for _ in range(2):
        assert cli(setup, "upload", "d1", "users.csv", "--report-dir", "out").returncode == 0
    db = str(setup / "cli.sqlite3")
    age(db, 1, 91)
    before = cli(setup, "status", "d1", "--upload", "1", "--json")
    line_before = cli(setup, "status", "d1").stdout.splitlines()
    done = cli(setup, "purge", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["purged"] == 1 and json.loads(done.stdout)["days"] == 90

    old, new = (
        json.loads(cli(setup, "status", "d1", "--upload", str(i), "--json").stdout)["uploads"][0]
        for i in (1, 2)
    )
    kept = json.loads(before.stdout)["uploads"][0]
    assert {k: old[k] for k in ("counts", "rows", "file", "sha256", "state", "issue_count")} == {
        k: kept[k] for k in ("counts", "rows", "file", "sha256", "state", "issue_count")
    }
    assert bad not in json.dumps(old) and [i["code"] for i in old["issues"]] == [
        i["code"] for i in kept["issues"]
    ]
    assert bad in json.dumps(new)  # a recent upload keeps everything
    assert cli(setup, "status", "d1").stdout.splitlines() == line_before  # the audit lines stay
    import sqlite3

    con = sqlite3.connect(db)
    stored = con.execute("select id, report is null, payload is null from uploads").fetchall()
    con.close()
    assert stored == [(1, 1, 1), (2, 0, 1)]
    # again: nothing left to purge
    assert json.loads(cli(setup, "purge", "--json").stdout)["purged"] == 0
