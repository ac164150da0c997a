"""The protocol every file kind follows, and the table it is handed.

A file kind (users.csv, demographics.csv) is a small object with five stages, called in this
order by `roster.pipeline` for each file of that kind:

    headers(raw)                      -> HeaderResult   (outside any transaction)
    load(ctx, conn, table)            -> what the check needs from the store (a snapshot)
    check(ctx, table, loaded)         -> the pure validation's answer (validation/)
    plan(ctx, table, checked, loaded) -> Planned: counts, row issues, what to write
    apply(ctx, conn, planned)         -> writes the plan inside the file's transaction

`load` .. `apply` run inside one transaction that holds the district's upload lock.  What
comes after (messages, row statuses, the error report, the upload record) is the same for
every kind and lives in `roster.steps`.  A kind imports `roster.steps`, never another kind
nor `roster.pipeline`; it is registered in `roster.pipeline.KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from roster.context import RunContext
from roster.states import FileKind
from validation.headers import HeaderResult
from validation.reader import RawTable


@dataclass(frozen=True)
class KindTable:
    """A file as a kind sees it: the raw table, its headers and its dictionary columns."""

    raw: RawTable
    header: HeaderResult
    #: the kind's dictionary columns, trimmed; an absent column is blank
    table: pd.DataFrame
    #: records whose field count differs from the header's (their rows are not checked)
    ragged: np.ndarray


@dataclass
class Planned:
    """What a kind's plan stage hands back to the pipeline."""

    #: the kind's own plan, handed back to its `apply`
    plan: Any
    #: the JSON `counts` of the file: entity -> bucket -> n
    counts: dict[str, dict[str, int]]
    #: row issues (idx, column, code, value, detail), any order
    issues: pd.DataFrame
    #: per row: nothing of it is applied
    rejected: np.ndarray
    #: per row: something of it is applied
    applied_any: np.ndarray
    #: why applying needs the admin's confirmation ("" when it does not)
    hold: str = ""
    #: the other guards that want the admin's confirmation (roster.results.Hold)
    holds: list = field(default_factory=list)
    #: what the held file would remove, readable, the first few ("class M101 (Math 6)")
    hold_items: list[str] = field(default_factory=list)
    #: how many removals in all
    hold_total: int = 0
    #: (label, carried, ok) per part of a row, so a partly applied row says what was saved
    #: (validation.report.saved_notes); empty for a kind whose rows have one part
    parts: list = field(default_factory=list)
    #: people the file accepted (userId, role_l), for a demographics.csv of the same run
    accepted_people: pd.DataFrame | None = None
    #: one line per change applying would make (roster.changes.CHANGE_COLUMNS)
    changes: pd.DataFrame | None = None
    #: what a hold would remove, the first few in words, and how many in all (results.Hold)
    hold_items: list[str] = field(default_factory=list)
    hold_total: int = 0


class FileKindSpec(Protocol):
    """One kind of roster file.  See the module docstring for when each stage runs."""

    kind: FileKind
    #: the kind's columns in dictionary order (validation.dictionary)
    columns: tuple[str, ...]

    def empty_counts(self) -> dict[str, dict[str, int]]: ...

    def headers(self, raw: RawTable) -> HeaderResult: ...

    def load(self, ctx: RunContext, conn: Connection, table: KindTable) -> Any: ...

    def check(self, ctx: RunContext, table: KindTable, loaded: Any) -> Any: ...

    def plan(self, ctx: RunContext, table: KindTable, checked: Any, loaded: Any) -> Planned: ...

    def apply(self, ctx: RunContext, conn: Connection, planned: Planned) -> None: ...
