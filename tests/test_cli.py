"""The command line as other tools drive it: verbs, --json output and exit codes (product.md)."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import class_of, row, users_csv

ROOT = Path(__file__).resolve().parents[1]
FILE_KEYS = {
    "file",
    "kind",
    "status",
    "applied",
    "file_issues",
    "counts",
    "rows",
    "issues",
    "error_report",
    "upload_id",
    "changes_file",
}
ISSUE_KEYS = {"row", "column", "code", "severity", "value", "message", "fix"}


def cli(tmp_path: Path, *args: str, db: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ROSTERBOT_DATABASE_URL"}
    db = db or f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "--db", db, *args],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def setup(tmp_path) -> Path:
    script = [
        ("district", "create", "d1", "--name", "District One"),
        ("school", "add", "d1", "0101", "--name", "Lincoln"),
        ("school", "add", "d1", "0202", "--name", "Washington"),
    ]
    for args in script:
        done = cli(tmp_path, *args)
        assert done.returncode == 0, done.stderr
    return tmp_path


def test_check_json_is_one_object_with_the_contract_keys(setup):
    (setup / "users.csv").write_bytes(users_csv(class_of(2) + [row(userId="S9", userEmail="bad")]))
    done = cli(setup, "check", "d1", "users.csv", "--json", "--report-dir", "out")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert list(payload) == ["files"] and len(payload["files"]) == 1
    f = payload["files"][0]
    assert set(f) == FILE_KEYS
    assert f["kind"] == "users" and f["status"] == "completed_with_errors"
    assert f["applied"] is False
    assert set(f["counts"]) == {"school", "staff", "student", "class", "enrollment"}
    assert all(
        set(c) == {"created", "updated", "no_change", "removed", "errors"}
        for c in f["counts"].values()
    )
    assert set(f["rows"]) == {
        "total",
        "blank_skipped",
        "rejected",
        "partly_applied",
        "with_warnings",
    }
    assert [set(i) for i in f["issues"]] == [ISSUE_KEYS]
    assert f["issues"][0]["row"] == 5 and f["issues"][0]["code"] == "EMAIL_INVALID"
    report = Path(f["error_report"])
    assert report.is_absolute() and report == (setup / "out" / "users-errors.csv").resolve()
    assert report.read_bytes().startswith(b"\xef\xbb\xbf")


def test_upload_applies_and_a_clean_file_has_no_report(setup):
    (setup / "users.csv").write_bytes(users_csv(class_of(2)))
    done = cli(setup, "upload", "d1", "users.csv", "--json")
    f = json.loads(done.stdout)["files"][0]
    assert done.returncode == 0
    assert f["applied"] is True and f["status"] == "completed" and f["error_report"] is None
    assert f["counts"]["student"]["created"] == 2
    again = json.loads(cli(setup, "upload", "d1", "users.csv", "--json").stdout)["files"][0]
    assert again["counts"]["student"]["no_change"] == 2 and again["applied"] is True


def test_file_level_failure_exits_2(setup):
    (setup / "empty.csv").write_bytes(b"")
    done = cli(setup, "upload", "d1", "empty.csv", "--json")
    assert done.returncode == 2
    f = json.loads(done.stdout)["files"][0]
    assert f["status"] == "failed" and f["applied"] is False
    assert [i["code"] for i in f["file_issues"]] == ["FILE_EMPTY"]
    assert set(f["file_issues"][0]) == {"code", "severity", "column", "message", "fix"}


def test_held_upload_exits_2_and_confirm_applies(setup):
    rows = []
    for k in range(3):
        rows += class_of(1, class_id=f"C{k}")
    (setup / "users.csv").write_bytes(users_csv(rows))
    assert cli(setup, "upload", "d1", "users.csv").returncode == 0
    (setup / "remove.csv").write_bytes(users_csv([row(action="REMOVE-CLASS", classId="C0")]))
    held = cli(setup, "upload", "d1", "remove.csv", "--json")
    assert held.returncode == 2
    assert (
        json.loads(held.stdout)["files"][0]["file_issues"][0]["code"]
        == "REMOVALS_NEED_CONFIRMATION"
    )
    done = cli(setup, "upload", "d1", "remove.csv", "--json", "--confirm-removals")
    assert done.returncode == 0 and json.loads(done.stdout)["files"][0]["applied"] is True


def test_human_output_shows_the_table_and_top_issues(setup):
    (setup / "users.csv").write_bytes(users_csv(class_of(1) + [row(userId="S9", userEmail="")]))
    done = cli(setup, "upload", "d1", "users.csv")
    assert done.returncode == 0
    out = done.stdout
    assert "created" in out and "no change" in out and "enrollment" in out
    assert "EMAIL_REQUIRED x1" in out
    assert "users-errors.csv" in out


def test_human_output_of_a_check_never_says_applied(setup):
    (setup / "users.csv").write_bytes(users_csv(class_of(1) + [row(userId="S9", userEmail="")]))
    done = cli(setup, "check", "d1", "users.csv")
    assert done.returncode == 0
    head = done.stdout.splitlines()[:3]
    assert head[0] == "District: District One (d1)"
    assert head[1] == "users.csv (users) - Check found errors"
    assert head[2].startswith("Nothing applied (check only); an upload would apply 2 people")
    assert "partly applicable 1" in head[2] and "partly applied" not in head[2]


def test_unknown_district_is_refused_with_the_fix(setup):
    (setup / "users.csv").write_bytes(users_csv(class_of(1)))
    done = cli(setup, "upload", "nope", "users.csv")
    assert done.returncode == 2
    assert "district create nope" in done.stderr


def test_admin_grant_and_channel_link(setup):
    done = cli(setup, "admin", "grant", "d1", "U123", "--system", "--enrollment")
    assert done.returncode == 0 and "system, enrollment" in done.stdout
    assert cli(setup, "admin", "grant", "d1", "U123").returncode == 2
    assert cli(setup, "channel", "link", "d1", "C999").returncode == 0
    assert cli(setup, "district", "create", "d1", "--name", "again").returncode == 2


def test_make_demo_runs_the_real_pipeline():
    done = subprocess.run(
        [sys.executable, "-m", "bot.demo"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "applied, some rows rejected" in done.stdout.lower()
    assert "EMAIL_DUPLICATE" in done.stdout
    report = ROOT / "var" / "demo" / "users-errors.csv"
    assert report.exists() and b"ORG_NOT_FOUND" in report.read_bytes()
    # what the bot attaches with it: the changes file, and the Undo button of an applied upload
    changes = ROOT / "var" / "demo" / "users-changes.csv"
    assert "[attached in the thread: users-changes.csv]" in done.stdout
    assert "[Undo upload" in done.stdout
    assert changes.exists() and b",created," in changes.read_bytes()


def test_status_shows_the_audit_trail(setup):
    data = users_csv(class_of(1) + [row(userId="S9", userEmail="")])
    (setup / "users.csv").write_bytes(data)
    assert cli(setup, "upload", "d1", "users.csv").returncode == 0
    assert cli(setup, "check", "d1", "users.csv").returncode == 0
    done = cli(setup, "status", "d1", "--json")
    uploads = json.loads(done.stdout)["uploads"]
    assert [(u["dry_run"], u["state"]) for u in uploads] == [(True, "checked"), (False, "applied")]
    assert uploads[1]["sha256"] == hashlib.sha256(data).hexdigest()
    # issue 16: the operating-system user who ran it, not a bare "cli"
    assert uploads[1]["actor"] == f"cli:{getpass.getuser()}"
    assert uploads[1]["counts"]["student"]["created"] == 1
    one = cli(setup, "status", "d1", "--upload", str(uploads[1]["id"]))
    assert "row 4 userEmail EMAIL_REQUIRED" in one.stdout
    assert cli(setup, "status", "d1", "--upload", "999").returncode == 2


def test_status_says_why_a_failed_file_failed(setup):
    misspelt = users_csv(class_of(1)).replace(b"userEmail", b"usrEmail")  # (";" is read now)
    (setup / "users.csv").write_bytes(misspelt.replace(b"org_sis_id", b"school"))
    assert cli(setup, "check", "d1", "users.csv").returncode == 2
    lines = cli(setup, "status", "d1").stdout.splitlines()
    assert lines[0] == "District: District One (d1)"
    line = next(x for x in lines if "failed check" in x)  # failed checks are folded
    assert "file: HEADER_MISSING ×" in line and "HEADER_UNKNOWN" in line
    upload_id = line.split("the latest: #")[1].split()[0]
    one = cli(setup, "status", "d1", "--upload", upload_id).stdout
    assert "file HEADER_UNKNOWN:" in one and "did you mean userEmail?" in one


def _on_a_terminal(setup: Path, *args: str) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal, as a person at a shell would see it."""
    import pty

    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "ROSTERBOT_DATABASE_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "--db", f"sqlite:///{setup / 'cli.sqlite3'}", *args],
        cwd=setup,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    return proc.wait(timeout=120), seen.decode("utf-8", "replace")


