"""Column helpers that stay fast on large files (pyarrow-backed text columns)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def isin(values: pd.Series | pd.Index, members: Iterable[str]) -> np.ndarray:
    """Boolean mask: which values are in `members`.

    pandas' own isin on pyarrow strings builds one scalar per member, which is slow for the
    hundreds of thousands of stored IDs a district has; pyarrow's is_in hashes the set once.
    """
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    members = _arrow(members)
    if len(members) == 0:  # e.g. nothing stored yet: Arrow would still hash every value
        return np.zeros(len(values), dtype=bool)
    found = pc.is_in(_arrow(values), value_set=members)
    return found.fill_null(False).to_numpy(zero_copy_only=False)


def take_rows(values: pd.Series, positions: np.ndarray) -> pd.Series:
    """`values.take(positions)`, without Arrow's copy of the whole column first.

    A column read from a large file is held in chunks (one per block the parser read), and
    Arrow's take over a chunked text column joins its chunks into one before picking: for
    the ~1,400 rows of a 1,000,000-row file's error report that is a copy of every column
    (~200 MB) to keep a few kilobytes.  Here each chunk gives its own rows, and the small
    result is put back in the order asked for."""
    if not isinstance(values.dtype, pd.StringDtype) or values.dtype.storage != "pyarrow":
        return values.take(positions)
    column = pa.array(values.array)  # zero-copy
    if not isinstance(column, pa.ChunkedArray) or column.num_chunks < 2:
        return values.take(positions)
    positions = np.asarray(positions, dtype=np.int64)
    if len(positions) and (positions.min() < 0 or positions.max() >= len(values)):
        return values.take(positions)  # pandas' own error (or negative positions)
    starts = np.cumsum([0, *(len(c) for c in column.chunks)])
    chunk_of = np.searchsorted(starts, positions, side="right") - 1
    order = np.argsort(chunk_of, kind="stable")
    bounds = np.searchsorted(chunk_of[order], np.arange(column.num_chunks + 1))
    parts = [
        column.chunk(k).take(pa.array(positions[order[a:b]] - starts[k]))
        for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))
        if b > a
    ]
    picked = pa.concat_arrays(parts) if parts else column.chunk(0).slice(0, 0)
    back = np.empty(len(order), dtype=np.int64)
    back[order] = np.arange(len(order))
    picked = picked.take(pa.array(back))
    return pd.Series(
        values.dtype.__from_arrow__(pa.chunked_array([picked], type=column.type)),
        index=values.index.take(positions),
        name=values.name,
        copy=False,
    )


def _arrow(values) -> pa.Array | pa.ChunkedArray:
    """Text values as an Arrow string array (zero-copy for pyarrow-backed pandas columns)."""
    if isinstance(values, (pd.Series, pd.Index)) and isinstance(values.dtype, pd.StringDtype):
        arr = pa.array(values.array) if isinstance(values, pd.Index) else pa.array(values)
        return arr.cast(pa.large_string()) if arr.type != pa.large_string() else arr
    if not isinstance(values, (list, tuple, np.ndarray, pd.Index, pd.Series)):
        values = list(values)
    arr = pa.array(np.asarray(values, dtype=object), type=pa.large_string(), from_pandas=True)
    return arr


class Distinct:
    """A text column's distinct values, found once: a rule that depends on the value alone
    runs once per distinct value and is spread back to the rows by their codes (a userId is
    on ~3 rows of a file, a classId on ~27, a school on thousands).

    `codes[i]` is the position of row i's value in `values` (-1 for a missing value, which
    is then its own value: `rows()` gives such a row the `missing` result)."""

    def __init__(self, column: pd.Series | None = None) -> None:
        if column is not None:
            codes, uniques = pd.factorize(column)
            self._set(codes, pd.Series(uniques, dtype=column.dtype if len(uniques) else object))

    def _set(self, codes: np.ndarray, values: pd.Series) -> None:
        self.codes: np.ndarray = codes
        self.values = values
        self.has_missing = bool(len(codes)) and bool((codes < 0).any())

    def mapped(self, fn, override: np.ndarray | None = None, to: str = "") -> Distinct:
        """The Distinct of `fn(value)` for every row (fn: distinct values -> a Series of the
        same length), computed on the distinct values only; rows where `override` is true
        get the value `to` instead.  When fn changes no value and nothing is overridden, its
        `values` are this Distinct's own (the same object)."""
        mapped = pd.Series(fn(self.values)).reset_index(drop=True)
        if _same_text(mapped, self.values):  # fn changed no value (emails already lower case)
            codes, values = self.codes.copy(), self.values
        else:
            new = Distinct(mapped)
            lookup = new.codes
            if self.has_missing:
                lookup = np.append(lookup, -1)
            codes = lookup[self.codes] if len(self.codes) else self.codes.copy()
            values = new.values
        result = Distinct()
        result._set(codes, values)
        if override is not None and override.any():
            at = result.code_of(to)
            if at < 0:
                at = len(values)
                values = pd.concat([values, pd.Series([to], dtype=values.dtype)], ignore_index=True)
            codes[override] = at
            result._set(codes, values)
        return result

    def rows(self, per_value, missing=False) -> np.ndarray:
        """Spread one result per distinct value (array-like, aligned with `values`) to the rows."""
        out = np.asarray(per_value)
        if self.has_missing:
            out = np.append(out, np.asarray([missing], dtype=out.dtype))  # code -1: the last
        return out[self.codes] if len(self.codes) else np.zeros(0, dtype=out.dtype)

    def apply(self, rule, missing=False) -> np.ndarray:
        """`rule(values)` (a vectorised rule returning one result per value) for every row."""
        return self.rows(rule(self.values), missing)

    def code_of(self, value: str) -> int:
        """The code of one value (-2 when no row has it)."""
        if not len(self.values):
            return -2
        if isinstance(self.values.dtype, pd.StringDtype):
            found = pc.index(pa.array(self.values.array), value).as_py()
            return found if found >= 0 else -2
        hit = np.flatnonzero((self.values == value).to_numpy(dtype=bool, na_value=False))
        return int(hit[0]) if len(hit) else -2

    def key_codes(self) -> np.ndarray:
        """The codes with blank ("") and missing values as -1 (a key that names nothing)."""
        codes = self.codes.copy()
        blank = self.code_of("")
        if blank >= 0:
            codes[codes == blank] = -1
        return codes


