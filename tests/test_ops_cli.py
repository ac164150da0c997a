"""What the command line leaves on disk and prints, for an operator (issue #13): reports named
apart, terminal output that cannot carry escape sequences, owner-only files, retention."""

from __future__ import annotations

import json

from tests.builders import class_of, row, users_csv
from tests.test_cli import cli, setup  # noqa: F401 - fixture


def test_two_input_files_with_the_same_name_get_a_report_each(setup):
    for folder, bad in (("north", "north-bad"), ("south", "south-bad")):
        (setup / folder).mkdir()
        rows = class_of(2) + [row(userId="S9", userEmail=bad)]
        (setup / folder / "users.csv").write_bytes(users_csv(rows))
    done = cli(
        setup, "check", "d1", "north/users.csv", "south/users.csv", "--json", "--report-dir", "out"
    )
    assert done.returncode == 0, done.stderr
    files = json.loads(done.stdout)["files"]
    reports = [f["error_report"] for f in files]
    assert len(set(reports)) == 2, reports
    assert reports[0].endswith("users-errors.csv")  # the first keeps the name product.md gives
    texts = [open(r, encoding="utf-8-sig").read() for r in reports]
    assert "north-bad" in texts[0] and "south-bad" not in texts[0]
    assert "south-bad" in texts[1] and "north-bad" not in texts[1]
