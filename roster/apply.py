"""Write an UploadPlan inside the caller's transaction, with bulk statements only.

Rows go to the database driver as plain tuples: COPY on PostgreSQL, executemany on SQLite.
Keys of new rows are read back with one query per table, never one per row.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Table, select, update

from roster.models import District, Enrollment, Membership, Person, School, SchoolClass
from roster.plan import UploadPlan

_CHUNK = 5000


def lock_district(conn: Connection, district_id: int) -> None:
    """Serialise uploads of one district: a row lock on PostgreSQL.

    On SQLite every transaction already began with BEGIN IMMEDIATE (the write lock).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(District.id).where(District.id == district_id).with_for_update())


#: SQLite: a table's plain indexes are built afresh (not row by row) when a write adds at
#: least this many rows and at least as many as the table holds
BULK_ROWS = 50_000


@contextmanager
def bulk_indexes(conn: Connection, table: str, adding: int) -> Iterator[None]:
    """Around a write that adds `adding` rows to `table`: when that is a bulk load, the
    table's plain (not UNIQUE) indexes are dropped for the write and created again at its
    end, in the same transaction.  Building an index from all its rows at once costs a
    fraction of inserting a million keys one by one; the constraints are untouched (UNIQUE
    indexes stay), and a rollback restores the indexes as they were.

    A bulk load adds BULK_ROWS rows or more and, on SQLite, at least as many as the table
    holds (other connections keep reading the committed state, indexes included: WAL).  On
    PostgreSQL only into an empty table whose lock is free at once: DROP INDEX locks the
    table against every other transaction, reads included, until the commit."""
    plain = _bulk_plain_indexes(conn, table, adding) if adding >= BULK_ROWS else []
    dbapi = conn.connection.dbapi_connection
    for name, _ in plain:
        dbapi.execute(f'DROP INDEX "{name}"')
    yield
    for _, sql in plain:
        dbapi.execute(sql)


def _bulk_plain_indexes(conn: Connection, table: str, adding: int) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the plain indexes to build after a bulk load, or []."""
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite":
        (held,) = dbapi.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()
        if adding < held:
            return []
        found = dbapi.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
            " AND sql IS NOT NULL",
            (table,),
        ).fetchall()
    else:
        if dbapi.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]:
            return []
        dbapi.execute("SAVEPOINT bulk_indexes")
        try:
            dbapi.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE NOWAIT")
        except conn.dialect.loaded_dbapi.OperationalError:  # the table is in use: row by row
            dbapi.execute("ROLLBACK TO SAVEPOINT bulk_indexes")
            return []
        dbapi.execute("RELEASE SAVEPOINT bulk_indexes")
        found = dbapi.execute(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = current_schema() AND tablename = %s",
            (table,),
        ).fetchall()
    return [(n, sql) for n, sql in found if not sql.lstrip().upper().startswith("CREATE UNIQUE")]


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[tuple]
) -> None:
    """Bulk insert of tuples in `columns` order, through the driver itself."""
    cols = ", ".join(columns)
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        with dbapi.cursor() as cur, cur.copy(f"COPY {table.name} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    cur = dbapi.cursor()
    try:
        cur.executemany(f"INSERT INTO {table.name} ({cols}) VALUES ({marks})", rows)
    finally:
        cur.close()


def insert_columns(
    conn: Connection, table: Table, columns: Sequence[str], values: Sequence
) -> None:
    """Bulk insert of whole columns (`values[i]` holds column `columns[i]`: an array, a
    Series of any dtype, or one scalar for every row).

    PostgreSQL: COPY, its text built column-wise by Arrow and sent in large blocks (no Python
    call per row).  SQLite: executemany over the columns' values."""
    n = next((len(v) for v in values if not _scalar(v)), 0)
    if not n:
        return
    if conn.dialect.name != "postgresql":  # in blocks: Python objects for one block at a time
        for start in range(0, n, _SQLITE_BLOCK):
            stop = min(n, start + _SQLITE_BLOCK)
            lists = [
                [v] * (stop - start) if _scalar(v) else _objects(_rows_of(v, start, stop))
                for v in values
            ]
            insert_rows(conn, table, columns, zip(*lists))
        return
    texts = [_copy_text(v, n) for v in values]
    tab, nl = pa.scalar("\t", pa.large_string()), pa.scalar("\n", pa.large_string())
    cols = ", ".join(columns)
    dbapi = conn.connection.dbapi_connection
    with dbapi.cursor() as cur, cur.copy(f"COPY {table.name} ({cols}) FROM STDIN") as copy:
        for start in range(0, n, _COPY_BLOCK):
            block = [t.slice(start, _COPY_BLOCK) for t in texts]
            line = pc.binary_join_element_wise(*block, tab) if len(block) > 1 else block[0]
            copy.write(
                _value_bytes(
                    pc.binary_join_element_wise(line, nl, pa.scalar("", pa.large_string()))
                )
            )