def trimmed(s: pd.Series) -> pd.Series:
    """`s.str.strip()`, but `s` itself when no cell has white space to trim: the column is
    then shared with the file's cells instead of copied (a copy of every column of a
    1,000,000-row file is ~250 MB).

    Whether any cell has something to trim is read off each cell's first and last byte
    (`_may_trim`): a cell that starts and ends with a printable ASCII character has none,
    so only the few others are stripped to find out: about half the time of a stripped
    copy of the column."""
    if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
        if not _may_trim(pa.array(s.array)):
            return s
    out = s.str.strip()
    if isinstance(s.dtype, pd.StringDtype) and isinstance(out.dtype, pd.StringDtype):
        before, after = pa.array(s.array), pa.array(out.array)
        if _text_bytes(before) == _text_bytes(after):  # trimming only ever removes
            return s
    return out


#: bytes that may begin or end white space: ASCII controls and space, and any byte of a
#: multi-byte UTF-8 character (Unicode white space such as U+00A0 or U+3000)
_MAY_BE_SPACE = np.zeros(256, dtype=bool)
_MAY_BE_SPACE[:0x21] = True
_MAY_BE_SPACE[0x7F:] = True


def _may_trim(column: pa.Array | pa.ChunkedArray) -> bool:
    """False only when stripping would change no cell: every non-empty cell's first and last
    byte is printable ASCII, or the cells that are not stripped to themselves."""
    if column.null_count:
        return True
    suspect = edge_bytes(column, _MAY_BE_SPACE, _MAY_BE_SPACE)
    if not suspect.any():
        return False
    cells = column.take(pa.array(np.flatnonzero(suspect)))
    return _text_bytes(pc.utf8_trim_whitespace(cells)) != _text_bytes(cells)


