"""Slack installs (OAuth): slack-sdk's installation store and OAuth state store tables.

`rosterbot serve --http` with SLACK_CLIENT_ID / SLACK_CLIENT_SECRET installs the app in many
workspaces through Slack's OAuth flow (bot/oauth.py); each install's bot token is kept in
`slack_installations` / `slack_bots`, and the one-time `state` of an install in progress in
`slack_oauth_states`, in the roster database, so every replica sees them.  The tables are
slack-sdk's own definitions (its SQLAlchemy stores read and write them), as that library
defined them when this revision was written (slack-sdk 3.33+).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def slack_metadata() -> sa.MetaData:
    m = sa.MetaData()
    SQLAlchemyInstallationStore.build_installations_table(m, "slack_installations")
    SQLAlchemyInstallationStore.build_bots_table(m, "slack_bots")
    SQLAlchemyOAuthStateStore.build_oauth_states_table(m, "slack_oauth_states")
    return m


def upgrade() -> None:
    slack_metadata().create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    for table in ("slack_oauth_states", "slack_bots", "slack_installations"):
        op.drop_table(table)
