"""Download (product.md "Download"): content per kind and school, the round trip, refusals,
and the CLI's exit codes — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

import pytest

from roster.export import download_csv
from roster.store import RosterError
from tests.builders import row, student, teacher, users_csv
from tests.roster_helpers import codes, roster_state, upload
from tests.test_cli import cli
from validation.dictionary import USERS_HEADERS

BOM = b"\xef\xbb\xbf"


def parse(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(BOM)
    reader = csv.reader(io.StringIO(data[len(BOM) :].decode("utf-8"), newline=""))
    header = next(reader)
    assert header == list(USERS_HEADERS)
    return [dict(zip(header, r)) for r in reader]


def keys(rows: list[dict[str, str]]) -> set[tuple[str, str, str]]:
    return {(r["userId"], r["org_sis_id"], r["classId"]) for r in rows}


def no_class(**values: str) -> dict[str, str]:
    return dict(classId="", className="", classGrade="", primary_teacher="", **values)


ROSTER = [
    # a teacher in two classes (primary in one, co-teacher in the other), display name + subject
    teacher(classDisplayName="Ms. Lopez - Math", classSubject="Math"),
    teacher(
        classId="ART34",
        className="Art 3-4",
        classGrade="03,04",
        primary_teacher="N",
        classSubject="Art",
    ),
    teacher(
        userId="T2",
        userEmail="t2@example.org",
        userFirstName="Ray",
        classId="ART34",
        className="Art 3-4",
        classGrade="03,04",
        primary_teacher="Y",
    ),
    # students with leading zeros and secondary IDs, one at two schools
    student(1, userId="000123", userDistrictId="0042", userStateId="00077"),
    student(2, classId="ART34", className="Art 3-4", classGrade="03,04", userGrade="03"),
    student(2, userGrade="03", **no_class(org_sis_id="0202")),
    student(3),
    # an administrator with no class, at one school
    teacher(
        userId="A1",
        userEmail="a1@example.org",
        userRole="administrator",
        **no_class(org_sis_id="0202"),
    ),
]


@pytest.fixture
def roster(store, district):
    result = upload(store, ROSTER)
    assert result.applied and codes(result) == [], result.issues
    return store


def test_all_has_one_row_per_person_school_class(roster):
    rows = parse(download_csv(roster, "d1", "all"))
    assert keys(rows) == {
        ("T1", "0101", "MATH5"),
        ("T1", "0101", "ART34"),
        ("T2", "0101", "ART34"),
        ("000123", "0101", "MATH5"),
        ("S2", "0101", "ART34"),
        ("S2", "0202", ""),
        ("S3", "0101", "MATH5"),
        ("A1", "0202", ""),
    }
    assert len(rows) == 8
    assert all(r["action"] == "" for r in rows)
    by_key = {(r["userId"], r["classId"]): r for r in rows}
    assert by_key[("T1", "MATH5")]["primary_teacher"] == "Y"
    assert by_key[("T1", "ART34")]["primary_teacher"] == "N"
    assert by_key[("S3", "MATH5")]["primary_teacher"] == ""
    assert by_key[("A1", "")]["primary_teacher"] == "" and by_key[("A1", "")]["className"] == ""
    art = by_key[("S2", "ART34")]
    assert (art["className"], art["classGrade"], art["classSubject"]) == ("Art 3-4", "03,04", "Art")
    math = by_key[("000123", "MATH5")]
    assert (math["classDisplayName"], math["classSubject"]) == ("Ms. Lopez - Math", "Math")
    assert (math["userDistrictId"], math["userStateId"], math["userGrade"]) == (
        "0042",
        "00077",
        "05",
    )


@pytest.mark.parametrize(
    "kind,people",
    [
        ("students", {"000123", "S2", "S3"}),
        ("staff", {"T1", "T2", "A1"}),
        ("admins", {"A1"}),
        ("all", {"T1", "T2", "A1", "000123", "S2", "S3"}),
    ],
)
def test_each_kind_selects_its_roles(roster, kind, people):
    assert {r["userId"] for r in parse(download_csv(roster, "d1", kind))} == people


def test_school_filter(roster):
    rows = parse(download_csv(roster, "d1", "all", school="0202"))
    assert keys(rows) == {("S2", "0202", ""), ("A1", "0202", "")}
    staff = parse(download_csv(roster, "d1", "staff", school="0101"))
    assert {r["userId"] for r in staff} == {"T1", "T2"}


def test_leading_zeros_and_bom_are_kept(roster):
    data = download_csv(roster, "d1", "students")
    assert data.startswith(BOM)
    text = data.decode("utf-8-sig")
    assert ",0101,000123," in text and ",0042,00077," in text
    assert '"03,04"' in text


def test_inactive_people_and_classes_are_left_out(roster):
    upload(
        roster,
        [row(action="REMOVE-CLASS", classId="ART34"), row(action="DEACTIVATE-USER", userId="S3")],
        confirm_removals=True,
    )
    rows = parse(download_csv(roster, "d1", "all"))
    assert "S3" not in {r["userId"] for r in rows}
    assert "ART34" not in {r["classId"] for r in rows}
    # S2's only class at 0101 is gone, so S2 keeps a row without class there; T2 likewise
    assert {("S2", "0101", ""), ("T2", "0101", "")} <= keys(rows)


def test_round_trip_download_then_upload_gives_only_no_change(roster):
    before = roster_state(roster)
    data = download_csv(roster, "d1", "all")
    result = upload(roster, data)
    assert result.status == "completed" and codes(result) == []
    for entity, c in result.counts.items():
        assert c["created"] == c["updated"] == c["removed"] == c["errors"] == 0, (entity, c)
    assert result.counts["student"]["no_change"] == 3
    assert result.counts["staff"]["no_change"] == 3
    assert result.counts["class"]["no_change"] == 2
    assert result.counts["enrollment"]["no_change"] == 6
    assert roster_state(roster) == before
    assert download_csv(roster, "d1", "all") == data


def test_round_trip_per_kind_and_school(roster):
    before = roster_state(roster)
    for kind in ("students", "staff", "admins"):
        for school in (None, "0101", "0202"):
            data = download_csv(roster, "d1", kind, school)
            if data.count(b"\n") <= 1:
                continue
            result = upload(roster, data)
            changes = sum(
                c["created"] + c["updated"] + c["removed"] + c["errors"]
                for c in result.counts.values()
            )
            assert changes == 0, (kind, school, result.counts)
    assert roster_state(roster) == before


def test_formula_looking_values_round_trip(store, district):
    upload(store, [teacher(classDisplayName="=SUM(A1)", classSubject="-Math")])
    data = download_csv(store, "d1", "all")
    assert b"'=SUM(A1)" in data and b"'-Math" in data
    assert sum(c["updated"] for c in upload(store, data).counts.values()) == 0


def test_empty_selection_is_the_header_line_only(store, district):
    data = download_csv(store, "d1", "all")
    assert data == BOM + (",".join(USERS_HEADERS) + "\r\n").encode()
    upload(store, [teacher()])
    assert parse(download_csv(store, "d1", "students")) == []


def test_third_party_district_may_download_only_staff_and_admins(store):
    store.create_district("tp", "Clever District", "clever")
    store.add_school("tp", "0101", "Lincoln")
    upload(store, [teacher()], district="tp")
    for kind in ("students", "all"):
        with pytest.raises(RosterError, match="Clever"):
            download_csv(store, "tp", kind)
    assert {r["userId"] for r in parse(download_csv(store, "tp", "staff"))} == {"T1"}
    assert parse(download_csv(store, "tp", "admins")) == []


def test_unknown_school_district_or_kind_is_refused(store, district):
    with pytest.raises(RosterError, match="no school '9999'.*0101, 0202"):
        download_csv(store, "d1", "all", school="9999")
    with pytest.raises(RosterError, match="no district 'nope'"):
        download_csv(store, "nope", "all")
    with pytest.raises(RosterError, match="choose one of"):
        download_csv(store, "d1", "teachers")


# --- the command line ---------------------------------------------------------------------------
@pytest.fixture
def cli_roster(tmp_path):
    for args in [
        ("district", "create", "d1", "--name", "District One"),
        ("school", "add", "d1", "0101", "--name", "Lincoln"),
        ("school", "add", "d1", "0202", "--name", "Washington"),
        ("district", "create", "tp", "--name", "Clever", "--enrollment-source", "clever"),
        ("school", "add", "tp", "0101", "--name", "Lincoln"),
    ]:
        assert cli(tmp_path, *args).returncode == 0
    (tmp_path / "users.csv").write_bytes(users_csv(ROSTER))
    assert cli(tmp_path, "upload", "d1", "users.csv").returncode == 0
    return tmp_path


def test_cli_download_to_stdout_and_to_a_file(cli_roster):
    done = subprocess_bytes(cli_roster, "download", "d1", "all")
    assert done.returncode == 0
    assert len(parse(done.stdout)) == 8
    done = cli(cli_roster, "download", "d1", "students", "--school", "0202", "-o", "s.csv")
    assert done.returncode == 0, done.stderr
    assert keys(parse((cli_roster / "s.csv").read_bytes())) == {("S2", "0202", "")}
    again = cli(cli_roster, "upload", "d1", "s.csv", "--json")
    assert again.returncode == 0 and '"updated": 0' in again.stdout


def test_cli_refusals_exit_2_with_the_reason(cli_roster):
    for args, reason in [
        (("tp", "students"), "Clever"),
        (("tp", "all"), "Clever"),
        (("d1", "all", "--school", "9999"), "no school '9999'"),
        (("nope", "staff"), "no district 'nope'"),
    ]:
        done = cli(cli_roster, "download", *args)
        assert done.returncode == 2, args
        assert reason in done.stderr and done.stdout == ""
    empty = cli(cli_roster, "download", "tp", "staff")
    assert empty.returncode == 0 and empty.stdout.lstrip("\ufeff").startswith("action,org_sis_id")


def subprocess_bytes(tmp_path, *args):
    """Like tests.test_cli.cli, but stdout as bytes (to see the BOM)."""
    import os
    import subprocess
    import sys

    from tests.test_cli import ROOT

    env = {k: v for k, v in os.environ.items() if k != "ROSTERBOT_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "--db", f"sqlite:///{tmp_path / 'cli.sqlite3'}", *args],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
    )
