"""Self-service for a district's system administrators in Slack (issue 16), over real HTTP
against the stand-in with signed slash commands.

lincoln: ADMIN (system + enrollment), SYSADMIN_ONLY (system), SUPPORT (support);
clevercounty: TP_ADMIN (system + enrollment).  Changes land in the store and in the audit
trail `/rosterbot status` shows; support admins and other districts' admins are refused and
told who can grant access, by mention.
"""

from __future__ import annotations

import json

from roster.pipeline import InputFile, run
from tests.conftest_slack import (  # noqa: F401 - fixtures
    ADMIN,
    CHANNEL,
    DISTRICT,
    SCHOOL,
    SUPPORT,
    SYSADMIN_ONLY,
    TP_ADMIN,
    TP_CHANNEL,
    TP_DISTRICT,
    bot,
    slack,
    store,
    users_csv,
)

NEWBIE = "U0NEWBIE"
SYSTEM_ADMINS = f"<@{ADMIN}>, <@{SYSADMIN_ONLY}>"


def command(bot, slack, text: str, *, user: str, channel: str = CHANNEL) -> str:
    """Run `/rosterbot TEXT` as Slack would; the text of the (ephemeral) answer."""
    seen = len(slack.responses())
    assert bot.send_command(text, user=user, channel=channel) == 200
    body = slack.wait_for(lambda: slack.responses()[seen:], what=f"/rosterbot {text}")[0].body
    return body["text"] + "\n" + json.dumps(body.get("blocks") or [], ensure_ascii=False)


def access_of(store, user: str, district: str = DISTRICT) -> list[str]:
    grant = store.grant(district, user)
    return grant.access if grant else []


def test_system_admin_grants_revokes_and_status_shows_who_did_it(bot, slack, store):
    said = command(bot, slack, f"grant <@{NEWBIE}|newbie> enrollment system", user=ADMIN)
    assert f"<@{NEWBIE}> now has system, enrollment access to Lincoln Unified (lincoln)" in said
    assert access_of(store, NEWBIE) == ["system", "enrollment"]

    said = command(bot, slack, f"revoke <@{NEWBIE}|newbie> system", user=SYSADMIN_ONLY)
    assert f"<@{NEWBIE}> now has enrollment access" in said
    assert access_of(store, NEWBIE) == ["enrollment"]

    listed = command(bot, slack, "admins", user=ADMIN)
    assert f"<@{NEWBIE}> — enrollment" in listed and f"<@{ADMIN}> — system, enrollment" in listed
    assert f"<@{SUPPORT}> — support" in listed

    status = command(bot, slack, "status", user=SUPPORT)  # any admin of the district reads it
    assert f"<@{ADMIN}> granted system and enrollment access to <@{NEWBIE}>" in status
    assert f"<@{SYSADMIN_ONLY}> revoked system access from <@{NEWBIE}> (now: enrollment)" in status

    said = command(bot, slack, f"revoke <@{NEWBIE}>", user=ADMIN)  # no kind: all access
    assert f"<@{NEWBIE}> now has no access" in said
    assert store.grant(DISTRICT, NEWBIE) is None


def test_support_admin_is_refused_and_told_who_can_grant(bot, slack, store):
    before, trail = store.admins(DISTRICT), store.audit_trail(DISTRICT)
    for text in (
        f"grant <@{NEWBIE}> system",
        f"revoke <@{ADMIN}>",
        "admins",
        "schools",
        "channels",
    ):
        said = command(bot, slack, text, user=SUPPORT)
        assert "of Lincoln Unified (lincoln) needs system access to that district" in said, text
        assert "you have support access" in said
        assert SYSTEM_ADMINS in said  # the people who can grant it, by mention
        assert "LHS" not in said and "<#" not in said
    said = command(bot, slack, "admins", user=SUPPORT, channel="D0SUPPORT")
    assert "You are not a system administrator of any district" in said and SYSTEM_ADMINS in said
    assert store.admins(DISTRICT) == before
    assert store.audit_trail(DISTRICT) == trail  # nothing recorded


def test_another_districts_admin_is_refused_in_the_channel_and_in_a_dm(bot, slack, store):
    before = store.admins(DISTRICT)
    said = command(bot, slack, f"grant <@{TP_ADMIN}> system enrollment", user=TP_ADMIN)
    assert "Granting access of Lincoln Unified (lincoln) needs system access" in said
    assert "you have no access" in said and SYSTEM_ADMINS in said

    dm = "D0TPADMIN"
    for text in (f"grant <@{TP_ADMIN}> system {DISTRICT}", f"admins {DISTRICT}"):
        said = command(bot, slack, text, user=TP_ADMIN, channel=dm)
        assert "Lincoln Unified (lincoln) needs system access" in said and SYSTEM_ADMINS in said
    # naming a district in a channel of another one does not reach it either
    said = command(bot, slack, f"grant <@{NEWBIE}> support {TP_DISTRICT}", user=ADMIN)
    assert "This channel belongs to Lincoln Unified (lincoln)" in said
    assert store.admins(DISTRICT) == before
    assert store.grant(TP_DISTRICT, NEWBIE) is None and store.grant(DISTRICT, NEWBIE) is None


