"""Talking to Slack when Slack misbehaves: retry handlers, file uploads, DMs.

Every Web API call of the bot goes through a WebClient carrying `retry_handlers(settings)`:
a 429 is retried after its Retry-After (unless Slack asks for longer than
`slack_max_retry_after`), a 500/503 and a dropped connection after a short exponential
backoff, each at most `slack_retries` times.  The raw POST of `files_upload_v2` to the
pre-signed upload URL does not go through those handlers (slack_sdk uses plain urllib for
it), so `upload_file()` retries the whole three-step upload instead.
"""

from __future__ import annotations

import logging
import random
import time
import urllib.error
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.jitter import Jitter

from bot.settings import Settings

log = logging.getLogger(__name__)


class _BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Honours Retry-After, but not when Slack asks for a wait longer than `max_wait`."""

    def __init__(self, max_retry_count: int, max_wait: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        for name, values in (response.headers or {}).items():
            if name.lower() == "retry-after":
                value = values[0] if isinstance(values, list | tuple) else values
                try:
                    return float(value) <= self.max_wait
                except (TypeError, ValueError):
                    return True
        return True


class _ScaledJitter(Jitter):
    """Up to one backoff factor of random extra wait (slack_sdk's default adds up to 1 s)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def recalculate(self, duration: float) -> float:
        return duration + random.random() * self.scale


def retry_handlers(settings: Settings) -> list[RetryHandler]:
    factor = settings.slack_retry_backoff
    backoff = BackoffRetryIntervalCalculator(backoff_factor=factor, jitter=_ScaledJitter(factor))
    n = settings.slack_retries
    return [
        ConnectionErrorRetryHandler(max_retry_count=n, interval_calculator=backoff),
        _BoundedRateLimitRetryHandler(max_retry_count=n, max_wait=settings.slack_max_retry_after),
        ServerErrorRetryHandler(max_retry_count=n, interval_calculator=backoff),
    ]


def upload_file(
    client: WebClient,
    *,
    channel: str,
    data: bytes,
    filename: str,
    thread_ts: str | None = None,
    title: str | None = None,
    attempts: int = 3,
    backoff: float = 0.5,
) -> Any:
    """files_upload_v2 into `channel` (a thread when `thread_ts`), retried as a whole when the
    raw upload to the upload URL fails (a 5xx or a dropped connection there).

    Errors of the Web API calls themselves were already retried by the client's handlers and
    are raised as they are.
    """
    for attempt in range(1, attempts + 1):
        try:
            return client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                file=data,
                filename=filename,
                title=title or filename,
            )
        except SlackApiError:
            raise
        except (SlackRequestError, urllib.error.URLError, OSError) as err:
            if attempt == attempts:
                raise
            log.warning(
                "uploading %s failed (%s); retrying (%d/%d)", filename, err, attempt, attempts - 1
            )
            time.sleep(backoff * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def open_dm(client: WebClient, user: str) -> str:
    """The id of the bot's direct-message channel with `user` (conversations.open, im:write)."""
    return client.conversations_open(users=user)["channel"]["id"]


def describe(err: BaseException) -> str:
    """A short reason for a failed Slack call, for logs and fallback messages."""
    if isinstance(err, SlackApiError):
        response = err.response
        error = response.get("error") if hasattr(response, "get") else None
        return f"Slack answered {getattr(response, 'status_code', '?')}" + (
            f" ({error})" if error else ""
        )
    return f"{type(err).__name__}: {err}"