def edge_bytes(
    column: pa.Array | pa.ChunkedArray, first: np.ndarray, last: np.ndarray
) -> np.ndarray:
    """Per value of a text column: whether its first byte is marked in `first` or its last
    byte in `last` (tables of 256 booleans); False for an empty value.  For a column without
    missing values (a missing value is read as what its slot holds, which Arrow leaves empty).

    Read off the column's offsets and bytes, without a copy of any value: a question such as
    "does any cell start like a formula" costs two gathers, not a sliced copy of the column."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise TypeError(f"edge_bytes reads text columns, not {column.type}")
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out = [np.zeros(0, dtype=bool)]
    for chunk in chunks:
        hit = np.zeros(len(chunk), dtype=bool)
        _, offsets_buf, data_buf = chunk.buffers()
        if data_buf is not None and data_buf.size and len(chunk):
            width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
            offsets = np.frombuffer(offsets_buf, dtype=width)
            offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1]
            data = np.frombuffer(data_buf, dtype=np.uint8)
            starts, ends = offsets[:-1], offsets[1:]
            # an empty (or missing) value reads a neighbour's byte, and is then not counted
            top = len(data) - 1
            hit = first[data[np.minimum(starts, top)]] | last[data[np.maximum(ends - 1, 0)]]
            hit &= ends > starts
        out.append(hit)
    return np.concatenate(out)


def same_or(s: pd.Series, out: pd.Series) -> pd.Series:
    """`s` itself when `out` (a transformed copy, e.g. lower-cased) has the same values:
    the column is then shared with the file's cells instead of held twice."""
    if not (isinstance(s.dtype, pd.StringDtype) and isinstance(out.dtype, pd.StringDtype)):
        return out
    before, after = pa.array(s.array), pa.array(out.array)
    if before.null_count or after.null_count or not len(before):
        return out
    return s if pc.all(pc.equal(before, after)).as_py() else out


def _same_text(a: pd.Series, b: pd.Series) -> bool:
    """Two Arrow-backed text columns of the same length with equal values and no missing one."""
    if len(a) != len(b) or not all(
        isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow" for s in (a, b)
    ):
        return False
    left, right = pa.array(a.array), pa.array(b.array)
    if left.null_count or right.null_count:
        return False
    return bool(pc.all(pc.equal(left, right)).as_py()) if len(left) else True


def _text_bytes(values: pa.Array | pa.ChunkedArray) -> int:
    total = pc.sum(pc.binary_length(values)).as_py()
    return int(total or 0)


