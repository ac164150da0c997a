"""Shared fixtures: roster stores on SQLite (always) and PostgreSQL (when configured)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from roster.store import Store
from tests.builders import SCHOOLS

PG_URL = os.environ.get("ROSTERBOT_TEST_POSTGRES_URL", "")


def _pg_available() -> bool:
    if not PG_URL:
        return False
    try:
        engine = create_engine(PG_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        if os.environ.get("ROSTERBOT_REQUIRE_POSTGRES"):
            raise
        return False


PG_OK = _pg_available()


def make_pg_store() -> tuple[Store, callable]:
    """A Store on its own fresh PostgreSQL schema, and a function that drops it."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    store = Store(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")

    def drop() -> None:
        store.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return store, drop


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path) -> Iterator[Store]:
    """An empty roster store, on each backend."""
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'roster.sqlite3'}")
        yield s
        s.dispose()
        return
    if not PG_OK:
        pytest.skip("PostgreSQL not configured (set ROSTERBOT_TEST_POSTGRES_URL)")
    s, drop = make_pg_store()
    try:
        yield s
    finally:
        drop()


@pytest.fixture
def sqlite_store(tmp_path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'roster.sqlite3'}")
    yield s
    s.dispose()


def set_up_district(store: Store, key: str = "d1", source: str = "batch") -> str:
    """A district with the two schools of tests.builders.SCHOOLS."""
    store.create_district(key, "District One", source)
    for org, name in SCHOOLS:
        store.add_school(key, org, name)
    return key


@pytest.fixture
def district(store) -> str:
    """District 'd1' (batch), on each backend."""
    return set_up_district(store)


@pytest.fixture
def sdistrict(sqlite_store) -> str:
    """District 'd1' (batch), on SQLite only."""
    return set_up_district(sqlite_store)


@pytest.fixture(scope="module")
def checker(tmp_path_factory) -> Iterator[Store]:
    """District d1 on SQLite, shared by a module whose tests only check (nothing applied)."""
    s = Store(f"sqlite:///{tmp_path_factory.mktemp('checker') / 'roster.sqlite3'}")
    set_up_district(s)
    yield s
    s.dispose()
