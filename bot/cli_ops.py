"""`rosterbot db ...`: operating the roster database (docs/deploy.md)."""

from __future__ import annotations

from roster import schema
from roster.store import Store


def cmd_db_upgrade(args) -> int:
    store = Store(args.db, create=False)  # no upgrade on open: this verb does it, and says so
    try:
        before, now = schema.upgrade(store.engine)
    finally:
        store.dispose()
    if before == now and now != schema.head():
        print(f"The database is at {now}, newer than this rosterbot ({schema.head()}); unchanged.")
    elif before == now:
        print(f"The database is already at {now} (the newest revision); nothing to do.")
    else:
        print(f"Database upgraded from {before or 'none'} to {now}.")
    return 0


def cmd_db_current(args) -> int:
    store = Store(args.db, create=False)
    try:
        at = schema.current(store.engine)
    finally:
        store.dispose()
    print(f"{at or 'none'} (this rosterbot: {schema.head()})")
    return 0


def register(sub) -> None:
    db = sub.add_parser("db", help="the roster database's schema").add_subparsers(
        dest="sub", required=True
    )
    c = db.add_parser("upgrade", help="upgrade the schema to this release (keeps every row)")
    c.set_defaults(func=cmd_db_upgrade)
    c = db.add_parser("current", help="the schema revision the database is at")
    c.set_defaults(func=cmd_db_current)
