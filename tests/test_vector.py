"""validation.vector.conflicts against a plain-Python statement of the rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from validation.users import _key_codes
from validation.vector import Distinct, conflicts, take_rows, trimmed


def reference(keys: list[str], values: list[str], eligible: list[bool]) -> list[bool]:
    """A row conflicts when, among eligible rows with a non-blank key and value, its key has
    two or more different values (a missing value is one value); every eligible row of such a
    key is flagged."""
    seen: dict[str, set] = {}
    for k, v, e in zip(keys, values, eligible):
        if e and k and v != "":
            seen.setdefault(k, set()).add(v)
    return [bool(e and k and len(seen.get(k, ())) > 1) for k, e in zip(keys, eligible)]


rows = st.lists(
    st.tuples(
        st.sampled_from(["", "S1", "S2", "T1"]),
        st.sampled_from(["", "a", "b", "A", "a ", None]),
        st.booleans(),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(rows, st.booleans(), st.booleans())
def test_conflicts_match_the_rule(data, as_object, by_code):
    keys = [k for k, _, _ in data]
    values = [v for _, v, _ in data]
    eligible = np.array([e for _, _, e in data], dtype=bool)
    key_series = pd.Series(keys, dtype="str")
    value_series = pd.Series(values, dtype=object if as_object else "str")
    compared = Distinct(value_series) if by_code else value_series
    got = conflicts(_key_codes(key_series), compared, eligible)
    assert got.tolist() == reference(keys, values, eligible.tolist())


def test_a_conflict_flags_every_row_of_the_key_but_not_others():
    keys = pd.Series(["S1", "S2", "S1", "S1", "S2"], dtype="str")
    values = pd.Series(["Ava", "Bo", "", "Eva", "Bo"], dtype="str")
    got = conflicts(_key_codes(keys), values, np.ones(5, dtype=bool))
    assert got.tolist() == [True, False, True, True, False]


def _chunked_text(chunks: list[list[str | None]]) -> pd.Series:
    """A str column held in several Arrow chunks, as a large file's columns are read."""
    text = pa.large_string()
    column = pa.chunked_array([pa.array(c, type=text) for c in chunks], type=text)
    dtype = pd.Series([], dtype="str").dtype
    return pd.Series(dtype.__from_arrow__(column), index=pd.RangeIndex(10, 10 + len(column)))


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(st.lists(st.sampled_from(["a", "b", "", "é", None]), max_size=4), min_size=1),
    data=st.data(),
)
def test_take_rows_picks_what_take_picks_from_a_chunked_column(chunks, data) -> None:
    """The error report's cells are picked chunk by chunk (no copy of the whole column); the
    cells, their order, their row labels and the column type are what Series.take gives."""
    s = _chunked_text(chunks)
    n = len(s)
    positions = data.draw(st.lists(st.integers(0, n - 1), max_size=8) if n else st.just([]))
    got = take_rows(s, np.asarray(positions, dtype=np.int64))
    want = s.take(positions)
    assert got.dtype == want.dtype
    assert got.index.tolist() == want.index.tolist()
    pd.testing.assert_series_equal(got, want)


def test_take_rows_of_other_columns_is_series_take() -> None:
    s = pd.Series(["x", None, "z"], dtype=object)
    pd.testing.assert_series_equal(take_rows(s, np.array([2, 0])), s.take([2, 0]))


#: cells a spreadsheet or an SIS writes: ASCII and Unicode white space at either end (tab,
#: no-break space, ideographic space, line separator), accented letters last or first
_CELL_PARTS = ["a", "Zoë", "é", " ", "\t", "\u00a0", "\u3000", "\u2028", "\r", "x y", ""]


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(
        st.lists(st.lists(st.sampled_from(_CELL_PARTS), max_size=3).map("".join), max_size=5),
        min_size=1,
    ),
    sliced=st.booleans(),
)
def test_trimmed_is_str_strip_and_shares_a_column_with_nothing_to_trim(chunks, sliced) -> None:
    """Whether a column needs trimming is read off its cells' first and last bytes; what comes
    out is what str.strip gives, and a column that strip leaves alone is not copied."""
    s = _chunked_text(chunks)
    if sliced and len(s) > 1:
        s = s.iloc[1:]  # an Arrow slice: offsets that do not start at the buffer's start
    got = trimmed(s)
    want = s.str.strip()
    assert got.tolist() == want.tolist()
    assert (got is s) == (want.tolist() == s.tolist())


@settings(max_examples=200, deadline=None)
@given(
    cells=st.lists(st.sampled_from(["a", "A", "b", "", None, "ab"]), max_size=12),
    override=st.lists(st.booleans(), max_size=12),
)
def test_mapped_gives_each_row_its_mapped_value(cells, override) -> None:
    """A Distinct mapped through a function (lower case) names, row by row, the mapped value,
    whether the function changes some values or none (then the codes are kept as they are)."""
    s = pd.Series(cells, dtype="str")
    mask = np.array((override + [False] * len(cells))[: len(cells)], dtype=bool)
    got = Distinct(s).mapped(lambda values: values.str.lower(), override=mask, to="z")
    values = got.values.tolist()
    rows = [values[c] if c >= 0 else None for c in got.codes]
    want = ["z" if hit else (None if pd.isna(c) else c.lower()) for c, hit in zip(cells, mask)]
    assert rows == want