def first_index(values, keys) -> np.ndarray:
    """For each value, the position of its first occurrence in `keys` (duplicates allowed), -1
    where it does not occur.  One Arrow hash of `keys`."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(keys) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    pos = pc.index_in(_arrow(values), value_set=_arrow(keys))
    return pos.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def lookup(values: pd.Series, keys, targets) -> pd.Series:
    """For each value, the target stored under the same key (NaN where there is none).

    A hash join in Arrow (index_in); `keys` must be unique.
    """
    if len(keys) == 0 or len(values) == 0:
        return pd.Series(np.nan, index=values.index, dtype=object)
    pos = pc.index_in(_arrow(values), value_set=_arrow(keys))
    found = pos.is_valid().to_numpy(zero_copy_only=False)
    pos = pos.fill_null(0).to_numpy(zero_copy_only=False)
    out = np.asarray(targets, dtype=object).take(pos)
    out[~found] = np.nan
    return pd.Series(out, index=values.index, dtype=object)


def first_positions(codes: np.ndarray, positions: np.ndarray, n_codes: int) -> np.ndarray:
    """For each code 0..n_codes-1, the smallest of the `positions` that carry it (no sort);
    a code that never occurs keeps the int64 maximum."""
    first = np.full(n_codes, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, codes, positions)
    return first


def conflicts(
    key_codes: np.ndarray, values: pd.Series | Distinct, eligible: np.ndarray
) -> np.ndarray:
    """Rows whose key has two or more different non-blank values among eligible rows.

    `key_codes` are the keys factorised once (-1 = blank).  Each row is compared with the
    first row of its key (first_positions); only rows that are not themselves a
    key's first row are compared: as integer codes when `values` is a Distinct (its values
    found once), else as Arrow text.
    """
    if isinstance(values, Distinct):
        return _code_conflicts(key_codes, values, eligible)
    use = eligible & (values != "").to_numpy() & (key_codes >= 0)
    if not use.any():
        return np.zeros(len(values), dtype=bool)
    rows = np.flatnonzero(use)
    keys = key_codes[rows]
    ref = first_positions(keys, rows, int(keys.max()) + 1)[keys]  # each row's key's first row
    later = rows != ref
    if not later.any():
        return np.zeros(len(values), dtype=bool)
    rows, ref = rows[later], ref[later]
    # a missing value (NA) counts as one more value: equal to itself, different from the rest
    if isinstance(values.dtype, pd.StringDtype):
        text = pa.array(values.array)  # zero-copy; no cast: only compared with itself
        if text.null_count:
            text = pc.fill_null(text, "\x00")  # NUL never reaches here (the reader refuses it)
        differ = pc.not_equal(text.take(rows), text.take(ref)).to_numpy(zero_copy_only=False)
    else:
        column = values.astype(object).where(values.notna(), None).to_numpy()
        differ = column[rows] != column[ref]
    bad_keys = np.unique(keys[later][differ])
    if len(bad_keys) == 0:
        return np.zeros(len(values), dtype=bool)
    return eligible & _has_key(key_codes, bad_keys)


def _code_conflicts(key_codes: np.ndarray, values: Distinct, eligible: np.ndarray) -> np.ndarray:
    """conflicts() over a Distinct: the same rows, comparing integer codes (a missing value
    has code -1: one more value, equal to itself)."""
    codes = values.codes
    use = eligible & (codes != values.code_of("")) & (key_codes >= 0)
    if not use.any():
        return np.zeros(len(codes), dtype=bool)
    rows = np.flatnonzero(use)
    keys = key_codes[rows]
    ref = first_positions(keys, rows, int(keys.max()) + 1)[keys]
    later = rows != ref
    differ = codes[rows[later]] != codes[ref[later]]
    bad_keys = np.unique(keys[later][differ])
    if len(bad_keys) == 0:
        return np.zeros(len(codes), dtype=bool)
    return eligible & _has_key(key_codes, bad_keys)


def _has_key(key_codes: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """`np.isin(key_codes, keys)` for key codes (>= -1, `keys` >= 0): one table lookup."""
    table = np.zeros(int(max(key_codes.max(initial=0), keys.max(initial=0))) + 2, dtype=bool)
    table[keys + 1] = True
    return table[key_codes + 1]


def digits(s: pd.Series) -> np.ndarray:
    """Which values are all digits (IDs a spreadsheet may have read as numbers)."""
    return s.str.fullmatch("[0-9]+").fillna(False).to_numpy(dtype=bool)


def zeros_matches(
    values: pd.Series, rows: np.ndarray, stored_ids: pd.Series, extra: dict | None = None
) -> pd.DataFrame:
    """Stored IDs that equal the given rows' IDs once leading zeros are stripped from both.

    `rows`: the candidate rows (unknown, all-digit IDs).  `extra`: name -> (row values,
    stored values) that must also be equal once leading zeros are stripped (the school's
    org_sis_id).  Returns one frame row per (row position, stored position) match, columns
    `at` and `stored_at`.
    """
    at = np.flatnonzero(rows)
    empty = pd.DataFrame({"at": np.zeros(0, dtype=np.int64), "stored_at": np.zeros(0, np.int64)})
    if not len(at) or not len(stored_ids):
        return empty
    stored_ids = pd.Series(stored_ids.to_numpy(dtype=object), dtype=object)
    stored_digits = digits(stored_ids)
    if not stored_digits.any():
        return empty
    left = pd.DataFrame(
        {"key": values.take(at).astype(object).str.lstrip("0").to_numpy(), "at": at}
    )
    stored_at = np.flatnonzero(stored_digits)
    right = pd.DataFrame(
        {"key": stored_ids.take(stored_at).str.lstrip("0").to_numpy(), "stored_at": stored_at}
    )
    for name, (row_values, stored_values) in (extra or {}).items():
        for frame, given, pos in ((left, row_values, at), (right, stored_values, stored_at)):
            picked = pd.Series(given).take(pos).astype(object)
            frame[name] = picked.str.lstrip("0").to_numpy()
    keys = ["key", *(extra or {})]
    return left.merge(right, on=keys)[["at", "stored_at"]]


def values_per_key(
    key_codes: np.ndarray, values: pd.Series, rows: np.ndarray, limit: int = 3
) -> list[str]:
    """For each of `rows` (positions), the distinct non-blank values its key has among `rows`,
    quoted, in order of first appearance: "'Math 5', 'Math five'" (at most `limit`, then
    "…").  Only the given rows are read: for naming the values of a conflict."""
    frame = pd.DataFrame(
        {"key": key_codes[rows], "value": np.asarray(values.take(rows), dtype=object)}
    )
    distinct = frame[frame["value"].notna() & (frame["value"] != "")].drop_duplicates()
    shown = distinct.groupby("key", sort=False).head(limit)
    quoted = "'" + shown["value"].astype(str) + "'"
    text = quoted.groupby(shown["key"], sort=False).agg(", ".join)
    more = distinct.groupby("key", sort=False).size() > limit
    text = text.where(~more.reindex(text.index, fill_value=False), text + ", …")
    return frame["key"].map(text).fillna("").tolist()
