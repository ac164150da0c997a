"""Who may do what, where (product.md "Tenancy and permissions"), from the roster store.

Each function returns an `Access`: the district the request is about, or a refusal that
says why and what to do.  Nothing here talks to Slack.

Workspaces: a district is served in one Slack workspace (its `team_id`, or -- unset -- the
workspace the bot token belongs to).  A listener states where a request comes from with
`acting_from(Workspace(...))` around its work; every decision below then also refuses a
user of another workspace (Slack Connect channels bring users of other organisations).
Outside `acting_from` (the CLI, direct calls) there is no Slack workspace to check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.settings import Settings

if TYPE_CHECKING:
    from roster.store import DistrictInfo, Store


@dataclass(frozen=True)
class Refusal:
    reason: str
    what_to_do: str = ""


@dataclass(frozen=True)
class Access:
    district: DistrictInfo | None = None
    refusal: Refusal | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


@dataclass(frozen=True)
class Workspace:
    """Where a Slack request comes from."""

    #: the requesting user's workspace (Bolt's `context.actor_team_id`); None when Slack does
    #: not say (e.g. a user of a connected Enterprise Grid org in a Slack Connect channel)
    actor_team: str | None
    #: the workspace the bot token belongs to (auth.test): a district with no team set
    home_team: str | None
    enterprise: str | None = None
    #: OAuth installs in many workspaces: a district with no team set belongs to none of them
    multi_workspace: bool = False


_WORKSPACE: ContextVar[Workspace | None] = ContextVar("rosterbot_workspace", default=None)


@contextmanager
def acting_from(workspace: Workspace | None) -> Iterator[None]:
    """Decide the access questions asked inside the block for a user of `workspace`."""
    token = _WORKSPACE.set(workspace)
    try:
        yield
    finally:
        _WORKSPACE.reset(token)


def requesting_team() -> str | None:
    """The requesting user's workspace, inside `acting_from` (to store with a link)."""
    workspace = _WORKSPACE.get()
    return workspace.actor_team if workspace else None


def district_team(district: Any) -> str | None:
    """The workspace serving a district: its own team id (an org-wide install's: the org's
    id, E...), else -- one workspace only -- the bot token's workspace."""
    workspace = _WORKSPACE.get()
    if district.team_id or workspace is None or workspace.multi_workspace:
        return district.team_id
    return workspace.home_team


def _workspace_refusal(district: Any) -> Refusal | None:
    workspace = _WORKSPACE.get()
    if workspace is None:
        return None
    expected = district_team(district)
    if expected is None and workspace.multi_workspace:
        return Refusal(
            f"{district.name} ({district.key}) is not assigned to a Slack workspace, and this "
            "rosterbot serves several, so I cannot act for it here. Nothing was done.",
            "Ask whoever runs rosterbot to set up the district with its workspace "
            "(`rosterbot district create ... --team T...`, docs/deploy.md).",
        )
    if expected and expected == workspace.enterprise:
        return None  # a district of an org-wide install, and a user of that org
    if workspace.actor_team is None:
        return Refusal(
            f"I cannot tell which Slack workspace you belong to, so I cannot act for "
            f"{district.name} ({district.key}) here. Nothing was done.",
            f"Use rosterbot from {district.key}'s own workspace"
            + (f" ({expected})." if expected else "."),
        )
    if expected and expected not in (workspace.actor_team, workspace.enterprise):
        return Refusal(
            f"{district.name} ({district.key}) is served in Slack workspace {expected}, and "
            f"you are a user of workspace {workspace.actor_team} (e.g. a Slack Connect "
            "channel shared with another organisation). Nothing was done.",
            f"Only users of {expected} can use rosterbot for {district.key}; ask one of its "
            "administrators there.",
        )
    return None


def _grant(store: Any, district: Any, user: str) -> Any:
    """The user's grant in a district; a grant made for another workspace does not count."""
    grant = store.grant(district.key, user)
    workspace = _WORKSPACE.get()
    team = getattr(grant, "team_id", None)
    if grant is not None and team and workspace is not None and workspace.actor_team != team:
        return None
    return grant


def _grant_text(grant: Any) -> str:
    if grant is None:
        return "no access"
    held = [name for name in ("system", "enrollment", "support") if getattr(grant, name)]
    return " and ".join(held) + " access" if held else "no access"


