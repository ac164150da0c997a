"""Counts, cascades, actions and transactions (users-csv.md sections 3, 5, 6), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy.exc import OperationalError

import roster.apply
from roster.pipeline import Settings
from tests.builders import class_of, row, student, teacher, users_csv
from tests.roster_helpers import (
    active_enrollments,
    codes,
    issues_by_row,
    person,
    roster_state,
    upload,
)


def test_first_upload_creates_everything(store, district):
    result = upload(store, class_of(3))
    assert result.status == "completed" and result.applied
    c = result.counts
    assert c["school"] == dict(created=0, updated=0, no_change=1, removed=0, errors=0)
    assert c["staff"]["created"] == 1 and c["student"]["created"] == 3
    assert c["class"]["created"] == 1 and c["enrollment"]["created"] == 4
    assert result.rows == dict(
        total=4, blank_skipped=0, rejected=0, partly_applied=0, with_warnings=0
    )
    assert active_enrollments(store, "MATH5") == {("MATH5", u) for u in ("T1", "S1", "S2", "S3")}


def test_reupload_is_no_change(store, district):
    rows = class_of(3) + [row(userId="BAD", userEmail="not-an-email")]
    first = upload(store, rows)
    second = upload(store, rows)
    for entity, c in second.counts.items():
        assert c["created"] == c["updated"] == c["removed"] == 0, entity
    assert second.counts["student"]["no_change"] == 3
    assert second.counts["enrollment"]["no_change"] == 4
    assert [e["errors"] for e in second.counts.values()] == [
        e["errors"] for e in first.counts.values()
    ]
    assert codes(second) == codes(first) == ["EMAIL_INVALID"]


def test_dry_run_applies_nothing_and_reports_the_same_counts(store, district):
    rows = class_of(2)
    checked = upload(store, rows, apply=False)
    assert not checked.applied
    assert roster_state(store) == {
        "people": [],
        "memberships": [],
        "classes": [],
        "enrollments": [],
    }
    applied = upload(store, rows)
    assert applied.applied and checked.counts == applied.counts


def test_person_error_keeps_the_class(store, district):
    rows = [teacher(), student(1, userLastName="")]
    result = upload(store, rows)
    assert result.counts["class"]["created"] == 1
    assert result.counts["student"]["errors"] == 1
    assert result.counts["enrollment"] == dict(
        created=1, updated=0, no_change=0, removed=0, errors=1
    )
    assert result.issues[0]["row"] == 3 and result.issues[0]["code"] == "LASTNAME_REQUIRED"
    assert result.rows["partly_applied"] == 1
    assert person(store, "S1") is None


def test_class_error_keeps_the_person(store, district):
    rows = [teacher(), student(1), student(2, classId="ART5", className="Art", classGrade="ZZ")]
    result = upload(store, rows)
    assert result.counts["student"]["created"] == 2
    assert result.counts["class"] == dict(created=1, updated=0, no_change=0, removed=0, errors=1)
    assert result.counts["enrollment"]["errors"] == 1
    assert person(store, "S2") is not None
    assert ("ART5", "S2") not in active_enrollments(store)


def test_primary_teacher_error_rejects_only_the_enrollment(store, district):
    result = upload(store, [teacher(primary_teacher="maybe"), student(1)])
    assert result.counts["staff"]["created"] == 1 and result.counts["class"]["created"] == 1
    assert result.counts["enrollment"]["errors"] == 1
    assert active_enrollments(store) == {("MATH5", "S1")}


def test_org_error_rejects_the_whole_row(store, district):
    result = upload(store, [teacher(), student(1, org_sis_id="9999", classId="ART5")])
    assert result.counts["school"]["errors"] == 1
    assert result.counts["student"]["errors"] == 1
    assert result.counts["class"]["errors"] == 1
    assert result.counts["enrollment"]["errors"] == 1
    assert result.rows["rejected"] == 1
    assert person(store, "S1") is None


def test_ragged_row_counts_only_as_rejected_row(store, district):
    data = users_csv([teacher()]) + b",0101,S9,Too,Few,s9@example.org\r\n"
    result = upload(store, data)
    assert issues_by_row(result) == {3: ["ROW_FIELD_COUNT"]}
    assert result.rows["rejected"] == 1
    assert all(c["errors"] == 0 for c in result.counts.values())


def test_changed_name_counts_as_updated(store, district):
    upload(store, class_of(2))
    result = upload(store, [teacher(), student(1, userLastName="Renamed"), student(2)])
    assert result.counts["student"] == dict(created=0, updated=1, no_change=1, removed=0, errors=0)
    assert result.counts["staff"]["no_change"] == 1
    assert person(store, "S1")["last_name"] == "Renamed"


def test_blank_optional_value_keeps_what_is_stored(store, district):
    upload(store, [student(1, userStateId="ST-1", classDisplayName="Math with Ms L")])
    result = upload(store, [student(1, userStateId="", classDisplayName="")])
    assert result.counts["student"]["no_change"] == 1
    assert result.counts["class"]["no_change"] == 1
    assert person(store, "S1")["state_sis_id"] == "ST-1"
    assert roster_state(store)["classes"][0][4] == "Math with Ms L"


def test_person_new_at_a_school_counts_as_updated(store, district):
    upload(store, [student(1)])
    result = upload(
        store,
        [
            student(1),
            student(1, org_sis_id="0202", classId="ALG8", className="Algebra", classGrade="05"),
        ],
    )
    assert result.counts["student"]["updated"] == 1
    assert result.counts["school"]["no_change"] == 2
    assert ("S1", "0202") in roster_state(store)["memberships"]


def test_id_change_rule_renames_the_person_and_keeps_enrollments(store, district):
    upload(store, [teacher(), student(1)])
    result = upload(store, [teacher(), student(1, userId="S1-NEW")])
    assert [(i["code"], i["severity"]) for i in result.issues] == [("USERID_CHANGED", "warning")]
    assert result.counts["student"] == dict(created=0, updated=1, no_change=0, removed=0, errors=0)
    assert result.counts["enrollment"]["no_change"] == 2
    assert person(store, "S1") is None and person(store, "S1-NEW")["email"] == "s1@example.org"
    assert ("MATH5", "S1-NEW") in active_enrollments(store)


def test_id_change_does_not_fire_when_the_old_id_is_still_in_the_file(store, district):
    upload(store, [student(1)])
    result = upload(
        store, [student(1, userEmail="other@example.org"), student(2, userEmail="s1@example.org")]
    )
    assert "EMAIL_TAKEN" in codes(result) and "USERID_CHANGED" not in codes(result)


def test_third_party_district_rejects_students_and_applies_staff(store):
    store.create_district("tp", "Clever District", "clever")
    store.add_school("tp", "0101", "Lincoln")
    result = upload(store, [teacher(), student(1)], district="tp")
    assert codes(result) == ["ROLE_NOT_ALLOWED"]
    assert "Clever" in result.issues[0]["message"]
    assert result.counts["staff"]["created"] == 1 and result.counts["student"]["errors"] == 1
    assert person(store, "T1") is not None and person(store, "S1") is None


def test_remove_class_unenrolls_everyone(store, district):
    upload(store, class_of(3) + class_of(1, class_id="ART5"))
    result = upload(
        store,
        [row(action="remove-class", classId="MATH5", userId="", userEmail="")],
        confirm_removals=True,
    )
    assert result.counts["class"]["removed"] == 1
    assert result.counts["enrollment"]["removed"] == 4
    assert result.counts["school"]["no_change"] == 1
    assert result.counts["student"] == dict.fromkeys(result.counts["student"], 0)
    assert active_enrollments(store, "MATH5") == set()
    assert active_enrollments(store, "ART5") == {("ART5", "T1"), ("ART5", "S1")}
    again = upload(store, [row(action="REMOVE-CLASS", classId="MATH5")])
    assert again.counts["class"] == dict(created=0, updated=0, no_change=1, removed=0, errors=0)


def test_deactivate_user_keeps_history_and_reactivation_counts_as_updated(store, district):
    upload(store, class_of(5))
    result = upload(store, [row(action="DEACTIVATE-USER", userId="S1")])
    assert result.counts["student"]["removed"] == 1
    assert result.counts["enrollment"]["removed"] == 1
    assert person(store, "S1")["active"] is False or person(store, "S1")["active"] == 0
    back = upload(store, [student(1)])
    assert back.counts["student"]["updated"] == 1
    assert back.counts["enrollment"]["updated"] == 1
    assert bool(person(store, "S1")["active"])


def test_remove_enrollment_and_missing_enrollment(store, district):
    upload(store, class_of(5))
    result = upload(
        store,
        [
            row(action="REMOVE-ENROLLMENT", userId="S1"),
            row(action="REMOVE-ENROLLMENT", userId="S1", classId="MATH5"),
        ],
    )
    assert result.counts["enrollment"]["removed"] == 1
    assert ("MATH5", "S1") not in active_enrollments(store)
    again = upload(store, [row(action="REMOVE-ENROLLMENT", userId="S1")])
    assert codes(again) == ["ACTION_ENROLLMENT_NOT_FOUND"]
    assert again.counts["enrollment"]["no_change"] == 1
    assert again.rows["with_warnings"] == 1


def test_failure_in_the_middle_of_apply_leaves_the_store_exactly_as_before(
    store, district, monkeypatch
):
    upload(store, class_of(3))
    before = roster_state(store)

    def broken(*args, **kwargs):
        raise OperationalError("UPDATE ...", {}, Exception("disk I/O error"))

    monkeypatch.setattr(roster.apply, "_deactivate", broken)  # runs after the inserts/updates
    result = upload(store, class_of(6, userLastName="Changed"))
    assert result.status == "failed" and not result.applied
    assert [i.code for i in result.file_issues] == ["FAILED"]
    assert "nothing was applied" in result.file_issues[0].message
    assert roster_state(store) == before


def test_mass_removal_guard_holds_the_upload(store, district):
    rows = []
    for k in range(5):
        rows += class_of(1, class_id=f"C{k}")
    upload(store, rows)
    before = roster_state(store)
    removing = [row(action="REMOVE-CLASS", classId="C0"), row(action="REMOVE-CLASS", classId="C1")]
    held = upload(store, removing)
    assert held.status == "failed" and not held.applied and held.held
    assert [(i.code, i.severity) for i in held.file_issues] == [
        ("REMOVALS_NEED_CONFIRMATION", "error")
    ]
    assert "2 of 5 active classes (40%)" in held.file_issues[0].message
    assert held.counts["class"]["removed"] == 2
    assert roster_state(store) == before
    checked = upload(store, removing, apply=False)
    assert checked.status == "completed"
    assert [(i.code, i.severity) for i in checked.file_issues] == [
        ("REMOVALS_NEED_CONFIRMATION", "warning")
    ]
    confirmed = upload(store, removing, confirm_removals=True)
    assert confirmed.applied and confirmed.counts["class"]["removed"] == 2


def test_guard_share_is_configurable(store, district):
    rows = []
    for k in range(5):
        rows += class_of(1, class_id=f"C{k}")
    upload(store, rows)
    result = upload(
        store, [row(action="REMOVE-CLASS", classId="C0")], settings=Settings(removal_share=0.5)
    )
    assert result.applied


def test_upload_record_keeps_the_audit_trail(store, district):
    data = users_csv(class_of(1) + [row(userId="X", userEmail="")])
    result = upload(store, data)
    record = store.upload(result.upload_id)
    assert record.state == "applied" and record.actor == "test"
    assert record.file_sha256 == hashlib.sha256(data).hexdigest()
    assert record.counts == result.counts
    assert [i["code"] for i in record.issues] == ["EMAIL_REQUIRED"]
    assert record.report.startswith(b"\xef\xbb\xbf")
    assert record.payload is None
    assert [u.id for u in store.recent_uploads("d1")] == [result.upload_id]


def test_rows_of_one_class_conflicting_are_all_rejected(store, district):
    result = upload(store, [teacher(), student(1, className="Math five")])
    assert codes(result).count("CLASSNAME_CONFLICT") == 2
    assert result.counts["class"]["errors"] == 1
    assert result.counts["enrollment"]["errors"] == 2
    assert roster_state(store)["classes"] == []


@pytest.mark.parametrize("grade,stored", [("K", "KG"), ("5", "05"), ("Pre-K", "PK")])
def test_grade_aliases_are_stored_normalised(store, district, grade, stored):
    result = upload(store, [teacher(), student(1, userGrade=grade)])
    assert codes(result) == ["USERGRADE_NORMALIZED"]
    assert person(store, "S1")["grade"] == stored
    again = upload(store, [teacher(), student(1, userGrade=stored)])
    assert again.counts["student"]["no_change"] == 1
