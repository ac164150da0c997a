"""Referential integrity of the link tables, kept by the application (roster/models.py).

memberships and enrollments have no FOREIGN KEY constraints (they are checked row by row and
dominated the time of a large upload on PostgreSQL).  These tests run a district through
creation, moves between schools, ID changes, every removal action and a second district
holding the same user and class ids, then ask the database itself for any link row that
points at a missing row or at another district's row.  On SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

import roster.apply
from roster.export import download_csv
from roster.undo import history
from tests.builders import class_of, row, student, teacher
from tests.conftest import set_up_district
from tests.roster_helpers import roster_state, upload

DANGLING = {
    "membership without its person": """
        SELECT m.id FROM memberships m LEFT JOIN people p ON p.id = m.person_id
        WHERE p.id IS NULL""",
    "membership without its school": """
        SELECT m.id FROM memberships m LEFT JOIN schools s ON s.id = m.school_id
        WHERE s.id IS NULL""",
    "membership across districts": """
        SELECT m.id FROM memberships m JOIN people p ON p.id = m.person_id
        JOIN schools s ON s.id = m.school_id WHERE p.district_id <> s.district_id""",
    "enrollment without its class": """
        SELECT e.id FROM enrollments e LEFT JOIN classes c ON c.id = e.class_pk
        WHERE c.id IS NULL""",
    "enrollment without its person": """
        SELECT e.id FROM enrollments e LEFT JOIN people p ON p.id = e.person_id
        WHERE p.id IS NULL""",
    "enrollment across districts": """
        SELECT e.id FROM enrollments e JOIN people p ON p.id = e.person_id
        JOIN classes c ON c.id = e.class_pk WHERE p.district_id <> c.district_id""",
    "person without its district": """
        SELECT p.id FROM people p LEFT JOIN districts d ON d.id = p.district_id
        WHERE d.id IS NULL""",
}


def dangling(store) -> dict[str, list[int]]:
    with store.engine.connect() as conn:
        found = {name: [r[0] for r in conn.execute(text(sql))] for name, sql in DANGLING.items()}
    return {name: ids for name, ids in found.items() if ids}


def link_counts(store) -> tuple[int, int]:
    with store.engine.connect() as conn:
        return (
            conn.execute(text("SELECT count(*) FROM memberships")).scalar_one(),
            conn.execute(text("SELECT count(*) FROM enrollments")).scalar_one(),
        )


def test_link_rows_never_dangle_through_a_district_lifecycle(store, district):
    set_up_district(store, "d2")
    # the same user and class ids in two districts must link within their own district
    for key in ("d1", "d2"):
        rows = [
            dict(r, userEmail=r["userEmail"].replace("example.org", f"{key}.example.org"))
            for r in class_of(3) + class_of(2, class_id="ART5")
        ]
        result = upload(store, rows, district=key)
        assert result.applied and result.issues == []
    # S1 moves to the other school (and into one of its classes); S2 changes its userId
    moved = [
        teacher(userEmail="t1@d1.example.org"),
        student(
            1,
            userEmail="s1@d1.example.org",
            org_sis_id="0202",
            classId="SCI5",
            className="Science 5",
            userGrade="05",
        ),
        teacher(
            userId="T2",
            userEmail="t2@d1.example.org",
            org_sis_id="0202",
            classId="SCI5",
            className="Science 5",
        ),
        student(2, userId="S2-NEW", userEmail="s2@d1.example.org"),
    ]
    assert upload(store, moved).applied
    # every removal action
    removals = [
        row(action="REMOVE-ENROLLMENT", userId="S3", classId="MATH5"),
        row(action="REMOVE-CLASS", classId="ART5"),
        row(action="DEACTIVATE-USER", userId="T1"),
    ]
    result = upload(store, removals, confirm_removals=True)
    assert result.applied and result.counts["class"]["removed"] == 1

    assert dangling(store) == {}
    # d1: T1 S1 S2 S3 at 0101, S1 and T2 at 0202; d2: T1 S1 S2 S3 at 0101
    # d1: MATH5 4 + ART5 3 + SCI5 2; d2: MATH5 4 + ART5 3 (removed ones are kept inactive)
    assert link_counts(store) == (10, 16)


def test_a_failure_while_linking_saves_nothing(store, district, monkeypatch):
    """A planned link whose id cannot be resolved fails the upload before anything is saved."""
    upload(store, class_of(1))
    before = roster_state(store)

    real_pk = roster.apply._pk

    def lose_a_key(keys, values):  # one stored row "disappears" mid-apply
        return real_pk(roster.apply.KeyMap(keys.keys[1:], keys.ids[1:]), values)

    monkeypatch.setattr(roster.apply, "_pk", lose_a_key)
    with pytest.raises(LookupError):
        upload(store, class_of(3) + class_of(2, class_id="ART5"))
    assert roster_state(store) == before
    assert dangling(store) == {}


def indexes(store) -> set[tuple[str, str]]:
    """The roster's indexes as the database lists them (name, definition)."""
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            sql = "SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type = 'index'"
        else:
            sql = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        return {tuple(r) for r in conn.execute(text(sql))}


