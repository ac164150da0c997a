"""Telling Slack threads about uploads settled at start-up (roster.recovery.recover_unfinished).

Every recovered upload that came from Slack gets a reply in its thread: what happened (the
check run again, or "not applied - upload again"), the dry-run counts and top issues when
the stored file could be re-checked, and the error report.  An upload without a Slack
thread (the CLI) or a reply Slack refuses is logged with its upload id, never dropped.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient

from bot import formatting
from bot.delivery import describe, upload_file
from bot.settings import Settings

log = logging.getLogger(__name__)


def report_recovered(client: WebClient, settings: Settings, item: Any) -> bool:
    """Reply in the recovered upload's thread; True when Slack took the message."""
    if not item.slack_channel or not item.slack_thread_ts:
        log.warning(
            "recovered upload %s (%s) has no Slack thread: %s",
            item.upload_id,
            item.file_name,
            item.message,
        )
        return False
    message = formatting.recovered(item)
    try:
        client.chat_postMessage(
            channel=item.slack_channel, thread_ts=item.slack_thread_ts, **message.kwargs()
        )
    except Exception as err:
        log.error(
            "could not tell thread %s/%s about recovered upload %s (%s): %s",
            item.slack_channel,
            item.slack_thread_ts,
            item.upload_id,
            describe(err),
            item.message,
        )
        return False
    result = getattr(item, "result", None)
    report = getattr(result, "report_bytes", None)
    if report:
        try:
            upload_file(
                client,
                channel=item.slack_channel,
                thread_ts=item.slack_thread_ts,
                data=report,
                filename=result.report_name,
                backoff=settings.slack_retry_backoff,
            )
        except Exception as err:
            log.warning(
                "could not upload the report of recovered upload %s: %s",
                item.upload_id,
                describe(err),
            )
    reaction = formatting.recovered_reaction(item)
    if reaction:
        try:
            client.reactions_add(
                channel=item.slack_channel, timestamp=item.slack_thread_ts, name=reaction
            )
        except Exception:
            log.info("reactions.add %s failed", reaction, exc_info=True)
    return True
