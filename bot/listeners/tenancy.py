"""Where a Slack request comes from, for `access.acting_from` around each listener's work.

Every listener runs inside `acting_from(request_workspace(context))`, so each access decision
also checks that the user belongs to the district's Slack workspace.
"""

from slack_bolt import BoltContext

from bot.access import Workspace


def request_workspace(context: BoltContext, body: dict | None = None) -> Workspace:
    """The acting user's workspace and the bot token's (auth.test: Bolt's single-workspace
    authorization, or the install the request was authorized with; an org-wide install's is
    its Enterprise Grid org).  The actor's: an interaction's `user.team_id` (its `team` is where the
    button was pressed, not whose user pressed it); else Bolt's `actor_team_id`, which reads
    `user_team` / `team` of a Slack Connect event and `team_id` of a slash command."""
    authorized = context.authorize_result
    user = (body or {}).get("user")
    actor = user.get("team_id") if isinstance(user, dict) else None
    services = context.get("rosterbot")
    home = (authorized.team_id if authorized else None) or context.team_id
    if authorized is not None and not authorized.team_id:  # an org-wide install: the org
        home = authorized.enterprise_id or home
    return Workspace(
        actor_team=actor or context.actor_team_id,
        home_team=home,
        enterprise=context.actor_enterprise_id,
        multi_workspace=bool(services and services.settings.multi_workspace),
    )
