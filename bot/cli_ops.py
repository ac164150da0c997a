"""`rosterbot db ...`: operating the roster database (docs/deploy.md)."""

from __future__ import annotations

from roster import schema
from roster.store import RosterError, Store


def cmd_db_upgrade(args) -> int:
    store = Store(args.db, create=False)  # no upgrade on open: this verb does it, and says so
    try:
        before, now = schema.upgrade(store.engine)
        queue = None
        if store.dialect == "postgresql":  # the job queue's tables (bot/queue.py)
            from bot.queue import ensure_schema

            queue = ensure_schema(store.engine)
    finally:
        store.dispose()
    if queue:
        print("Job queue tables created (procrastinate).")
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


def cmd_worker(args) -> int:
    import logging

    from bot.queue import run_worker
    from bot.settings import Settings, SettingsError, job_queue_for

    logging.getLogger("rosterbot").setLevel(logging.INFO)
    logging.getLogger("bot").setLevel(logging.INFO)
    try:
        settings = Settings.from_env()
        settings.database_url = args.db or settings.database_url
        settings.job_queue = job_queue_for(settings.database_url, "queue")
    except SettingsError as exc:
        raise RosterError(f"{exc} (see docs/deploy.md)") from None
    from bot.uploads import UploadService

    store = Store(settings.database_url)
    uploads = UploadService(settings, store)
    try:
        run_worker(store, uploads.run_queued)
    finally:
        uploads.shutdown(wait=True)
        store.dispose()
    return 0


def register(sub) -> None:
    c = sub.add_parser(
        "worker", help="process queued uploads (PostgreSQL job queue; one at a time per process)"
    )
    c.set_defaults(func=cmd_worker)
    db = sub.add_parser("db", help="the roster database's schema").add_subparsers(
        dest="sub", required=True
    )
    c = db.add_parser("upgrade", help="upgrade the schema to this release (keeps every row)")
    c.set_defaults(func=cmd_db_upgrade)
    c = db.add_parser("current", help="the schema revision the database is at")
    c.set_defaults(func=cmd_db_current)
