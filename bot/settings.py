"""Runtime configuration of the Slack bot, read from the environment (product.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_OAUTH_AUTHORIZE_URL = "https://slack.com/oauth/v2/authorize"

#: Hosts Slack serves `url_private_download` from.  The bot token goes to these (https only)
#: and to the Web API host; never anywhere else.
SLACK_FILE_HOSTS: tuple[str, ...] = (
    "files.slack.com",
    "files-origin.slack.com",
    "files-edu.slack.com",
    "files.slack-gov.com",
)


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


JOB_QUEUES = ("threads", "queue")


def job_queue_for(database_url: str | None, wanted: str | None = None) -> str:
    """Where uploads run for this database: ROSTERBOT_JOB_QUEUE (`wanted`), by default the
    queue on PostgreSQL and the bot's threads on SQLite; the queue needs PostgreSQL."""
    postgres = (database_url or "").startswith("postgresql")
    raw = (wanted or "").strip().lower() or ("queue" if postgres else "threads")
    if raw not in JOB_QUEUES:
        raise SettingsError(
            f"ROSTERBOT_JOB_QUEUE must be one of {', '.join(JOB_QUEUES)}, got {raw!r}"
        )
    if raw == "queue" and not postgres:
        raise SettingsError(
            "the job queue (ROSTERBOT_JOB_QUEUE=queue, rosterbot worker) needs a PostgreSQL "
            "ROSTERBOT_DATABASE_URL; on SQLite uploads run on the bot's own threads"
        )
    return raw


@dataclass
class Settings:
    bot_token: str = ""
    app_token: str | None = None
    signing_secret: str | None = None
    database_url: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    #: District used for channels that are not linked (single-district installs).
    default_district: str | None = None
    #: Files larger than this (bytes, as Slack reports them) are refused before download.
    max_file_bytes: int = 250 * 1024 * 1024  # the same variable and default as the pipeline
    #: The "processing" message is updated at most this often (seconds).
    progress_interval: float = 3.0
    #: Threads that download and process files (off the request thread).
    upload_workers: int = 4
    #: Seconds allowed for one file download.
    download_timeout: float = 60.0
    #: Retries of one Web API call on 429 (Retry-After honoured), 500/503 and connection errors.
    slack_retries: int = 2
    #: Base of the exponential backoff between retries of 5xx / connection errors (seconds).
    slack_retry_backoff: float = 0.5
    #: A 429 asking to wait longer than this (seconds) is not retried; the call fails instead.
    slack_max_retry_after: float = 30.0
    file_hosts: tuple[str, ...] = field(default=SLACK_FILE_HOSTS)
    #: A file share waits this long (seconds) for SQLite's write lock before it is queued
    #: behind the upload holding it (and the thread told so).
    lock_wait: float = 2.0
    #: Seconds between two retention purges (the first runs at start); see roster/retention.py
    purge_interval: float = 24 * 60 * 60.0
    #: HTTP mode: request bodies over this many bytes are refused (413) before they are read.
    max_request_bytes: int = 3 * 1024 * 1024
    #: Many workspaces (OAuth installs, docs/deploy.md): the app's client id and secret.
    client_id: str | None = None
    client_secret: str | None = None
    #: The redirect URL registered with the app (https://HOST/slack/oauth_redirect).
    oauth_redirect_uri: str | None = None
    oauth_authorize_url: str = DEFAULT_OAUTH_AUTHORIZE_URL
    #: Where a claimed upload runs (docs/deploy.md "Processes"): "threads", the bot process's
    #: own thread pool (the embedded default, and the only choice on SQLite), or "queue", the
    #: PostgreSQL job queue that `rosterbot worker` processes run (bot/queue.py).  From the
    #: environment: ROSTERBOT_JOB_QUEUE, default "queue" on PostgreSQL, "threads" on SQLite.
    job_queue: str = "threads"

    @property
    def queued(self) -> bool:
        """Uploads go to the PostgreSQL job queue (worker processes), not a thread pool."""
        return self.job_queue == "queue"

    @property
    def multi_workspace(self) -> bool:
        """Installs through OAuth (one bot token per workspace) instead of SLACK_BOT_TOKEN."""
        return bool(self.client_id and self.client_secret)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        api_url = env.get("ROSTERBOT_SLACK_API_URL", "").strip() or DEFAULT_SLACK_API_URL
        if not api_url.endswith("/"):
            api_url += "/"
        if urlsplit(api_url).scheme not in ("http", "https") or not urlsplit(api_url).hostname:
            raise SettingsError(f"ROSTERBOT_SLACK_API_URL must be an http(s) URL, got {api_url!r}")
        return cls(
            bot_token=env.get("SLACK_BOT_TOKEN", "").strip(),
            app_token=env.get("SLACK_APP_TOKEN", "").strip() or None,
            signing_secret=env.get("SLACK_SIGNING_SECRET", "").strip() or None,
            database_url=env.get("ROSTERBOT_DATABASE_URL", "").strip() or None,
            slack_api_url=api_url,
            default_district=env.get("ROSTERBOT_DEFAULT_DISTRICT", "").strip() or None,
            max_file_bytes=_int(env, "ROSTERBOT_MAX_FILE_BYTES", cls.max_file_bytes),
            progress_interval=_float(env, "ROSTERBOT_PROGRESS_INTERVAL", cls.progress_interval),
            upload_workers=max(1, _int(env, "ROSTERBOT_UPLOAD_WORKERS", cls.upload_workers)),
            download_timeout=_float(env, "ROSTERBOT_DOWNLOAD_TIMEOUT", cls.download_timeout),
            slack_retries=max(0, _int(env, "ROSTERBOT_SLACK_RETRIES", cls.slack_retries)),
            max_request_bytes=max(
                1024, _int(env, "ROSTERBOT_MAX_REQUEST_BYTES", cls.max_request_bytes)
            ),
            client_id=env.get("SLACK_CLIENT_ID", "").strip() or None,
            client_secret=env.get("SLACK_CLIENT_SECRET", "").strip() or None,
            oauth_redirect_uri=env.get("SLACK_REDIRECT_URI", "").strip() or None,
            oauth_authorize_url=env.get("ROSTERBOT_SLACK_AUTHORIZE_URL", "").strip()
            or DEFAULT_OAUTH_AUTHORIZE_URL,
            job_queue=job_queue_for(
                env.get("ROSTERBOT_DATABASE_URL", "").strip(), env.get("ROSTERBOT_JOB_QUEUE")
            ),
        )

    def require_bot_token(self) -> str:
        if not self.bot_token:
            raise SettingsError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-...)")
        return self.bot_token
