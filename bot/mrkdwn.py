"""Slack mrkdwn escaping: the one rule every module that writes Slack text shares."""

from __future__ import annotations


def escape(value: object) -> str:
    """Slack mrkdwn escaping for text that came from a file or a person."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
