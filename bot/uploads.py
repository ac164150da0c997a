"""A roster file shared in Slack: decide, claim, acknowledge, then process off the request thread.

The listener hands the `message`/`file_share` event here.  `accept()` runs on Bolt's listener
thread and only does quick work (permission check, claiming the Slack file ids in the store,
the first reaction and the "processing" message); `_process()` runs on our own executor:
download → roster.pipeline.run() → summary + error report + final reaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import access, formatting
from bot.delivery import describe, upload_file
from bot.files import DownloadRefused, SharedFile, download, unreadable_reason
from bot.settings import Settings
from roster.states import UNFINISHED_STATES, FileStatus, UploadState
from roster.store import StoreBusy, UploadFinished

if TYPE_CHECKING:
    from roster.models import Upload
    from roster.store import DistrictInfo, Store

log = logging.getLogger(__name__)

REACTION_SEEN = "eyes"
REACTION_SUCCESS = "white_check_mark"
REACTION_ERRORS = "warning"
REACTION_FAILURE = "x"
REACTION_HELD = "raised_hand"
REACTION_REFUSED = "no_entry"

#: product.md: a check is asked by a message whose text, mentions removed, STARTS with one of
#: these words; a sentence that merely contains one ("no need to check") is an upload
_DRY_RUN = re.compile(r"(check|dry[ -]?run|preview)\b", re.IGNORECASE)
_MENTION = re.compile(r"<[@!#][^>]*>")


def wants_dry_run(text: str | None) -> bool:
    return bool(_DRY_RUN.match(_MENTION.sub(" ", text or "").strip()))


_SYNC = re.compile(r"^\s*(?:<[@!][^>]*>[\s,:]*)*sync\b", re.IGNORECASE)


def wants_sync(text: str | None) -> bool:
    """Full sync: the message's text, mentions removed, starts with "sync"."""
    return bool(_SYNC.match(text or ""))


def is_dm(event: dict) -> bool:
    return event.get("channel_type") == "im" or str(event.get("channel", "")).startswith("D")


class RecentKeys:
    """A bounded set of recently handled keys (refusals are not stored, but not repeated)."""

    def __init__(self, size: int = 2048) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first_time(self, key: str) -> bool:
        with self._lock:
            if key in self._keys:
                return False
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True

    def forget(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)


