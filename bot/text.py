"""Plain-text rendering of a processed file: the CLI's human output and `make demo`."""

from __future__ import annotations

from collections import Counter

from roster.pipeline import FileResult
from roster.states import FileStatus
from validation.catalog import CATALOG

STATUS_WORDS = {
    FileStatus.COMPLETED: "Completed: every row was applied",
    FileStatus.COMPLETED_WITH_ERRORS: (
        "Completed with errors: valid rows applied, the rest are in the report"
    ),
    FileStatus.FAILED: "Failed: nothing was applied",
}
#: The same statuses for a check (dry run), which applies nothing.
CHECK_WORDS = {
    FileStatus.COMPLETED: "Completed: every row can be applied",
    FileStatus.COMPLETED_WITH_ERRORS: (
        "Completed with errors: the valid rows can be applied, the rest are in the report"
    ),
    FileStatus.FAILED: "Failed: this file cannot be applied as it is",
}
BUCKET_TITLES = ("created", "updated", "no change", "removed", "errors")


def counts_table(counts: dict[str, dict[str, int]]) -> str:
    header = f"{'':<12}" + "".join(f"{t:>10}" for t in BUCKET_TITLES)
    lines = [header]
    for entity, c in counts.items():
        lines.append(
            f"{entity:<12}"
            + "".join(
                f"{c[k]:>10}" for k in ("created", "updated", "no_change", "removed", "errors")
            )
        )
    return "\n".join(lines)


def top_issues(result: FileResult, limit: int = 5) -> list[tuple[str, int, str]]:
    """(code, number of rows, one-line fix) for the most frequent row issue codes."""
    per_code = Counter(i["code"] for i in result.issues)
    return [(code, n, CATALOG[code].fix) for code, n in per_code.most_common(limit)]


def summary_text(result: FileResult, dry_run: bool) -> str:
    mode = (
        "Check only (nothing applied)"
        if dry_run
        else ("Applied" if result.applied else "Not applied")
    )
    words = CHECK_WORDS if dry_run else STATUS_WORDS
    partly = "partly applicable" if dry_run else "partly applied"
    lines = [
        f"{result.file} ({result.kind}) - {words.get(result.status, result.status)}",
        f"{mode}. Rows: {result.rows['total']} "
        f"(rejected {result.rows['rejected']}, {partly} {result.rows['partly_applied']}, "
        f"with warnings {result.rows['with_warnings']}, blank rows skipped "
        f"{result.rows['blank_skipped']})",
    ]
    if result.encoding and result.encoding != "utf-8":
        lines.append(f"Read as {result.encoding}.")
    for issue in result.file_issues:
        lines.append(f"  [{issue.severity}] {issue.code}: {issue.message}")
        lines.append(f"      fix: {issue.fix}")
    if result.dropped_report_columns:
        lines.append(
            "Error-report columns were recognised and ignored: "
            + ", ".join(result.dropped_report_columns)
        )
    if result.status != FileStatus.FAILED or result.held:
        lines += ["", counts_table(result.counts)]
    top = top_issues(result)
    if top:
        lines += ["", "Top issues:"]
        lines += [f"  {code} x{n}: {fix}" for code, n, fix in top]
    if result.error_report:
        lines += ["", f"Error report: {result.error_report}"]
    if result.changes_file:
        lines += [f"Changes file: {result.changes_file} ({result.changes_count} change(s))"]
    return "\n".join(lines)
