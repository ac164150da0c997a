"""The words a person reads about a processed file, in one place: what was applied (or would
be, in a check), what held it, which issues matter most.  The CLI, the Slack summary, the
"summary" answer in a thread and `status` all build their sentences here, from plain data
(the `--json` shape of a file, or a stored upload record), so they never disagree.

Also the plain-text rendering of a processed file: the CLI's human output.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from roster.pipeline import FileResult
from roster.states import FileStatus, UploadState
from validation.catalog import CATALOG

BUCKET_TITLES = ("created", "updated", "no change", "removed", "errors")
TOP_ISSUES = 5
HELD_ITEMS_SHOWN = 10

#: how entities are named in a sentence: (label, singular, plural, entities counted together)
ENTITY_WORDS = (
    ("school", "school", "schools", ("school",)),
    ("people", "person", "people", ("staff", "student")),
    ("class", "class", "classes", ("class",)),
    ("enrollment", "enrollment", "enrollments", ("enrollment",)),
    ("demographics", "demographics record", "demographics records", ("demographics",)),
)
#: one entity on its own, for `status` (each entity keeps its own totals)
ENTITY_NOUNS = {
    "school": ("school", "schools"),
    "staff": ("staff member", "staff members"),
    "student": ("student", "students"),
    "class": ("class", "classes"),
    "enrollment": ("enrollment", "enrollments"),
    "demographics": ("demographics record", "demographics records"),
}
ENTITY_ORDER = tuple(ENTITY_NOUNS)


@dataclass(frozen=True)
class GuardWords:
    """What a guard holds, in words, and what confirms it where."""

    #: "Held — nothing applied yet" is followed by: "this file would …"
    holds: str
    #: how the items are introduced ("It would remove, among others:")
    items: str
    #: the button to press in Slack (the same Confirm button for every guard)
    slack: str
    #: the command-line flag that confirms it
    flag: str
    #: where the full list is: "changes" (the changes file) or "report" (the error report)
    full_list: str = "changes"


GUARDS: dict[str, GuardWords] = {
    "REMOVALS_NEED_CONFIRMATION": GuardWords(
        holds="removes a large share of the roster",
        items="It would remove",
        slack="If these removals are intended, press *Confirm and apply* below: I apply this "
        "same file (if it is edited after this, I apply nothing and say so).",
        flag="--confirm-removals",
    ),
    "ID_CHANGES_NEED_CONFIRMATION": GuardWords(
        holds="changes the userId of many people",
        items="It would change the IDs of",
        slack="If these ID changes are intended, press *Confirm and apply* below: I apply this "
        "same file (if it is edited after this, I apply nothing and say so).",
        flag="--confirm-id-changes",
        full_list="report",
    ),
}


class Verdict(StrEnum):
    """What happened to a file, as one word every surface agrees on (icon, reaction, label)."""

    APPLIED = "applied"  # an upload committed, no row error
    APPLIED_WITH_ERRORS = "applied_with_errors"  # committed; some rows were rejected
    NOTHING_APPLIED = "nothing_applied"  # committed nothing: every row was rejected
    HELD = "held"  # a guard holds it for confirmation
    FAILED = "failed"  # file-level failure or a failed commit
    CHECKED = "checked"  # a check with no row error
    CHECKED_WITH_ERRORS = "checked_with_errors"
    CHECK_FAILED = "check_failed"


#: the label a person reads first; `outcome()` follows it with what was (or was not) applied,
#: so a label never says "nothing applied" itself (said once, not twice)
LABELS = {
    Verdict.APPLIED: "Applied",
    Verdict.APPLIED_WITH_ERRORS: "Applied, some rows rejected",
    Verdict.NOTHING_APPLIED: "Not applied",
    Verdict.HELD: "Held",
    Verdict.FAILED: "Failed",
    Verdict.CHECKED: "Check passed",
    Verdict.CHECKED_WITH_ERRORS: "Check found errors",
    Verdict.CHECK_FAILED: "Check failed",
}
#: the worst first: the verdict of several files is the first of theirs in this order
SEVERITY_ORDER = (
    Verdict.FAILED,
    Verdict.CHECK_FAILED,
    Verdict.HELD,
    Verdict.NOTHING_APPLIED,
    Verdict.APPLIED_WITH_ERRORS,
    Verdict.CHECKED_WITH_ERRORS,
    Verdict.APPLIED,
    Verdict.CHECKED,
)


def _get(f: Any, key: str, default: Any = None) -> Any:
    if isinstance(f, Mapping):
        return f.get(key, default)
    return getattr(f, key, default)


def held_codes(file_issues: Iterable[Mapping[str, Any]] | None) -> list[str]:
    """The guards that held a file: its guard issues with severity error."""
    codes = []
    for issue in file_issues or []:
        code = _get(issue, "code")
        if code in GUARDS and str(_get(issue, "severity")) == "error" and code not in codes:
            codes.append(code)
    return codes


def verdict(f: Any, *, dry_run: bool) -> Verdict:
    """One file's verdict from its JSON (or a FileResult, or a stored upload record)."""
    status = str(_get(f, "status") or "")
    state = _get(f, "state")
    if state == UploadState.HELD or (status == FileStatus.FAILED and held_codes(_file_issues(f))):
        return Verdict.HELD
    if status == FileStatus.FAILED or state in (UploadState.FAILED, UploadState.ABANDONED):
        return Verdict.CHECK_FAILED if dry_run else Verdict.FAILED
    if dry_run:
        if status == FileStatus.COMPLETED_WITH_ERRORS:
            return Verdict.CHECKED_WITH_ERRORS
        return Verdict.CHECKED
    if not _changed(_get(f, "counts") or {}) and _all_rejected(_get(f, "rows") or {}):
        return Verdict.NOTHING_APPLIED
    if status == FileStatus.COMPLETED_WITH_ERRORS:
        return Verdict.APPLIED_WITH_ERRORS
    return Verdict.APPLIED


