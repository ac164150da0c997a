"""Issue #15: the change log, the changes file, history, undo and full sync — on SQLite and
PostgreSQL.  What a user notices: the changes file lists exactly what the store changed,
an undo gives back the roster as it was (the download, byte for byte), a refused undo applies
nothing, a full sync removes what the file's schools no longer mention and nothing else."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main as cli
from roster.export import download_csv
from roster.models import Change, Enrollment, Membership, Person, School, SchoolClass, Upload
from roster.pipeline import InputFile, Settings, run
from roster.store import RosterError, Store
from roster.undo import history, undo
from tests.builders import row, student, teacher, users_csv
from tests.roster_helpers import roster_state, upload
from tests.test_demographics import clean, demo_csv

ROOT = Path(__file__).resolve().parents[1]
NO_GUARD = Settings(removal_share=1.0)


# --- helpers ------------------------------------------------------------------------------------
def changes_lines(data: bytes | None) -> set[tuple[str, ...]]:
    """The changes file's lines without row numbers, as a set."""
    if data is None:
        return set()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["entity", "key", "change", "field", "before", "after", "row_number"]
    return {tuple(r[:6]) for r in rows[1:]}


def stored(store) -> dict:
    """The store by primary key: what a diff needs to name every change."""
    with store.engine.connect() as conn:
        people = {
            r[0]: r[1:]
            for r in conn.execute(
                select(
                    Person.id,
                    Person.user_id,
                    Person.first_name,
                    Person.last_name,
                    Person.email,
                    Person.role,
                    Person.grade,
                    Person.district_sis_id,
                    Person.state_sis_id,
                    Person.active,
                )
            )
        }
        members = set(
            conn.execute(
                select(Membership.person_id, School.org_sis_id).join(
                    School, School.id == Membership.school_id
                )
            ).all()
        )
        classes = {
            r[0]: r[1:]
            for r in conn.execute(
                select(
                    SchoolClass.id,
                    SchoolClass.class_id,
                    SchoolClass.name,
                    SchoolClass.grade,
                    SchoolClass.display_name,
                    SchoolClass.subject,
                    SchoolClass.active,
                )
            )
        }
        enrollments = {
            (r[0], r[1]): (r[2], r[3])
            for r in conn.execute(
                select(
                    Enrollment.class_pk,
                    Enrollment.person_id,
                    Enrollment.is_primary,
                    Enrollment.active,
                )
            )
        }
    return {"people": people, "members": members, "classes": classes, "enrollments": enrollments}


PERSON_HEADERS = (
    "userId",
    "userFirstName",
    "userLastName",
    "userEmail",
    "userRole",
    "userGrade",
    "userDistrictId",
    "userStateId",
)
CLASS_HEADERS = ("className", "classGrade", "classDisplayName", "classSubject")


def store_diff(before: dict, after: dict) -> set[tuple[str, ...]]:
    """Every change between two `stored()` states, in the changes file's words."""
    out = set()
    people = after["people"]

    def kind(pk):
        return "student" if people[pk][4] == "student" else "staff"

    for pk, new in people.items():
        old = before["people"].get(pk)
        uid = new[0]
        if old is None:
            out.add((kind(pk), uid, "created", "", "", ""))
            continue
        for header, o, n in zip(PERSON_HEADERS, old[:-1], new[:-1]):
            if o != n:
                out.add((kind(pk), uid, "updated", header, o, n))
        if old[-1] != new[-1]:
            out.add((kind(pk), uid, "reactivated" if new[-1] else "removed", "", "", ""))
    for pk, org in after["members"] - before["members"]:
        if pk in before["people"]:
            out.add((kind(pk), people[pk][0], "updated", "org_sis_id", "", org))
    for pk, org in before["members"] - after["members"]:
        out.add((kind(pk), people[pk][0], "updated", "org_sis_id", org, ""))
    classes = after["classes"]
    for pk, new in classes.items():
        old = before["classes"].get(pk)
        if old is None:
            out.add(("class", new[0], "created", "", "", ""))
            continue
        for header, o, n in zip(CLASS_HEADERS, old[1:-1], new[1:-1]):
            if o != n:
                out.add(("class", new[0], "updated", header, o, n))
        if old[-1] != new[-1]:
            out.add(("class", new[0], "reactivated" if new[-1] else "removed", "", "", ""))
    for (cpk, ppk), (primary, active) in after["enrollments"].items():
        key = f"{classes[cpk][0]}/{people[ppk][0]}"
        old = before["enrollments"].get((cpk, ppk))
        if old is None:
            out.add(("enrollment", key, "created", "", "", ""))
            continue
        if old[0] != primary:
            yn = {True: "Y", False: "N"}
            out.add(("enrollment", key, "updated", "primary_teacher", yn[old[0]], yn[primary]))
        if old[1] != active:
            out.add(("enrollment", key, "reactivated" if active else "removed", "", "", ""))
    return out


