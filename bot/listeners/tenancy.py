"""Where a Slack request comes from, for `access.acting_from` around each listener's work.

Every listener runs inside `acting_from(request_workspace(context))`, so each access decision
also checks that the user belongs to the district's Slack workspace.
"""

from slack_bolt import BoltContext

from bot.access import Workspace


def request_workspace(context: BoltContext) -> Workspace:
    """The acting user's workspace (Bolt reads `user_team` / `team` of Slack Connect events)
    and the bot token's workspace (auth.test, Bolt's single-workspace authorization)."""
    authorized = context.authorize_result
    return Workspace(
        actor_team=context.actor_team_id,
        home_team=(authorized.team_id if authorized else None) or context.team_id,
        enterprise=context.actor_enterprise_id,
    )
