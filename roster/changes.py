"""What an upload changes, one line per change: the changes file and the change log.

`users_changes` / `demographics_changes` turn a kind's plan into a frame of CHANGE_COLUMNS
(pandas over whole columns, one frame per kind of change, concatenated once); the same frame
is the changes file (`changes_csv`) of a check or an upload and, for an applied upload, the
rows of the store's change log (`write_change_log`, bulk, in the upload's own transaction).

Field names are the file's own headers (`userEmail`, `className`, `primary_teacher`, ...);
a person gaining or losing a school is an update of its `org_sis_id` ("" -> 0101 / 0101 -> "").
"""

from __future__ import annotations

import io
import json
import os
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, insert, select, text

from roster.apply import insert_columns
from roster.models import Change, Person, SchoolClass
from roster.plan import UploadPlan
from validation.report import _FORMULA_START, escape_column
from validation.snapshot import RosterSnapshot
from validation.vector import edge_bytes, first_index, first_positions, isin

#: the changes file's columns (product.md), in order
FILE_COLUMNS = ("entity", "key", "change", "field", "before", "after", "row_number")
#: plus the stored rows each change touched (resolved by key when not known at plan time)
CHANGE_COLUMNS = (*FILE_COLUMNS, "user_id", "class_id", "person_pk", "class_pk")

CREATED, UPDATED, REMOVED, REACTIVATED = "created", "updated", "removed", "reactivated"

#: person field in the plan -> users.csv header
PERSON_FIELDS = {
    "user_id": "userId",
    "first_name": "userFirstName",
    "last_name": "userLastName",
    "email": "userEmail",
    "role": "userRole",
    "grade": "userGrade",
    "district_sis_id": "userDistrictId",
    "state_sis_id": "userStateId",
}
CLASS_FIELDS = {
    "name": "className",
    "grade": "classGrade",
    "display_name": "classDisplayName",
    "subject": "classSubject",
}
PRIMARY_FIELD = "primary_teacher"
SCHOOL_FIELD = "org_sis_id"


def empty_changes() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in CHANGE_COLUMNS})


_INT_PARTS = ("row_number", "person_pk", "class_pk")


def _part(n: int, only: tuple[str, ...] = CHANGE_COLUMNS, **columns) -> pd.DataFrame:
    """A block of change lines; scalar columns are broadcast, missing ones are blank.
    `only`: the columns to build (FILE_COLUMNS for a changes file alone).

    Arrow-backed columns (large strings, nullable integers): a million created lines are
    never a million Python objects, and the changes file and the log read them as they are."""
    data = {}
    for c in only:
        kind = pa.int64() if c in _INT_PARTS else pa.large_string()
        v = columns.get(c, None if c in _INT_PARTS else "")
        if isinstance(v, (list, tuple, np.ndarray, pd.Series, pd.Index, pa.Array)):
            arr = _to_arrow(v, kind)
        else:  # one value for every line (Arrow repeats it: ~40x faster than a take)
            arr = pa.repeat(pa.scalar(v, kind), n)
        data[c] = pd.arrays.ArrowExtensionArray(arr)
    return pd.DataFrame(data)


def _blocks(n: int, only: tuple[str, ...] = CHANGE_COLUMNS, **columns) -> Iterator[pd.DataFrame]:
    """`_part` as blocks of at most _LINES_BLOCK lines, each built when it is asked for (a
    changes file written block by block holds one block of lines at a time)."""
    if n <= _LINES_BLOCK:
        yield _part(n, only, **columns)
        return
    for start in range(0, n, _LINES_BLOCK):
        stop = min(n, start + _LINES_BLOCK)
        yield _part(stop - start, only, **{k: _lines(v, start, stop) for k, v in columns.items()})


#: change lines per block of `users_change_blocks` (a check's changes file is written while
#: the rest of the check still holds its memory: ~20 MB of Arrow text per 100,000 lines)
_LINES_BLOCK = 100_000


def _lines(values, start: int, stop: int):
    """Lines start:stop of a column given to `_part` (a scalar is every line's value)."""
    if isinstance(values, pd.Series):
        return values.iloc[start:stop]
    if isinstance(values, (list, tuple, np.ndarray, pd.Index, pa.Array, pa.ChunkedArray)):
        return values[start:stop]
    return values


