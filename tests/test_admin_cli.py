"""Setting up and undoing a district from the command line (issue 16, product.md revision 2).

Every verb with its text and `--json`, and its refusals (exit 2, the reason on stderr, nothing
changed), on SQLite and PostgreSQL (the `store` fixture runs each test on both).
"""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from bot.formatting import audit_line
from roster.pipeline import InputFile, run
from tests.builders import class_of, users_csv


@pytest.fixture
def rosterbot(store, capsys, monkeypatch):
    """Run `rosterbot --db <the test store> ARGS` in-process as the login `alice`."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, "alice")

    def call(*args: str) -> tuple[int, str, str]:
        code = main(["--db", store.url, *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def as_json(result: tuple[int, str, str]) -> dict:
    code, out, err = result
    assert code == 0, err
    return json.loads(out)


def ok(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 0, err
    return out


def refused(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 2, (out, err)
    assert out == ""
    return err


@pytest.fixture
def d1(rosterbot) -> str:
    ok(rosterbot("district", "create", "d1", "--name", "Maple Valley"))
    ok(rosterbot("school", "add", "d1", "0101", "--name", "Maple Elementary"))
    ok(rosterbot("admin", "grant", "d1", "U0ALICE", "--system", "--enrollment"))
    return "d1"


# --- every verb, text and JSON ---------------------------------------------------------------


def test_district_list_shows_every_district_with_its_set_up(rosterbot, d1):
    ok(
        rosterbot(
            "district", "create", "d2", "--name", "Clever County", "--enrollment-source", "clever"
        )
    )
    ok(rosterbot("channel", "link", "d1", "C0ROSTER"))
    listed = as_json(rosterbot("district", "list", "--json"))
    assert listed == {
        "districts": [
            {
                "key": "d1",
                "name": "Maple Valley",
                "enrollment_source": "batch",
                "schools": 1,
                "admins": 1,
                "channels": 1,
            },
            {
                "key": "d2",
                "name": "Clever County",
                "enrollment_source": "clever",
                "schools": 0,
                "admins": 0,
                "channels": 0,
            },
        ]
    }
    text = ok(rosterbot("district", "list"))
    assert "d1  Maple Valley" in text and "1 school(s), 1 administrator(s)" in text
    assert "d2  Clever County  (enrollment source: clever" in text


def test_school_add_list_and_rename(rosterbot, d1):
    assert "School 0202 (Oak Middle) added to d1." in ok(
        rosterbot("school", "add", "d1", "0202", "--name", "Oak Middle")
    )
    assert "renamed from Oak Middle to Oak Ridge Middle" in ok(
        rosterbot("school", "rename", "d1", "0202", "--name", "Oak Ridge Middle")
    )
    assert as_json(rosterbot("school", "list", "d1", "--json")) == {
        "district": "d1",
        "schools": [
            {"org_sis_id": "0101", "name": "Maple Elementary"},
            {"org_sis_id": "0202", "name": "Oak Ridge Middle"},
        ],
    }
    assert ok(rosterbot("school", "list", "d1")).splitlines() == [
        "0101  Maple Elementary",
        "0202  Oak Ridge Middle",
    ]


def test_renamed_school_still_takes_uploads_under_its_id(rosterbot, d1, store):
    ok(rosterbot("school", "rename", "d1", "0101", "--name", "Maple Valley Elementary"))
    rows = [dict(r, org_sis_id="0101") for r in class_of(1)]
    result = run(store, "d1", [InputFile("users.csv", users_csv(rows))], apply=True)
    assert result.files[0].status == "completed", result.files[0].issues


def test_admin_grant_adds_list_and_revoke(rosterbot, d1):
    out = ok(rosterbot("admin", "grant", "d1", "W0BOB", "--support"))
    assert out.strip() == "W0BOB now has support access to d1."
    out = ok(rosterbot("admin", "grant", "d1", "W0BOB", "--enrollment"))  # adds, keeps support
    assert out.strip() == "W0BOB now has enrollment, support access to d1."
    assert as_json(rosterbot("admin", "list", "d1", "--json")) == {
        "district": "d1",
        "admins": [
            {"slack_user_id": "U0ALICE", "system": True, "enrollment": True, "support": False},
            {"slack_user_id": "W0BOB", "system": False, "enrollment": True, "support": True},
        ],
    }
    assert "W0BOB now has support access to d1." in ok(
        rosterbot("admin", "revoke", "d1", "W0BOB", "--enrollment")
    )
    assert "W0BOB now has no access to d1." in ok(rosterbot("admin", "revoke", "d1", "W0BOB"))
    assert ok(rosterbot("admin", "list", "d1")).splitlines() == ["U0ALICE  system, enrollment"]


def test_channel_link_list_and_unlink(rosterbot, d1):
    ok(rosterbot("district", "create", "d2", "--name", "Other"))
    ok(rosterbot("channel", "link", "d1", "C0ROSTER"))
    ok(rosterbot("channel", "link", "d1", "G0PRIVATE"))
    assert as_json(rosterbot("channel", "list", "d1", "--json")) == {
        "district": "d1",
        "channels": [{"channel_id": "C0ROSTER"}, {"channel_id": "G0PRIVATE"}],
    }
    # re-linking to another district says so; it leaves d1's list
    assert "(it was linked to d1)" in ok(rosterbot("channel", "link", "d2", "G0PRIVATE"))
    assert ok(rosterbot("channel", "list", "d1")).splitlines() == ["C0ROSTER"]
    assert "no longer linked to d1" in ok(rosterbot("channel", "unlink", "d1", "C0ROSTER"))
    assert as_json(rosterbot("channel", "list", "d1", "--json"))["channels"] == []


def test_status_shows_who_changed_the_set_up_as_text(rosterbot, d1):
    ok(rosterbot("admin", "grant", "d1", "U0BOB", "--system"))
    ok(rosterbot("admin", "revoke", "d1", "U0ALICE", "--system"))
    ok(rosterbot("channel", "link", "d1", "C0ROSTER"))
    ok(rosterbot("school", "rename", "d1", "0101", "--name", "Maple Valley Elementary"))
    audit = as_json(rosterbot("status", "d1", "--json"))["audit"]
    assert [(a["action"], a["subject"], a["before"], a["after"]) for a in audit] == [
        ("school_rename", "0101", "Maple Elementary", "Maple Valley Elementary"),
        ("link", "C0ROSTER", "", "d1"),
        ("revoke", "U0ALICE", "system, enrollment", "enrollment"),
        ("grant", "U0BOB", "", "system"),
        ("grant", "U0ALICE", "", "system, enrollment"),
        ("school_add", "0101", "", "Maple Elementary"),
    ]
    assert {a["actor"] for a in audit} == {"cli:alice"}
    text = ok(rosterbot("status", "d1"))
    assert "cli:alice revoked system access from U0ALICE (now: enrollment)" in text
    assert "cli:alice granted system access to U0BOB (now: system)" in text
    assert "renamed school 0101 from “Maple Elementary” to “Maple Valley Elementary”" in text
    assert "<@" not in text


def test_cli_upload_records_the_login_shown_as_text(rosterbot, d1, store, tmp_path):
    (tmp_path / "users.csv").write_bytes(users_csv(class_of(1)))
    ok(rosterbot("upload", "d1", str(tmp_path / "users.csv"), "--report-dir", str(tmp_path)))
    record = store.recent_uploads("d1", 1)[0]
    assert record.actor == "cli:alice"
    assert as_json(rosterbot("status", "d1", "--json"))["uploads"][0]["actor"] == "cli:alice"
    assert "by cli:alice" in ok(rosterbot("status", "d1"))
    line = audit_line(record)  # the Slack status line
    assert "by cli:alice" in line and "<@" not in line


# --- refusals: exit 2, the reason, nothing changed ------------------------------------------


@pytest.mark.parametrize(
    "user_id, reason",
    [
        ("jane.doe@maplevalley.org", "is an email address, not a Slack user id"),
        ("@jane", "is a display name, not a Slack user id"),
        ("<@U0JANE>", "is a Slack mention, not a Slack user id"),
        ("u0jane", "Slack user ids are upper-case (U0JANE)"),
        ("C0ROSTER", "is a channel id, not a user id"),
        ("jane", "is not a Slack user id"),
    ],
)
def test_admin_grant_refuses_what_is_not_a_slack_user_id(rosterbot, d1, user_id, reason):
    err = refused(rosterbot("admin", "grant", "d1", user_id, "--system"))
    assert reason in err and "U012AB3CD" in err and "Copy member ID" in err
    assert [
        a["slack_user_id"] for a in as_json(rosterbot("admin", "list", "d1", "--json"))["admins"]
    ] == ["U0ALICE"]


@pytest.mark.parametrize(
    "channel_id, reason",
    [
        ("#roster-uploads", "is a channel name, not a Slack channel id"),
        ("roster-uploads", "is not a Slack channel id"),
        ("c0roster", "Slack channel ids are upper-case (C0ROSTER)"),
        ("D0DIRECT", "is a direct message, which cannot be linked"),
        ("U0ALICE", "is a user id, not a channel id"),
    ],
)
def test_channel_link_refuses_what_is_not_a_slack_channel_id(rosterbot, d1, channel_id, reason):
    err = refused(rosterbot("channel", "link", "d1", channel_id))
    assert reason in err and "C012AB3CD" in err
    assert as_json(rosterbot("channel", "list", "d1", "--json"))["channels"] == []


@pytest.mark.parametrize(
    "org, reason",
    [
        ("Maple Elem", "contains space"),
        ("01/02", "contains '/'"),
        ("x" * 65, "at most 64"),
        ("", "a school ID (org_sis_id) is needed"),
    ],
)
def test_school_add_refuses_an_id_files_cannot_use(rosterbot, d1, org, reason):
    assert reason in refused(rosterbot("school", "add", "d1", org, "--name", "Maple Elem"))
    assert [
        s["org_sis_id"] for s in as_json(rosterbot("school", "list", "d1", "--json"))["schools"]
    ] == ["0101"]


@pytest.mark.parametrize(
    "args",
    [
        ("school", "list", "nope"),
        ("school", "add", "nope", "0101", "--name", "X"),
        ("school", "rename", "nope", "0101", "--name", "X"),
        ("admin", "list", "nope"),
        ("admin", "grant", "nope", "U0BOB", "--system"),
        ("admin", "revoke", "nope", "U0BOB"),
        ("channel", "list", "nope"),
        ("channel", "link", "nope", "C0ROSTER"),
        ("channel", "unlink", "nope", "C0ROSTER"),
    ],
)
def test_unknown_district_is_refused_with_the_fix(rosterbot, d1, args):
    assert "no district 'nope'; create it with `rosterbot district create nope" in refused(
        rosterbot(*args)
    )


def test_unknown_school_is_refused_with_a_near_match(rosterbot, d1):
    err = refused(rosterbot("school", "rename", "d1", "101", "--name", "X"))
    assert "no school '101' in 'd1' (did you mean 0101?)" in err
    assert "rosterbot school list d1" in err
    assert as_json(rosterbot("school", "list", "d1", "--json"))["schools"][0]["name"] == (
        "Maple Elementary"
    )


def test_duplicate_school_is_refused(rosterbot, d1):
    assert "school '0101' already exists in 'd1'" in refused(
        rosterbot("school", "add", "d1", "0101", "--name", "Again")
    )


def test_the_last_system_admin_cannot_be_removed(rosterbot, d1):
    for args in (("--system",), ()):
        err = refused(rosterbot("admin", "revoke", "d1", "U0ALICE", *args))
        assert "U0ALICE is the last system administrator of 'd1'" in err
        assert "grant system access to someone else first" in err
    assert as_json(rosterbot("admin", "list", "d1", "--json"))["admins"][0]["system"] is True
    # with a second system admin, it works
    ok(rosterbot("admin", "grant", "d1", "U0BOB", "--system"))
    ok(rosterbot("admin", "revoke", "d1", "U0ALICE"))
    assert "U0BOB is the last system administrator" in refused(
        rosterbot("admin", "revoke", "d1", "U0BOB", "--system")
    )
    audit = as_json(rosterbot("status", "d1", "--json"))["audit"]
    assert [a["action"] for a in audit[:2]] == ["revoke", "grant"]  # refusals recorded nothing


def test_revoking_access_not_held_is_refused(rosterbot, d1):
    assert "U0NOBODY has no access to 'd1'" in refused(
        rosterbot("admin", "revoke", "d1", "U0NOBODY")
    )
    err = refused(rosterbot("admin", "revoke", "d1", "U0ALICE", "--support"))
    assert "U0ALICE has no support access to 'd1' (they have system, enrollment)" in err


def test_grant_without_a_kind_is_refused(rosterbot, d1):
    assert "--system, --enrollment, --support" in refused(
        rosterbot("admin", "grant", "d1", "U0BOB")
    )


def test_unlinking_another_districts_channel_is_refused(rosterbot, d1):
    ok(rosterbot("district", "create", "d2", "--name", "Other"))
    ok(rosterbot("channel", "link", "d2", "C0OTHER"))
    err = refused(rosterbot("channel", "unlink", "d1", "C0OTHER"))
    assert "channel C0OTHER is not linked to 'd1' (it is linked to 'd2')" in err
    assert as_json(rosterbot("channel", "list", "d2", "--json"))["channels"] == [
        {"channel_id": "C0OTHER"}
    ]


# --- the Slack self-service rules, on both backends (over HTTP: tests/test_bot_admin.py) ----


def test_slack_self_service_rules_on_each_backend(store):
    from bot.settings import Settings
    from bot.slash import SlashCommands

    for key in ("a", "b"):
        store.create_district(key, f"District {key.upper()}")
        store.link_channel(key, f"C0{key.upper()}")
    store.grant_admin("a", "U0ASYS", system=True)
    store.grant_admin("a", "U0ASUP", support=True)
    store.grant_admin("b", "U0BSYS", system=True, enrollment=True)
    slash = SlashCommands(Settings(), store)

    def say(user: str, channel: str, text: str) -> str:
        return slash.run(user, channel, text).message.text

    # another district's system admin, in A's channel and in a DM naming A
    for channel, text in (("C0A", "grant <@U0BSYS|b> system"), ("D0B", "grant <@U0BSYS> system a")):
        said = say("U0BSYS", channel, text)
        assert "Granting access of District A (a) needs system access" in said
        assert "you have no access" in said and "<@U0ASYS>" in said
    # a support admin of A
    said = say("U0ASUP", "C0A", "grant <@U0ASUP> system")
    assert "you have support access" in said and "<@U0ASYS>" in said
    assert store.grant("a", "U0BSYS") is None and store.grant("a", "U0ASUP").access == ["support"]
    # the last system admin
    said = say("U0ASYS", "C0A", "revoke <@U0ASYS>")
    assert "<@U0ASYS> is the last system administrator of 'a'" in said
    assert store.grant("a", "U0ASYS").system
    # A's system admin: grant, then the trail names who did it
    assert "<@U0NEW> now has enrollment access to District A (a)" in say(
        "U0ASYS", "C0A", "grant <@U0NEW|new> enrollment"
    )
    trail = store.audit_trail("a", 1)[0]
    assert (trail.actor, trail.action, trail.subject, trail.after) == (
        "U0ASYS",
        "grant",
        "U0NEW",
        "enrollment",
    )


def test_two_system_admins_revoking_each_other_at_once_leave_one(store):
    """The last-system-admin rule holds under concurrency (a row lock on PostgreSQL, the
    write lock on SQLite): of two simultaneous revokes, one is refused."""
    import threading

    from roster.store import RosterError, Store

    store.create_district("d1", "One")
    other = Store(store.url)  # a second process's connection pool
    try:
        for round_ in range(6):
            a, b = f"U0A{round_}", f"U0B{round_}"
            store.grant_admin("d1", a, system=True)
            store.grant_admin("d1", b, system=True)
            for old in store.system_admins("d1"):
                if old not in (a, b):
                    store.revoke_admin("d1", old)
            start = threading.Barrier(2)
            refusals: list[str] = []

            def revoke(
                s: Store, who: str, start=start, refusals=refusals
            ) -> None:  # bound per round
                start.wait()
                try:
                    s.revoke_admin("d1", who, system=True)
                except RosterError as err:
                    refusals.append(str(err))

            threads = [
                threading.Thread(target=revoke, args=(store, b)),
                threading.Thread(target=revoke, args=(other, a)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(store.system_admins("d1")) == 1, round_
            assert len(refusals) == 1 and "last system administrator" in refusals[0]
    finally:
        other.dispose()