def n_changes(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Change)).scalar_one()


def n_uploads(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Upload)).scalar_one()


def first_file() -> list[dict]:
    return [
        teacher(),
        teacher(userId="T2", userEmail="t2@example.org", classId="ART", className="Art"),
        student(1),
        student(2),
        student(3),
        student(4, classId="ART", className="Art"),
        student(5, classId="OLD", className="Old class"),
        teacher(userId="T3", userEmail="t3@example.org", classId="OLD", className="Old class"),
        student(6, classId="", className="", classGrade=""),
        student(7),
    ]


def second_file() -> list[dict]:
    """Every change kind: create, update (each person and class field), ID change, school
    gained, deactivate, reactivate, class removed, enrollment created / removed / primary."""
    return [
        teacher(userLastName="Lopez-Reyes", userEmail="maria@example.org"),
        teacher(
            userId="T2",
            userEmail="t2@example.org",
            classId="ART",
            className="Art studio",
            classSubject="Art",
            classDisplayName="Art (period 2)",
            primary_teacher="N",
        ),
        teacher(userId="T2", userEmail="t2@example.org", primary_teacher="N"),
        student(1, userId="S1-NEW", userDistrictId="D-1", userStateId="ST-1"),
        student(2, userFirstName="Dana", userGrade="06"),
        student(3, action="DEACTIVATE-USER"),
        student(4, classId="ART", action="REMOVE-ENROLLMENT"),
        student(6, org_sis_id="0202", classId="", className="", classGrade=""),
        student(8, classId="ART", className="Art studio"),
        row(action="REMOVE-CLASS", userId="", classId="OLD"),
    ]


def third_file() -> list[dict]:
    """Brings back what the second removed: reactivations."""
    return [
        student(3),
        student(4, classId="ART", className="Art studio"),
        teacher(userId="T3", userEmail="t3@example.org", classId="OLD", className="Old class"),
    ]


# --- the changes file ---------------------------------------------------------------------------
def test_changes_file_lists_exactly_what_the_store_changed(store, district):
    for rows in (first_file(), second_file(), third_file()):
        before, download_before = stored(store), download_csv(store, district, "all")
        check = upload(store, rows, apply=False, settings=NO_GUARD)
        result = upload(store, rows, settings=NO_GUARD)
        assert result.applied, result.file_issues
        expected = store_diff(before, stored(store))
        assert changes_lines(result.changes_bytes) == expected
        # a check lists the same changes, and says so before anything is applied
        assert changes_lines(check.changes_bytes) == expected
        assert download_csv(store, district, "all") != download_before
    # every change kind was exercised by the three files
    kinds = {(e, c, f) for e, _, c, f, _, _ in changes_lines(result.changes_bytes)}
    assert ("student", "reactivated", "") in kinds and ("class", "reactivated", "") in kinds