def _to_arrow(values, kind: pa.DataType) -> pa.Array:
    """Any column of values (object or Arrow-backed pandas, numpy, a list) as one Arrow array."""
    if isinstance(values, (list, tuple)):
        values = np.asarray(values, dtype=object)
    arr = values if isinstance(values, pa.Array) else pa.array(values, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != kind:
        arr = arr.cast(pa.int64()) if pa.types.is_floating(arr.type) else arr
        arr = arr.cast(kind)
    return arr


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else empty_changes()


def _field_updates(
    old: pd.DataFrame,
    new: pd.DataFrame,
    fields: Mapping[str, str],
    where: np.ndarray | None = None,
    only: tuple[str, ...] = CHANGE_COLUMNS,
    **per_row,
) -> list[pd.DataFrame]:
    """UPDATED lines, one per row and field whose text differs between `old` and `new` (row
    aligned; `fields`: column -> the header the line names).  `per_row`: the other columns of
    the lines, arrays aligned with the rows (or scalars), taken where the field changed."""
    parts = []
    for col, header in fields.items():
        before, after = _text(old[col].to_numpy()), _text(new[col].to_numpy())
        m = before != after if where is None else where & (before != after)
        if m.any():
            taken = {k: v[m] if isinstance(v, np.ndarray) else v for k, v in per_row.items()}
            parts.append(
                _part(
                    int(m.sum()),
                    only,
                    change=UPDATED,
                    field=header,
                    before=before[m],
                    after=after[m],
                    **taken,
                )
            )
    return parts


def _kind(role) -> np.ndarray:
    return np.where(np.asarray(role, dtype=object) == "student", "student", "staff")


def _text(values) -> np.ndarray:
    s = pd.Series(values, dtype=object)
    return s.where(s.notna(), "").astype(str).to_numpy(dtype=object)


class _Rows:
    """Spreadsheet row numbers of the first row naming a key in one of the file's columns."""

    def __init__(self, column, row_numbers: np.ndarray) -> None:
        self.column, self.row_numbers = column, row_numbers
        self._keys: pa.Array | None = None

    def of(self, keys) -> np.ndarray:
        """Row numbers as floats (NaN: no row names the key), for `_part`."""
        if len(keys) == 0:
            return np.zeros(0, dtype=float)
        if self._keys is None:  # the column, hashed by index_in below, is converted once
            self._keys = _to_arrow(self.column, pa.large_string())
        pos = pc.index_in(_to_arrow(keys, pa.large_string()), value_set=self._keys)
        pos = pos.fill_null(-1).to_numpy(zero_copy_only=False)
        out = np.full(len(pos), np.nan)
        hit = pos >= 0
        out[hit] = self.row_numbers[pos[hit]]
        return out


class _CodedRows:
    """`_Rows` from the integer codes the check gave the column (UsersDerived.user_key,
    class_key: numbered in order of first appearance, -1 for a blank cell): only the
    column's distinct values are hashed, and an enrollment's row is found from the two codes
    (no "classId/userId" text for every row of the file)."""

    def __init__(self, column: pd.Series, codes: np.ndarray, row_numbers: np.ndarray) -> None:
        codes = np.asarray(codes, dtype=np.int64)
        top = np.maximum.accumulate(codes) if len(codes) else codes
        first = np.empty(len(codes), dtype=bool)
        first[:1] = codes[:1] >= 0
        first[1:] = top[1:] > top[:-1]
        #: the first row of each distinct value, in order of first appearance
        self.first = np.flatnonzero(first)
        rank = np.full(int(codes.max(initial=-1)) + 2, -1, dtype=np.int64)
        rank[codes[self.first]] = np.arange(len(self.first))
        #: per row: its value's position among the distinct values (-1: blank)
        self.rank: np.ndarray | None = rank[codes]  # code -1 takes the last entry, which stays -1
        self.values = _to_arrow(column.take(self.first), pa.large_string())
        self.row_numbers = row_numbers

    def positions(self, keys) -> np.ndarray:
        """Each key's position among the column's distinct values (-1: no row names it)."""
        pos = pc.index_in(_to_arrow(keys, pa.large_string()), value_set=self.values)
        return pos.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)

    def of(self, keys) -> np.ndarray:
        if len(keys) == 0:
            return np.zeros(0, dtype=float)
        return _row_numbers(self.row_numbers, self.first, self.positions(keys))