def test_progress_bar_on_a_terminal_only(setup):
    (setup / "users.csv").write_bytes(users_csv(class_of(2)))
    code, terminal = _on_a_terminal(setup, "check", "d1", "users.csv")
    assert code == 0
    assert "checking rows" in terminal and "%" in terminal and "[#" in terminal
    code, terminal = _on_a_terminal(setup, "check", "d1", "users.csv", "--json")
    assert code == 0 and "checking rows" not in terminal
    piped = cli(setup, "check", "d1", "users.csv")
    assert "checking rows" not in piped.stderr


def test_serve_without_tokens_says_what_to_set(tmp_path):
    env_keys = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")
    saved = {k: os.environ.pop(k) for k in env_keys if k in os.environ}
    try:
        done = cli(tmp_path, "serve", "--http", "--port", "0")
    finally:
        os.environ.update(saved)
    assert done.returncode == 2
    assert "SLACK_" in done.stderr and "Traceback" not in done.stderr


def test_output_cut_short_by_the_reader_is_not_an_error(setup):
    """`rosterbot status d1 --upload N | head -1`: the pipe closes early; no traceback."""
    bad = [row(userId=f"S{i}", userEmail="") for i in range(2000)]
    (setup / "users.csv").write_bytes(users_csv(bad))
    assert cli(setup, "check", "d1", "users.csv").returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "ROSTERBOT_DATABASE_URL"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "--db",
            f"sqlite:///{setup / 'cli.sqlite3'}",
            "status",
            "d1",
            "--upload",
            "1",
        ],
        cwd=setup,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = proc.stdout.readline()  # `head -1`
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0
    assert first.startswith(b"District: ") and err == b""


