"""The roster snapshot an upload is checked against: the same on both databases, however
many rows SQLite hands back at a time (roster/snapshot.py reads it in chunks)."""

from __future__ import annotations

import pandas as pd
import pytest

from roster import snapshot
from tests.builders import class_of, student, teacher
from tests.roster_helpers import roster_state, upload


def _load(store, key: str = "d1"):
    with store.engine.connect() as conn:
        return snapshot.load_snapshot(conn, store.district(key))


def _rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    return sorted(tuple(r) for r in frame[columns].astype(object).itertuples(index=False))


def _roster() -> list[dict[str, str]]:
    rows = class_of(7, "MATH5")
    rows += class_of(3, "ART1")  # the same teacher and three of the same students
    rows.append(teacher(userId="T900", userEmail="solo@example.org", classId=""))
    rows.append(student(950, classId=""))  # a student in no class
    return rows


@pytest.mark.parametrize("fetch_rows", [1, 3, 50_000])
def test_the_snapshot_is_the_same_whatever_the_fetch_size(store, district, monkeypatch, fetch_rows):
    assert upload(store, _roster()).applied
    expected = _load(store)
    monkeypatch.setattr(snapshot, "_FETCH_ROWS", fetch_rows)
    got = _load(store)

    people = ["user_id", "email", "first_name", "last_name", "role", "active"]
    assert _rows(got.people, people) == _rows(expected.people, people)
    assert {"T900", "S950"} <= set(got.people["user_id"])
    assert len(got.people) == len(expected.people) == 10
    assert _rows(got.classes, ["class_id", "org_sis_id"]) == [("ART1", "0101"), ("MATH5", "0101")]
    pairs = ["class_id", "user_id", "is_primary", "active"]
    assert _rows(got.enrollments, pairs) == _rows(expected.enrollments, pairs)
    assert len(got.enrollments) == 12  # 7 + 1 teacher, 3 + 1 teacher
    assert got.enrollments["is_primary"].dtype == bool
    assert _rows(got.memberships, ["user_id", "org_sis_id"]) == _rows(
        expected.memberships, ["user_id", "org_sis_id"]
    )


def test_a_re_upload_read_in_small_chunks_changes_nothing(store, district, monkeypatch):
    rows = _roster()
    assert upload(store, rows).applied
    before = roster_state(store)
    monkeypatch.setattr(snapshot, "_FETCH_ROWS", 2)
    again = upload(store, rows)
    assert again.applied
    assert roster_state(store) == before
    for entity, counts in again.counts.items():
        assert counts["created"] == counts["updated"] == counts["removed"] == 0, entity
    assert again.counts["enrollment"]["no_change"] == 12
    assert again.counts["student"]["no_change"] == 8