class _CodedPairRows:
    """The first row of each (classId, userId) pair, from the two columns' `_CodedRows`."""

    def __init__(self, classes: _CodedRows, users: _CodedRows) -> None:
        self.classes, self.users = classes, users
        self.width = max(len(users.first), 1)
        pair = np.where(
            (classes.rank >= 0) & (users.rank >= 0), classes.rank * self.width + users.rank, -1
        )
        codes, uniques = pd.factorize(pair)
        self.pairs = pd.Index(uniques)
        self.first = first_positions(codes, np.arange(len(codes)), len(uniques))
        self.codes = codes  # per row: its pair's position in `pairs` (-1: a blank key)

    def of_rows(self, rows: np.ndarray) -> np.ndarray:
        """Row numbers of the first rows naming the same pairs as the file's `rows` (row
        positions whose classId and userId are both given): found by the rows' own codes,
        without looking up a million pairs' text."""
        return _row_numbers(self.users.row_numbers, self.first, self.codes[rows])

    def of(self, class_ids, user_ids) -> np.ndarray:
        if len(class_ids) == 0:
            return np.zeros(0, dtype=float)
        c, u = self.classes.positions(class_ids), self.users.positions(user_ids)
        wanted = np.where((c >= 0) & (u >= 0), c * self.width + u, -2)  # -2: names no row
        return _row_numbers(self.users.row_numbers, self.first, self.pairs.get_indexer(wanted))


