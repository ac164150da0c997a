"""Temporary adapter: store queries the bot needs that roster.store.Store does not offer yet.

Each function prefers the Store method of the same name when it exists, so this module can
be deleted once roster/ grows them:

* ``Store.uploads_in_thread(channel, thread_ts) -> list[Upload]`` — every finished upload of a
  Slack thread (users.csv and demographics.csv shared in one message share a thread);
* ``Store.district_key_of(upload) -> str | None`` (or ``Upload.district_key``).
"""

from __future__ import annotations

from typing import Any

FINISHED = ("applied", "checked", "failed", "held")


def uploads_in_thread(store: Any, channel: str, thread_ts: str) -> list[Any]:
    if hasattr(store, "uploads_in_thread"):
        return list(store.uploads_in_thread(channel, thread_ts))
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from roster.models import Upload

    with Session(store.engine, expire_on_commit=False) as session:
        found = list(session.scalars(
            select(Upload).where(Upload.slack_channel == channel,
                                 Upload.slack_thread_ts == thread_ts,
                                 Upload.state.in_(FINISHED)).order_by(Upload.id)))
    # the latest run of each file (a confirmed re-run replaces a held one)
    latest: dict[str, Any] = {}
    for upload in found:
        latest[upload.slack_file_id or f"id:{upload.id}"] = upload
    return list(latest.values())


def district_key_of(store: Any, upload: Any) -> str | None:
    if getattr(upload, "district_key", None):
        return upload.district_key
    if hasattr(store, "district_key_of"):
        return store.district_key_of(upload)
    if upload.district_id is None:
        return None
    from sqlalchemy import select

    from roster.models import District

    with store.engine.connect() as conn:
        return conn.execute(select(District.key).where(District.id == upload.district_id)).scalar()