def ask_system_admins(store: Any, district: Any, for_what: str) -> str:
    """What to do about a refusal: the district's system administrators, by mention (they are
    the people who can grant access), or how to get a first one."""
    admins = store.system_admins(district.key)
    if not admins:
        return (
            f"{district.key} has no system administrator yet: whoever runs rosterbot can grant "
            f"one with `rosterbot admin grant {district.key} SLACK_USER_ID --system`."
        )
    shown = ", ".join(f"<@{a}>" for a in admins[:10]) + (" …" if len(admins) > 10 else "")
    return f"Ask a system administrator of {district.key} ({shown}) {for_what}."


def linked_district(
    store: Store, settings: Settings, channel: str
) -> tuple[DistrictInfo | None, Refusal | None]:
    """The district of a channel: its link, else the configured default district."""
    link = store.channel_link(channel) if channel else None
    if link is not None:
        district, linked_from = link
        expected = district_team(district)
        if linked_from and expected and linked_from != expected:
            return None, Refusal(
                f"This channel was linked to {district.name} ({district.key}) from Slack "
                f"workspace {linked_from}, but {district.key} is served in {expected}.",
                f"A system administrator of {district.key} can re-link it with "
                f"`/rosterbot link {district.key}` from {expected}.",
            )
        return district, _workspace_refusal(district)
    if settings.default_district:
        district = store.get_district(settings.default_district)
        if district is not None:
            return district, _workspace_refusal(district)
        return None, Refusal(
            f"The configured default district '{settings.default_district}' does not exist.",
            "Ask whoever runs rosterbot to create it or fix ROSTERBOT_DEFAULT_DISTRICT.",
        )
    return None, Refusal(
        "This channel is not linked to a district, so I cannot process roster files here.",
        "A system administrator of the district can link it with `/rosterbot link DISTRICT`.",
    )


def named_district(store: Any, text: str) -> tuple[Any, Refusal | None]:
    """The district whose key `text` names ("roster for d2", "status d2"), if any.

    Every district counts, not only the user's: a named district decides, and the caller
    refuses when the user lacks access there -- never falling back to another district.
    """
    words = {w.strip(".-") for w in _WORD.findall(text.casefold())} - {""}
    named = store.districts_named(words) if words else []
    if len(named) > 1:
        keys = ", ".join(d.key for d in named)
        return None, Refusal(
            f"Your message names several districts ({keys}); I work on one district at a "
            "time. Nothing was done.",
            "Name one district per message.",
        )
    return (named[0], None) if named else (None, None)


def _dm_district(
    store: Any, settings: Settings, user: str, need: str, text: str = ""
) -> tuple[Any, Refusal | None]:
    """The district a DM is about: the district the message names ("users.csv for d2",
    "/rosterbot status d2") whatever else holds; else the user's only district (with the
    access `need`ed) or the configured default."""
    district, refusal = named_district(store, text)
    if district is not None:
        return district, _workspace_refusal(district)
    if refusal is not None:
        return None, refusal
    grants = store.grants_for(user)
    usable = [
        g
        for g in grants
        if (
            g.can_upload
            if need == "upload"
            else g.system
            if need == "system"
            else (g.system or g.enrollment or g.support)
        )
    ]
    keys = [g.district_key for g in usable]
    if settings.default_district and (settings.default_district in keys or not keys):
        return linked_district(store, settings, "")
    if len(keys) == 1:
        district = store.get_district(keys[0])
        return district, _workspace_refusal(district)
    if len(keys) > 1:
        return None, Refusal(
            "You administer several districts, so I cannot tell which one this is for.",
            "Name the district in the message (one of: " + ", ".join(sorted(keys)) + "), or "
            "use the channel linked to the district.",
        )
    if need == "system" and grants:
        districts = [store.get_district(g.district_key) for g in grants[:3]]
        return None, Refusal(
            "You are not a system administrator of any district.",
            " ".join(ask_system_admins(store, d, "if you need it") for d in districts if d),
        )
    return None, Refusal(
        "You are not a rosterbot administrator of any district.",
        "Ask a system administrator of your district to grant you access.",
    )


_WORD = re.compile(r"[\w.-]+")


