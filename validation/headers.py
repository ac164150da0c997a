"""Header checks, driven by a data dictionary.  Every header problem is reported in one pass."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from validation.catalog import Severity
from validation.dictionary import REPORT_COLUMNS, Column, Kind
from validation.issues import FileIssue, file_issue


@dataclass
class HeaderResult:
    #: dictionary header -> position in the file
    positions: dict[str, int] = field(default_factory=dict)
    #: positions of the file's own columns, in order (report columns left out)
    original_positions: list[int] = field(default_factory=list)
    #: report columns (row_number, status, ...) found and dropped
    dropped: list[str] = field(default_factory=list)
    issues: list[FileIssue] = field(default_factory=list)


def _letter(position: int) -> str:
    """Spreadsheet column letter of a 0-based position (0 -> A, 26 -> AA)."""
    name, n = "", position + 1
    while n:
        n, rem = divmod(n - 1, 26)
        name = chr(65 + rem) + name
    return name


def suggest(name: str, choices: list[str], cutoff: float = 70) -> str | None:
    """The dictionary header closest to a misspelt one, if any is close enough."""
    from rapidfuzz import fuzz, process, utils  # only for a file with an unknown header

    found = process.extractOne(
        name, choices, scorer=fuzz.WRatio, processor=utils.default_process, score_cutoff=cutoff
    )
    return found[0] if found else None


_SEPARATORS = {";": "semicolons (;)", "\t": "tabs", "|": "vertical bars (|)"}
#: At most this many header issues are listed; one more issue says how many were left out.
MAX_HEADER_ISSUES = 50
#: How close (rapidfuzz ratio, 0-100) an unknown header must be to a missing dictionary header
#: to count as its misspelling (`usrEmail` -> userEmail is 94; `Notes` is nowhere near).
MISSPELLING_SCORE = 80


def _wrong_separator(header: str, by_folded: dict[str, str]) -> str:
    """A detail for a header line that is several dictionary headers joined by another
    separator (the reader takes such a file when it finds three; fewer arrive here)."""
    for sep, name in _SEPARATORS.items():
        parts = [p.strip().casefold() for p in header.split(sep)]
        if len(parts) > 1 and sum(p in by_folded for p in parts) >= 2:
            return (
                f"; it looks like several headers separated by {name} instead of commas: "
                'save the file again as "CSV UTF-8 (Comma delimited)"'
            )
    return ""


def _misspelling(name: str, missing: list[str]) -> str | None:
    """The dictionary header, absent from the file, that `name` is a close misspelling of."""
    if not missing:
        return None
    from rapidfuzz import fuzz, process, utils  # only for a file with an unknown header

    found = process.extractOne(
        name,
        missing,
        scorer=fuzz.ratio,
        processor=utils.default_process,
        score_cutoff=MISSPELLING_SCORE,
    )
    return found[0] if found else None


def _capped(issues: list[FileIssue]) -> list[FileIssue]:
    """The first MAX_HEADER_ISSUES issues, and one more of the next issue's code saying how
    many were left out (a 900-column file must not make 900 messages)."""
    if len(issues) <= MAX_HEADER_ISSUES:
        return issues
    rest = issues[MAX_HEADER_ISSUES:]
    code = rest[0].code
    severity = "error" if any(i.severity == "error" for i in rest) else "warning"
    per_code = Counter(i.code for i in rest)
    listed = ", ".join(f"{c} ×{n:,}" for c, n in per_code.most_common())
    more = FileIssue(
        code=code,
        severity=severity,
        column="",
        message=f"…and {len(rest):,} more header issues not listed ({listed}).",
        fix=rest[0].fix,
    )
    return [*issues[:MAX_HEADER_ISSUES], more]


def check_headers(
    headers: list[str],
    columns: tuple[Column, ...],
    file_label: str,
    required_when: dict[str, bool] | None = None,
    groups: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (),
) -> HeaderResult:
    """Map the file's headers onto the dictionary.

    `required_when` says, for each conditional header, whether its condition holds
    (e.g. userGrade when a row has userRole = student).  `groups` lists (trigger headers,
    headers then required), e.g. the class group.
    """
    result = HeaderResult()
    names = [c.name for c in columns]
    by_folded = {n.casefold(): n for n in names}
    report_columns = set(REPORT_COLUMNS)
    seen: dict[str, int] = {}
    unknown: list[str] = []
    exact = {h for h in headers if h in names}
    for pos, raw in enumerate(headers):
        stripped = raw.strip()
        if stripped in report_columns:
            result.dropped.append(stripped)
            continue
        result.original_positions.append(pos)
        if not stripped:
            result.issues.append(file_issue("HEADER_BLANK", detail=f"{_letter(pos)} ({pos + 1})"))
            continue
        if stripped in seen:
            result.issues.append(file_issue("HEADER_DUPLICATE", column=stripped, value=stripped))
            continue
        seen[stripped] = pos
        if raw in names:
            result.positions[raw] = pos
        elif stripped.casefold() in by_folded:
            correct = by_folded[stripped.casefold()]
            if correct in exact or correct in result.positions:  # `userId` and `UserID`
                result.issues.append(file_issue("HEADER_DUPLICATE", column=correct, value=raw))
                continue
            result.issues.append(file_issue("HEADER_CASE", column=correct, value=raw))
            result.positions[correct] = pos  # read under the dictionary name
        else:
            unknown.append(stripped)
    present = set(result.positions)
    missing = [n for n in names if n not in present]
    for stripped in unknown:
        target = _misspelling(stripped, missing)
        if target:
            detail = f"; did you mean {target}? (the file has no {target} column)"
            severity = Severity.ERROR  # its data would otherwise be lost
        else:
            detail = _wrong_separator(stripped, by_folded) or (
                "; the column is ignored and kept in the error report"
            )
            severity = Severity.WARNING
        result.issues.append(
            file_issue(
                "HEADER_UNKNOWN", column=stripped, value=stripped, detail=detail, severity=severity
            )
        )
    present = set(result.positions)
    for col in columns:
        if col.name in present:
            continue
        if col.kind is Kind.REQUIRED:
            result.issues.append(file_issue("HEADER_MISSING", column=col.name))
        elif col.kind is Kind.CONDITIONAL:
            why = ""
            if (required_when or {}).get(col.name):
                why = f" ({col.condition})"
            for triggers, needed in groups:
                if col.name in needed and present.intersection(triggers):
                    why = (
                        " (the file has class columns, so classId, className, classGrade "
                        "and primary_teacher are all needed)"
                    )
            if why:
                result.issues.append(file_issue("HEADER_MISSING", column=col.name, detail=why))
    # errors first (they decide whether the file is read), so the cap never hides one
    # (then what is missing, the first thing to fix)
    result.issues.sort(key=lambda i: (i.severity != "error", i.code != "HEADER_MISSING"))
    result.issues = _capped(result.issues)
    return result
