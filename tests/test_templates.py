"""Templates and the data dictionary (issue 5): templates validate cleanly, the dictionary
text comes from the same table the validator uses."""

from __future__ import annotations

import csv
import io

import pytest

from roster.pipeline import InputFile, Settings, run
from tests.test_cli import cli
from validation import dictionary as d
from validation.catalog import CATALOG
from validation.templates import (
    TEMPLATE_SCHOOL,
    UnknownColumn,
    dictionary_text,
    explain_column,
    template_csv,
)


def rows_of(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize(
    "kind,headers", [("users", d.USERS_HEADERS), ("demographics", d.DEMOGRAPHICS_HEADERS)]
)
def test_template_has_the_dictionary_headers_and_a_few_rows(kind, headers):
    rows = rows_of(template_csv(kind))
    assert rows[0] == list(headers)
    assert 2 <= len(rows) - 1 <= 3
    assert all(len(r) == len(headers) for r in rows)


def _own(data: bytes) -> bytes:
    """The template with its example people replaced by "your own" (other IDs and emails)."""
    text = data.decode("utf-8-sig")
    for example in ("T000045", "S000123", "S000124"):
        text = text.replace(example, "X" + example)
    text = text.replace("@example.org", "@myschools.org")
    return "\ufeff".encode() + text.encode()


@pytest.mark.parametrize("apply", [False, True])
def test_template_rows_validate_cleanly_once_they_are_your_own(store, apply):
    """Every template row passes every rule; only being the example itself is refused."""
    store.create_district("fresh", "Fresh District")
    store.add_school("fresh", TEMPLATE_SCHOOL, "Template School")
    files = [
        InputFile("users.csv", _own(template_csv("users"))),
        InputFile("demographics.csv", _own(template_csv("demographics"))),
    ]
    result = run(store, "fresh", files, apply=apply, actor="test", settings=Settings())
    for f in result.files:
        assert f.status == "completed", (f.kind, f.file_issues, f.issues)
        assert f.issues == [] and f.file_issues == [] and f.report_bytes is None
    users, demo = result.files
    assert users.counts["student"]["created"] == 2 and users.counts["staff"]["created"] == 1
    assert demo.counts["demographics"]["created"] == 2


def test_the_unchanged_template_creates_nobody(store):
    """Issue 12: uploading the template as it is must not create its example people."""
    store.create_district("fresh", "Fresh District")
    store.add_school("fresh", TEMPLATE_SCHOOL, "Template School")
    files = [
        InputFile("users.csv", template_csv("users")),
        InputFile("demographics.csv", template_csv("demographics")),
    ]
    users, demo = run(store, "fresh", files, apply=True, actor="test", settings=Settings()).files
    assert {i["code"] for i in users.issues} == {"TEMPLATE_EXAMPLE_ROW"}
    assert users.rows["rejected"] == 3
    assert all(users.counts[e]["created"] == 0 for e in users.counts)
    assert demo.counts["demographics"]["created"] == 0


def test_template_rows_use_the_dictionary_examples():
    users = rows_of(template_csv("users"))
    header = users[0]
    example_row = [
        dict(zip(header, r))
        for r in users[1:]
        if r[header.index("userId")] == d.column("userId").example
    ][0]
    for name in ("org_sis_id", "userEmail", "userGrade", "classId", "userStateId"):
        assert example_row[name] == d.column(name).example
    with pytest.raises(ValueError):
        template_csv("classes")


@pytest.mark.parametrize(
    "column", [*d.USERS_COLUMNS, *d.DEMOGRAPHICS_COLUMNS], ids=lambda c: c.name
)
def test_dictionary_explains_every_column_with_values_and_codes(column):
    text = explain_column(column.name)
    assert column.name in text and str(column.kind) in text and column.meaning in text
    if column.accepted:
        assert column.accepted in text
    for code in column.codes:
        assert code in text and CATALOG[code].title in text
    assert dictionary_text(column.name) == text


def test_a_column_in_both_files_is_explained_for_each():
    text = explain_column("userId")
    assert "users.csv" in text and "demographics.csv" in text
    assert "USERID_REQUIRED" in text and "DEMO_USER_NOT_FOUND" in text


def test_overview_lists_every_column_of_both_files():
    text = dictionary_text()
    assert "users.csv" in text and "demographics.csv" in text
    for name in (*d.USERS_HEADERS, *d.DEMOGRAPHICS_HEADERS):
        assert name in text


def test_unknown_column_gives_a_helpful_message_listing_the_columns():
    with pytest.raises(UnknownColumn) as err:
        explain_column("useremail")
    message = str(err.value)
    assert "Did you mean userEmail?" in message and "case-sensitive" in message
    for name in (*d.USERS_HEADERS, *d.DEMOGRAPHICS_HEADERS):
        assert name in message
    with pytest.raises(UnknownColumn, match="Did you mean birthDate"):
        dictionary_text("birthdat")


def test_cli_template_and_dictionary(tmp_path):
    done = cli(tmp_path, "template", "demographics", "-o", "demo.csv")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "demo.csv").read_bytes() == template_csv("demographics")
    done = cli(tmp_path, "template", "users")
    assert done.returncode == 0 and done.stdout.lstrip("\ufeff").startswith("action,org_sis_id")
    done = cli(tmp_path, "dictionary", "primary_teacher")
    assert done.returncode == 0 and "PRIMARY_TEACHER_INVALID" in done.stdout
    done = cli(tmp_path, "dictionary")
    assert done.returncode == 0 and "homeLanguage" in done.stdout
    done = cli(tmp_path, "dictionary", "colour")
    assert done.returncode == 2 and "not a users.csv or demographics.csv column" in done.stderr
