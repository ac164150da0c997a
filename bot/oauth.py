"""Installs in many Slack workspaces: Bolt's OAuth flow over the roster database.

With SLACK_CLIENT_ID and SLACK_CLIENT_SECRET set, HTTP mode serves `GET /slack/install`
(straight on to Slack's consent page, with a one-time `state`) and `GET /slack/oauth_redirect`
(Slack sends the person back there with a code, traded for the workspace's bot token by
oauth.v2.access).  slack-sdk's SQLAlchemy stores keep the installs and the states in the roster
database (tables of revision 0003), so any replica can finish an install another started and
every replica authorizes every request by its team (or, for an org-wide install, its
enterprise: the team id is empty).  Without them the bot is the single-workspace app of
SLACK_BOT_TOKEN, as before.

Two things differ from the stores as slack-sdk ships them:
* a state is consumed by one DELETE ... RETURNING, so two replicas given the same state at
  the same moment cannot both accept it;
* a token about to expire (token rotation) is refreshed under a lock per install: on
  PostgreSQL an advisory lock in a transaction, so two replicas never refresh the same token
  at once (the second waits, then finds the token the first one saved); in one process a
  thread lock.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.sqlalchemy_utils import normalize_datetime_for_db
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Engine, and_

from bot import slack_surface
from bot.settings import Settings

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
#: a state is good for this long after /slack/install handed it out
STATE_SECONDS = 600
#: a token expiring within this many minutes is refreshed before it is used
REFRESH_MINUTES = 120


class RosterStateStore(SQLAlchemyOAuthStateStore):
    """slack-sdk's state store, consuming a state atomically (one use, on any replica)."""

    def consume(self, state: str) -> bool:
        c = self.oauth_states.c
        now = normalize_datetime_for_db(datetime.now(tz=timezone.utc))
        try:
            with self.engine.begin() as conn:
                gone = conn.execute(
                    self.oauth_states.delete()
                    .where(and_(c.state == state, c.expire_at > now))
                    .returning(c.id)
                ).first()
        except Exception:
            log.warning("could not consume an OAuth state", exc_info=True)
            return False
        return gone is not None


def _lock_key(installation: Installation) -> int:
    """A signed 64-bit advisory-lock key per install (client id, enterprise, team)."""
    name = f"rosterbot-install:{installation.enterprise_id or ''}:{installation.team_id or ''}"
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _expiring(installation: Installation, minutes: int) -> bool:
    expires = installation.bot_token_expires_at
    if installation.bot_refresh_token is None or expires is None:
        return False
    if isinstance(expires, datetime):
        expires = expires.replace(tzinfo=expires.tzinfo or timezone.utc).timestamp()
    return float(expires) <= time.time() + minutes * 60


#: per install, the lock of this process's threads (every app of the process shares them)
_LOCKS: dict[int, threading.Lock] = {}
_GUARD = threading.Lock()


class LockedRotationAuthorize(InstallationStoreAuthorize):
    """Bolt's per-request authorize by team / enterprise, with token refreshes serialised
    per install across threads and (PostgreSQL) replicas."""

    def __init__(self, *, engine: Engine, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engine = engine

    def _rotate_and_save_tokens_if_necessary(
        self, installation: Installation | None
    ) -> Installation | None:
        minutes = self.token_rotation_expiration_minutes
        if installation is None or not _expiring(installation, minutes):
            return None  # nothing to refresh: no lock, no round trip
        key = _lock_key(installation)
        with _GUARD:
            local = _LOCKS.setdefault(key, threading.Lock())
        with local:
            if self.engine.dialect.name != "postgresql":  # one process: the thread lock
                return self._refresh(installation, minutes)
            with self.engine.begin() as conn:  # held until the refreshed token is saved
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({key})")
                return self._refresh(installation, minutes)

    def _refresh(self, installation: Installation, minutes: int) -> Installation | None:
        # another thread or replica may have refreshed it while this one waited
        latest = self.installation_store.find_installation(
            enterprise_id=installation.enterprise_id,
            team_id=installation.team_id,
            is_enterprise_install=installation.is_enterprise_install,
        )
        if latest is not None and not _expiring(latest, minutes):
            return latest
        return super()._rotate_and_save_tokens_if_necessary(latest or installation)


def oauth_settings(settings: Settings, engine: Engine) -> OAuthSettings:
    """Bolt's OAuth settings over the roster database (tables of migration 0003)."""
    installations = SQLAlchemyInstallationStore(client_id=settings.client_id, engine=engine)
    return OAuthSettings(
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        scopes=sorted(slack_surface.bot_scopes()),
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        redirect_uri=settings.oauth_redirect_uri,
        authorization_url=settings.oauth_authorize_url,
        # /slack/install goes straight on to Slack (no page of ours in between)
        install_page_rendering_enabled=False,
        installation_store=installations,
        installation_store_bot_only=False,
        token_rotation_expiration_minutes=REFRESH_MINUTES,
        state_store=RosterStateStore(expiration_seconds=STATE_SECONDS, engine=engine),
        state_expiration_seconds=STATE_SECONDS,
    )


def locked_authorize(settings: Settings, oauth: OAuthSettings, engine: Engine, client) -> Any:
    return LockedRotationAuthorize(
        engine=engine,
        logger=logging.getLogger("rosterbot.slack"),
        installation_store=oauth.installation_store,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        token_rotation_expiration_minutes=REFRESH_MINUTES,
        client=client,
    )


def bot_token_for_team(settings: Settings, engine: Engine, team: str | None) -> str | None:
    """The bot token of the install serving `team` (a team id T..., or an org id E... for an
    org-wide install), refreshed first when it expires soon, under the same per-install lock
    as a request's; None when the workspace has not installed the app.  Used by workers,
    which answer a queued upload without a Slack request to authorize."""
    from slack_sdk import WebClient

    if not team:
        return None
    org = team.startswith("E")
    oauth = oauth_settings(settings, engine)
    installation = oauth.installation_store.find_installation(
        enterprise_id=team if org else None,
        team_id=None if org else team,
        is_enterprise_install=org,
    )
    if installation is None:
        return None
    authorize = locked_authorize(
        settings, oauth, engine, WebClient(base_url=settings.slack_api_url)
    )
    refreshed = authorize._rotate_and_save_tokens_if_necessary(installation)
    return (refreshed or installation).bot_token
