"""Who may do what, where (product.md "Tenancy and permissions"), from the roster store.

Each function returns an `Access`: the district the request is about, or a refusal that
says why and what to do.  Nothing here talks to Slack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.settings import Settings


@dataclass(frozen=True)
class Refusal:
    reason: str
    what_to_do: str = ""


@dataclass(frozen=True)
class Access:
    district: Any = None  # roster.store.DistrictInfo
    refusal: Refusal | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


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


def linked_district(store: Any, settings: Settings, channel: str) -> tuple[Any, Refusal | None]:
    """The district of a channel: its link, else the configured default district."""
    district = store.district_for_channel(channel)
    if district is not None:
        return district, None
    if settings.default_district:
        district = store.get_district(settings.default_district)
        if district is not None:
            return district, None
        return None, Refusal(
            f"The configured default district '{settings.default_district}' does not exist.",
            "Ask whoever runs rosterbot to create it or fix ROSTERBOT_DEFAULT_DISTRICT.",
        )
    return None, Refusal(
        "This channel is not linked to a district, so I cannot process roster files here.",
        "A system administrator of the district can link it with `/rosterbot link DISTRICT`.",
    )


def _dm_district(
    store: Any, settings: Settings, user: str, need: str, text: str = ""
) -> tuple[Any, Refusal | None]:
    """The district a DM is about: the user's only district (with the access `need`ed), the
    configured default, or -- for someone with several -- the one whose key the message
    names ("users.csv for d2", "/rosterbot status d2")."""
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
        return store.get_district(keys[0]), None
    if len(keys) > 1:
        words = set(_WORD.findall(text.casefold()))
        named = [k for k in keys if k.casefold() in words]
        if len(named) == 1:
            return store.get_district(named[0]), None
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
    store: Any, settings: Settings, user: str, channel: str, is_dm: bool, need: str, text: str = ""
) -> tuple[Any, Refusal | None]:
    """The district a message is about: the channel's, or in a DM the user's (_dm_district)."""
    if is_dm:
        return _dm_district(store, settings, user, need, text)
    return linked_district(store, settings, channel)


def for_upload(
    store: Any, settings: Settings, user: str, channel: str, is_dm: bool, text: str = ""
) -> Access:
    """An upload needs system + enrollment access to the channel's district (in a DM: the
    user's district, or the one `text` names)."""
    district, refusal = _district_of(store, settings, user, channel, is_dm, "upload", text)
    if refusal:
        return Access(refusal=refusal)
    grant = store.grant(district.key, user)
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


def for_question(store: Any, settings: Settings, user: str, channel: str, is_dm: bool) -> Access:
    """Anyone in a linked channel may ask; in a DM, anyone with access to some district.

    The knowledge base is the same for every district, so a DM question needs no district:
    someone with several districts is answered too."""
    district, refusal = _district_of(store, settings, user, channel, is_dm, "any")
    if is_dm and refusal is not None and store.grants_for(user):
        return Access()  # several districts: any of them may ask
    return Access(district, refusal)


def for_triage(store: Any, user: str, district_key: str | None) -> Access:
    """Reading an upload's report: any grant (system, enrollment or support) of its district.

    Support access is per district like the others: a support admin reads every upload of the
    districts they support (whoever uploaded it), never another district's.
    """
    district = store.get_district(district_key) if district_key else None
    if district is None:
        return Access(refusal=Refusal("That upload was not processed for any district."))
    grant = store.grant(district.key, user)
    if grant is None or not (grant.system or grant.enrollment or grant.support):
        return Access(
            district,
            Refusal(
                f"Reading upload reports of {district.key} needs system, enrollment or support access.",
                ask_system_admins(store, district, "for support access"),
            ),
        )
    return Access(district)


def for_status(
    store: Any, settings: Settings, user: str, channel: str, is_dm: bool, text: str = ""
) -> Access:
    district, refusal = _district_of(store, settings, user, channel, is_dm, "any", text)
    if refusal is not None:
        return Access(district, refusal)
    return for_triage(store, user, district.key)


def for_download(
    store: Any, settings: Settings, user: str, channel: str, is_dm: bool, text: str = ""
) -> Access:
    """A download needs system + enrollment access to the channel's district (as an upload)."""
    decision = for_upload(store, settings, user, channel, is_dm, text)
    if decision.allowed or decision.district is None:
        return decision
    grant = store.grant(decision.district.key, user)
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


def for_link(store: Any, user: str, district_key: str, channel: str = "") -> Access:
    """Linking needs system access to the district; re-linking a channel that belongs to
    another district also needs system access to that one (no taking over a channel)."""
    current = store.district_for_channel(channel) if channel else None
    if current is not None and current.key != district_key:
        held = store.grant(current.key, user)
        if held is None or not held.system:
            return Access(
                current,
                Refusal(
                    f"This channel is linked to {current.name} ({current.key}); changing that "
                    f"needs system access to {current.key}; you have {_grant_text(held)}.",
                    ask_system_admins(store, current, "to re-link it, or use another channel"),
                ),
            )
    district = store.get_district(district_key)
    if district is None:
        return Access(
            refusal=Refusal(
                f"There is no district '{district_key}'.",
                "Check the district key (letter case matters).",
            )
        )
    grant = store.grant(district.key, user)
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