def _district_of(
    store: Store,
    settings: Settings,
    user: str,
    channel: str,
    is_dm: bool,
    need: str,
    text: str = "",
) -> tuple[DistrictInfo | None, Refusal | None]:
    """The district a message is about: the channel's, or in a DM the user's (_dm_district)."""
    if is_dm:
        return _dm_district(store, settings, user, need, text)
    return linked_district(store, settings, channel)


def for_upload(
    store: Store, settings: Settings, user: str, channel: str, is_dm: bool, text: str = ""
) -> Access:
    """An upload needs system + enrollment access to the channel's district (in a DM: the
    user's district, or the one `text` names)."""
    district, refusal = _district_of(store, settings, user, channel, is_dm, "upload", text)
    if refusal:
        return Access(district, refusal)
    grant = _grant(store, district, user)
    if grant is None or not grant.can_upload:
        return Access(
            district,
            Refusal(
                f"Uploading a roster file for {district.name} ({district.key}) needs system and "
                f"enrollment access; you have {_grant_text(grant)}. Nothing was applied.",
                ask_system_admins(
                    store,
                    district,
                    "to grant you system and enrollment access, or to upload the file",
                ),
            ),
        )
    return Access(district)


def for_question(store: Store, settings: Settings, user: str, channel: str, is_dm: bool) -> Access:
    """Anyone in a linked channel may ask; in a DM, anyone with access to some district.

    The knowledge base is the same for every district, so a DM question needs no district:
    someone with several districts is answered too."""
    district, refusal = _district_of(store, settings, user, channel, is_dm, "any")
    if is_dm and refusal is not None and store.grants_for(user):
        return Access()  # several districts: any of them may ask
    return Access(district, refusal)


def for_triage(store: Store, user: str, district_key: str | None) -> Access:
    """Reading an upload's report: any grant (system, enrollment or support) of its district.

    Support access is per district like the others: a support admin reads every upload of the
    districts they support (whoever uploaded it), never another district's.
    """
    district = store.get_district(district_key) if district_key else None
    if district is None:
        return Access(refusal=Refusal("That upload was not processed for any district."))
    if (elsewhere := _workspace_refusal(district)) is not None:
        return Access(district, elsewhere)
    grant = _grant(store, district, user)
    if grant is None or not (grant.system or grant.enrollment or grant.support):
        return Access(
            district,
            Refusal(
                f"Reading upload reports of {district.key} needs system, enrollment or support access.",
                ask_system_admins(store, district, "for support access"),
            ),
        )
    return Access(district)


def for_confirm(store: Any, user: str, district: Any) -> Access:
    """The Confirm button of a held upload: system + enrollment access to its district."""
    elsewhere = _workspace_refusal(district) if district is not None else None
    if elsewhere is not None:
        return Access(district, elsewhere)
    grant = _grant(store, district, user) if district is not None else None
    if grant is None or not grant.can_upload:
        return Access(
            district,
            Refusal(
                "Confirming a held upload needs system and enrollment access to "
                f"{district.key if district else 'the district'}."
            ),
        )
    return Access(district)


def for_undo(store: Any, user: str, district: Any) -> Access:
    """Undoing an upload (button or `/rosterbot undo`): enrollment access to its district."""
    elsewhere = _workspace_refusal(district) if district is not None else None
    if elsewhere is not None:
        return Access(district, elsewhere)
    grant = _grant(store, district, user) if district is not None else None
    if grant is None or not grant.enrollment:
        where = f"{district.name} ({district.key})" if district is not None else "the district"
        return Access(
            district,
            Refusal(
                f"Undoing an upload of {where} needs enrollment access; you have "
                f"{_grant_text(grant)}. Nothing was changed.",
                ask_system_admins(store, district, "for enrollment access, or to undo it")
                if district is not None
                else "",
            ),
        )
    return Access(district)


def for_status(
    store: Store, settings: Settings, user: str, channel: str, is_dm: bool, text: str = ""
) -> Access:
    """The audit trail of a district: the one `text` names (anywhere: "status d2" is
    explicit), else the channel's (in a DM: as for an upload); any grant of it."""
    district, refusal = named_district(store, text)
    if district is None and refusal is None:
        district, refusal = _district_of(store, settings, user, channel, is_dm, "any", text)
    if refusal is not None:
        return Access(district, refusal)
    return for_triage(store, user, district.key)


