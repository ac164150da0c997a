"""The PostgreSQL job queue: procrastinate on the roster database (docs/deploy.md).

On PostgreSQL (ROSTERBOT_JOB_QUEUE=queue, its default there) a bot replica does not process
uploads.  Its listener checks access and, in ONE transaction, claims the shared files and
defers one `process_upload` job (`defer_upload`, called by roster.store.claim_slack_files);
Slack is acknowledged after that commit (Bolt's process_before_response), so a file Slack
was told we have is never lost.  `rosterbot worker` processes (`run_worker`) take the jobs:
one at a time per process, and one at a time per district -- every job carries the lock
`district:<id>`, which procrastinate hands out in the order the jobs were deferred (the
claim order) -- while different districts run in parallel.

A worker that dies (SIGKILL, lost machine) stops its heartbeat; the periodic task
`retry_stalled_uploads`, run by any live worker, puts its job back in the queue.  The job
then runs again under the same district lock: the upload's record says whether the first
run committed (roster.store.finished_uploads, and roster.steps.commit_upload refuses a second
commit), so a retried upload is applied at most once and, if it was, only its reply is posted.
The file is downloaded from Slack by the job itself: no file bytes go into the database.

The job function is the same one the bot's thread pool runs on SQLite
(bot.uploads.UploadService.run_job): one job function, two dispatchers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import procrastinate
from sqlalchemy import Connection, Engine, make_url, text

if TYPE_CHECKING:
    from bot.settings import Settings
    from roster.store import Store

log = logging.getLogger(__name__)

TASK = "rosterbot.process_upload"
RETRY_TASK = "rosterbot.retry_stalled_uploads"
CLEAN_TASK = "rosterbot.remove_old_jobs"
#: pg_advisory_xact_lock key of the queue's schema set-up ("rosterq" in ASCII)
SCHEMA_LOCK = 0x726F7374657271

#: seconds between a worker's heartbeats; a worker silent for STALLED seconds is dead
HEARTBEAT = float(os.environ.get("ROSTERBOT_WORKER_HEARTBEAT", "") or 10)
STALLED = float(os.environ.get("ROSTERBOT_WORKER_STALLED_AFTER", "") or 60)
#: how often a live worker looks for stalled jobs (cron; a 6th field is seconds: every 15 s)
RETRY_CRON = os.environ.get("ROSTERBOT_STALLED_CHECK_CRON", "") or "* * * * * */15"
#: finished jobs (and their events) are kept this long, then removed by a daily task
KEEP_JOBS_HOURS = 72


def lock_of(district_id: int) -> str:
    """The procrastinate lock of a district's uploads."""
    return f"district:{district_id}"


def conninfo(database_url: str) -> str:
    """A libpq URL from the SQLAlchemy one (`postgresql+psycopg://...` -> `postgresql://...`)."""
    url = make_url(database_url)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def make_app(database_url: str) -> procrastinate.App:
    """The procrastinate app of a roster database, with rosterbot's tasks registered."""
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo(database_url)),
    )

    # A job's own failures (the pipeline's, Slack's) are finished and told in the thread by
    # the job; what escapes it (the database unreachable...) is tried again a little later,
    # which is safe: a run never applies an upload another run finished.
    @app.task(name=TASK, retry=procrastinate.RetryStrategy(max_attempts=3, wait=10))
    def process_upload(job: dict) -> None:  # a sync task: procrastinate runs it on a thread
        _runtime()(job)

    @app.periodic(cron=RETRY_CRON, periodic_id="stalled")
    @app.task(name=RETRY_TASK, queueing_lock="rosterbot-retry-stalled", pass_context=True)
    async def retry_stalled_uploads(context: Any, timestamp: int) -> None:
        manager = context.app.job_manager
        stalled = await manager.get_stalled_jobs(task_name=TASK, seconds_since_heartbeat=STALLED)
        for job in stalled:
            log.warning("job %s (%s) stalled: its worker is gone; retrying it", job.id, job.lock)
            await manager.retry_job(job)

    @app.periodic(cron="17 3 * * *", periodic_id="clean")
    @app.task(name=CLEAN_TASK, queueing_lock="rosterbot-remove-old-jobs", pass_context=True)
    async def remove_old_jobs(context: Any, timestamp: int) -> None:
        await context.app.job_manager.delete_old_jobs(nb_hours=KEEP_JOBS_HOURS)

    return app


def defer_upload(app: procrastinate.App, conn: Connection, district_id: int, job: dict) -> int:
    """Defer one upload job in `conn`'s transaction (committed, or rolled back, with it)."""
    raw = conn.connection.dbapi_connection  # the psycopg connection of the transaction
    return app.tasks[TASK].configure(connection=raw, lock=lock_of(district_id)).defer(job=job)


# -- the queue's tables --------------------------------------------------------------------------


def schema_ready(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None


def ensure_schema(engine: Engine) -> bool:
    """Create procrastinate's tables, types and functions (its own schema.sql, applied as
    procrastinate's schema applier does) when the database has none; True if it did.
    Idempotent, and safe for two processes at once (an advisory lock)."""
    from procrastinate.schema import SchemaManager

    if schema_ready(engine):
        return False
    with engine.begin() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
            return False
        conn.connection.dbapi_connection.execute(SchemaManager.get_schema())
    return True


def require_schema(engine: Engine) -> None:
    """On start of a replica or worker: create the queue's tables (ROSTERBOT_AUTO_UPGRADE,
    as the roster's own schema), or refuse to start without them."""
    from roster.store import SchemaBehind, auto_upgrade

    if auto_upgrade():
        ensure_schema(engine)
    elif not schema_ready(engine):
        raise SchemaBehind(
            "the roster database has no job queue tables: run `rosterbot db upgrade` first "
            "(docs/deploy.md)"
        )


# -- the worker process --------------------------------------------------------------------------


#: what a worker does with one upload job (bot.uploads.UploadService.run_queued)
_RUN_JOB: Callable[[dict], None] | None = None


def _runtime() -> Callable[[dict], None]:
    if _RUN_JOB is None:
        raise RuntimeError("rosterbot jobs run in `rosterbot worker` (bot.queue.run_worker)")
    return _RUN_JOB


def slack_client(settings: Settings, store: Store, district_key: str) -> Any:
    """A WebClient with the token that serves the district: SLACK_BOT_TOKEN, or the bot
    token of its workspace's install (many workspaces); None without one."""
    from slack_sdk import WebClient

    from bot.delivery import retry_handlers

    token: str | None = settings.bot_token or None
    if settings.multi_workspace:
        from bot.oauth import bot_token_for_team

        district = store.get_district(district_key)
        token = bot_token_for_team(settings, store.engine, district.team_id if district else None)
    if not token:
        return None
    return WebClient(
        token=token, base_url=settings.slack_api_url, retry_handlers=retry_handlers(settings)
    )


def run_worker(store: Store, run_job: Callable[[dict], None]) -> None:
    """`rosterbot worker`: take upload jobs, one at a time, handing each to `run_job`, until
    SIGINT/SIGTERM (a job under way is finished first)."""
    global _RUN_JOB

    require_schema(store.engine)
    _RUN_JOB = run_job
    app = make_app(store.url)
    log.info("rosterbot worker: taking upload jobs (heartbeat %gs)", HEARTBEAT)
    try:
        app.run_worker(
            concurrency=1,
            update_heartbeat_interval=HEARTBEAT,
            stalled_worker_timeout=STALLED,
            install_signal_handlers=True,
        )
    finally:
        _RUN_JOB = None