def overall(verdicts: Iterable[Verdict]) -> Verdict | None:
    found = set(verdicts)
    return next((v for v in SEVERITY_ORDER if v in found), None)


def _file_issues(f: Any) -> list:
    return list(_get(f, "file_issues") or [])


def _all_rejected(rows: Mapping[str, Any]) -> bool:
    total = int(rows.get("total", 0) or 0)
    return total > 0 and int(rows.get("rejected", 0) or 0) >= total


def _group_totals(counts: Mapping[str, Any], buckets: Sequence[str]) -> list[tuple[int, str]]:
    out = []
    for _, one, many, entities in ENTITY_WORDS:
        n = sum(
            int((counts.get(e) or {}).get(b, 0) or 0)
            for e in entities
            if isinstance(counts.get(e), Mapping)
            for b in buckets
        )
        if n:
            out.append((n, one if n == 1 else many))
    return out


def _changed(counts: Mapping[str, Any]) -> list[str]:
    return [f"{n} {noun}" for n, noun in _group_totals(counts, ("created", "updated", "removed"))]


def _rejected(counts: Mapping[str, Any]) -> list[str]:
    return [f"{n} {noun}" for n, noun in _group_totals(counts, ("errors",))]


def joined(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _changes(counts: Mapping[str, Any], would: bool) -> str:
    """ "3 people applied and 1 class removed" / "apply 3 people and remove 1 class" ('' when
    nothing changes)."""
    applied = [f"{n} {noun}" for n, noun in _group_totals(counts, ("created", "updated"))]
    removed = [f"{n} {noun}" for n, noun in _group_totals(counts, ("removed",))]
    if would:
        parts = ([f"apply {joined(applied)}"] if applied else []) + (
            [f"remove {joined(removed)}"] if removed else []
        )
    else:
        parts = ([f"{joined(applied)} applied"] if applied else []) + (
            [f"{joined(removed)} removed"] if removed else []
        )
    return " and ".join(parts)


def outcome(f: Any, *, dry_run: bool) -> str:
    """What was applied, in plain words (a sentence without the final full stop):
    "12 people and 30 enrollments applied; 3 people rejected", "nothing was applied: all 58
    rows were rejected", "nothing applied (check only); an upload would apply 2 classes".

    `f` is a file's `--json` object, a FileResult or a stored upload record."""
    v = verdict(f, dry_run=dry_run)
    counts, rows = _get(f, "counts") or {}, _get(f, "rows") or {}
    rejected = _rejected(counts)
    total, n_rejected = int(rows.get("total", 0) or 0), int(rows.get("rejected", 0) or 0)
    would = _changes(counts, would=True)
    if v == Verdict.HELD:
        guards = held_codes(_file_issues(f)) or ["REMOVALS_NEED_CONFIRMATION"]
        what = joined([GUARDS[g].holds for g in guards])
        then = f"; once confirmed it would {would}" if would else ""
        return f"nothing applied yet: this file {what}{then}"
    if v == Verdict.CHECK_FAILED:
        return "nothing applied (check only); this file cannot be applied as it is"
    if v == Verdict.FAILED:
        return "nothing was applied"
    if dry_run:
        if not would and _all_rejected(rows):
            return (
                "nothing applied (check only); nothing would be applied either: "
                f"all {total} row{'s' if total != 1 else ''} would be rejected"
            )
        text = "nothing applied (check only); an upload would " + (would or "change nothing")
        if rejected:
            text += f"; {joined(rejected)} would be rejected"
        elif n_rejected:
            text += f"; {n_rejected} row{'s' if n_rejected != 1 else ''} would be rejected"
        return text
    if v == Verdict.NOTHING_APPLIED:
        return f"nothing was applied: all {total} row{'s' if total != 1 else ''} were rejected"
    text = _changes(counts, would=False) or (
        "applied: nothing needed to change (the roster already matches)"
    )
    if rejected:
        text += f"; {joined(rejected)} rejected"
    elif n_rejected:
        text += f"; {n_rejected} row{'s' if n_rejected != 1 else ''} rejected"
    return text


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


# -- a held file -------------------------------------------------------------------------------


REMOVAL_ROWS = "the file's REMOVE-CLASS, REMOVE-ENROLLMENT and DEACTIVATE-USER rows"


def held_lines(
    holds: Sequence[Any], *, slack: bool, report: str = "", changes: str = ""
) -> list[str]:
    """What a held file would do and how to confirm it, one line each (no "Nothing was
    applied": the label says it once).  `holds` are roster.results.Hold (or their dicts);
    `report` / `changes` name the error report and the changes file, when there are."""
    lines = []
    for hold in holds:
        words = GUARDS.get(_get(hold, "code"))
        if words is None:
            continue
        detail = str(_get(hold, "detail") or "").strip()
        code = _get(hold, "code")
        lines.append(f"This file {words.holds} ({code})" + (f": {detail}." if detail else "."))
        items = list(_get(hold, "items") or [])
        total = int(_get(hold, "total") or len(items))
        if items:
            shown = items[:HELD_ITEMS_SHOWN]
            more = total - len(shown)
            listed = "; ".join(shown) + (f"; …and {more} more" if more > 0 else "")
            lines.append(f"{words.items} {listed}.")
        where = (changes or REMOVAL_ROWS) if words.full_list == "changes" else report
        if where:
            lines.append(f"The full list is in {where}.")
        lines.append(
            words.slack
            if slack
            else f"If this is intended, run the same command again with {words.flag}."
        )
    return lines


def holds_of(f: Any) -> list[Any]:
    """A file's holds: its `holds` when it has them, else one per guard issue (a stored
    record keeps only the file issues)."""
    holds = list(_get(f, "holds") or [])
    if holds:
        return holds
    return [
        {"code": i.get("code"), "detail": "", "items": [], "total": 0}
        for i in _file_issues(f)
        if isinstance(i, Mapping) and i.get("code") in held_codes([i])
    ]


# -- top issues ----------------------------------------------------------------------------------


def ranked_codes(issues: Iterable[Mapping[str, Any]]) -> list[tuple[str, int, str]]:
    """(code, number of issues, severity) per code: errors first, then warnings, each by
    count (most first), then by code."""
    per_code: Counter = Counter()
    severity: dict[str, str] = {}
    for issue in issues:
        code = str(_get(issue, "code"))
        per_code[code] += 1
        sev = _get(issue, "severity")
        if sev is None:
            entry = CATALOG.get(code)
            sev = entry.severity if entry else "error"
        severity.setdefault(code, str(sev))
    return sorted(
        ((code, n, severity[code]) for code, n in per_code.items()),
        key=lambda t: (t[2] != "error", -t[1], t[0]),
    )


# -- counts for `status` -------------------------------------------------------------------------


def entity_totals(counts: Mapping[str, Any] | None) -> list[str]:
    """Each entity's own totals, never added together: "students: 3 created, 1 updated"."""
    counts = counts or {}
    out = []
    for entity in [e for e in ENTITY_ORDER if e in counts] + sorted(
        set(counts) - set(ENTITY_ORDER)
    ):
        c = counts.get(entity)
        if not isinstance(c, Mapping):
            continue
        parts = [
            f"{int(c.get(key, 0))} {label}"
            for key, label in (
                ("created", "created"),
                ("updated", "updated"),
                ("removed", "removed"),
                ("errors", "rejected"),
            )
            if int(c.get(key, 0) or 0)
        ]
        if parts:
            noun = ENTITY_NOUNS.get(entity, (entity, entity))[1]
            out.append(f"{noun}: {', '.join(parts)}")
    return out


def is_failed_check(record: Any) -> bool:
    return bool(_get(record, "dry_run")) and _get(record, "state") == UploadState.FAILED


def collapse_failed_checks(records: Sequence[Any], limit: int) -> tuple[list[Any], list[Any]]:
    """(records to show, failed checks folded into one line): failed checks never push the
    uploads out of a `status` list.  At most `limit` records are shown."""
    shown = [r for r in records if not is_failed_check(r)][:limit]
    folded = [r for r in records if is_failed_check(r)]
    return shown, folded


def folded_checks_line(folded: Sequence[Any]) -> str:
    """One line for the failed checks a `status` list folds: how many, and the latest with
    why it failed ("file: HEADER_MISSING ×2")."""
    if not folded:
        return ""
    latest = folded[0]
    name = _get(latest, "file_name") or "file"
    n = len(folded)
    per_code = Counter(str(i.get("code")) for i in _file_issues(latest) if isinstance(i, Mapping))
    codes = ", ".join(c + (f" ×{k}" if k > 1 else "") for c, k in per_code.most_common())
    return (
        f"{n} failed check{'s' if n != 1 else ''} (nothing applied) not listed; the latest: "
        f"#{_get(latest, 'id')} {name}" + (f" — file: {codes}" if codes else "")
    )


# -- the command line ----------------------------------------------------------------------------


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


def top_issues(result: Any, limit: int = TOP_ISSUES) -> list[tuple[str, int, str, str]]:
    """(code, number of issues, severity, one-line fix): errors first, then warnings."""
    return [
        (code, n, sev, CATALOG[code].fix if code in CATALOG else "")
        for code, n, sev in ranked_codes(_get(result, "issues") or [])
    ][:limit]


def summary_text(result: FileResult, dry_run: bool, district: str = "") -> str:
    """A processed file for the terminal.  `district`: "Name (key)"."""
    v = verdict(result, dry_run=dry_run)
    # a check, a held file and a refused commit applied nothing
    partly = "partly applied" if result.applied else "partly applicable"
    rows = result.rows
    lines = []
    if district:
        lines.append(f"District: {district}")
    lines += [
        f"{result.file} ({result.kind}) - {LABELS[v]}",
        sentence(outcome(result, dry_run=dry_run))
        + f" Rows: {rows['total']} (rejected {rows['rejected']}, {partly} "
        f"{rows['partly_applied']}, with warnings {rows['with_warnings']}, blank rows skipped "
        f"{rows['blank_skipped']})",
    ]
    if result.encoding and result.encoding != "utf-8":
        lines.append(f"Read as {result.encoding}.")
    for issue in result.file_issues:
        if v == Verdict.HELD and issue.code in GUARDS:
            continue  # said below, with what to do
        lines.append(f"  [{issue.severity}] {issue.code}: {issue.message}")
        lines.append(f"      fix: {issue.fix}")
    if v == Verdict.HELD:
        lines += [""] + held_lines(
            holds_of(result),
            slack=False,
            report=result.error_report or "",
            changes=str(getattr(result, "changes_file", "") or ""),
        )
    if result.dropped_report_columns:
        lines.append(
            "Error-report columns were recognised and ignored: "
            + ", ".join(result.dropped_report_columns)
        )
    if result.status != FileStatus.FAILED or result.held:
        lines += ["", counts_table(result.counts)]
    ranked = ranked_codes(result.issues)
    if ranked:
        lines += ["", "Top issues (errors first):"]
        for code, n, sev, fix in top_issues(result):
            lines.append(f"  {code} x{n} ({sev}): {fix}")
        if len(ranked) > TOP_ISSUES:
            lines.append(
                f"  …and {len(ranked) - TOP_ISSUES} more kinds of issue (see the error report)"
            )
    if result.error_report:
        lines += ["", f"Error report: {result.error_report}"]
    if result.changes_file:
        made = "" if result.applied else " it would make"  # a check, held or refused: none made
        lines += [f"Changes file: {result.changes_file} ({result.changes_count} change(s){made})"]
    return "\n".join(lines)