def for_download(
    store: Store, settings: Settings, user: str, channel: str, is_dm: bool, text: str = ""
) -> Access:
    """A download needs system + enrollment access to the channel's district (as an upload)."""
    decision = for_upload(store, settings, user, channel, is_dm, text)
    if decision.allowed or decision.district is None:
        return decision
    if _workspace_refusal(decision.district) is not None:
        return decision
    grant = _grant(store, decision.district, user)
    return Access(
        decision.district,
        Refusal(
            f"Downloading roster data of {decision.district.name} ({decision.district.key}) needs "
            f"system and enrollment access; you have {_grant_text(grant)}.",
            ask_system_admins(
                store,
                decision.district,
                "for system and enrollment access, or to download it",
            ),
        ),
    )


def channel_district(store: Any, settings: Settings | None, channel: str) -> Any:
    """The district a channel serves now: its link, else the configured default district."""
    current = store.district_for_channel(channel) if channel else None
    if current is None and settings is not None and settings.default_district:
        current = store.get_district(settings.default_district)
    return current


def for_link(
    store: Any, user: str, district_key: str, channel: str = "", settings: Settings | None = None
) -> Access:
    """Linking needs system access to the district; re-linking a channel that serves another
    district -- linked to it, or the default district of an unlinked channel -- also needs
    system access to that one (nobody takes over another district's channel)."""
    district = store.get_district(district_key)
    if district is None:
        return Access(
            refusal=Refusal(
                f"There is no district '{district_key}'.",
                "Check the district key (letter case matters).",
            )
        )
    current = channel_district(store, settings, channel)
    for needed in (current, district):
        if needed is not None and (elsewhere := _workspace_refusal(needed)) is not None:
            return Access(district, elsewhere)
    grant = _grant(store, district, user)
    if current is not None and current.key != district.key:
        held = _grant(store, current, user)
        if held is None or not held.system or grant is None or not grant.system:
            how = (
                "is linked to"
                if store.district_for_channel(channel) is not None
                else "serves the default district"
            )
            return Access(
                current,
                Refusal(
                    f"This channel {how} {current.name} ({current.key}); linking it to "
                    f"{district.key} needs system access to both {current.key} and "
                    f"{district.key}. You have {_grant_text(held)} to {current.key} and "
                    f"{_grant_text(grant)} to {district.key}. Nothing was changed.",
                    f"Ask someone with system access to both districts to re-link it, or "
                    f"use another channel for {district.key}.",
                ),
            )
    if grant is None or not grant.system:
        return Access(
            district,
            Refusal(
                f"Linking a channel to {district.key} needs system access to that district; you "
                f"have {_grant_text(grant)}.",
                ask_system_admins(store, district, f"to run `/rosterbot link {district.key}` here"),
            ),
        )
    return Access(district)


def for_district_admin(
    store: Any,
    settings: Settings,
    user: str,
    channel: str,
    is_dm: bool,
    named_key: str = "",
    what: str = "Managing access",
) -> Access:
    """Self-service (`/rosterbot admins|grant|revoke|schools|channels`) needs system access
    to the district: the channel's, or in a DM the one named (never another one instead), or
    the user's only district where they hold system access."""
    if is_dm and named_key:
        district = store.get_district(named_key)
        if district is None:
            return Access(
                refusal=Refusal(
                    f"There is no district '{named_key}'.",
                    "Check the district key (letter case matters).",
                )
            )
    elif is_dm:
        district, refusal = _dm_district(store, settings, user, "system")
        if refusal is not None:
            return Access(refusal=refusal)
    else:
        district, refusal = linked_district(store, settings, channel)
        if refusal is not None:
            return Access(refusal=refusal)
        if named_key and named_key != district.key:
            return Access(
                district,
                Refusal(
                    f"This channel belongs to {district.name} ({district.key}), so I cannot "
                    f"act on '{named_key}' here.",
                    "Run the command in that district's channel, or in a direct message with me "
                    "naming the district.",
                ),
            )
    grant = store.grant(district.key, user)
    if grant is None or not grant.system:
        return Access(
            district,
            Refusal(
                f"{what} of {district.name} ({district.key}) needs system access to that "
                f"district; you have {_grant_text(grant)}.",
                ask_system_admins(store, district, "to do it or to grant you system access"),
            ),
        )
    return Access(district)
