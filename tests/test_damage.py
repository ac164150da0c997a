"""Spreadsheet damage never reaches the roster (issue 12, users-csv.md revision 2), the
ID-change guard, and the loose ends of the same trial — on SQLite and PostgreSQL.

The round trip is what an administrator does: download the roster, open it in a spreadsheet
that reads every all-digit cell as a number and `8-3` as a date, save, upload.  Nothing may
change, and every damaged row must say what the stored ID (or the probable value) is.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import insert, select

from roster.export import download_csv
from roster.models import School, SchoolClass
from roster.pipeline import Settings
from tests.builders import row, student, teacher, users_csv
from tests.roster_helpers import active_enrollments, codes, person, roster_state, upload
from validation.templates import TEMPLATE_SCHOOL, template_csv

ID_COLUMNS = ("org_sis_id", "userId", "classId")


def _set_up(store, school: str):
    store.create_district("d1", "District One", "batch")
    store.add_school("d1", school, "Lincoln Elementary")
    rows = [
        teacher(org_sis_id=school, userId="000777", classId="8-3", className="Homeroom 8-3"),
        student(1, org_sis_id=school, userId="004500", classId="8-3", className="Homeroom 8-3"),
        student(2, org_sis_id=school, userId="004501", classId="0042", className="Art"),
        student(3, org_sis_id=school, userId="12345", classId="0042", className="Art"),
        teacher(org_sis_id=school, userId="000777", classId="0042", className="Art"),
    ]
    first = upload(store, rows)
    assert first.applied and first.status == "completed", first.issues
    return store


@pytest.fixture
def roster(store):
    """District d1 with a school whose ID has letters (only person and class IDs can be
    damaged), holding zero-padded people, a class `0042` and a class `8-3`."""
    return _set_up(store, "LIN")


@pytest.fixture(params=["LIN", "0101"])
def any_school(request, store):
    """The same roster at a school `LIN`, or `0101` (whose zeros a spreadsheet drops too)."""
    return _set_up(store, request.param)


def spreadsheet_damage(data: bytes) -> bytes:
    """What a spreadsheet saves after opening a CSV: digits become numbers (leading zeros
    gone) and `M-D` becomes a date shown `D-Mon`."""
    months = ("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec").split()
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(rows[0])
    for r in rows[1:]:
        damaged = []
        for cell in r:
            if re.fullmatch(r"[0-9]+", cell):
                cell = str(int(cell))
            elif m := re.fullmatch(r"([0-9]{1,2})-([0-9]{1,2})", cell):
                cell = f"{int(m.group(2))}-{months[int(m.group(1)) - 1]}"
            damaged.append(cell)
        writer.writerow(damaged)
    return ("\ufeff" + out.getvalue()).encode()


def test_excel_round_trip_changes_nothing_and_names_every_stored_id(any_school):
    roster = any_school
    before = download_csv(roster, "d1", "all")
    damaged = spreadsheet_damage(before)
    assert b"3-Aug" in damaged and b",4500," in damaged and b",42," in damaged

    result = upload(roster, damaged)

    assert download_csv(roster, "d1", "all") == before  # nothing renamed, created or moved
    for entity, buckets in result.counts.items():
        assert buckets["created"] == buckets["updated"] == buckets["removed"] == 0, (entity, result)
    # every damaged ID cell: its row's messages name the stored ID (or the probable value)
    original = list(csv.DictReader(io.StringIO(before.decode("utf-8-sig"))))
    seen = list(csv.DictReader(io.StringIO(damaged.decode("utf-8-sig"))))
    messages: dict[int, str] = {}
    for issue in result.issues:
        messages[issue["row"]] = messages.get(issue["row"], "") + " " + issue["message"]
    checked = 0
    for n, (was, now) in enumerate(zip(original, seen), start=2):
        for column in ID_COLUMNS:
            if was[column] != now[column]:
                checked += 1
                assert f"'{was[column]}'" in messages.get(n, "") or was[column] in messages.get(
                    n, ""
                ), (n, column, was[column], now[column], messages.get(n))
    assert checked >= 5
    found = set(codes(result))
    assert {"USERID_ZEROS_LOST", "CLASSID_ZEROS_LOST", "CLASSID_EXCEL"} <= found
    assert "USERID_CHANGED" not in found and "EMAIL_TAKEN" not in found
    date_issue = next(i for i in result.issues if i["code"] == "CLASSID_EXCEL")
    assert date_issue["value"] == "3-Aug" and "probably '8-3'" in date_issue["message"]


def test_the_undamaged_download_is_clean(roster):
    """The clean twin: the same download uploaded as it is has no issue and changes nothing."""
    before = roster_state(roster)
    result = upload(roster, download_csv(roster, "d1", "all"))
    assert result.issues == [] and result.file_issues == []
    assert roster_state(roster) == before


@pytest.mark.parametrize("shown", ["3-Aug", "Aug-03", "03-aug-24", "8/3/2024", "2024-08-03"])
def test_a_date_shaped_class_id_says_what_it_probably_was(roster, shown):
    result = upload(
        roster,
        [student(3, org_sis_id="LIN", userId="12345", classId=shown, className="Homeroom 8-3")],
    )
    (issue,) = [i for i in result.issues if i["code"] == "CLASSID_EXCEL"]
    assert "probably '8-3'" in issue["message"]
    assert ("8-3", "12345") not in active_enrollments(roster)  # not taken as 8-3 either
    assert not [c for c, _ in active_enrollments(roster) if c == shown]


def test_a_stored_iso_date_id_is_not_damage(store, district):
    """A class stored under an ISO-date ID (made before revision 2) is still that class."""
    assert upload(store, [teacher(), student(1)]).applied
    with store.engine.begin() as conn:
        school, district_id = conn.execute(
            select(School.id, School.district_id).where(School.org_sis_id == "0101")
        ).one()
        conn.execute(
            insert(SchoolClass).values(
                district_id=district_id,
                school_id=school,
                class_id="2024-08-03",
                name="Math 5",
                grade="05",
                display_name="",
                subject="",
                active=True,
            )
        )
    again = upload(store, [teacher(classId="2024-08-03"), student(1, classId="2024-08-03")])
    assert "CLASSID_EXCEL" not in codes(again) and again.status == "completed", again.issues
    assert ("2024-08-03", "S1") in active_enrollments(store)


def test_zeros_lost_needs_the_same_email_or_name(roster):
    """A new person 4500 who is not the stored 004500 (other email, other name) is added."""
    other = student(
        9, org_sis_id="LIN", userId="4500", userFirstName="Zed", userLastName="Other", classId=""
    )
    result = upload(roster, [other | {"className": "", "classGrade": "", "primary_teacher": ""}])
    assert "USERID_ZEROS_LOST" not in codes(result)
    assert person(roster, "4500") is not None and person(roster, "004500") is not None


def test_a_removal_naming_an_id_without_its_zeros_says_the_stored_one(roster):
    result = upload(
        roster,
        [
            row(action="DEACTIVATE-USER", org_sis_id="LIN", userId="4500", classId=""),
            row(action="REMOVE-CLASS", org_sis_id="LIN", userId="", classId="42"),
        ],
    )
    messages = {i["code"]: i["message"] for i in result.issues}
    assert "did you mean 004500" in messages["ACTION_USER_NOT_FOUND"]
    assert "0042" in messages["CLASSID_ZEROS_LOST"]
    assert person(roster, "004500")["active"]


# --- the ID-change guard ----------------------------------------------------------------------


def _renamed(n: int) -> list[dict[str, str]]:
    """n stored students S1..Sn re-uploaded under new IDs N1..Nn (same emails)."""
    return [student(i, userId=f"N{i}") for i in range(1, n + 1)]


@pytest.fixture
def eleven(store, district):
    first = upload(store, [teacher()] + [student(i) for i in range(1, 12)])
    assert first.applied
    return store


def test_id_change_guard_holds_more_than_ten_changes(eleven):
    before = roster_state(eleven)
    held = upload(eleven, [teacher()] + _renamed(11))
    assert held.held and not held.applied and held.status == "failed"
    (issue,) = [i for i in held.file_issues if i.code == "ID_CHANGES_NEED_CONFIRMATION"]
    assert issue.severity == "error" and "11 people" in issue.message
    (hold,) = held.holds
    assert hold.code == "ID_CHANGES_NEED_CONFIRMATION" and hold.total == 11
    assert len(hold.items) == 10 and hold.items[0] == "First1 Nguyen S1 → N1"
    assert roster_state(eleven) == before

    check = upload(eleven, [teacher()] + _renamed(11), apply=False)
    (warning,) = [i for i in check.file_issues if i.code == "ID_CHANGES_NEED_CONFIRMATION"]
    assert warning.severity == "warning" and not check.held

    confirmed = upload(eleven, [teacher()] + _renamed(11), confirm_id_changes=True)
    assert confirmed.applied and not confirmed.held
    assert person(eleven, "N11") is not None and person(eleven, "S11") is None
    assert ("MATH5", "N1") in active_enrollments(eleven)


def test_ten_id_changes_pass_and_the_limit_is_configurable(eleven):
    ten = upload(eleven, [teacher()] + _renamed(10))
    assert ten.applied and ten.file_issues == [] and not ten.holds
    held = upload(
        eleven, [teacher(), student(11, userId="N11")], settings=Settings(id_change_max=0)
    )
    assert held.held and [h.code for h in held.holds] == ["ID_CHANGES_NEED_CONFIRMATION"]


def test_id_change_limit_from_the_environment(monkeypatch):
    monkeypatch.setenv("ROSTERBOT_ID_CHANGE_GUARD_MAX", "3")
    assert Settings.from_env().id_change_max == 3


# --- loose ends -------------------------------------------------------------------------------


def test_remove_enrollment_of_a_person_added_earlier_in_the_same_file(store, district):
    rows = [
        teacher(),
        student(1),
        student(1, classId="SCI5", className="Science 5"),
        teacher(userId="T2", userEmail="t2@example.org", classId="SCI5", className="Science 5"),
        row(action="REMOVE-ENROLLMENT", userId="S1", classId="MATH5"),
    ]
    result = upload(store, rows)
    assert "ACTION_USER_NOT_FOUND" not in codes(result), result.issues
    assert result.applied and result.status == "completed", result.issues
    assert person(store, "S1")["active"]
    assert ("MATH5", "S1") not in active_enrollments(store)
    assert ("SCI5", "S1") in active_enrollments(store)
    assert result.counts["enrollment"]["removed"] == 1
    assert result.counts["enrollment"]["created"] == 3  # T1/MATH5, S1/SCI5, T2/SCI5
    again = upload(store, rows[:4])  # the adds again: the removed enrollment comes back
    assert again.counts["enrollment"]["updated"] == 1


def test_deactivate_and_remove_class_of_what_the_same_file_adds(store, district):
    rows = [
        teacher(),
        student(1),
        student(2, classId="ART", className="Art"),
        teacher(userId="T2", userEmail="t2@example.org", classId="ART", className="Art"),
        row(action="DEACTIVATE-USER", userId="S1", classId=""),
        row(action="REMOVE-CLASS", userId="", classId="ART"),
    ]
    result = upload(store, rows)
    assert result.status == "completed", result.issues
    assert not person(store, "S1")["active"] and person(store, "S2")["active"]
    classes = {c[0]: c[-1] for c in roster_state(store)["classes"]}
    assert classes == {"MATH5": True, "ART": False}
    assert active_enrollments(store) == {("MATH5", "T1")}
    assert result.counts["student"] == {
        "created": 1,
        "updated": 0,
        "no_change": 0,
        "removed": 1,
        "errors": 0,
    }
    assert result.counts["class"]["removed"] == 1 and result.counts["class"]["created"] == 1


def test_unchanged_template_is_refused_and_creates_nobody(store):
    store.create_district("t1", "Template District", "batch")
    store.add_school("t1", TEMPLATE_SCHOOL, "Example School")
    result = upload(store, template_csv("users"), district="t1")
    assert roster_state(store)["people"] == [] and roster_state(store)["classes"] == []
    assert set(codes(result)) == {"TEMPLATE_EXAMPLE_ROW"}
    assert result.rows["rejected"] == result.rows["total"] == 3
    assert all(b["errors"] == 0 for b in result.counts.values())  # not the file's people
    assert "example row of the rosterbot template" in result.issues[0]["message"]
    # a real row beside the example rows is applied
    real = (
        template_csv("users")
        + users_csv(
            [student(7, org_sis_id=TEMPLATE_SCHOOL, classId="", className="", classGrade="")]
        ).split(b"\r\n", 1)[1]
    )
    mixed = upload(store, real, district="t1")
    assert [p[0] for p in roster_state(store)["people"]] == ["S7"]
    assert codes(mixed).count("TEMPLATE_EXAMPLE_ROW") == 3


# --- demographics.csv -------------------------------------------------------------------------


def _demo(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["userId", "birthDate", "sex"])
    for r in rows:
        writer.writerow([r.get(h, "") for h in ("userId", "birthDate", "sex")])
    return out.getvalue().encode()


def test_demographics_user_without_its_zeros_names_the_stored_student(roster):
    result = upload(roster, _demo([{"userId": "4500", "sex": "F"}]), name="demographics.csv")
    (issue,) = result.issues
    assert issue["code"] == "DEMO_USER_NOT_FOUND" and "did you mean 004500" in issue["message"]
    assert result.counts["demographics"]["created"] == 0
    clean = upload(roster, _demo([{"userId": "004500", "sex": "F"}]), name="demographics.csv")
    assert clean.issues == [] and clean.counts["demographics"]["created"] == 1


@pytest.mark.parametrize(
    "typed, why, probable",
    [
        ("43500", "date number", "2019-02-04"),
        ("3/15/19", "two-digit year", "2019-03-15"),
        ("3/15/98", "two-digit year", "1998-03-15"),
    ],
)
def test_demographics_spreadsheet_dates_say_why_and_the_probable_date(roster, typed, why, probable):
    result = upload(
        roster, _demo([{"userId": "004500", "birthDate": typed}]), name="demographics.csv"
    )
    (issue,) = result.issues
    assert issue["code"] == "DEMO_DATE_INVALID" and issue["severity"] == "error"
    assert why in issue["message"] and probable in issue["message"], issue["message"]
    assert result.counts["demographics"]["errors"] == 1
