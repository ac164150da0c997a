"""The bot purges old upload data at start and then once a day (roster/retention.py)."""

from __future__ import annotations

import logging
import threading

from roster.logsafe import error_code
from roster.retention import purge
from roster.store import Store

log = logging.getLogger(__name__)

DAY = 24 * 60 * 60.0


class DailyPurge:
    """A daemon thread running `roster.retention.purge` every `interval` seconds."""

    def __init__(self, store: Store, days: int, interval: float = DAY) -> None:
        self.store, self.days, self.interval = store, days, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rosterbot-purge", daemon=True)

    def start(self) -> DailyPurge:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = purge(self.store, self.days)
                if done.uploads:
                    log.info(
                        "retention: purged %s upload(s) older than %s days", done.uploads, self.days
                    )
            except Exception as exc:  # try again tomorrow; never take the bot down
                log.error("retention purge failed (%s)", error_code(exc))
            self._stop.wait(self.interval)
