"""Wording of the Slack summary that depends on the numbers and on check vs upload."""

from __future__ import annotations

import json

from bot import formatting

FILE = {
    "file": "users.csv",
    "kind": "users",
    "status": "completed_with_errors",
    "applied": False,
    "file_issues": [],
    "counts": {},
    "issues": [],
    "rows": {
        "total": 1,
        "rejected": 0,
        "partly_applied": 1,
        "with_warnings": 0,
        "blank_skipped": 1,
    },
}


def text_of(blocks) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_one_row_is_singular_and_a_check_applies_nothing():
    check = text_of(formatting.file_summary(FILE, dry_run=True))
    assert "1 row ·" in check and "1 blank row skipped" in check
    assert "1 partly applicable" in check and "partly applied" not in check
    assert "nothing applied (check only)" in check


def test_an_upload_says_applied_and_plural_rows():
    rows = dict(FILE["rows"], total=20, blank_skipped=2)
    upload = text_of(formatting.file_summary(dict(FILE, applied=True, rows=rows), dry_run=False))
    assert "20 rows ·" in upload and "2 blank rows skipped" in upload
    assert "1 partly applied" in upload and "— applied" in upload


def test_a_file_that_could_not_be_read_shows_why_and_no_table_of_zeros():
    zeros = {
        e: dict.fromkeys(("created", "updated", "no_change", "removed", "errors"), 0)
        for e in ("school", "staff", "student", "class", "enrollment")
    }
    failed = dict(
        FILE,
        status="failed",
        counts=zeros,
        rows={
            "total": 0,
            "rejected": 0,
            "partly_applied": 0,
            "with_warnings": 0,
            "blank_skipped": 0,
        },
        file_issues=[
            {
                "code": "HEADER_MISSING",
                "message": "The required column 'userId' is missing.",
                "fix": "Add the missing column.",
            }
        ],
    )
    text = text_of(formatting.file_summary(failed, dry_run=False))
    assert "HEADER_MISSING" in text and "Add the missing column." in text
    assert "created" not in text and "0 rows" not in text
    # held by the removal guard: what it would do is shown (a refused commit shows no table)
    guard = {
        "code": "REMOVALS_NEED_CONFIRMATION",
        "severity": "error",
        "message": "This file would remove 12 of 47 classes.",
        "fix": "Confirm to apply.",
    }
    held = dict(failed, rows=dict(failed["rows"], total=40), file_issues=[guard])
    assert "created" in text_of(formatting.file_summary(held, dry_run=False))
    refused = dict(failed, rows=dict(failed["rows"], total=40))
    assert "created" not in text_of(formatting.file_summary(refused, dry_run=False))
