"""Every message a person reads agrees with what happened (issue 12, "Wording").

Each test reads the text a person would read — the CLI's output, the Slack summary, the error
report, `status` — after a real run of the pipeline on SQLite, and fails on the contradiction
the issue found: "applied" when nothing was, a check that "applied", a held file labelled ❌
failed, a Slack user told about a command-line flag, warnings hiding the errors.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from bot import formatting, text
from bot.text import summary_text
from bot.uploads import wants_dry_run
from roster.results import Hold
from tests.builders import class_of, row, student, teacher, users_csv
from tests.roster_helpers import upload
from tests.test_cli import cli, setup  # noqa: F401  (the CLI fixture)
from validation.report import saved_note_of

DISTRICT = "District One (d1)"
NO_CLASS = {"classId": "", "className": "", "classGrade": "", "primary_teacher": ""}


def cli_text(result, dry_run: bool) -> str:
    return summary_text(result, dry_run=dry_run, district=DISTRICT)


def slack_blocks(result, dry_run: bool, held: bool = False) -> str:
    f = result.to_json() | {"holds": [h.__dict__ for h in result.holds]}
    message = formatting.upload_summary(
        [f], dry_run=dry_run, district=DISTRICT, held_uploads=[1] if held else []
    )
    return json.dumps(message.blocks, ensure_ascii=False) + "\n" + message.text


def report_rows(result) -> list[list[str]]:
    return list(csv.reader(io.StringIO(result.report_bytes.decode("utf-8-sig"))))[1:]


def applied_words(said: str) -> list[str]:
    """Every "applied" a person reads, except in "nothing (was) applied", "not applied" and
    a row count of zero ("partly applied 0")."""
    cleaned = re.sub(
        r"nothing (was )?applied|not applied|partly applied 0\b", "", said, flags=re.IGNORECASE
    )
    return re.findall(r"\bapplied\b", cleaned, flags=re.IGNORECASE)


# -- 1. what was applied, in plain words --------------------------------------------------------


def test_a_file_whose_rows_were_all_rejected_says_nothing_was_applied(sqlite_store, sdistrict):
    rows = [row(userId=f"S{n}", userEmail="bad", **NO_CLASS) for n in range(58)]
    result = upload(sqlite_store, rows)
    said = cli_text(result, dry_run=False)
    assert "Nothing was applied: all 58 rows were rejected." in said
    assert "Not applied" in said and applied_words(said) == []
    assert "valid rows applied" not in said
    slack = slack_blocks(result, dry_run=False)
    assert ":x:" in slack and "nothing was applied: all 58 rows were rejected" in slack
    assert ":white_check_mark:" not in slack and ":warning:" not in slack
    assert formatting.reaction([result.to_json()], dry_run=False) == "x"  # like the icon


def test_an_upload_says_which_entities_were_applied_and_which_rejected(sqlite_store, sdistrict):
    result = upload(sqlite_store, class_of(2) + [row(userId="S9", userEmail="")])
    expected = "3 people, 1 class and 3 enrollments applied; 1 person and 1 enrollment rejected"
    assert expected in cli_text(result, dry_run=False)
    assert expected in slack_blocks(result, dry_run=False)
    record = sqlite_store.recent_uploads("d1")[0]
    assert expected in formatting.audit_line(record)  # /rosterbot status
    assert (
        expected
        in formatting.thread_summary(
            record.file_name, record.status, record.issues, record.file_issues, upload=record
        ).text
    )  # "summary" in the thread


# -- 2. a check says "would apply", never "applied" ---------------------------------------------


def test_a_check_never_says_applied_in_the_cli_slack_or_report(sqlite_store, sdistrict):
    rows = class_of(2) + [
        row(userId="S9", userEmail=""),  # partly: the class is saved, not the person
        student(7, userGrade="K"),  # a warning only
    ]
    result = upload(sqlite_store, rows, apply=False)
    said = cli_text(result, dry_run=True)
    assert "an upload would apply 4 people, 1 class and 4 enrollments" in said
    assert "1 person and 1 enrollment would be rejected" in said
    assert applied_words(said) == []
    assert applied_words(slack_blocks(result, dry_run=True)) == []
    statuses = {r[1] for r in report_rows(result)}
    assert statuses == {"partly applicable", "applicable with warnings"}
    assert all("applied" not in " ".join(r) for r in report_rows(result))


def test_the_same_file_uploaded_says_applied_in_its_report(sqlite_store, sdistrict):
    rows = class_of(2) + [row(userId="S9", userEmail=""), student(7, userGrade="K")]
    result = upload(sqlite_store, rows)
    assert {r[1] for r in report_rows(result)} == {"partly applied", "applied with warnings"}


# -- 5. a partly applied row says what was saved ------------------------------------------------


def test_a_partly_applied_row_says_what_was_saved_and_what_was_not(sqlite_store, sdistrict):
    rows = [teacher(), row(userId="S9", userEmail="", classId="MATH5")]
    uploaded = report_rows(upload(sqlite_store, rows))
    assert uploaded[0][1] == "partly applied"
    details = uploaded[0][-2]
    assert details.startswith("class MATH5 saved; the person and the enrollment were not.")
    assert "userEmail is blank" in details
    checked = report_rows(
        upload(sqlite_store, [row(userId="S8", userEmail="", classId="ART")], apply=False)
    )
    assert checked[0][-2].startswith(
        "class ART would be saved; the person and the enrollment would not be."
    )


# -- 3. and 4. the mass-removal guard: held, then confirmed ------------------------------------


def three_classes(setup: Path) -> None:  # noqa: F811
    rows = []
    for k in range(3):
        rows += class_of(1, class_id=f"C{k}")
    (setup / "users.csv").write_bytes(users_csv(rows))
    assert cli(setup, "upload", "d1", "users.csv").returncode == 0
    removals = [row(action="REMOVE-CLASS", classId="C0"), row(action="REMOVE-CLASS", classId="C1")]
    (setup / "remove.csv").write_bytes(users_csv(removals))


def test_a_held_upload_is_held_names_what_it_removes_and_the_flag(setup):  # noqa: F811
    three_classes(setup)
    held = cli(setup, "upload", "d1", "remove.csv")
    assert held.returncode == 2
    out = held.stdout
    assert out.startswith("District: District One (d1)\n")
    assert "remove.csv (users) - Held\n" in out and "Failed" not in out
    assert out.lower().count("nothing applied") + out.lower().count("nothing was applied") == 1
    assert (
        "class Math 5 C0: removed" in out and "class Math 5 C1: removed" in out
    )  # who / what goes
    assert "The full list is in" in out
    assert "run the same command again with --confirm-removals" in out
    assert "Confirm button" not in out


def test_after_confirm_removals_the_output_tells_one_story(setup):  # noqa: F811
    three_classes(setup)
    done = cli(setup, "upload", "d1", "remove.csv", "--confirm-removals")
    assert done.returncode == 0
    out = done.stdout
    assert "2 classes and 4 enrollments removed" in out
    assert "nothing" not in out.lower()  # never "Nothing was applied because…"
    assert "every row was applied" not in out
    assert "the removals were confirmed" in out


def test_a_held_summary_in_slack_says_press_confirm_never_a_flag(sqlite_store, sdistrict):
    rows = []
    for k in range(3):
        rows += class_of(1, class_id=f"C{k}")
    upload(sqlite_store, rows)
    result = upload(sqlite_store, [row(action="REMOVE-CLASS", classId="C0")])
    assert result.held and result.holds[0].items[0] == "class Math 5 C0: removed"
    assert result.holds[0].total == 3  # the class and its two enrollments
    said = slack_blocks(result, dry_run=False, held=True)
    assert ":raised_hand:" in said and ":x:" not in said
    assert "press *Confirm and apply*" in said and "--confirm" not in said
    assert formatting.reaction([result.to_json()], dry_run=False) == "raised_hand"
    # its report: nothing was applied, so nothing in it says "applied"
    assert result.report_bytes is None or b"applied" not in result.report_bytes


@pytest.mark.parametrize(
    ("code", "flag"),
    [
        ("REMOVALS_NEED_CONFIRMATION", "--confirm-removals"),
        ("ID_CHANGES_NEED_CONFIRMATION", "--confirm-id-changes"),
    ],
)
def test_every_guard_has_its_words_in_slack_and_on_the_command_line(code, flag):
    hold = Hold(code, "12 of 40 people", [f"Person {n} (00{n})" for n in range(12)], 12)
    cli_lines = "\n".join(text.held_lines([hold], slack=False, report="users-errors.csv"))
    slack_lines = "\n".join(text.held_lines([hold], slack=True, report="the error report"))
    assert flag in cli_lines and "Confirm" not in cli_lines
    assert "press *Confirm and apply*" in slack_lines and "--confirm" not in slack_lines
    assert "Person 0 (000)" in slack_lines and "…and 2 more" in slack_lines
    assert "The full list is in" in slack_lines


# -- 6. top issues: errors first ------------------------------------------------------------------


def test_top_issues_list_errors_before_frequent_warnings(sqlite_store, sdistrict):
    rows = class_of(30, userGrade="5") + [row(userId="S99", userEmail="s99@x.org", userLastName="")]
    result = upload(sqlite_store, rows, apply=False)
    said = cli_text(result, dry_run=True)
    top = said.split("Top issues")[1]
    assert top.index("LASTNAME_REQUIRED x1 (error)") < top.index("USERGRADE_NORMALIZED x30")
    slack = formatting.top_issue_lines(result.issues)
    assert "LASTNAME_REQUIRED" in slack[0] and "USERGRADE_NORMALIZED" in slack[1]


def test_more_kinds_of_issue_than_shown_say_and_n_more_in_the_cli_too(sqlite_store, sdistrict):
    rows = [
        row(userId="S1", userEmail="bad"),
        row(userId="S2", userEmail="s2@x.org", userLastName=""),
        row(userId="S3", userEmail="s3@x.org", userFirstName=""),
        row(userId="S4", userEmail="s4@x.org", userRole="wizard"),
        row(userId="S5", userEmail="s5@x.org", userGrade="99"),
        row(userId="S6", userEmail="s6@x.org", classGrade="99"),
        row(userId="S7", userEmail="s7@x.org", primary_teacher="maybe"),
    ]
    said = cli_text(upload(sqlite_store, rows, apply=False), dry_run=True)
    assert re.search(r"…and \d+ more kinds of issue", said)


# -- 7. conflicts name the values -----------------------------------------------------------------


def test_conflicts_name_the_values_that_differ(sqlite_store, sdistrict):
    rows = [
        teacher(),
        student(1, className="Math 5"),
        student(2, className="Math five"),
        student(3, userLastName="Smith"),
        student(3, userLastName="Smyth"),
    ]
    result = upload(sqlite_store, rows, apply=False)
    by_code = {i["code"]: i["message"] for i in result.issues}
    assert "give different class names: 'Math 5', 'Math five'" in by_code["CLASSNAME_CONFLICT"]
    assert "userLastName: 'Smith', 'Smyth'" in by_code["USER_CONFLICT"]


# -- 8. the dry-run rule of product.md -------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    ["check", "Check this please", "dry run", "DRY-RUN", "dryrun", "preview", "<@U0BOT> check"],
)
def test_a_message_starting_with_a_check_word_is_a_check(message):
    assert wants_dry_run(message)


@pytest.mark.parametrize(
    "message",
    ["final roster, no need to check", "please check this", "", "checklist attached", None],
)
def test_a_message_that_merely_contains_a_check_word_is_an_upload(message):
    assert not wants_dry_run(message)


# -- 9. and 10. status: the district, each entity's own totals, failed checks folded -------------


def test_status_names_the_district_keeps_entities_apart_and_folds_failed_checks(setup):  # noqa: F811
    (setup / "users.csv").write_bytes(users_csv(class_of(2)))
    assert cli(setup, "upload", "d1", "users.csv").returncode == 0
    (setup / "bad.csv").write_bytes(b"nothing,useful\n1,2\n")
    for _ in range(12):
        assert cli(setup, "check", "d1", "bad.csv").returncode == 2
    out = cli(setup, "status", "d1").stdout
    lines = out.splitlines()
    assert lines[0] == "District: District One (d1)"
    upload_line = next(x for x in lines if "users.csv" in x)  # not crowded out
    assert "staff members: 1 created" in upload_line and "students: 2 created" in upload_line
    assert "enrollments: 3 created" in upload_line and "created (" not in upload_line
    assert sum("bad.csv" in x for x in lines) == 1  # twelve failed checks, one line
    assert "12 failed checks" in out

    from roster.store import Store

    store = Store(f"sqlite:///{setup / 'cli.sqlite3'}")
    try:
        shown = formatting.status_lines(store.recent_uploads("d1", 50), 10)
    finally:
        store.dispose()
    assert any("users.csv" in x for x in shown) and any("12 failed checks" in x for x in shown)
    assert len(shown) == 2


# -- 6. the database refuses the commit: nothing was applied, and nothing says it was ---------


def refuse_person(db: Path, email_like: str) -> None:
    """Make the database refuse the commit: a trigger that aborts inserting that person (a
    constraint the pipeline's own checks do not know about)."""
    import sqlite3

    con = sqlite3.connect(db)
    con.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON people "
        f"WHEN NEW.email LIKE '{email_like}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    con.commit()
    con.close()


def test_a_commit_the_database_refuses_says_nothing_was_applied_in_its_report(setup):  # noqa: F811
    refuse_person(setup / "cli.sqlite3", "refuse%")
    rows = class_of(2) + [
        row(userId="S9", userEmail=""),  # partly: the class, not the person
        student(7, userGrade="K"),  # a warning only
        student(8, userEmail="refuse.s8@example.org"),  # the row the database refuses
    ]
    (setup / "users.csv").write_bytes(users_csv(rows))
    done = cli(setup, "upload", "d1", "users.csv", "--report-dir", "out")
    assert done.returncode == 2, done.stderr
    out = done.stdout
    assert "users.csv (users) - Failed" in out
    assert "Nothing was applied." in out and "the database refused the changes" in out
    assert "partly applicable 1" in out
    assert applied_words(out) == []
    assert "created" not in out  # no table of what an applied file would have created
    report = (setup / "out" / "users-errors.csv").read_text("utf-8-sig")
    lines = list(csv.reader(io.StringIO(report)))[1:]
    assert {r[1] for r in lines} == {"partly applicable", "applicable with warnings"}
    partly = next(r for r in lines if r[1] == "partly applicable")
    assert partly[-2].startswith(
        "class MATH5 would be saved; the person and the enrollment would not be."
    )
    assert "applied" not in report and not re.search(r"(?<!would be) saved", report)
    assert "(11 change(s) it would make)" in out  # the changes file: none was made
    # the stored record (what "why did row N fail?" in Slack reads) says the same
    import sqlite3

    con = sqlite3.connect(setup / "cli.sqlite3")
    (kept,) = con.execute("select report from uploads where id = 1").fetchone()
    people = con.execute("select count(*) from people").fetchone()[0]
    con.close()
    assert people == 0  # really nothing applied
    assert kept == (setup / "out" / "users-errors.csv").read_bytes()
    # and --json says so too
    again = cli(setup, "upload", "d1", "users.csv", "--json", "--report-dir", "out2")
    f = json.loads(again.stdout)["files"][0]
    assert f["applied"] is False and f["status"] == "failed"
    assert [i["code"] for i in f["file_issues"]] == ["FAILED"]
    assert "nothing was applied" in f["file_issues"][0]["message"]


def test_a_refused_commit_in_slack_and_in_status_says_nothing_was_applied(store, district):
    """The same refusal on SQLite (a trigger) and PostgreSQL (a CHECK constraint)."""
    from sqlalchemy import text as sql

    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.execute(
                sql("ALTER TABLE people ADD CONSTRAINT refuse CHECK (email NOT LIKE 'refuse%')")
            )
        else:
            conn.execute(
                sql(
                    "CREATE TRIGGER refuse BEFORE INSERT ON people WHEN NEW.email LIKE "
                    "'refuse%' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
    rows = class_of(2) + [
        row(userId="S9", userEmail=""),
        student(8, userEmail="refuse.s8@example.org"),
    ]
    result = upload(store, rows)
    assert result.applied is False and [i.code for i in result.file_issues] == ["FAILED"]
    said = slack_blocks(result, dry_run=False)
    assert ":x:" in said and "Failed" in said and "nothing was applied" in said
    assert "1 partly applicable" in said and applied_words(said) == []
    assert "Created" not in said and "created" not in said  # no table of what was not created
    assert {r[1] for r in report_rows(result)} == {"partly applicable"}
    # the stored record: "why did row 5 fail?" in the thread, and /rosterbot status
    record = store.recent_uploads("d1")[0]
    messages = [i["message"] for i in record.issues if i["row"] == 5]
    note = saved_note_of(record.report, 5, messages)
    assert note == "class MATH5 would be saved; the person and the enrollment would not be."
    line = formatting.audit_line(record)
    assert "Failed" in line and "nothing was applied" in line
    assert "created" not in line  # nothing was created