def _row_numbers(row_numbers: np.ndarray, first: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Row numbers as floats of the rows `first[pos]` (NaN where pos is -1)."""
    out = np.full(len(pos), np.nan)
    hit = pos >= 0
    out[hit] = row_numbers[first[pos[hit]]]
    return out


class _TextPairRows:
    """The first row of each (classId, userId) pair, from the "classId/userId" text."""

    def __init__(self, table: pd.DataFrame, row_numbers: np.ndarray) -> None:
        self.rows = _Rows(_pair(table["classId"], table["userId"]), row_numbers)

    def of(self, class_ids, user_ids) -> np.ndarray:
        if len(class_ids) == 0:
            return np.zeros(0, dtype=float)
        return self.rows.of(_pair(class_ids, user_ids))


def _pair(class_ids, user_ids) -> pa.Array:
    """The enrollment keys "classId/userId", joined by Arrow."""
    return pc.binary_join_element_wise(
        _to_arrow(class_ids, pa.large_string()),
        _to_arrow(user_ids, pa.large_string()),
        pa.scalar("/", pa.large_string()),
    )


def _renamed(values: pd.Series, mapping: dict[str, str]) -> np.ndarray:
    """`values` with the keys of `mapping` replaced by its values (userIds across ID changes)."""
    out = values.to_numpy(dtype=object).copy()
    if mapping:
        hit = values.isin(list(mapping)).to_numpy()
        out[hit] = [mapping[v] for v in out[hit]]
    return out


def users_changes(
    table: pd.DataFrame,
    row_numbers: np.ndarray,
    snap: RosterSnapshot,
    plan: UploadPlan,
    id_changes: dict[str, str],
    codes: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> pd.DataFrame:
    """Every change `plan` makes to the stored roster, one line each.

    `id_changes` maps a new userId to the stored one it replaces (UsersCheck.id_changes);
    `codes`: as for `users_change_blocks`.
    """
    return _concat(list(users_change_blocks(table, row_numbers, snap, plan, id_changes, codes)))


def users_change_blocks(
    table: pd.DataFrame,
    row_numbers: np.ndarray,
    snap: RosterSnapshot,
    plan: UploadPlan,
    id_changes: dict[str, str],
    codes: tuple[np.ndarray, np.ndarray | None] | None = None,
    only: tuple[str, ...] = CHANGE_COLUMNS,
) -> Iterator[pd.DataFrame]:
    """`users_changes` a block of lines at a time, in the same order (a changes file written
    block by block never holds every line at once).  `codes`: the check's integer codes of
    userId and classId (UsersDerived.user_key, class_key), to find rows by; `only`: the
    columns to build (FILE_COLUMNS: the changes file's alone)."""
    if codes is not None and codes[1] is not None:
        uid_rows = _CodedRows(table["userId"], codes[0], row_numbers)
        cid_rows = _CodedRows(table["classId"], codes[1], row_numbers)
        pair_rows = _CodedPairRows(cid_rows, uid_rows)
        uid_rows.rank = cid_rows.rank = None  # per row: only the pairs needed them (16 MB)
    else:
        uid_rows, cid_rows = (
            _Rows(table["userId"], row_numbers),
            _Rows(table["classId"], row_numbers),
        )
        pair_rows = _TextPairRows(table, row_numbers)
    del table  # what the lines need of it is taken: the file's cells may be let go meanwhile
    new_uid_of = {old: new for new, old in id_changes.items()}
    people = snap.people.set_index("id") if len(snap.people) else snap.people
    classes = snap.classes.set_index("id") if len(snap.classes) else snap.classes
    enr = snap.enrollments.set_index("id") if len(snap.enrollments) else snap.enrollments

    # people
    new = plan.people_new
    yield from (
        _blocks(
            len(new),
            only,
            entity=_kind(new["role"]),
            key=new["user_id"],
            change=CREATED,
            row_number=uid_rows.of(new["user_id"]),
            user_id=new["user_id"],
        )
    )
    ch = plan.people_changed
    if len(ch):
        old = people.loc[ch["id"].to_numpy()]
        base = dict(entity=_kind(ch["role"]), key=ch["user_id"].to_numpy())
        rows = uid_rows.of(ch["user_id"])
        pks = ch["id"].to_numpy()
        yield from _field_updates(
            old,
            ch,
            PERSON_FIELDS,
            only=only,
            entity=base["entity"],
            key=base["key"],
            row_number=rows,
            user_id=base["key"],
            person_pk=pks,
        )
        m = ~old["active"].astype(bool).to_numpy()
        if m.any():
            yield from (
                _blocks(
                    int(m.sum()),
                    only,
                    entity=base["entity"][m],
                    key=base["key"][m],
                    change=REACTIVATED,
                    row_number=rows[m],
                    user_id=base["key"][m],
                    person_pk=pks[m],
                )
            )
    mem = plan.memberships_new
    if len(mem):
        # a new person's schools are in its created line; with nobody stored, everybody is new
        mem = mem[~isin(mem["user_id"], new["user_id"])] if len(snap.people) else mem.iloc[:0]
        role = pd.concat([ch.set_index("user_id")["role"], people.set_index("user_id")["role"]])
        role = role[~role.index.duplicated()]
        stored_of = pd.Series(_renamed(mem["user_id"], id_changes))
        yield from (
            _blocks(
                len(mem),
                only,
                entity=_kind(role.reindex(stored_of.to_numpy()).to_numpy()),
                key=mem["user_id"],
                change=UPDATED,
                field=SCHOOL_FIELD,
                after=mem["org_sis_id"],
                row_number=uid_rows.of(mem["user_id"]),
                user_id=mem["user_id"],
            )
        )

    # classes
    new = plan.classes_new
    yield from (
        _blocks(
            len(new),
            only,
            entity="class",
            key=new["class_id"],
            change=CREATED,
            row_number=cid_rows.of(new["class_id"]),
            class_id=new["class_id"],
        )
    )
    ch = plan.classes_changed
    if len(ch):
        old = classes.loc[ch["id"].to_numpy()]
        keys, pks = ch["class_id"].to_numpy(), ch["id"].to_numpy()
        rows = cid_rows.of(keys)
        yield from _field_updates(
            old,
            ch,
            CLASS_FIELDS,
            only=only,
            entity="class",
            key=keys,
            row_number=rows,
            class_id=keys,
            class_pk=pks,
        )
        m = ~old["active"].astype(bool).to_numpy()
        yield from (
            _blocks(
                int(m.sum()),
                only,
                entity="class",
                key=keys[m],
                change=REACTIVATED,
                row_number=rows[m],
                class_id=keys[m],
                class_pk=pks[m],
            )
        )

    # enrollments
    new = plan.enrollments_new
    keys = _pair(new["class_id"], new["user_id"])
    new_rows = plan.enrollments_new_rows
    yield from (
        _blocks(
            len(new),
            only,
            entity="enrollment",
            key=keys,
            change=CREATED,
            row_number=pair_rows.of_rows(new_rows)
            if isinstance(pair_rows, _CodedPairRows) and new_rows is not None
            else pair_rows.of(new["class_id"], new["user_id"]),
            user_id=new["user_id"],
            class_id=new["class_id"],
        )
    )
    ch = plan.enrollments_changed
    if len(ch):
        old = enr.loc[ch["id"].to_numpy()]
        uids = _renamed(old["user_id"], new_uid_of)
        cids = old["class_id"].to_numpy(dtype=object)
        keys = cids + "/" + uids
        rows = pair_rows.of(cids, uids)
        m = ~old["active"].astype(bool).to_numpy()
        yield from (
            _blocks(
                int(m.sum()),
                only,
                entity="enrollment",
                key=keys[m],
                change=REACTIVATED,
                row_number=rows[m],
                user_id=uids[m],
                class_id=cids[m],
            )
        )
        before = old["is_primary"].astype(bool).to_numpy()
        after = ch["is_primary"].astype(bool).to_numpy()
        m = before != after
        yield from (
            _blocks(
                int(m.sum()),
                only,
                entity="enrollment",
                key=keys[m],
                change=UPDATED,
                field=PRIMARY_FIELD,
                before=np.where(before[m], "Y", "N"),
                after=np.where(after[m], "Y", "N"),
                row_number=rows[m],
                user_id=uids[m],
                class_id=cids[m],
            )
        )

    # removals (classes, people, then the enrollments they take with them)
    gone = classes.loc[plan.classes_removed] if plan.classes_removed else classes.iloc[:0]
    keys = gone["class_id"].to_numpy(dtype=object) if len(gone) else []
    yield from (
        _blocks(
            len(gone),
            only,
            entity="class",
            key=keys,
            change=REMOVED,
            row_number=cid_rows.of(keys),
            class_id=keys,
            class_pk=np.asarray(plan.classes_removed, dtype=object),
        )
    )
    gone = people.loc[plan.people_removed] if plan.people_removed else people.iloc[:0]
    keys = gone["user_id"].to_numpy(dtype=object) if len(gone) else []
    yield from (
        _blocks(
            len(gone),
            only,
            entity=_kind(gone["role"]) if len(gone) else [],
            key=keys,
            change=REMOVED,
            row_number=uid_rows.of(keys),
            user_id=keys,
            person_pk=np.asarray(plan.people_removed, dtype=object),
        )
    )
    mrem = plan.memberships_removed
    if len(mrem):
        yield from (
            _blocks(
                len(mrem),
                only,
                entity=_kind(mrem["role"]),
                key=mrem["user_id"],
                change=UPDATED,
                field=SCHOOL_FIELD,
                before=mrem["org_sis_id"],
                user_id=mrem["user_id"],
                person_pk=mrem["person_pk"],
            )
        )
    gone = enr.loc[plan.enrollments_removed] if plan.enrollments_removed else enr.iloc[:0]
    if len(gone):
        uids = _renamed(gone["user_id"], new_uid_of)
        cids = gone["class_id"].to_numpy(dtype=object)
        keys = cids + "/" + uids
        yield from (
            _blocks(
                len(gone),
                only,
                entity="enrollment",
                key=keys,
                change=REMOVED,
                row_number=pair_rows.of(cids, uids),
                user_id=uids,
                class_id=cids,
            )
        )


def demographics_changes(
    new_values: pd.DataFrame,
    old_values: pd.DataFrame,
    created: np.ndarray,
    updated: np.ndarray,
    person_pks: pd.Series,
    row_of: pd.Series,
) -> pd.DataFrame:
    """Demographics created (one line per student) and updated (one line per value)."""
    keys = new_values.index.to_numpy(dtype=object)
    pks = person_pks.to_numpy(dtype=object)
    rows = row_of.reindex(new_values.index).to_numpy(dtype=object)
    # a created student's values, kept in `after` so that an undo can be undone
    values = [
        json.dumps({k: v for k, v in r.items() if v}, sort_keys=True)
        for r in new_values[created].to_dict("records")
    ]
    parts = [
        _part(
            int(created.sum()),
            entity="demographics",
            key=keys[created],
            change=CREATED,
            after=values,
            row_number=rows[created],
            user_id=keys[created],
            person_pk=pks[created],
        )
    ]
    parts += _field_updates(
        old_values,
        new_values,
        {c: c for c in new_values.columns},
        where=np.asarray(updated),
        entity="demographics",
        key=keys,
        row_number=rows,
        user_id=keys,
        person_pk=pks,
    )
    return _concat(parts)


def removal_items(
    changes: pd.DataFrame, snap: RosterSnapshot, limit: int = 10
) -> tuple[list[str], int]:
    """The first removals in words ("Ava Johnson 004500: deactivated"), and how many in all:
    what a held summary shows (the full list is the changes file)."""
    removed = changes[(changes["change"] == REMOVED) | (changes["field"] == SCHOOL_FIELD)]
    removed = removed[(removed["change"] == REMOVED) | (removed["after"] == "")]
    first = removed.head(limit)
    people = snap.people.set_index("user_id") if len(snap.people) else None
    classes = snap.classes.set_index("class_id") if len(snap.classes) else None
    items = []
    for entity, key, change, before in zip(
        first["entity"], first["key"], first["change"], first["before"]
    ):
        if entity == "class":
            name = classes["name"].get(key, "") if classes is not None else ""
            items.append(f"class {name} {key}: removed".replace("  ", " "))
        elif entity == "enrollment":
            class_id, _, user_id = str(key).partition("/")
            items.append(f"{user_id}: unenrolled from class {class_id}")
        else:
            who = key
            if people is not None and key in people.index:
                row = people.loc[key]
                who = f"{row['first_name']} {row['last_name']} {key}"
            items.append(
                f"{who}: " + (f"leaves school {before}" if change != REMOVED else "deactivated")
            )
    return items, len(removed)


# --- the changes file ------------------------------------------------------------------------
#: change lines per block of the changes file (bounds the Arrow text being built)
_CSV_BLOCK = 200_000


def changes_csv(changes: pd.DataFrame) -> bytes:
    """The changes file: UTF-8 with BOM, CRLF, formula-looking cells escaped like the error
    report, quoted like Python's csv module (only fields with a comma, quote or line break).

    Arrow string kernels over whole columns, a block of lines at a time; each block's lines
    are taken from the joined column's value buffer in one piece."""
    return changes_csv_blocks([changes])[1] or _csv_start().getvalue()


def changes_csv_blocks(blocks: Iterable[pd.DataFrame]) -> tuple[int, bytes | None]:
    """The changes file of the lines in `blocks` (frames of CHANGE_COLUMNS, in order), each
    block let go once written, and how many lines it has (None: no line at all)."""
    out, count = _csv_start(), 0
    for changes in blocks:
        count += len(changes)
        for start in range(0, len(changes), _CSV_BLOCK):
            out.write(_csv_lines(changes.iloc[start : start + _CSV_BLOCK]))
        del changes
    return count, (out.getvalue() if count else None)


def _csv_start() -> io.BytesIO:
    out = io.BytesIO()  # getvalue() hands over its buffer: the file is not held twice
    out.write(("\ufeff" + ",".join(FILE_COLUMNS) + "\r\n").encode())
    return out


class ChangesAhead:
    """The changes file of a check, built in a second thread while the plan counts and the
    pipeline words the rows' messages and builds the error report (most of the work is
    Arrow's hashing and string kernels, which let go of the GIL), a block of change lines at
    a time: the lines are never all held at once.  `result()` waits for it: (the number of
    lines, the file's bytes or None when nothing would change)."""

    def __init__(self, lines: Callable[[], Iterable[pd.DataFrame]]) -> None:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="changes-file")
        # the builder is handed over in a list the thread empties: what it refers to (the
        # plan, the file's columns) is let go as soon as the lines are built
        self._future = pool.submit(self._build, [lines])
        pool.shutdown(wait=False)

    @staticmethod
    def _build(holder: list) -> tuple[int, bytes | None]:
        return changes_csv_blocks(holder.pop()())

    def result(self) -> tuple[int, bytes | None]:
        return self._future.result()


def _csv_lines(changes: pd.DataFrame) -> pa.Buffer:
    # entity, change and field are our own words; only keys and values come from a file
    fields = [
        _arrow_text(changes[c])
        if c in ("entity", "change", "field")
        else _quoted(_escaped(_arrow_text(changes[c])))
        for c in FILE_COLUMNS[:-1]
    ]
    numbers = _floats(changes["row_number"])
    rows = pa.array(numbers, mask=np.isnan(numbers)).cast(pa.int64()).cast(pa.large_string())
    fields.append(pc.fill_null(rows, ""))
    text = partial(pa.scalar, type=pa.large_string())
    lines = pc.binary_join_element_wise(*fields, text(","))
    lines = pc.binary_join_element_wise(lines, text("\r\n"), text(""))
    return _joined(lines)


def _arrow_text(values: pd.Series) -> pa.Array:
    if isinstance(values.dtype, pd.ArrowDtype):
        return pc.fill_null(_to_arrow(values, pa.large_string()), "")
    arr = pa.array(values.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    return pc.fill_null(arr, "")


def _floats(values: pd.Series) -> np.ndarray:
    """Numbers as floats, NaN where there is none (object or Arrow-backed columns)."""
    if isinstance(values.dtype, pd.ArrowDtype):
        return _to_arrow(values, pa.int64()).to_numpy(zero_copy_only=False).astype(float)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


#: the first bytes that make a cell a formula (validation.report.escape_cell; all ASCII)
_FORMULA_BYTES = np.zeros(256, dtype=bool)
_FORMULA_BYTES[[ord(c) for c in _FORMULA_START]] = True
_NO_BYTES = np.zeros(256, dtype=bool)


def _escaped(values: pa.Array) -> pa.Array:
    """escape_column, skipped for the usual column (no cell starts like a formula)."""
    if not edge_bytes(values, _FORMULA_BYTES, _NO_BYTES).any():
        return values
    return escape_column(values)


def _quoted(values: pa.Array) -> pa.Array:
    text = _joined_bytes(values)
    if not any(c in text for c in (b'"', b",", b"\r", b"\n")):  # the usual column
        return values
    needs = pc.match_substring_regex(values, '[",\r\n]')
    mark = pa.scalar('"', pa.large_string())
    quoted = pc.binary_join_element_wise(
        mark, pc.replace_substring(values, '"', '""'), mark, pa.scalar("", pa.large_string())
    )
    return pc.if_else(needs, quoted, values)


def _joined_bytes(values: pa.Array) -> bytes:
    """Every value of a string array (no nulls) end to end, as bytes (for a byte search)."""
    return _joined(values).to_pybytes()


def _joined(values: pa.Array) -> pa.Buffer:
    """Every value of a string array (no nulls) end to end: a slice of its value buffer,
    written out without a copy in between."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if values.buffers()[2] is None:  # no text at all
        return pa.py_buffer(b"")
    offsets = values.buffers()[1]
    first, last = np.frombuffer(offsets, dtype=np.int64)[
        [values.offset, values.offset + len(values)]
    ]
    return values.buffers()[2].slice(int(first), int(last - first))


# --- the change log --------------------------------------------------------------------------
_LOG_COLUMNS = (
    "upload_id",
    "district_id",
    "entity",
    "key",
    "change",
    "field",
    "before",
    "after",
    "row_number",
    "person_pk",
    "class_pk",
)


#: up to this many keys to resolve, `_resolve` asks for those keys only (else for all)
_FEW_KEYS = 20_000


def _resolve(conn: Connection, changes: pd.DataFrame, district_id: int) -> pd.DataFrame:
    """Fill person_pk / class_pk from the keys as stored after the upload (one query each;
    when only a few keys are needed, one per 1,000 of them)."""
    out = changes
    for pk_col, key_col, model, key_attr in (
        ("person_pk", "user_id", Person, Person.user_id),
        ("class_pk", "class_id", SchoolClass, SchoolClass.class_id),
    ):
        need = out[pk_col].isna().to_numpy() & (out[key_col] != "").to_numpy()
        if not need.any():
            continue
        query = select(key_attr, model.id).where(model.district_id == district_id)
        wanted = pd.unique(out[key_col][need].to_numpy(dtype=object))
        if len(wanted) <= _FEW_KEYS:  # a few people or classes: only theirs, by the key index
            rows = []
            for start in range(0, len(wanted), 1000):
                chunk = wanted[start : start + 1000].tolist()
                rows += conn.execute(query.where(key_attr.in_(chunk))).cursor.fetchall()
        else:
            rows = conn.execute(query).cursor.fetchall()
        keys, ids = zip(*rows) if rows else ((), ())
        pos = first_index(out[key_col][need], keys)  # one Arrow hash of the stored keys
        if (pos < 0).any():
            raise LookupError("a change refers to a key that was not saved")
        if out is changes:
            out = changes.copy()
        col = _floats(out[pk_col]).copy()
        col[need] = np.asarray(ids, dtype=np.int64)[pos]
        out[pk_col] = col
    return out


def write_change_log(
    conn: Connection, district_id: int, upload_id: int, changes: pd.DataFrame
) -> None:
    """The change log rows of one applied upload, in its transaction: each run of rows it
    created as one line (`_write_run`, see Change), every other line in one bulk write."""
    _test_crash("before_change_log")
    if len(changes):
        rest = np.ones(len(changes), dtype=bool)
        created = (changes["change"] == CREATED).to_numpy(dtype=bool) & (
            changes["after"] == ""
        ).to_numpy(dtype=bool)
        if created.any():
            at = np.flatnonzero(created)
            made = changes if created.all() else changes.iloc[at]
            for start, stop, group in _runs(made):
                if group in _RUN_SQL and _write_run(
                    conn, district_id, upload_id, group, made.iloc[start:stop]
                ):
                    rest[at[start:stop]] = False
        if rest.any():
            _write_lines(conn, district_id, upload_id, changes if rest.all() else changes[rest])
    _test_crash("after_change_log")


def _write_lines(conn: Connection, district_id: int, upload_id: int, changes: pd.DataFrame) -> None:
    """One log row per line, in the frame's order."""
    if conn.dialect.name == "postgresql":
        changes = _resolve(conn, changes, district_id)
        columns = [int(upload_id), int(district_id)]
        columns += [changes[c] for c in _TEXT_COLUMNS]
        columns += [_floats(changes[c]) for c in _INT_COLUMNS]
        insert_columns(conn, Change.__table__, _LOG_COLUMNS, columns)
        return
    cur = conn.connection.dbapi_connection.cursor()
    try:
        _bind_lines(conn, cur, f"{int(upload_id)}, {int(district_id)}", district_id, changes)
    finally:
        cur.close()


_TEXT_COLUMNS = ("entity", "key", "change", "field", "before", "after")
_INT_COLUMNS = ("row_number", "person_pk", "class_pk")


def _bind_lines(conn: Connection, cur, ids: str, district_id: int, lines: pd.DataFrame) -> None:
    """SQLite binds every parameter of every row one by one: the two ids are written into the
    statement (integers, never text from a file)."""
    lines = _resolve(conn, lines, district_id)
    cols = ", ".join((*_TEXT_COLUMNS, *_INT_COLUMNS))
    marks = ", ".join("?" for _ in (*_TEXT_COLUMNS, *_INT_COLUMNS))
    rows = zip(
        *[lines[c].tolist() for c in _TEXT_COLUMNS], *[_ints(lines[c]) for c in _INT_COLUMNS]
    )
    cur.executemany(
        f"INSERT INTO changes (upload_id, district_id, {cols}) VALUES ({ids}, {marks})", rows
    )


#: a run of created rows of each group: its table, the SQL of a row's key (alias t), the
#: joins that key needs, and the SQL naming the district's rows (`:d`)
_RUN_SQL = {
    "person": ("people", "t.user_id", "", "t.district_id = :d"),
    "class": ("classes", "t.class_id", "", "t.district_id = :d"),
    "enrollment": (
        "enrollments",
        "c.class_id || '/' || p.user_id",
        " JOIN people p ON p.id = t.person_id JOIN classes c ON c.id = t.class_pk",
        "c.district_id = :d",
    ),
}


#: the group of a created line's entity (anything else: no run)
_GROUP_OF = {"student": "person", "staff": "person", "class": "class", "enrollment": "enrollment"}


def _runs(made: pd.DataFrame):
    """(start, stop, group) of each run of consecutive created lines of one group: "person",
    "class", "enrollment", or "" (other entities, or lines whose stored ids are known).
    Arrow codes, not a Python object per line."""
    names = ["", "person", "class", "enrollment"]
    entity = _to_arrow(made["entity"], pa.large_string()).dictionary_encode()
    of_entity = [names.index(_GROUP_OF.get(e, "")) for e in entity.dictionary.to_pylist()]
    codes = np.asarray([*of_entity, 0], dtype=np.int8)[
        entity.indices.fill_null(len(of_entity)).to_numpy(zero_copy_only=False)
    ]
    for c in ("person_pk", "class_pk"):
        known = _to_arrow(made[c], pa.int64()).is_valid().to_numpy(zero_copy_only=False)
        codes[known] = 0
    group = np.asarray(names, dtype=object)[codes]
    edges = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts = np.concatenate(([0], edges)).astype(np.int64).tolist()
    stops = np.concatenate((edges, [len(made)])).astype(np.int64).tolist()
    return [(a, b, group[a]) for a, b in zip(starts, stops)]


def _write_run(
    conn: Connection, district_id: int, upload_id: int, group: str, lines: pd.DataFrame
) -> bool:
    """Log the created lines `lines` (one group, in the order their rows were inserted) as one
    line, when those rows are the last ones of their table, with consecutive ids: the row with
    the last id has the last line's key and the one n - 1 before it the first line's.  False
    (nothing written) otherwise, e.g. rows of another district inserted in between
    (PostgreSQL): then each line is written on its own."""
    table, key_sql, joins, mine = _RUN_SQL[group]
    n, keys = len(lines), lines["key"]
    last = conn.execute(text(f"SELECT max(id) FROM {table}")).scalar()
    if last is None or last < n:
        return False
    # the lines' rows were inserted in their order, so with increasing ids: when the first
    # of them has id last - n + 1 and the last one id `last`, they are exactly those ids
    first = int(last) - n + 1
    span = {"a": first, "b": int(last), "d": int(district_id)}
    ends = conn.execute(
        text(f"SELECT t.id, {key_sql} FROM {table} t{joins} WHERE t.id IN (:a, :b) AND {mine}"),
        span,
    ).all()
    if dict(ends) != {first: keys.iat[0], int(last): keys.iat[-1]}:
        return False
    numbers = _floats(lines["row_number"])
    packed = np.where(np.isnan(numbers), -1, numbers).astype("<i4").tobytes()
    conn.execute(
        insert(Change).values(
            upload_id=int(upload_id),
            district_id=int(district_id),
            entity=group,
            key="",
            change=CREATED,
            field="",
            before="",
            after="",
            first_id=first,
            last_id=int(last),
            row_numbers=packed,
        )
    )
    return True


def _ints(values: pd.Series) -> np.ndarray:
    """Integers or None (SQL NULL), as Python objects."""
    numbers = _floats(values)
    blank = np.isnan(numbers)
    out = np.where(blank, 0, numbers).astype(np.int64).astype(object)
    out[blank] = None
    return out


def _test_crash(point: str) -> None:
    """TEST HOOK, no effect unless ROSTERBOT_TEST_CRASH_AT names this point: the process
    kills itself there (tests/test_changes.py lands a crash on either side of the change log)."""
    if os.environ.get("ROSTERBOT_TEST_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