def test_a_dm_acts_on_the_named_district_and_never_another(bot, slack, store):
    dm = "D0ADMIN"
    assert f"<@{SUPPORT}> — support" in command(
        bot, slack, f"admins {DISTRICT}", user=ADMIN, channel=dm
    )
    assert f"<@{SUPPORT}> — support" in command(bot, slack, "admins", user=ADMIN, channel=dm)
    said = command(bot, slack, f"grant <@{NEWBIE}> support {TP_DISTRICT}", user=ADMIN, channel=dm)
    assert "Clever County (clevercounty) needs system access" in said
    assert f"<@{TP_ADMIN}>" in said
    assert store.grant(DISTRICT, NEWBIE) is None and store.grant(TP_DISTRICT, NEWBIE) is None
    said = command(bot, slack, f"grant <@{NEWBIE}> support {DISTRICT}", user=ADMIN, channel=dm)
    assert "now has support access to Lincoln Unified" in said
    assert access_of(store, NEWBIE) == ["support"]


def test_the_last_system_admin_keeps_system_access(bot, slack, store):
    for text in (f"revoke <@{TP_ADMIN}|tp> system", f"revoke <@{TP_ADMIN}>"):
        said = command(bot, slack, text, user=TP_ADMIN, channel=TP_CHANNEL)
        assert f"<@{TP_ADMIN}> is the last system administrator of 'clevercounty'" in said
        assert "grant system access to someone else first" in said and "Nothing was changed" in said
    assert access_of(store, TP_ADMIN, TP_DISTRICT) == ["system", "enrollment"]
    # lincoln has two: one may step down
    assert "now has enrollment access" in command(
        bot, slack, f"revoke <@{ADMIN}> system", user=ADMIN
    )
    said = command(bot, slack, f"revoke <@{SYSADMIN_ONLY}>", user=SYSADMIN_ONLY)
    assert "is the last system administrator of 'lincoln'" in said
    assert access_of(store, SYSADMIN_ONLY) == ["system"]


def test_what_cannot_name_a_person_is_refused(bot, slack, store):
    said = command(bot, slack, "grant @jane enrollment", user=ADMIN)
    assert "I cannot tell who `@jane` is" in said and "member id" in said
    said = command(bot, slack, f"grant <@{NEWBIE}|n> <@{SUPPORT}|s> support", user=ADMIN)
    assert "Name exactly one person" in said
    said = command(bot, slack, f"grant <@{NEWBIE}>", user=ADMIN)
    assert "Say which access to grant" in said
    said = command(bot, slack, f"grant <@{NEWBIE}> enrolment", user=ADMIN)
    assert "I don't understand `enrolment`: the kinds of access are system, enrollment" in said
    assert store.grant(DISTRICT, NEWBIE) is None
    said = command(bot, slack, f"grant {NEWBIE} support", user=ADMIN)  # a member id as typed
    assert "now has support access" in said
    assert access_of(store, NEWBIE) == ["support"]


def test_schools_and_channels_of_the_district(bot, slack, store):
    store.link_channel(DISTRICT, "G0PRIVATE")
    said = command(bot, slack, "schools", user=SYSADMIN_ONLY)
    assert f"`{SCHOOL}` Lincoln High" in said and "CCHS" not in said
    said = command(bot, slack, "channels", user=SYSADMIN_ONLY)
    assert f"<#{CHANNEL}>" in said and "<#G0PRIVATE>" in said and f"<#{TP_CHANNEL}>" not in said


def test_a_cli_upload_shows_its_login_as_text_in_slack_status(bot, slack, store, tmp_path):
    data = users_csv(f",{SCHOOL},t-1,Ann,Lee,ann.lee@lincoln.example.org,teacher,")
    run(
        store,
        DISTRICT,
        [InputFile("users.csv", data)],
        apply=True,
        actor="cli:alice",
        report_dir=tmp_path,
    )
    said = command(bot, slack, "status", user=ADMIN)
    assert "by cli:alice" in said and "<@cli" not in said


def test_help_lists_commands_by_who_may_use_them(bot, slack, store):
    said = command(bot, slack, "help", user=SUPPORT)
    groups = [
        "Anyone in a linked channel",
        "Administrators of the district (system, enrollment or support access)",
        "System and enrollment access",
        "System administrators of the district",
    ]
    at = [said.index(g) for g in groups]
    assert at == sorted(at)
    admin_part = said[at[3] :]
    for usage in (
        "admins",
        "grant @person",
        "revoke @person",
        "schools",
        "channels",
        "link DISTRICT",
    ):
        assert f"/rosterbot {usage}" in admin_part