class ProgressMessage:
    """Best-effort progress on the "processing" message, posted from a thread of its own.

    The pipeline calls it while it holds the roster's transaction, i.e. the database lock: a
    call only records the latest stage and wakes the poster, so nothing the transaction does
    waits on Slack.  The poster sends one chat.update at most every `interval` seconds,
    through a client that never retries; after a 429 it skips updates until Retry-After has
    passed (the next stage simply replaces the one that was not shown).
    """

    def __init__(
        self,
        client: WebClient,
        channel: str,
        ts: str | None,
        names: list[str],
        dry_run: bool,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.channel, self.ts = channel, ts
        self.names, self.dry_run, self.interval, self.clock = names, dry_run, interval, clock
        # no retry handlers: a refused update is dropped, never waited for and sent again
        self.client = WebClient(
            token=client.token, base_url=client.base_url, timeout=client.timeout, retry_handlers=[]
        )
        self._last = clock()
        self._not_before = 0.0
        self._latest: tuple[str, float] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, stage: str, fraction: float) -> None:
        if self.ts is None or self._stop.is_set():
            return
        with self._lock:
            self._latest = (stage, fraction)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._post_loop, name="rosterbot-progress", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 2.0) -> None:
        """No more updates; waits briefly for one in flight (the final message comes next)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _post_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            wait = max(self._last + self.interval, self._not_before) - self.clock()
            if wait > 0 and self._stop.wait(wait):
                return
            with self._lock:
                latest, self._latest = self._latest, None
            if latest is None or self._stop.is_set():
                continue
            self._last = self.clock()
            self._send(*latest)

    def _send(self, stage: str, fraction: float) -> None:
        try:
            self.client.chat_update(
                channel=self.channel,
                ts=self.ts,
                **formatting.progress(self.names, stage, fraction, self.dry_run).kwargs(),
            )
        except SlackApiError as err:  # progress is cosmetic; never fail or slow the upload
            if err.response.status_code == 429:
                self._not_before = self.clock() + _retry_after(err.response.headers)
            log.info("progress update refused: %s", describe(err))
        except Exception as err:
            log.info("progress update failed: %s", describe(err))


def _retry_after(headers: Any) -> float:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            value = value[0] if isinstance(value, list | tuple) else value
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                break
    return 1.0


@dataclass
class Share:
    """A message sharing roster files, decided (may upload) but not yet claimed."""

    channel: str
    message_ts: str
    thread_ts: str
    user: str
    district: DistrictInfo
    dry_run: bool
    files: list[SharedFile]
    skipped: list[str] = field(default_factory=list)
    sync: bool = False


def pause_for_test(hook: str, what: str) -> None:
    """TEST HOOK, no effect unless the environment variable `hook` names a file: prints one
    marker line on stderr, then waits until that file exists (tests/test_cluster.py kills
    the process meanwhile).  ROSTERBOT_TEST_PAUSE_BEFORE_ACK: a replica with a file claimed
    and its job deferred, not committed, Slack not acknowledged.
    ROSTERBOT_TEST_PAUSE_BEFORE_REPLY: a worker whose upload committed, nothing replied."""
    release = os.environ.get(hook)
    if not release:
        return
    sys.stderr.write(f"rosterbot-test-hook: {what}\n")
    sys.stderr.flush()
    while not os.path.exists(release):
        time.sleep(0.05)


#: while queued behind another upload, how long each look at the write lock waits (seconds)
LOCK_POLL = 2.0


def queued_message(share: Share | UploadJob, names: list[str] | None = None) -> formatting.Message:
    names = names if names is not None else [f.name for f in share.files]
    what = "check" if share.dry_run else "process"
    return formatting.Message(
        f":hourglass_flowing_sand: Queued behind another upload that is still running: I will "
        f"{what} {formatting.names_list(names)} as soon as it finishes. Nothing has been "
        "applied yet."
    )


@dataclass
class UploadJob:
    channel: str
    message_ts: str
    thread_ts: str
    user: str
    district: DistrictInfo
    dry_run: bool
    files: list[tuple[SharedFile, int]]  # (file, upload id from claim_slack_file)
    processing_ts: str | None = None
    skipped: list[str] = field(default_factory=list)
    confirm_removals: bool = False
    confirm_id_changes: bool = False
    #: a Confirm re-run: upload id -> SHA-256 of the file that was reviewed (held); a file
    #: whose bytes differ now is not applied
    reviewed_sha256: dict[int, str] = field(default_factory=dict)
    #: full sync (a message starting with "sync")
    sync: bool = False
    #: the 👀 reaction and the "processing" message are already shown (a queued job shows
    #: them when a worker starts it)
    announced: bool = True

    @classmethod
    def of_share(
        cls, share: Share, files: list[tuple[SharedFile, int]], **extra: Any
    ) -> "UploadJob":
        """The job of a file share whose files are claimed (`files`: file, upload id)."""
        return cls(
            channel=share.channel,
            message_ts=share.message_ts,
            thread_ts=share.thread_ts,
            user=share.user,
            district=share.district,
            dry_run=share.dry_run,
            files=files,
            skipped=share.skipped,
            sync=share.sync,
            **extra,
        )

    def to_json(self) -> dict:
        """The job's arguments in the queue: ids and Slack coordinates, never file bytes."""
        return {
            "channel": self.channel,
            "message_ts": self.message_ts,
            "thread_ts": self.thread_ts,
            "user": self.user,
            "district": self.district.key,
            "dry_run": self.dry_run,
            "files": [asdict(f) | {"upload_id": upload_id} for f, upload_id in self.files],
            "processing_ts": self.processing_ts,
            "skipped": list(self.skipped),
            "confirm_removals": self.confirm_removals,
            "confirm_id_changes": self.confirm_id_changes,
            "reviewed_sha256": {str(k): v for k, v in self.reviewed_sha256.items()},
            "sync": self.sync,
            "announced": self.announced,
        }

    @classmethod
    def from_json(cls, data: dict, store: Store) -> UploadJob:
        files = []
        for f in data["files"]:
            f = dict(f)
            upload_id = int(f.pop("upload_id"))
            files.append((SharedFile(**f), upload_id))
        return cls(
            channel=data["channel"],
            message_ts=data["message_ts"],
            thread_ts=data["thread_ts"],
            user=data["user"],
            district=store.district(data["district"]),
            dry_run=bool(data["dry_run"]),
            files=files,
            processing_ts=data.get("processing_ts"),
            skipped=list(data.get("skipped") or []),
            confirm_removals=bool(data.get("confirm_removals")),
            confirm_id_changes=bool(data.get("confirm_id_changes")),
            reviewed_sha256={int(k): v for k, v in (data.get("reviewed_sha256") or {}).items()},
            sync=bool(data.get("sync")),
            announced=bool(data.get("announced", True)),
        )


