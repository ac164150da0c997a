"""demographics.csv (demographics-csv.md): every DEMO_* code, storage, counts, the report,
and users.csv + demographics.csv in one upload — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import select

from roster.models import Demographics, Person
from roster.pipeline import InputFile, Settings, run
from tests.builders import class_of, student, teacher, users_csv
from tests.roster_helpers import codes, issues_by_row, upload
from validation import dictionary as d
from validation.demographics import check_demographics
from validation.snapshot import PEOPLE_COLUMNS, RosterSnapshot

HEADERS = d.DEMOGRAPHICS_HEADERS


def demo_csv(rows: list[dict[str, str]], headers=HEADERS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    for r in rows:
        writer.writerow([r.get(h, "") for h in headers])
    return out.getvalue().encode()


def clean(user_id: str = "S1", **values: str) -> dict[str, str]:
    """A clean demographics row: every value filled and consistent."""
    base = {h: "N" for h in HEADERS}
    base.update(userId=user_id, birthDate="2014-09-02", sex="F", white="Y", homeLanguage="English")
    base.update(values)
    return base


def upload_demo(store, rows, apply: bool = True, headers=HEADERS):
    data = rows if isinstance(rows, bytes) else demo_csv(rows, headers)
    return upload(store, data, apply=apply, name="demographics.csv")


def stored_values(store) -> dict[str, dict]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(Person.user_id, Demographics.values).join(
                Demographics, Demographics.person_id == Person.id
            )
        ).all()
    return {u: (json.loads(v) if isinstance(v, str) else v) for u, v in rows}


def found(result, code: str) -> list[tuple[int, str, str]]:
    return [(i["row"], i["column"], i["severity"]) for i in result.issues if i["code"] == code]


@pytest.fixture
def roster(store, district):
    """A teacher T1 and students S1..S3 stored in district d1."""
    assert upload(store, class_of(3)).applied
    return store


# --- every code on the right row and column, with its severity -----------------------------------
def test_clean_file_has_no_issues_and_is_created(roster):
    result = upload_demo(
        roster, [clean("S1"), clean("S2"), clean("S3", sex="M", white="N", asian="Y")]
    )
    assert result.kind == "demographics" and result.status == "completed" and result.applied
    assert result.issues == [] and result.report_bytes is None
    assert result.counts == {
        "demographics": dict(created=3, updated=0, no_change=0, removed=0, errors=0)
    }


@pytest.mark.parametrize(
    "code,row_values,column,severity",
    [
        ("DEMO_USERID_REQUIRED", dict(userId=""), "userId", "error"),
        ("DEMO_USER_NOT_FOUND", dict(userId="NOPE"), "userId", "error"),
        ("DEMO_NOT_STUDENT", dict(userId="T1"), "userId", "error"),
        ("DEMO_VALUE_INVALID", dict(sex="Q"), "sex", "error"),
        ("DEMO_VALUE_INVALID", dict(gifted="maybe"), "gifted", "error"),
        ("DEMO_VALUE_INVALID", dict(homeLanguage="x" * 65), "homeLanguage", "error"),
        ("DEMO_DATE_INVALID", dict(birthDate="2014-02-30"), "birthDate", "error"),
        ("DEMO_DATE_INVALID", dict(birthDate="2/30/2014"), "birthDate", "error"),
        ("DEMO_DATE_INVALID", dict(birthDate="1899-12-31"), "birthDate", "error"),
        ("DEMO_DATE_INVALID", dict(birthDate="2999-01-01"), "birthDate", "error"),
        ("DEMO_DATE_INVALID", dict(birthDate="Sept 2 2014"), "birthDate", "error"),
        ("DEMO_VALUE_NORMALIZED", dict(birthDate="9/2/2014"), "birthDate", "warning"),
        ("DEMO_VALUE_NORMALIZED", dict(birthDate="09/02/2014"), "birthDate", "warning"),
        ("DEMO_VALUE_NORMALIZED", dict(sex="female"), "sex", "warning"),
        ("DEMO_VALUE_NORMALIZED", dict(sex="Non-Binary"), "sex", "warning"),
        (
            "DEMO_RACE_INCONSISTENT",
            dict(demographicRaceTwoOrMoreRaces="Y"),
            "demographicRaceTwoOrMoreRaces",
            "warning",
        ),
        ("DEMO_RACE_INCONSISTENT", dict(asian="Y"), "demographicRaceTwoOrMoreRaces", "warning"),
    ],
)
def test_each_code_fires_on_its_row_and_column(roster, code, row_values, column, severity):
    result = upload_demo(roster, [clean("S1"), clean("S2", **row_values), clean("S3")])
    assert found(result, code) == [(3, column, severity)]
    assert codes(result) == [code]
    expected = "completed_with_errors" if severity == "error" else "completed"
    assert result.status == expected


def test_duplicate_userid_marks_every_such_row(roster):
    result = upload_demo(roster, [clean("S1"), clean("S2"), clean("S1", sex="M")])
    assert found(result, "DEMO_DUPLICATE") == [(2, "userId", "error"), (4, "userId", "error")]
    assert result.counts["demographics"] == dict(
        created=1, updated=0, no_change=0, removed=0, errors=1
    )
    assert set(stored_values(roster)) == {"S2"}


def test_blank_userid_row_still_gets_its_value_issues(roster):
    result = upload_demo(roster, [clean("", sex="robot", birthDate="13/45/2010")])
    assert issues_by_row(result) == {
        2: ["DEMO_USERID_REQUIRED", "DEMO_DATE_INVALID", "DEMO_VALUE_INVALID"]
    }
    assert result.counts["demographics"]["errors"] == 1


def test_messages_name_the_column_and_the_accepted_values(roster):
    result = upload_demo(roster, [clean("S1", gifted="maybe"), clean("S2", birthDate="2999-01-01")])
    invalid, date_issue = result.issues
    assert "gifted" in invalid["message"] and "maybe" in invalid["message"]
    assert "Y or N" in invalid["message"] and invalid["fix"]
    assert "in the future" in date_issue["message"]


def test_race_inconsistency_counts_race_flags_only():
    snap = RosterSnapshot(
        people=pd.DataFrame(
            {**{c: [""] for c in PEOPLE_COLUMNS}, "user_id": ["S1"], "role": ["student"]}
        )
    )
    rows = [
        clean(
            "S1",
            white="Y",
            asian="Y",
            demographicRaceTwoOrMoreRaces="Y",
            hispanicOrLatinoEthnicity="Y",
        )
    ]
    table = pd.DataFrame([{h: r[h] for h in HEADERS} for r in rows], dtype="str")
    chk = check_demographics(table, snap, today=date(2024, 1, 1))
    assert chk.issues.empty and chk.accepted.tolist() == [True]
    two_alone = pd.DataFrame(
        [{**{h: "" for h in HEADERS}, "userId": "S1", "demographicRaceTwoOrMoreRaces": "Y"}],
        dtype="str",
    )
    chk = check_demographics(two_alone, snap)
    assert chk.issues["code"].tolist() == ["DEMO_RACE_INCONSISTENT"]
    assert chk.accepted.tolist() == [True]  # a warning: the row is still applied


def test_a_date_later_than_today_is_in_the_future():
    snap = RosterSnapshot()
    table = pd.DataFrame(
        [{**{h: "" for h in HEADERS}, "userId": "", "birthDate": "2024-01-02"}], dtype="str"
    )
    chk = check_demographics(table, snap, today=date(2024, 1, 1))
    assert (
        "in the future"
        in chk.issues.loc[chk.issues["code"] == "DEMO_DATE_INVALID", "detail"].iat[0]
    )
    chk = check_demographics(table, snap, today=date(2024, 1, 2))
    assert "DEMO_DATE_INVALID" not in set(chk.issues["code"])


# --- storage ---------------------------------------------------------------------------------------
def test_booleans_are_stored_as_y_n_silently(roster):
    result = upload_demo(
        roster,
        [
            clean(
                "S1",
                hispanicOrLatinoEthnicity="yes",
                gifted="TRUE",
                migrant="0",
                homeless="false",
                englishLearner="1",
                specialEducation="no",
                white="y",
            )
        ],
    )
    assert result.issues == []
    values = stored_values(roster)["S1"]
    assert values["hispanicOrLatinoEthnicity"] == "Y" and values["gifted"] == "Y"
    assert values["migrant"] == values["homeless"] == values["specialEducation"] == "N"
    assert values["englishLearner"] == "Y" and values["white"] == "Y"


def test_dates_and_sex_words_are_stored_normalised(roster):
    result = upload_demo(
        roster,
        [
            clean("S1", birthDate="9/2/2014", sex="male"),
            clean("S2", birthDate="12/31/2013", sex="NON-BINARY"),
        ],
    )
    assert [i["code"] for i in result.issues] == ["DEMO_VALUE_NORMALIZED"] * 4
    assert result.issues[0]["message"] == "birthDate '9/2/2014' was read as '2014-09-02'."
    values = stored_values(roster)
    assert (values["S1"]["birthDate"], values["S1"]["sex"]) == ("2014-09-02", "M")
    assert (values["S2"]["birthDate"], values["S2"]["sex"]) == ("2013-12-31", "X")
    again = upload_demo(
        roster,
        [
            clean("S1", birthDate="2014-09-02", sex="M"),
            clean("S2", birthDate="2013-12-31", sex="X"),
        ],
    )
    assert again.issues == [] and again.counts["demographics"]["no_change"] == 2


def test_blank_keeps_what_is_stored(roster):
    upload_demo(roster, [clean("S1", homeLanguage="Spanish", gifted="Y")])
    headers = ("userId", "homeLanguage", "gifted", "sex")
    result = upload_demo(
        roster, [{"userId": "S1", "homeLanguage": "", "gifted": "", "sex": ""}], headers=headers
    )
    assert result.counts["demographics"]["no_change"] == 1
    values = stored_values(roster)["S1"]
    assert values["homeLanguage"] == "Spanish" and values["gifted"] == "Y" and values["sex"] == "F"
    changed = upload_demo(roster, [{"userId": "S1", "gifted": "N"}], headers=headers)
    assert changed.counts["demographics"] == dict(
        created=0, updated=1, no_change=0, removed=0, errors=0
    )
    values = stored_values(roster)["S1"]
    assert values["gifted"] == "N" and values["homeLanguage"] == "Spanish"


def test_reupload_is_no_change_with_the_same_errors(roster):
    rows = [clean("S1"), clean("S2", sex="female"), clean("NOPE"), clean("S3", gifted="?")]
    first = upload_demo(roster, rows)
    assert first.counts["demographics"] == dict(
        created=2, updated=0, no_change=0, removed=0, errors=2
    )
    second = upload_demo(roster, rows)
    assert second.counts["demographics"] == dict(
        created=0, updated=0, no_change=2, removed=0, errors=2
    )
    assert codes(second) == codes(first)


def test_check_only_applies_nothing_and_counts_the_same(roster):
    rows = [clean("S1"), clean("S2")]
    checked = upload_demo(roster, rows, apply=False)
    assert not checked.applied and stored_values(roster) == {}
    applied = upload_demo(roster, rows)
    assert applied.applied and applied.counts == checked.counts


def test_deactivated_student_still_gets_demographics(roster):
    upload(roster, [student(1, action="DEACTIVATE-USER")], confirm_removals=True)
    result = upload_demo(roster, [clean("S1")])
    assert result.issues == [] and result.counts["demographics"]["created"] == 1


def test_ragged_row_is_rejected_and_counted_only_in_rows(roster):
    data = demo_csv([clean("S1")]) + b"S2,2014-01-01\r\n"
    result = upload_demo(roster, data)
    assert issues_by_row(result) == {3: ["ROW_FIELD_COUNT"]}
    assert result.rows["rejected"] == 1
    assert result.counts["demographics"] == dict(
        created=1, updated=0, no_change=0, removed=0, errors=0
    )


# --- the report --------------------------------------------------------------------------------------
def test_report_has_the_users_report_format(roster, tmp_path):
    rows = [clean("S1", sex="female"), clean("NOPE"), clean("S2")]
    result = upload(roster, demo_csv(rows), name="demographics.csv", report_dir=tmp_path)
    assert result.report_name == "demographics-errors.csv"
    assert result.error_report == str((tmp_path / "demographics-errors.csv").resolve())
    data = (tmp_path / "demographics-errors.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert lines[0] == ["row_number", "status", *HEADERS, "issues", "details", "how_to_fix"]
    assert [(r[0], r[1], r[-3]) for r in lines[1:]] == [
        ("2", "applied with warnings", "DEMO_VALUE_NORMALIZED"),
        ("3", "rejected", "DEMO_USER_NOT_FOUND"),
    ]
    assert lines[1][2 : 2 + len(HEADERS)] == [rows[0][h] for h in HEADERS]
    assert result.rows == dict(
        total=3, blank_skipped=0, rejected=1, partly_applied=0, with_warnings=1
    )
    record = roster.upload(result.upload_id)
    assert record.kind == "demographics" and record.state == "applied"
    assert record.counts == result.counts and record.report == data


def test_header_rules_are_those_of_users_csv(roster):
    data = demo_csv(
        [{"userId": "S1", "Sex": "F", "giftd": "Y"}], headers=("userId", "Sex", "giftd")
    )
    result = upload(roster, data, name="demographics.csv")
    assert result.status == "failed" and not result.applied
    # errors are listed first: the misspelling (an error), then the letter case (a warning)
    assert [(i.code, i.severity) for i in result.file_issues] == [
        ("HEADER_UNKNOWN", "error"),
        ("HEADER_CASE", "warning"),
    ]
    assert "did you mean gifted" in result.file_issues[0].message
    missing = upload(roster, demo_csv([{"sex": "F"}], headers=("sex",)), name="demographics.csv")
    assert [i.code for i in missing.file_issues] == ["HEADER_MISSING"]


# --- users.csv and demographics.csv in one upload -------------------------------------------------
@pytest.mark.parametrize("apply", [True, False])
def test_student_created_in_users_gets_demographics_in_the_same_upload(store, district, apply):
    users = users_csv([teacher(), student(1), student(2)])
    demo = demo_csv([clean("S1"), clean("S2", sex="male"), clean("T1"), clean("S9")])
    # demographics first in the call: users.csv is still processed first
    result = run(
        store,
        "d1",
        [InputFile("demographics.csv", demo), InputFile("users.csv", users)],
        apply=apply,
        actor="test",
        settings=Settings(),
    )
    users_result, demo_result = result.files
    assert (users_result.kind, demo_result.kind) == ("users", "demographics")
    assert users_result.counts["student"]["created"] == 2
    assert demo_result.counts["demographics"] == dict(
        created=2, updated=0, no_change=0, removed=0, errors=2
    )
    # a teacher accepted from the same upload's users.csv is staff, in a check too
    staff_code = "DEMO_NOT_STUDENT"
    assert [(i["row"], i["code"]) for i in demo_result.issues] == [
        (3, "DEMO_VALUE_NORMALIZED"),
        (4, staff_code),
        (5, "DEMO_USER_NOT_FOUND"),
    ]
    assert demo_result.applied is apply
    assert set(stored_values(store)) == ({"S1", "S2"} if apply else set())
    assert [f["kind"] for f in result.to_json()["files"]] == ["users", "demographics"]


def test_student_rejected_in_users_gets_no_demographics(store, district):
    users = users_csv([teacher(), student(1), student(2, userEmail="bad")])
    demo = demo_csv([clean("S1"), clean("S2")])
    for apply in (False, True):
        result = run(
            store,
            "d1",
            [InputFile("users.csv", users), InputFile("demo.csv", demo)],
            apply=apply,
            actor="test",
            settings=Settings(),
        )
        assert result.files[1].kind == "demographics"
        assert [(i["row"], i["code"]) for i in result.files[1].issues] == [
            (3, "DEMO_USER_NOT_FOUND")
        ]


def test_kind_is_detected_from_the_headers(store, district):
    result = upload(store, demo_csv([clean("S1")]), name="export.csv")
    assert result.kind == "demographics"
    assert result.counts == {
        "demographics": dict(created=0, updated=0, no_change=0, removed=0, errors=1)
    }