#: rows per block of COPY text (bounds the memory of what is being sent)
_COPY_BLOCK = 200_000
#: rows per executemany on SQLite: a row is a dozen Python objects (about 150 MB for 200,000
#: people); smaller blocks cost nothing measurable
_SQLITE_BLOCK = 50_000


def _rows_of(v, start: int, stop: int):
    return v.iloc[start:stop] if isinstance(v, (pd.Series, pd.DataFrame)) else v[start:stop]


def _scalar(v) -> bool:
    return v is None or isinstance(v, (str, bytes, int, float, bool, np.generic))


def _objects(v) -> list:
    """A column's values as Python objects (None for a missing value)."""
    if isinstance(v, (pd.Series, pd.Index)):
        v = v.astype(object).where(v.notna(), None) if v.hasnans else v.astype(object)
        return v.tolist()
    return np.asarray(v).tolist() if isinstance(v, np.ndarray) else list(v)


def _copy_text(v, n: int) -> pa.Array:
    """One column in COPY's text format: \\N for NULL, t/f, digits, escaped text."""
    if _scalar(v):
        v = [v] * n
    try:
        arr = pa.array(v, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects: as their text
        arr = pa.array([None if x is None else str(x) for x in _objects(v)], pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    kind = arr.type
    if pa.types.is_boolean(kind):
        text = pc.if_else(arr, "t", "f").cast(pa.large_string())
    elif pa.types.is_floating(kind):
        text = arr.cast(pa.int64()).cast(pa.large_string())
    elif pa.types.is_integer(kind) or pa.types.is_null(kind):
        text = arr.cast(pa.large_string())
    else:
        text = arr.cast(pa.large_string())
        if pc.any(pc.match_substring_regex(text, r"[\\\t\n\r]")).as_py():  # else: as it is
            for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
                text = pc.replace_substring(text, raw, escaped)
    return pc.fill_null(text, "\\N")


def _value_bytes(values: pa.Array) -> bytes:
    """The values of a string array (no nulls) end to end."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)
    first, last = offsets[values.offset], offsets[values.offset + len(values)]
    return values.buffers()[2].to_pybytes()[first:last]


#: PostgreSQL: rows per CSV block the server builds (see copy_out)
_BLOCK_ROWS = 50_000


def copy_out(conn: Connection, stmt, columns: list[str]) -> pa.Table:
    """PostgreSQL: the query's rows as CSV text that the server joins into blocks of
    _BLOCK_ROWS lines, parsed by Arrow: a few dozen values cross to Python, not one object
    per value (COPY TO would still hand the client one message per row).

    Every column is read as text, integer or boolean (t/f) by its type in the query."""
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    kinds, fields = {}, []
    for i, (name, col) in enumerate(zip(columns, stmt.selected_columns)):
        python = col.type.python_type
        if python is bool:
            kinds[name] = pa.bool_()
            fields.append(f"CASE WHEN q.c{i} THEN 't' ELSE 'f' END")
        elif python is int:
            kinds[name] = pa.int64()
            fields.append(f"coalesce(q.c{i}::text, '')")
        else:  # quoted, as CSV quotes it: an empty text is "" (not NULL)
            kinds[name] = pa.string()
            fields.append(f"'\"' || replace(coalesce(q.c{i}, ''), '\"', '\"\"') || '\"'")
    names = ", ".join(f"c{i}" for i in range(len(columns)))
    line = " || ',' || ".join(fields)
    blocks = conn.exec_driver_sql(
        f"SELECT string_agg(line, E'\\n') FROM (SELECT {line} AS line,"
        f" (row_number() OVER ()) / {_BLOCK_ROWS} AS block FROM ({sql}) AS q({names})) s"
        " GROUP BY block"
    ).cursor.fetchall()
    data = "\n".join(b for (b,) in blocks).encode()
    if not data:
        return pa.table({c: pa.array([], kinds[c]) for c in columns})
    return pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=columns),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=kinds,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )


def update_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[tuple]
) -> None:
    """Bulk UPDATE by primary key; each tuple is (*values in `columns` order, id)."""
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    sets = ", ".join(f"{c} = {mark}" for c in columns)
    dbapi = conn.connection.dbapi_connection
    cur = dbapi.cursor()
    try:
        cur.executemany(f"UPDATE {table.name} SET {sets} WHERE id = {mark}", list(rows))
    finally:
        cur.close()


def _deactivate(conn: Connection, table: Table, ids: list[int]) -> None:
    for start in range(0, len(ids), _CHUNK):
        conn.execute(
            update(table).where(table.c.id.in_(ids[start : start + _CHUNK])).values(active=False)
        )


def _values(frame: pd.DataFrame, columns: Sequence[str], **constants) -> list:
    """The columns of `frame` (or a constant) for insert_columns."""
    return [frame[c] if c in frame else constants[c] for c in columns]


def _tuples(frame: pd.DataFrame, columns: Sequence[str], **constants) -> Iterable[tuple]:
    """Rows of `frame` (plus constant columns) as plain Python tuples."""
    arrays = [
        frame[c].astype(object).tolist() if c in frame else [constants[c]] * len(frame)
        for c in columns
    ]
    return zip(*arrays)


class KeyMap:
    """A district's text key -> primary key map, hashed by Arrow: looking up a million keys
    makes no Python object per key."""

    def __init__(self, keys: pa.Array, ids: np.ndarray) -> None:
        self.keys = keys.cast(pa.large_string())
        self.ids = ids

    def pks(self, values) -> np.ndarray:
        """The primary key of each of `values` (all of them must be keys of the map)."""
        wanted = _arrow_text(values)
        pos = pc.index_in(wanted, value_set=self.keys)
        if pos.null_count:
            raise LookupError("a planned row refers to a key that was not saved")
        return self.ids[pos.to_numpy(zero_copy_only=False)]


def _arrow_text(values) -> pa.Array:
    if isinstance(values, (pd.Series, pd.Index)):
        arr = pa.array(values.array if isinstance(values, pd.Series) else values, from_pandas=True)
    else:
        arr = pa.array(values, type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


def _keys(conn: Connection, column, key, district_id_column, district_id: int) -> KeyMap:
    """The district's key -> primary key map, in one query."""
    stmt = select(key, column).where(district_id_column == district_id)
    if conn.dialect.name == "postgresql":
        table = copy_out(conn, stmt, ["key", "id"])
        return KeyMap(table.column(0).combine_chunks(), table.column(1).to_numpy())
    rows = conn.execute(stmt).cursor.fetchall()
    keys = pa.array(list(map(itemgetter(0), rows)), pa.large_string())
    return KeyMap(keys, np.fromiter(map(itemgetter(1), rows), np.int64, len(rows)))


def _pk(keys: KeyMap, values) -> np.ndarray:
    return keys.pks(values)


_PERSON_FIELDS = (
    "user_id",
    "email",
    "first_name",
    "last_name",
    "role",
    "grade",
    "district_sis_id",
    "state_sis_id",
)
_CLASS_FIELDS = ("name", "grade", "display_name", "subject")


def apply_plan(conn: Connection, district_id: int, plan: UploadPlan) -> None:
    schools = _keys(conn, School.id, School.org_sis_id, School.district_id, district_id)
    _apply_people(conn, district_id, plan)
    people = None
    if len(plan.memberships_new) or len(plan.enrollments_new):
        people = _keys(conn, Person.id, Person.user_id, Person.district_id, district_id)
    if len(plan.memberships_new):
        m = plan.memberships_new
        insert_columns(
            conn,
            Membership.__table__,
            ("person_id", "school_id"),
            (_pk(people, m["user_id"]), _pk(schools, m["org_sis_id"])),
        )
    _apply_classes(conn, district_id, plan, schools)
    _apply_enrollments(conn, district_id, plan, people)
    # removals (after adds: a file that adds and removes the same thing ends with it removed)
    _deactivate(conn, SchoolClass.__table__, plan.classes_removed)
    _deactivate(conn, Person.__table__, plan.people_removed)
    _deactivate(conn, Enrollment.__table__, plan.enrollments_removed)
    _leave_schools(conn, plan, schools)
    conn.execute(
        update(District)
        .where(District.id == district_id)
        .values(roster_version=District.roster_version + 1)
    )


def _leave_schools(conn: Connection, plan: UploadPlan, schools: KeyMap) -> None:
    """Full sync: people who keep another school leave the ones the file no longer has them at."""
    gone = plan.memberships_removed
    if not len(gone):
        return
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    cur = conn.connection.dbapi_connection.cursor()
    try:
        cur.executemany(
            f"DELETE FROM memberships WHERE person_id = {mark} AND school_id = {mark}",
            list(
                zip(
                    gone["person_pk"].astype(int).tolist(),
                    _pk(schools, gone["org_sis_id"]).tolist(),
                )
            ),
        )
    finally:
        cur.close()


def _apply_people(conn: Connection, district_id: int, plan: UploadPlan) -> None:
    """People (an ID change keeps the stored row and gives it the new userId)."""
    people_t = Person.__table__
    if len(plan.people_changed):
        changed = plan.people_changed.assign(email_key=plan.people_changed["email"].str.lower())
        update_rows(
            conn,
            people_t,
            (*_PERSON_FIELDS, "email_key", "active"),
            _tuples(changed, (*_PERSON_FIELDS, "email_key", "active", "id"), active=True),
        )
    if len(plan.people_new):
        new = plan.people_new.assign(email_key=plan.people_new["email"].str.lower())
        columns = ("district_id", *_PERSON_FIELDS, "email_key", "active")
        # `active` False: a person the same file adds and then deactivates
        insert_columns(
            conn, people_t, columns, _values(new, columns, district_id=district_id, active=True)
        )


def _apply_classes(conn: Connection, district_id: int, plan: UploadPlan, schools: KeyMap) -> None:
    classes_t = SchoolClass.__table__
    if len(plan.classes_changed):
        update_rows(
            conn,
            classes_t,
            (*_CLASS_FIELDS, "active"),
            _tuples(plan.classes_changed, (*_CLASS_FIELDS, "active", "id"), active=True),
        )
    if len(plan.classes_new):
        c = plan.classes_new.assign(school_id=_pk(schools, plan.classes_new["org_sis_id"]))
        columns = ("district_id", "school_id", "class_id", *_CLASS_FIELDS, "active")
        insert_columns(
            conn, classes_t, columns, _values(c, columns, district_id=district_id, active=True)
        )


def _apply_enrollments(
    conn: Connection, district_id: int, plan: UploadPlan, people: KeyMap | None
) -> None:
    enroll_t = Enrollment.__table__
    if len(plan.enrollments_changed):
        e = plan.enrollments_changed
        update_rows(
            conn,
            enroll_t,
            ("is_primary", "active"),
            zip(
                e["is_primary"].astype(bool).tolist(), [True] * len(e), e["id"].astype(int).tolist()
            ),
        )
    if len(plan.enrollments_new):
        classes = _keys(
            conn, SchoolClass.id, SchoolClass.class_id, SchoolClass.district_id, district_id
        )
        e = plan.enrollments_new
        with bulk_indexes(conn, enroll_t.name, len(e)):
            insert_columns(
                conn,
                enroll_t,
                ("class_pk", "person_id", "is_primary", "active"),
                (
                    _pk(classes, e["class_id"]),
                    _pk(people, e["user_id"]),
                    e["is_primary"].astype(bool).to_numpy(),
                    e["active"].astype(bool).to_numpy() if "active" in e else True,
                ),
            )