def test_upload_held_by_the_id_change_guard_applies_with_confirm_id_changes(setup):
    from tests.builders import student, teacher

    first = [teacher()] + [student(i) for i in range(1, 12)]
    (setup / "users.csv").write_bytes(users_csv(first))
    assert cli(setup, "upload", "d1", "users.csv").returncode == 0
    renamed = [teacher()] + [student(i, userId=f"N{i}") for i in range(1, 12)]
    (setup / "renamed.csv").write_bytes(users_csv(renamed))

    held = cli(setup, "upload", "d1", "renamed.csv", "--json")
    assert held.returncode == 2, held.stderr
    (f,) = json.loads(held.stdout)["files"]
    assert f["applied"] is False and f["status"] == "failed"
    assert [i["code"] for i in f["file_issues"]] == ["ID_CHANGES_NEED_CONFIRMATION"]
    assert "--confirm-id-changes" in f["file_issues"][0]["fix"]
    check = cli(setup, "check", "d1", "renamed.csv", "--json")
    (c,) = json.loads(check.stdout)["files"]
    assert check.returncode == 0 and c["file_issues"][0]["severity"] == "warning"

    done = cli(setup, "upload", "d1", "renamed.csv", "--json", "--confirm-id-changes")
    assert done.returncode == 0, done.stderr
    (f,) = json.loads(done.stdout)["files"]
    assert f["applied"] is True and f["counts"]["student"]["updated"] == 11
    download = cli(setup, "download", "d1", "students")
    assert "N11" in download.stdout and ",S11," not in download.stdout