def test_a_bulk_load_saves_the_same_roster_and_keeps_every_index(store, district, monkeypatch):
    """An upload into empty tables is a bulk load: the tables' plain indexes are built
    again after the rows are written.  What it saves, the download, the history and the
    database's indexes are those of an ordinary upload."""
    set_up_district(store, "d2")
    rows = class_of(3) + class_of(2, class_id="ART5")
    schema = indexes(store)
    monkeypatch.setattr(roster.apply, "BULK_ROWS", 1)  # d1, into empty tables: bulk
    moved = [
        dict(r, userEmail=r["userEmail"].replace("example.org", "d1.example.org")) for r in rows
    ]
    assert upload(store, moved, district="d1").applied
    assert indexes(store) == schema
    monkeypatch.setattr(roster.apply, "BULK_ROWS", 10**9)  # d2: row by row
    assert upload(store, rows, district="d2").applied
    ordinary = download_csv(store, "d2", "all")
    assert download_csv(store, "d1", "all").replace(b"d1.example.org", b"example.org") == ordinary
    logs = {}  # the change log: the same lines, each with its row's key
    for key in ("d2", "d1"):
        lines = [line for c in ("MATH5", "ART5") for line in history(store, key, class_id=c)]
        logs[key] = [{k: v for k, v in x.items() if k not in ("upload_id", "at")} for x in lines]
    assert logs["d1"] and logs["d1"] == logs["d2"]


def test_a_bulk_load_beside_a_reader_of_the_same_tables(store, district, monkeypatch):
    """Another transaction reading the tables (another district's check) neither blocks a
    bulk load nor is blocked by it: on PostgreSQL the load goes row by row."""
    monkeypatch.setattr(roster.apply, "BULK_ROWS", 1)
    schema = indexes(store)
    with store.reader.connect() as reader:  # a read transaction, left open
        reader.begin()
        reader.execute(text("SELECT count(*) FROM enrollments")).scalar_one()
        reader.execute(text("SELECT count(*) FROM changes")).scalar_one()
        assert upload(store, class_of(3)).applied
        assert reader.execute(text("SELECT count(*) FROM enrollments")).scalar_one() in (0, 4)
    assert indexes(store) == schema
    assert link_counts(store) == (4, 4)


def test_a_failed_bulk_load_leaves_every_index(store, district, monkeypatch):
    monkeypatch.setattr(roster.apply, "BULK_ROWS", 1)
    schema = indexes(store)

    def lose_every_key(keys, values):
        raise LookupError("a planned row refers to a key that was not saved")

    monkeypatch.setattr(roster.apply, "_pk", lose_every_key)
    with pytest.raises(LookupError):
        upload(store, class_of(3))
    assert indexes(store) == schema
    assert link_counts(store) == (0, 0)
