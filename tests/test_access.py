"""Access, store side (issue #7): admin grants, and one district can never touch another's data.

The Slack side (who may press what, in which channel or thread) is tested with the bot; here
the store and the pipeline: grants, district-scoped snapshot/apply, EMAIL_TAKEN across
districts, district-scoped upload records.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from roster.models import Enrollment, Person, School, SchoolClass
from roster.store import RosterError, Store
from tests.builders import SCHOOLS, class_of, row, student, teacher
from tests.roster_helpers import codes, upload


def district_state(store: Store, key: str) -> dict[str, list[tuple]]:
    """One district's people, classes and enrollments (the roster_state of that district)."""
    did = store.district(key).id
    with store.engine.connect() as conn:
        people = conn.execute(
            select(
                Person.user_id,
                Person.email,
                Person.first_name,
                Person.last_name,
                Person.role,
                Person.grade,
                Person.active,
            ).where(Person.district_id == did)
        ).all()
        classes = conn.execute(
            select(
                SchoolClass.class_id,
                School.org_sis_id,
                SchoolClass.name,
                SchoolClass.grade,
                SchoolClass.active,
            )
            .join(School, School.id == SchoolClass.school_id)
            .where(SchoolClass.district_id == did)
        ).all()
        enrollments = conn.execute(
            select(SchoolClass.class_id, Person.user_id, Enrollment.is_primary, Enrollment.active)
            .select_from(Enrollment)
            .join(SchoolClass, SchoolClass.id == Enrollment.class_pk)
            .join(Person, Person.id == Enrollment.person_id)
            .where(SchoolClass.district_id == did)
        ).all()
    return {
        name: sorted(tuple(r) for r in rows)
        for name, rows in (("people", people), ("classes", classes), ("enrollments", enrollments))
    }


@pytest.fixture
def two_districts(store) -> Store:
    """Districts A and B with the same school ids; B holds T1, S1..S3 in MATH5 (emails @b.org)."""
    for key in ("A", "B"):
        store.create_district(key, f"District {key}")
        for org, name in SCHOOLS:
            store.add_school(key, org, name)
    b_rows = [
        dict(r, userEmail=r["userEmail"].replace("example.org", "b.org")) for r in class_of(3)
    ]
    assert upload(store, b_rows, district="B").applied
    return store


# --- grants ---------------------------------------------------------------------------------
def test_upload_needs_system_and_enrollment_of_that_district(store):
    for key in ("A", "B"):
        store.create_district(key, key)
    store.grant_admin("A", "U_BOTH", system=True, enrollment=True)
    store.grant_admin("A", "U_SYS", system=True)
    store.grant_admin("A", "U_ENR", enrollment=True)
    store.grant_admin("A", "U_SUP", support=True)
    assert store.grant("A", "U_BOTH").can_upload
    assert not store.grant("A", "U_SYS").can_upload
    assert not store.grant("A", "U_ENR").can_upload
    support = store.grant("A", "U_SUP")
    assert support.support and not support.can_upload
    # a grant in A gives nothing in B
    assert store.grant("B", "U_BOTH") is None
    assert [g.district_key for g in store.grants_for("U_BOTH")] == ["A"]
    assert store.grant("A", "U_NOBODY") is None


def test_regranting_adds_access_and_revoking_takes_it_away(store):
    # issue 16: grant adds to what the user holds; revoke (new) is how access is reduced
    store.create_district("A", "A")
    store.grant_admin("A", "U1", system=True, enrollment=True)
    store.grant_admin("A", "U2", system=True)
    store.grant_admin("A", "U1", support=True)
    grant = store.grant("A", "U1")
    assert (grant.system, grant.enrollment, grant.support, grant.can_upload) == (
        True,
        True,
        True,
        True,
    )
    store.revoke_admin("A", "U1", system=True, enrollment=True)  # down to support only
    grant = store.grant("A", "U1")
    assert (grant.system, grant.enrollment, grant.support, grant.can_upload) == (
        False,
        False,
        True,
        False,
    )
    assert len(store.grants_for("U1")) == 1


def test_grant_for_an_unknown_district_is_refused(store):
    with pytest.raises(RosterError, match="no district 'nope'"):
        store.grant_admin("nope", "U1", system=True, enrollment=True)


# --- one district never changes another -----------------------------------------------------
def test_same_ids_in_another_district_leave_it_untouched(two_districts):
    store = two_districts
    before_b = district_state(store, "B")
    a_rows = [dict(r, userFirstName="Changed", className="Other name") for r in class_of(3)]
    result = upload(store, a_rows, district="A")
    assert result.applied and result.status == "completed", result.issues
    # in A everything is new, although B has the same userIds and classId
    assert result.counts["student"]["created"] == 3 and result.counts["class"]["created"] == 1
    assert district_state(store, "B") == before_b
    assert {p[2] for p in district_state(store, "A")["people"]} == {"Changed"}


def test_removals_naming_another_districts_ids_remove_nothing_there(two_districts):
    store = two_districts
    before_b = district_state(store, "B")
    removing = [
        row(action="DEACTIVATE-USER", userId="S1", userEmail="s1@b.org"),
        row(action="REMOVE-CLASS", classId="MATH5"),
        row(action="REMOVE-ENROLLMENT", userId="S2", userEmail="s2@b.org"),
    ]
    result = upload(store, removing, district="A", confirm_removals=True)
    assert not any(c["removed"] for c in result.counts.values()), result.counts
    assert "ACTION_USER_NOT_FOUND" in codes(result)
    assert district_state(store, "B") == before_b
    assert district_state(store, "A") == {"people": [], "classes": [], "enrollments": []}


def test_an_email_of_another_district_is_taken(two_districts):
    store = two_districts
    before_b = district_state(store, "B")
    result = upload(store, [teacher(userId="TA", userEmail="T1@B.ORG"), student(4)], district="A")
    assert ("EMAIL_TAKEN" in codes(result)) and result.applied
    assert [i["row"] for i in result.issues if i["code"] == "EMAIL_TAKEN"] == [2]
    assert district_state(store, "B") == before_b
    assert [p[0] for p in district_state(store, "A")["people"]] == ["S4"]


def test_upload_records_are_per_district(two_districts):
    store = two_districts
    b_ids = [u.id for u in store.recent_uploads("B")]
    a = upload(store, class_of(1), district="A")
    checked = upload(store, class_of(1), district="A", apply=False)
    assert [u.id for u in store.recent_uploads("A")] == [checked.upload_id, a.upload_id]
    assert [u.id for u in store.recent_uploads("B")] == b_ids
    assert all(u.district_id == store.district("B").id for u in store.recent_uploads("B"))
    with pytest.raises(RosterError):
        store.recent_uploads("nope")