def test_a_checks_changes_file_is_the_uploads_byte_for_byte(store, district, monkeypatch):
    """A check writes its changes file a block of lines at a time in a second thread, an
    upload from its change log's lines: the same bytes.  Each line names the first row that
    names its key, here a rejected one (row 2: no email)."""
    monkeypatch.setattr("roster.changes._CSV_BLOCK", 2)  # every kind of line spans blocks
    monkeypatch.setattr("roster.changes._LINES_BLOCK", 3)
    rows = [
        student(1, userEmail=""),
        student(1),
        student(2),
        student(3, classId="ART", className="Art"),
        teacher(),
        student(4, classId="ART", className="Art"),
        student(2, classId="ART", className="Art"),
    ]
    check = upload(store, rows, apply=False, settings=NO_GUARD)
    result = upload(store, rows, settings=NO_GUARD)
    assert result.applied, result.file_issues
    assert check.changes_bytes == result.changes_bytes
    assert check.changes_count == result.changes_count == 13  # 5 people, 2 classes, 6 pairs
    lines = list(csv.reader(io.StringIO(check.changes_bytes.decode("utf-8-sig"))))
    row_of = {(r[0], r[1], r[2]): r[6] for r in lines[1:]}
    assert row_of[("student", "S1", "created")] == "2"
    assert row_of[("class", "MATH5", "created")] == "2"
    assert row_of[("enrollment", "MATH5/S1", "created")] == "2"
    assert row_of[("class", "ART", "created")] == "5"
    assert row_of[("enrollment", "ART/S2", "created")] == "8"
    assert row_of[("staff", "T1", "created")] == "6"


def test_second_file_covers_every_kind_of_change(store, district):
    upload(store, first_file(), settings=NO_GUARD)
    lines = changes_lines(upload(store, second_file(), settings=NO_GUARD).changes_bytes)
    assert ("student", "S1-NEW", "updated", "userId", "S1", "S1-NEW") in lines
    assert ("staff", "T1", "updated", "userEmail", "t1@example.org", "maria@example.org") in lines
    assert ("student", "S2", "updated", "userGrade", "05", "06") in lines
    assert ("student", "S3", "removed", "", "", "") in lines
    assert ("student", "S6", "updated", "org_sis_id", "", "0202") in lines
    assert ("class", "OLD", "removed", "", "", "") in lines
    assert ("class", "ART", "updated", "className", "Art", "Art studio") in lines
    assert ("enrollment", "ART/S4", "removed", "", "", "") in lines
    assert ("enrollment", "ART/S8", "created", "", "", "") in lines
    assert ("enrollment", "ART/T2", "updated", "primary_teacher", "Y", "N") in lines
    assert ("student", "S8", "created", "", "", "") in lines


def test_no_change_writes_no_changes_file_and_json_says_so(store, district, tmp_path, capsys):
    path = tmp_path / "users.csv"
    path.write_bytes(users_csv(first_file()))
    args = ["--db", store.url, "upload", district, str(path), "--json", "--report-dir"]
    assert cli([*args, str(tmp_path / "a")]) == 0
    first = json.loads(capsys.readouterr().out)["files"][0]
    assert isinstance(first["upload_id"], int)
    written = Path(first["changes_file"])
    assert written == (tmp_path / "a" / "users-changes.csv").resolve()
    assert ("student", "S1", "created", "", "", "") in changes_lines(written.read_bytes())
    assert cli([*args, str(tmp_path / "b")]) == 0
    again = json.loads(capsys.readouterr().out)["files"][0]
    assert again["changes_file"] is None and again["upload_id"] == first["upload_id"] + 1
    assert not (tmp_path / "b" / "users-changes.csv").exists()


def test_changes_file_escapes_formulas(store, district):
    result = upload(store, [student(1, userLastName="=HYPERLINK(1)")])
    upload(store, [student(1, userLastName="@SUM(1)")])
    text = upload(store, [student(1, userLastName="-x")]).changes_bytes.decode("utf-8-sig")
    assert "'@SUM(1),'-x" in text
    assert result.changes_bytes is not None
    # a comma, a quote or a line break is quoted as the csv module would
    quoted = upload(store, [student(1, userLastName='O"Neil, Jr')]).changes_bytes
    assert ("student", "S1", "updated", "userLastName", "'-x", 'O"Neil, Jr') in changes_lines(
        quoted
    )
    assert b'"O""Neil, Jr"' in quoted