class UploadService:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.executor = ThreadPoolExecutor(
            settings.upload_workers, thread_name_prefix="rosterbot-upload"
        )
        self._answered = RecentKeys()
        self._closing = threading.Event()
        #: the PostgreSQL job queue (bot/queue.py) when uploads run on workers
        self.queue = None
        if settings.queued:
            from bot.queue import make_app

            self.queue = make_app(store.url)

    def shutdown(self, wait: bool = True) -> None:
        self._closing.set()  # a share queued behind another upload is told and let go
        self.executor.shutdown(wait=wait)

    # -- on the listener thread -------------------------------------------------------------
    def accept(self, client: WebClient, event: dict) -> Future | None:
        """Handle a message carrying files; returns the processing future, if any."""
        channel, ts, user = event["channel"], event["ts"], event.get("user", "")
        thread_ts = event.get("thread_ts") or ts
        dm = is_dm(event)
        shared = [SharedFile.from_event(self._full_file(client, f)) for f in event.get("files", [])]
        reasons = [(f, unreadable_reason(f)) for f in shared]
        unreadable = [(f, reason) for f, reason in reasons if reason]
        shared = [f for f, reason in reasons if not reason]
        csvs = [f for f in shared if f.is_csv]
        others = [f.name for f in shared if not f.is_csv]
        if unreadable:
            # ❌ only when nothing of the message is processed (otherwise the final reaction)
            self._tell_unreadable(client, event, dm, unreadable, react=not csvs)
        if not csvs:
            if dm and others and self._answered.first_time("csv-only:" + ts):
                client.chat_postMessage(
                    channel=channel, thread_ts=thread_ts, **formatting.csv_only(others).kwargs()
                )
            return None

        decision = access.for_upload(
            self.store, self.settings, user, channel, dm, event.get("text") or ""
        )
        if not decision.allowed:
            # one refusal per share (a re-share of the same file is asked again)
            if self._answered.first_time(f"refused:{ts}:" + ",".join(f.id for f in csvs)):
                self._refuse(client, channel, ts, thread_ts, decision.refusal)
            return None

        share = Share(
            channel=channel,
            message_ts=ts,
            thread_ts=thread_ts,
            user=user,
            district=decision.district,
            dry_run=wants_dry_run(event.get("text")),
            files=csvs,
            skipped=others if dm else [],
            sync=wants_sync(event.get("text")),
        )
        if self.queue is not None:
            self._enqueue(client, share)
            return None
        try:
            claimed = self._claim(share, wait=self.settings.lock_wait)
        except StoreBusy:
            # Another upload (the command line, another district) holds SQLite's write lock:
            # say so now, and claim and process the file on a worker once the lock frees.
            if not self._answered.first_time(f"queued:{ts}:" + ",".join(f.id for f in csvs)):
                return None
            self._react(client, channel, ts, REACTION_SEEN)
            queued_ts = self._post(client, channel, thread_ts, queued_message(share))
            return self.executor.submit(self._when_free, client, share, queued_ts)
        return self._start(client, share, claimed)

    def _enqueue(self, client: WebClient, share: Share) -> None:
        """PostgreSQL job queue: claim the files and defer their job in one transaction.

        Runs before Slack is acknowledged (process_before_response): when this returns, the
        file is claimed and its job is in the queue; if it raises, Slack gets an error and
        sends the event again.  A re-delivered event claims nothing and defers nothing."""
        from bot.queue import defer_upload

        by_file = {f.id: f for f in share.files}

        def defer(conn: Any, claimed: list[tuple[str, int]]) -> None:
            job = UploadJob.of_share(
                share,
                [(by_file[file_id], upload_id) for file_id, upload_id in claimed],
                announced=False,
            )
            defer_upload(self.queue, conn, share.district.id, job.to_json())
            pause_for_test("ROSTERBOT_TEST_PAUSE_BEFORE_ACK", "claimed and deferred, not committed")

        ids = self.store.claim_slack_files(
            [(f.id, f.name) for f in share.files],
            share.district.key,
            share.channel,
            share.thread_ts,
            share.user,
            dry_run=share.dry_run,
            message_ts=share.message_ts,
            then=defer,
        )
        if not ids:
            log.info("files %s already claimed; ignoring re-delivery", list(by_file))
            return
        # acknowledged right after this returns; the 👀 does not hold the acknowledgement
        threading.Thread(
            target=self._react,
            args=(client, share.channel, share.message_ts, REACTION_SEEN),
            daemon=True,
        ).start()

    def _claim(self, share: Share, wait: float | None = None) -> list[tuple[SharedFile, int]]:
        """Record each file of the share as received; the ones not claimed before."""
        claimed = []
        for f in share.files:
            upload_id = self.store.claim_slack_file(
                f.id,
                share.district.key,
                share.channel,
                share.thread_ts,
                share.user,
                f.name,
                dry_run=share.dry_run,
                message_ts=share.message_ts,
                wait=wait,
            )
            if upload_id is not None:  # None: Slack re-delivered an event we already have
                claimed.append((f, upload_id))
        return claimed

    def _start(
        self,
        client: WebClient,
        share: Share,
        claimed: list[tuple[SharedFile, int]],
        queued_ts: str | None = None,
    ) -> Future | None:
        if not claimed:
            log.info("files %s already claimed; ignoring re-delivery", [f.id for f in share.files])
            return None
        names = [f.name for f, _ in claimed]
        if queued_ts is None:
            self._react(client, share.channel, share.message_ts, REACTION_SEEN)
        # The files are claimed: from here on they are processed even when Slack refuses the
        # "processing" message (the summary says the rest).
        message = formatting.processing(names, share.dry_run, share.skipped)
        processing_ts = queued_ts
        if queued_ts is None or not self._replace(client, share.channel, queued_ts, message):
            processing_ts = self._post(client, share.channel, share.thread_ts, message)
        job = UploadJob.of_share(share, claimed, processing_ts=processing_ts)
        if queued_ts is not None:  # already on a worker
            self.run_job(client, job)
            return None
        return self.executor.submit(self.run_job, client, job)

    def _when_free(self, client: WebClient, share: Share, queued_ts: str | None) -> None:
        """On a worker: claim a queued share once the write lock frees, then process it."""
        while True:
            if self._closing.is_set():
                self._post(
                    client,
                    share.channel,
                    share.thread_ts,
                    formatting.Message(
                        f"I stopped before {formatting.names_list([f.name for f in share.files])}"
                        " could be processed; nothing was applied. Share the file again."
                    ),
                )
                return
            try:
                claimed = self._claim(share, wait=LOCK_POLL)
                break
            except StoreBusy:
                continue
            except Exception:
                log.exception("claiming a queued share failed")
                self._post(client, share.channel, share.thread_ts, formatting.internal_error([]))
                self._react(client, share.channel, share.message_ts, REACTION_FAILURE)
                return
        self._start(client, share, claimed, queued_ts)

    def _wait_for_lock(self, client: WebClient, job: UploadJob) -> bool:
        """Before a claimed upload runs: if another upload holds the write lock, say the file
        is queued and wait; False when the bot is stopping (the caller gives up)."""
        if self.store.write_lock_free(wait=self.settings.lock_wait):
            return True
        names = [f.name for f, _ in job.files]
        self._update(client, job, queued_message(job, names))
        while not self.store.write_lock_free(wait=LOCK_POLL):
            if self._closing.is_set():
                return False
        self._update(client, job, formatting.processing(names, job.dry_run, job.skipped))
        return True

    @staticmethod
    def _replace(client: WebClient, channel: str, ts: str, message: formatting.Message) -> bool:
        try:
            client.chat_update(channel=channel, ts=ts, **message.kwargs())
            return True
        except Exception as err:
            log.warning("chat.update failed: %s", describe(err))
            return False

    def _tell_unreadable(
        self,
        client: WebClient,
        event: dict,
        dm: bool,
        unreadable: list[tuple[SharedFile, str]],
        react: bool = True,
    ) -> None:
        """Say why files the bot cannot take were not read (hidden by the workspace's storage
        limit, a name too long to record): in a DM, or where the sharer may upload."""
        channel, ts = event["channel"], event["ts"]
        if not self._answered.first_time("unreadable:" + ts):
            return
        if not dm:
            decision = access.for_upload(
                self.store,
                self.settings,
                event.get("user", ""),
                channel,
                dm,
                event.get("text") or "",
            )
            if not decision.allowed:
                return  # not a roster channel (or not a roster person): stay quiet
        thread_ts = event.get("thread_ts") or ts
        self._post(client, channel, thread_ts, formatting.unreadable_files(unreadable))
        if react:
            self._react(client, channel, ts, REACTION_FAILURE)

    @staticmethod
    def _post(
        client: WebClient, channel: str, thread_ts: str, message: formatting.Message
    ) -> str | None:
        """chat.postMessage that logs instead of raising (Slack already retried); its ts."""
        try:
            return client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, **message.kwargs()
            ).get("ts")
        except Exception as err:
            # not the message's text: a summary quotes file names and CSV values
            log.error("posting to %s/%s failed (%s)", channel, thread_ts, describe(err))
            return None

    def _full_file(self, client: WebClient, f: dict) -> dict:
        """Slack Connect shares carry only the id (mode file_access): ask files.info."""
        if f.get("mode") == "file_access" or (f.get("id") and not f.get("name")):
            try:
                return client.files_info(file=f["id"])["file"]
            except Exception:
                log.warning("files.info failed for %s", f.get("id"), exc_info=True)
        return f

    def _refuse(
        self, client: WebClient, channel: str, ts: str, thread_ts: str, refusal: access.Refusal
    ) -> None:
        client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            **formatting.refusal(refusal.reason, refusal.what_to_do).kwargs(),
        )
        self._react(client, channel, ts, REACTION_REFUSED)

    @staticmethod
    def _react(client: WebClient, channel: str, ts: str, name: str) -> None:
        try:
            client.reactions_add(channel=channel, timestamp=ts, name=name)
        except Exception:  # e.g. already_reacted; a reaction is never worth failing over
            log.info("reactions.add %s failed", name, exc_info=True)

    @staticmethod
    def _unreact(client: WebClient, channel: str, ts: str, name: str) -> None:
        try:
            client.reactions_remove(channel=channel, timestamp=ts, name=name)
        except Exception:  # e.g. no_reaction: nothing to take back
            log.info("reactions.remove %s failed", name, exc_info=True)

    def confirm(self, client: WebClient, body: dict, respond: Any) -> None:
        """The Confirm button of a held upload: re-run it with what the guards held confirmed
        (removals, ID changes), provided the file is still the one that was reviewed."""
        user = body.get("user", {}).get("id", "")
        try:
            value = json.loads(body["actions"][0]["value"])
            ids = [int(i) for i in value["uploads"]]
            shared_ts = value.get("ts")  # the message that shared the file (reactions go there)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            respond(
                response_type="ephemeral",
                replace_original=False,
                text="That button is out of date; share the file again.",
            )
            return
        held = [u for u in (self.store.upload(i) for i in ids) if u is not None]
        held = [u for u in held if u.state == UploadState.HELD]
        if not held:
            respond(
                response_type="ephemeral",
                replace_original=False,
                text="This upload was already confirmed or is no longer held.",
            )
            return
        keys = {self.store.district_key_of(u) for u in held}
        district = self.store.get_district(keys.pop() or "") if len(keys) == 1 else None
        decision = access.for_confirm(self.store, user, district)
        if not decision.allowed:
            respond(
                response_type="ephemeral",
                replace_original=False,
                text=decision.refusal.reason,
            )
            return
        files = {}
        for u in held:
            files[u.id] = SharedFile.from_event(self._full_file(client, {"id": u.slack_file_id}))
        first = held[0]
        channel, thread_ts = first.slack_channel, first.slack_thread_ts
        job = UploadJob(
            channel=channel,
            message_ts=shared_ts if isinstance(shared_ts, str) and shared_ts else thread_ts,
            thread_ts=thread_ts,
            user=user,
            district=district,
            dry_run=False,
            files=[],
            confirm_removals=True,
            confirm_id_changes=True,
            reviewed_sha256={u.id: u.file_sha256 for u in held if u.file_sha256},
            sync=value.get("sync") is True,
        )

        def defer(conn: Any, taken: list[int]) -> None:
            from bot.queue import defer_upload

            job.files = [(files[i], i) for i in taken]
            job.announced = False
            defer_upload(self.queue, conn, district.id, job.to_json())

        # One conditional update (held -> received) decides which press confirms: a second
        # press, a double click or another replica's press finds nothing held any more.
        taken = self.store.reclaim_held(
            [u.id for u in held], then=defer if self.queue is not None else None
        )
        if not taken:
            respond(
                response_type="ephemeral",
                replace_original=False,
                text="This upload was already confirmed or is no longer held.",
            )
            return
        job.files = [(files[i], i) for i in taken]
        names = [f.name for f, _ in job.files]
        confirmed = formatting.Message(
            f":hourglass_flowing_sand: <@{user}> confirmed; applying "
            f"{formatting.names_list(names)} again…"
        )
        if self.queue is not None:  # the job is in the queue; a worker applies it
            self._post(client, channel, thread_ts, confirmed)
            return
        job.processing_ts = self._post(client, channel, thread_ts, confirmed)
        self.executor.submit(self.run_job, client, job)

    def undo_pressed(self, client: WebClient, body: dict, respond: Any) -> Future | None:
        """The Undo button of an applied upload's summary: undo it (bot/undo_flow.py) off the
        request thread and answer in the upload's thread, with the undo's changes file."""
        user = body.get("user", {}).get("id", "")
        try:
            upload_id = int(json.loads(body["actions"][0]["value"])["upload"])
            message = body.get("message") or {}
            channel = body["container"]["channel_id"]
            thread_ts = message.get("thread_ts") or message["ts"]
            record = self._record(upload_id)
            if record is not None and record.slack_channel == channel and record.slack_thread_ts:
                thread_ts = record.slack_thread_ts  # the upload's own thread
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            respond(
                response_type="ephemeral",
                replace_original=False,
                text="That button is out of date; use /rosterbot undo UPLOAD_ID.",
            )
            return None
        # No in-memory guard: roster.undo checks, under the district's lock, that the upload
        # is not undone already, so a second press (any replica) is refused and says so.
        return self.executor.submit(self._undo, client, user, upload_id, channel, thread_ts)

    def _undo(
        self, client: WebClient, user: str, upload_id: int, channel: str, thread_ts: str
    ) -> None:
        from bot.undo_flow import undo_upload

        try:
            answer = undo_upload(self.store, user, upload_id)
        except Exception:
            log.exception("undo of upload %s failed", upload_id)
            answer = None
        if answer is None:
            self._post(client, channel, thread_ts, formatting.internal_error())
            return
        self._post(client, channel, thread_ts, answer.message)
        if answer.changes:
            name, data = answer.changes
            try:
                upload_file(
                    client,
                    channel=channel,
                    thread_ts=thread_ts,
                    data=data,
                    filename=name,
                    backoff=self.settings.slack_retry_backoff,
                )
            except Exception as err:
                log.error("uploading %s failed: %s", name, describe(err))

    # -- on the executor or a worker -----------------------------------------------------------
    def run_job(self, client: WebClient, job: UploadJob) -> None:
        """THE upload job, whichever dispatcher runs it (this process's thread pool, or a
        `rosterbot worker` taking it from the PostgreSQL queue): download the files from
        Slack, run the pipeline, reply.  A record already finished (a retried job whose
        first run committed before its worker died) is not run again: its stored result is
        posted instead."""
        done = self.store.finished_uploads(job.district.key, [i for _, i in job.files])
        if done:
            self._report_stored(client, job, done)
            finished = {u.id for u in done}
            job.files = [(f, i) for f, i in job.files if i not in finished]
            if not job.files:
                return
        if not job.announced:  # a queued job (its listener put the 👀 on the message)
            names = [f.name for f, _ in job.files]
            message = formatting.processing(names, job.dry_run, job.skipped)
            job.processing_ts = self._post(client, job.channel, job.thread_ts, message)
            job.announced = True
        self._process(client, job)

    def run_queued(self, data: dict) -> None:
        """A job from the PostgreSQL queue (`rosterbot worker`): run_job() with the token that
        serves the upload's district."""
        from bot.queue import slack_client

        job = UploadJob.from_json(data, self.store)
        client = slack_client(self.settings, self.store, job.district.key)
        if client is None:
            log.error("upload job of district %s: its workspace has no install", job.district.key)
            self.give_up(job, "the district's Slack workspace has not installed rosterbot")
            return
        self.run_job(client, job)

    def give_up(self, job: UploadJob, reason: str) -> None:
        """A job that cannot run at all: its records are finished as failed, with why."""
        self._finish_claims(job, state=UploadState.FAILED, reason=reason)

    def _report_stored(self, client: WebClient, job: UploadJob, records: list[Upload]) -> None:
        """The reply of uploads finished by an earlier run of their job, from their records:
        the summary "summary" gives in the thread, the error report, the final reaction."""
        parts = [
            formatting.thread_summary(u.file_name, u.status, u.issues or [], u.file_issues, u)
            for u in records
        ]
        self._update(client, job, formatting.processed([u.file_name for u in records], job.dry_run))
        self._post(
            client,
            job.channel,
            job.thread_ts,
            formatting.Message(
                "\n".join(p.text for p in parts), [b for p in parts for b in p.blocks]
            ),
        )
        for u in records:
            if not u.report:
                continue
            try:
                upload_file(
                    client,
                    channel=job.channel,
                    thread_ts=job.thread_ts,
                    data=u.report,
                    filename=f"{u.kind}-errors.csv",
                    backoff=self.settings.slack_retry_backoff,
                )
            except Exception as err:
                log.error("uploading the report of upload %s failed: %s", u.id, describe(err))
        self._react(
            client, job.channel, job.message_ts, formatting.reaction(records, dry_run=job.dry_run)
        )

    def _process(self, client: WebClient, job: UploadJob) -> None:
        try:
            self._run(client, job)
        except UploadFinished:
            # another run of this job committed first (a retried job whose first worker was
            # only slow): nothing is applied twice; say what the first run did
            ids = [i for _, i in job.files]
            self._report_stored(client, job, self.store.finished_uploads(job.district.key, ids))
        except Exception:
            log.exception("processing %s failed", [f.name for f, _ in job.files])
            self._finish_claims(job, state=UploadState.ABANDONED)
            applied = [
                u.file_name
                for u in (self._record(i) for _, i in job.files)
                if u is not None and u.state == UploadState.APPLIED
            ]
            self._post(client, job.channel, job.thread_ts, formatting.internal_error(applied))
            self._react(
                client,
                job.channel,
                job.message_ts,
                REACTION_ERRORS if applied else REACTION_FAILURE,
            )

    def _record(self, upload_id: int) -> Upload | None:
        try:
            return self.store.upload(upload_id)
        except Exception:
            log.warning("could not read upload %s", upload_id, exc_info=True)
            return None

    def _run(self, client: WebClient, job: UploadJob) -> None:
        from roster.pipeline import InputFile, run

        token = client.token or self.settings.bot_token
        inputs = []
        for f, upload_id in job.files:
            try:
                data = download(f, token, self.settings)
            except DownloadRefused as refused:
                log.warning("download of %s (%s) refused: %s", f.name, f.id, refused.reason)
                self._finish_claims(job, state=UploadState.FAILED, reason=refused.reason)
                message = formatting.download_problem(refused.reason)
                self._update(client, job, message)
                self._post(client, job.channel, job.thread_ts, message)
                self._react(client, job.channel, job.message_ts, REACTION_FAILURE)
                return
            inputs.append(
                InputFile(
                    f.name,
                    data,
                    slack_file_id=f.id,
                    upload_id=upload_id,
                    keep_bytes=self.queue is None,
                )
            )
        changed = [
            inp.name
            for inp in inputs
            if inp.upload_id in job.reviewed_sha256
            and hashlib.sha256(inp.data).hexdigest() != job.reviewed_sha256[inp.upload_id]
        ]
        if changed:
            # a Confirm applies the file that was reviewed, never a later edit of it: held
            # again, the button stays usable for the reviewed file
            self.store.hold_again([upload_id for _, upload_id in job.files])
            message = formatting.changed_since_review(changed)
            self._update(client, job, message)
            self._post(client, job.channel, job.thread_ts, message)
            return
        if not self._wait_for_lock(client, job):
            # the record stays `received`: start-up recovery settles it (the lock is not ours)
            self._post(
                client,
                job.channel,
                job.thread_ts,
                formatting.Message(
                    "I stopped before this upload could run; nothing was applied. "
                    "Share the file again."
                ),
            )
            return

        names = [f.name for f, _ in job.files]
        progress = ProgressMessage(
            client,
            job.channel,
            job.processing_ts,
            names,
            job.dry_run,
            self.settings.progress_interval,
        )
        try:
            result = run(
                self.store,
                job.district.key,
                inputs,
                apply=not job.dry_run,
                actor=job.user,
                confirm_removals=job.confirm_removals,
                confirm_id_changes=job.confirm_id_changes,
                progress=progress,
                sync=job.sync,
            )
        finally:
            progress.stop()
        pause_for_test("ROSTERBOT_TEST_PAUSE_BEFORE_REPLY", "committed, not replied")
        # From here on the roster is what it will be (one committed transaction per file) and
        # each upload record holds its result; a Slack failure below loses no data, so every
        # reply is attempted on its own and a refused summary gets a short fallback.
        self._report(client, job, result)

    def _report(self, client: WebClient, job: UploadJob, result: Any) -> None:
        summary = [
            f.to_json() | {"holds": [asdict(h) for h in getattr(f, "holds", [])]}
            for f in result.files
        ]
        reports = [(f.report_name, f.report_bytes) for f in result.files if f.report_bytes]
        changes = [(f.changes_name, f.changes_bytes) for f in result.files if f.changes_bytes]
        held = [f.upload_id for f in result.files if getattr(f, "held", False)]
        undoable = [f.upload_id for f in result.files if f.applied and f.changes_bytes]
        names = [f.name for f, _ in job.files]

        self._update(client, job, formatting.processed(names, job.dry_run))
        full = formatting.upload_summary(
            summary,
            dry_run=job.dry_run,
            enrollment_source=job.district.enrollment_source,
            reports=[name for name, _ in reports],
            changes=[name for name, _ in changes],
            held_uploads=held,
            undo_uploads=undoable,
            sync=job.sync,
            message_ts=job.message_ts,
            district=f"{job.district.name} ({job.district.key})",
        )
        if self._post(client, job.channel, job.thread_ts, full) is None:
            self._post(
                client,
                job.channel,
                job.thread_ts,
                formatting.summary_fallback(
                    summary,
                    dry_run=job.dry_run,
                    district=f"{job.district.name} ({job.district.key})",
                ),
            )
        for name, data in reports + changes:
            try:
                upload_file(
                    client,
                    channel=job.channel,
                    thread_ts=job.thread_ts,
                    data=data,
                    filename=name,
                    backoff=self.settings.slack_retry_backoff,
                )
            except Exception as err:
                log.error(
                    "uploading %s into %s/%s failed: %s",
                    name,
                    job.channel,
                    job.thread_ts,
                    describe(err),
                )
                self._post(
                    client,
                    job.channel,
                    job.thread_ts,
                    formatting.Message(
                        f"I could not attach {formatting.escape(name)} here "
                        f'({formatting.escape(describe(err))}). Reply "summary" or '
                        '"row N" in this thread to see the issues.'
                    ),
                )
        # the same emoji as the summary's icon (formatting.VERDICT_EMOJI)
        final = formatting.reaction(summary, dry_run=job.dry_run)
        if job.confirm_removals and final != REACTION_HELD:
            # the held run left ✋ on the file's message; it no longer says what happened
            self._unreact(client, job.channel, job.message_ts, REACTION_HELD)
        self._react(client, job.channel, job.message_ts, final)

    def _update(self, client: WebClient, job: UploadJob, message: formatting.Message) -> None:
        if job.processing_ts is None:
            return
        try:
            client.chat_update(channel=job.channel, ts=job.processing_ts, **message.kwargs())
        except Exception:
            log.warning("chat.update failed", exc_info=True)

    def _finish_claims(self, job: UploadJob, state: UploadState, reason: str = "") -> None:
        """Finish the job's records still unfinished as `state` (status failed), so a stopped
        upload is never left "received" (start-up recovery would otherwise pick it up)."""
        from roster.models import utcnow
        from validation.issues import file_issue

        for _, upload_id in job.files:
            try:
                upload = self.store.upload(upload_id)
                if upload is not None and upload.state in UNFINISHED_STATES:
                    issues = [file_issue("FAILED", detail=reason).to_json()] if reason else []
                    self.store.update_upload(
                        upload_id,
                        state=state,
                        status=FileStatus.FAILED,
                        finished_at=utcnow(),
                        payload=None,
                        file_issues=issues,
                    )
            except Exception:
                log.warning("could not mark upload %s %s", upload_id, state, exc_info=True)