def test_demographics_changes_and_undo(store, district):
    upload(store, [student(1), student(2)])
    created = upload(store, demo_csv([clean("S1")]), name="demographics.csv")
    assert changes_lines(created.changes_bytes) == {
        (
            "demographics",
            "S1",
            "created",
            "",
            "",
            json.dumps(
                {k: v for k, v in clean("S1").items() if v and k != "userId"}, sort_keys=True
            ),
        )
    }
    updated = upload(store, demo_csv([clean("S1", sex="M")]), name="demographics.csv")
    assert changes_lines(updated.changes_bytes) == {
        ("demographics", "S1", "updated", "sex", "F", "M")
    }
    undo(store, district, updated.upload_id, settings=NO_GUARD)
    undo(store, district, created.upload_id, settings=NO_GUARD)
    redo = upload(store, demo_csv([clean("S1")]), apply=False, name="demographics.csv")
    assert redo.counts["demographics"]["created"] == 1  # nothing stored any more


# --- undo ---------------------------------------------------------------------------------------
def test_undo_gives_back_the_download_byte_for_byte_and_undo_of_undo_reapplies(store, district):
    upload(store, first_file(), settings=NO_GUARD)
    after_a = download_csv(store, district, "all")
    b = upload(store, second_file(), settings=NO_GUARD)
    after_b = download_csv(store, district, "all")
    undone = undo(store, district, b.upload_id, actor="U1", settings=NO_GUARD)
    assert undone.applied and undone.undo_of == b.upload_id
    assert download_csv(store, district, "all") == after_a
    # the undo is an upload record of its own, with its changes
    record = store.upload(undone.upload_id)
    assert record.undo_of == b.upload_id and record.state == "applied"
    assert ("student", "S1", "updated", "userId", "S1-NEW", "S1") in changes_lines(
        undone.changes_bytes
    )
    again = undo(store, district, undone.upload_id, settings=NO_GUARD)
    assert download_csv(store, district, "all") == after_b
    with pytest.raises(RosterError, match=f"already undone by upload {again.upload_id}"):
        undo(store, district, undone.upload_id, settings=NO_GUARD)


@pytest.mark.parametrize("written", ["runs", "line_by_line"])
def test_undo_of_a_creating_upload_removes_each_row_it_created(
    store, district, monkeypatch, written
):
    """Created rows are logged as runs (one line each run); a log written one line per change
    (before revision 0006, or when another district's rows came in between) reads the same."""
    if written == "line_by_line":
        monkeypatch.setattr("roster.changes._write_run", lambda *a: False)
    empty = download_csv(store, district, "all")
    a = upload(store, first_file(), settings=NO_GUARD)
    created = {line for line in changes_lines(a.changes_bytes) if line[2] == "created"}
    assert ("enrollment", "ART/S4", "created", "", "", "") in created
    after_a = download_csv(store, district, "all")
    b = upload(store, [student(9), *second_file()], settings=NO_GUARD)
    undone = undo(store, district, b.upload_id, settings=NO_GUARD)
    assert download_csv(store, district, "all") == after_a
    assert ("student", "S9", "removed", "", "", "") in changes_lines(undone.changes_bytes)
    undone = undo(store, district, a.upload_id, settings=NO_GUARD)
    assert download_csv(store, district, "all") == empty
    assert changes_lines(undone.changes_bytes) == {
        (entity, key, "removed", "", "", "") for entity, key, *_ in created
    }
    again = undo(store, district, undone.upload_id, settings=NO_GUARD)  # re-applies A
    assert again.applied and download_csv(store, district, "all") == after_a


def test_a_log_written_before_revision_0006_still_serves_history_and_undo(
    store, district, monkeypatch
):
    """A database whose log has one line per created row (revision 0005) is upgraded on
    start; history and undo read those lines as before."""
    from alembic import command

    from roster import schema

    monkeypatch.setattr("roster.changes._write_run", lambda *a: False)  # as 0005 wrote it
    empty = download_csv(store, district, "all")
    a = upload(store, first_file(), settings=NO_GUARD)
    monkeypatch.undo()
    with store.engine.begin() as conn:
        command.downgrade(schema.alembic_config(conn), "0005")
    assert schema.current(store.engine) == "0005"
    again = Store(store.url)  # upgrades itself on start
    try:
        assert schema.current(again.engine) == schema.head()
        lines = [(c["entity"], c["change"]) for c in history(again, district, user_id="S1")]
        assert lines == [("student", "created"), ("enrollment", "created")]
        b = upload(again, [student(9)], settings=NO_GUARD)  # a run, beside the older lines
        undo(again, district, b.upload_id, settings=NO_GUARD)
        undo(again, district, a.upload_id, settings=NO_GUARD)
        assert download_csv(again, district, "all") == empty
    finally:
        again.dispose()


def test_history_names_a_created_row_as_it_was_then(store, district):
    upload(store, [teacher(), student(1), student(2)])
    upload(store, [student(1, userId="S1-NEW")])
    lines = [
        (c["entity"], c["key"], c["change"], c["field"])
        for c in history(store, district, user_id="S1-NEW")
    ]
    assert lines == [
        ("student", "S1", "created", ""),
        ("enrollment", "MATH5/S1", "created", ""),
        ("student", "S1-NEW", "updated", "userId"),
    ]
    lines = [
        (c["entity"], c["key"], c["change"]) for c in history(store, district, class_id="MATH5")
    ]
    assert lines == [
        ("class", "MATH5", "created"),
        ("enrollment", "MATH5/T1", "created"),
        ("enrollment", "MATH5/S1", "created"),
        ("enrollment", "MATH5/S2", "created"),
    ]


def test_undo_is_refused_when_a_later_upload_changed_the_same_person(store, district):
    upload(store, first_file(), settings=NO_GUARD)
    b = upload(store, [student(2, userFirstName="Dana")])
    c = upload(store, [student(2, userFirstName="Dani")])
    state, uploads = roster_state(store), n_uploads(store)
    with pytest.raises(RosterError, match=f"later upload\\(s\\) {c.upload_id} "):
        undo(store, district, b.upload_id, settings=NO_GUARD)
    assert roster_state(store) == state and n_uploads(store) == uploads
    # undo C first, then B
    undo(store, district, c.upload_id, settings=NO_GUARD)
    undo(store, district, b.upload_id, settings=NO_GUARD)
    assert roster_state(store)["people"] == sorted(
        r for r in roster_state(store)["people"]
    )  # still readable
    names = {r[0]: r[2] for r in roster_state(store)["people"]}
    assert names["S2"] == "First2"


def test_an_unrelated_later_upload_does_not_block_an_undo(store, district):
    upload(store, first_file(), settings=NO_GUARD)
    b = upload(store, [student(2, userFirstName="Dana")])
    upload(store, [student(3, userFirstName="Other")])
    assert undo(store, district, b.upload_id, settings=NO_GUARD).applied


def test_undo_restores_an_old_id_and_deactivates_a_reactivated_person(store, district):
    upload(store, first_file(), settings=NO_GUARD)
    upload(store, [student(3, action="DEACTIVATE-USER")], settings=NO_GUARD)
    b = upload(store, [student(1, userId="S1-NEW"), student(3)], settings=NO_GUARD)
    people = {r[0]: r[-1] for r in roster_state(store)["people"]}
    assert people["S1-NEW"] is True and people["S3"] is True and "S1" not in people
    undo(store, district, b.upload_id, settings=NO_GUARD)
    people = {r[0]: r[-1] for r in roster_state(store)["people"]}
    assert people["S1"] is True and "S1-NEW" not in people and people["S3"] is False


def test_undo_over_the_removal_share_is_held(store, district):
    upload(store, first_file(), settings=NO_GUARD)
    b = upload(store, [student(n, userId=f"N{n}", userEmail=f"n{n}@x.org") for n in range(10)])
    state = roster_state(store)
    held = undo(store, district, b.upload_id, settings=Settings(removal_share=0.2))
    assert held.held and not held.applied and held.status == "failed"
    assert [i.code for i in held.file_issues] == ["REMOVALS_NEED_CONFIRMATION"]
    assert roster_state(store) == state
    assert undo(
        store, district, b.upload_id, settings=Settings(removal_share=0.2), confirm_removals=True
    ).applied


def test_undo_refuses_checks_and_other_districts(store, district):
    store.create_district("d2", "Two", "batch")
    check = upload(store, first_file(), apply=False)
    with pytest.raises(RosterError, match="was not applied"):
        undo(store, district, check.upload_id)
    applied = upload(store, first_file(), settings=NO_GUARD)
    with pytest.raises(RosterError, match="no upload"):
        undo(store, "d2", applied.upload_id)


# --- history ------------------------------------------------------------------------------------
def test_history_of_a_person_through_every_kind_of_change(store, district, tmp_path, capsys):
    upload(store, [student(1)])  # created
    upload(store, [student(1, userLastName="Reyes")])  # updated
    moved = upload(store, [student(1, userId="S1-NEW", userLastName="Reyes")])  # ID change
    upload(store, [student(1, userId="S1-NEW", action="DEACTIVATE-USER")], settings=NO_GUARD)
    back = upload(store, [student(1, userId="S1-NEW", userLastName="Reyes")])  # reactivated
    undo(store, district, back.upload_id, settings=NO_GUARD)  # deactivated again
    steps = [
        (c["change"], c["field"], c["before"], c["after"])
        for c in history(store, district, user_id="S1")
        if c["entity"] == "student"
    ]
    assert steps == [
        ("created", "", "", ""),
        ("updated", "userLastName", "Nguyen", "Reyes"),
        ("updated", "userId", "S1", "S1-NEW"),
        ("removed", "", "", ""),
        ("reactivated", "", "", ""),
        ("removed", "", "", ""),
    ]
    # by the new ID too, with the same entries; JSON as product.md
    assert cli(["--db", store.url, "history", district, "--user", "S1-NEW", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["changes"]
    assert [c["change"] for c in out if c["entity"] == "student"] == [s[0] for s in steps]
    assert set(out[0]) == {
        "upload_id",
        "at",
        "actor",
        "entity",
        "key",
        "change",
        "field",
        "before",
        "after",
    }
    assert moved.upload_id in {c["upload_id"] for c in out}
    assert cli(["--db", store.url, "history", district, "--user", "S1-NEW"]) == 0
    text = capsys.readouterr().out
    assert "userId S1 → S1-NEW" in text and f"upload #{moved.upload_id} by test" in text
    assert cli(["--db", store.url, "history", district, "--user", "NOPE"]) == 2


def test_history_of_a_class(store, district):
    upload(store, first_file(), settings=NO_GUARD)
    upload(store, second_file(), settings=NO_GUARD)
    lines = history(store, district, class_id="OLD")
    assert [(c["entity"], c["change"]) for c in lines if c["entity"] == "class"] == [
        ("class", "created"),
        ("class", "removed"),
    ]


def test_cli_undo_json_and_refusal(store, district, tmp_path, capsys):
    upload(store, first_file(), settings=NO_GUARD)
    b = upload(store, [student(2, userFirstName="Dana")])
    c = upload(store, [student(2, userFirstName="Dani")])
    assert cli(["--db", store.url, "undo", district, str(b.upload_id)]) == 2
    assert str(c.upload_id) in capsys.readouterr().err
    args = ["--db", store.url, "undo", district, str(c.upload_id), "--json"]
    assert cli([*args, "--report-dir", str(tmp_path)]) == 0
    entry = json.loads(capsys.readouterr().out)["files"][0]
    assert entry["undo_of"] == c.upload_id and entry["applied"] is True
    assert changes_lines(Path(entry["changes_file"]).read_bytes()) == {
        ("student", "S2", "updated", "userFirstName", "Dani", "Dana")
    }


# --- full sync ----------------------------------------------------------------------------------
def sync_roster() -> list[dict]:
    return [
        teacher(),
        student(1),
        student(2),
        student(3),
        student(4, classId="ART", className="Art"),
        teacher(userId="T2", userEmail="t2@example.org", classId="ART", className="Art"),
        # school 0202 (never in the sync file)
        teacher(
            userId="T9",
            userEmail="t9@example.org",
            org_sis_id="0202",
            classId="SCI",
            className="Sci",
        ),
        student(9, org_sis_id="0202", classId="SCI", className="Sci"),
        # at both schools
        student(5, org_sis_id="0202", classId="SCI", className="Sci"),
        student(5),
    ]


def test_full_sync_removes_what_the_schools_no_longer_mention(store, district):
    upload(store, sync_roster(), settings=NO_GUARD)
    before = stored(store)
    file = [teacher(), student(1), student(2, classId="", className="", classGrade="")]
    result = run(
        store,
        district,
        [InputFile("users.csv", users_csv(file))],
        apply=True,
        sync=True,
        settings=NO_GUARD,
    ).files[0]
    assert result.applied, result.file_issues
    diff = store_diff(before, stored(store))
    assert diff == {
        ("student", "S3", "removed", "", "", ""),
        ("student", "S4", "removed", "", "", ""),
        ("staff", "T2", "removed", "", "", ""),
        ("student", "S5", "updated", "org_sis_id", "0101", ""),
        ("class", "ART", "removed", "", "", ""),
        ("enrollment", "MATH5/S2", "removed", "", "", ""),
        ("enrollment", "MATH5/S3", "removed", "", "", ""),
        ("enrollment", "MATH5/S5", "removed", "", "", ""),
        ("enrollment", "ART/S4", "removed", "", "", ""),
        ("enrollment", "ART/T2", "removed", "", "", ""),
    }
    assert changes_lines(result.changes_bytes) == diff
    assert result.counts["student"]["removed"] == 2 and result.counts["staff"]["removed"] == 1
    assert result.counts["class"]["removed"] == 1 and result.counts["enrollment"]["removed"] == 5
    # school 0202 untouched: its people, class and enrollments are all still there
    download = download_csv(store, district, "all", school="0202").decode("utf-8-sig")
    assert {"T9", "S9", "S5"} <= {r["userId"] for r in csv.DictReader(io.StringIO(download))}


def test_full_sync_over_the_guard_share_is_held(store, district):
    upload(store, sync_roster(), settings=NO_GUARD)
    state = roster_state(store)
    result = run(
        store,
        district,
        [InputFile("users.csv", users_csv([teacher()]))],
        apply=True,
        sync=True,
        settings=Settings(removal_share=0.2),
    ).files[0]
    assert result.held and not result.applied
    assert [i.code for i in result.file_issues] == ["REMOVALS_NEED_CONFIRMATION"]
    assert roster_state(store) == state
    assert ("student", "S1", "removed", "", "", "") in changes_lines(result.changes_bytes)


def test_without_sync_nothing_unmentioned_is_removed(store, district):
    upload(store, sync_roster(), settings=NO_GUARD)
    result = upload(store, [teacher(), student(1)], settings=NO_GUARD)
    assert all(c["removed"] == 0 for c in result.counts.values())


# --- one transaction ----------------------------------------------------------------------------
@pytest.mark.parametrize("point", ["before_change_log", "after_change_log"])
def test_a_crash_on_either_side_of_the_change_log_leaves_neither(store, district, tmp_path, point):
    upload(store, first_file(), settings=NO_GUARD)
    state, logged = roster_state(store), n_changes(store)
    path = tmp_path / "users.csv"
    path.write_bytes(users_csv(second_file()))
    env = {k: v for k, v in os.environ.items() if k != "ROSTERBOT_DATABASE_URL"}
    env |= {"PYTHONPATH": str(ROOT), "ROSTERBOT_TEST_CRASH_AT": point}
    env["ROSTERBOT_REMOVAL_GUARD_SHARE"] = "1.0"
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--db", store.url, "upload", district, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert roster_state(store) == state
    assert n_changes(store) == logged


def test_a_held_file_names_who_it_would_remove(store, district):
    upload(store, first_file(), settings=NO_GUARD)
    held = upload(
        store,
        [
            student(3, action="DEACTIVATE-USER"),
            row(action="REMOVE-CLASS", userId="", classId="OLD"),
        ],
    )
    assert held.held
    hold = held.holds[0]
    assert hold.code == "REMOVALS_NEED_CONFIRMATION"
    assert "First3 Nguyen S3: deactivated" in hold.items
    assert "class Old class OLD: removed" in hold.items
    assert hold.total == len([i for i in hold.items]) == 5  # S3, OLD, and three enrollments
    assert ("student", "S3", "removed", "", "", "") in changes_lines(held.changes_bytes)
