"""`rosterbot` — the command line (the same pipeline the Slack bot runs).

Exit codes of check/upload: 0 every file processed (row errors included), 2 a file failed
at file level or was held, 1 an internal error.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path

from bot import cli_data, cli_ops
from bot.terminal import SafeStream, terminal_safe
from roster.ids import slack_channel_id_problem, slack_user_id_problem
from roster.logsafe import RedactedErrors
from roster.memory import configure_memory
from roster.store import ACCESS_KINDS, ENROLLMENT_SOURCES, RosterError, Store


def _store(args) -> Store:
    """The command's one store (closed by main() when the command ends)."""
    if getattr(args, "store", None) is None:
        args.store = Store(args.db)
    return args.store


def cli_actor() -> str:
    """Who runs this command, as recorded in upload records and the set-up audit trail:
    `cli:` and the operating-system login (never a Slack id, so never shown as a mention)."""
    try:
        login = getpass.getuser()
    except Exception:  # no login name in this environment (a bare container)
        login = ""
    return f"cli:{login}"[:64] if login else "cli"


def _print_json(value: dict) -> None:
    print(json.dumps(value, ensure_ascii=False))


def _checked(problem: str | None) -> None:
    if problem:
        raise RosterError(problem)


def _flags(args) -> dict[str, bool]:
    return {kind: getattr(args, kind) for kind in ACCESS_KINDS}


def cmd_district_create(args) -> int:
    team = (args.team or "").strip()
    if team and not (team[:1] in "TE" and team[1:].isalnum()):
        raise RosterError(f"--team must be a Slack team id such as T0123ABCD, got '{team}'")
    info = _store(args).create_district(
        args.district, args.name, args.enrollment_source, team_id=team or None
    )
    where = (
        f"Slack workspace {info.team_id}"
        if info.team_id
        else "the Slack workspace of the bot token"
    )
    print(
        f"District {info.key} ({info.name}) created; enrollment source: "
        f"{info.enrollment_source}; served in {where}."
    )
    return 0


def cmd_district_list(args) -> int:
    districts = _store(args).districts()
    if args.json:
        _print_json({"districts": [asdict(d) for d in districts]})
        return 0
    if not districts:
        print("No districts yet; create one with `rosterbot district create DISTRICT --name NAME`.")
    for d in districts:
        print(
            f"{d.key}  {d.name}  (enrollment source: {d.enrollment_source}; {d.schools} "
            f"school(s), {d.admins} administrator(s), {d.channels} linked channel(s))"
        )
    return 0


def cmd_school_add(args) -> int:
    _store(args).add_school(args.district, args.org_sis_id, args.name, actor=cli_actor())
    print(f"School {args.org_sis_id} ({args.name}) added to {args.district}.")
    return 0


def cmd_school_list(args) -> int:
    schools = _store(args).schools(args.district)
    if args.json:
        _print_json(
            {
                "district": args.district,
                "schools": [{"org_sis_id": org, "name": name} for org, name in schools],
            }
        )
        return 0
    if not schools:
        print(
            f"No schools in {args.district} yet; add one with "
            f"`rosterbot school add {args.district} ORG_SIS_ID --name NAME`."
        )
    for org, name in schools:
        print(f"{org}  {name}")
    return 0


def cmd_school_rename(args) -> int:
    before = _store(args).rename_school(
        args.district, args.org_sis_id, args.name, actor=cli_actor()
    )
    if before == args.name:
        print(f"School {args.org_sis_id} of {args.district} is already named {args.name}.")
    else:
        print(f"School {args.org_sis_id} of {args.district} renamed from {before} to {args.name}.")
    return 0


def cmd_admin_grant(args) -> int:
    _checked(slack_user_id_problem(args.slack_user_id))
    if not any(_flags(args).values()):
        raise RosterError("give at least one of --system, --enrollment, --support")
    grant = _store(args).grant_admin(
        args.district, args.slack_user_id, **_flags(args), actor=cli_actor()
    )
    print(f"{args.slack_user_id} now has {', '.join(grant.access)} access to {args.district}.")
    return 0


def cmd_admin_revoke(args) -> int:
    _checked(slack_user_id_problem(args.slack_user_id))
    _, after = _store(args).revoke_admin(
        args.district, args.slack_user_id, **_flags(args), actor=cli_actor()
    )
    left = f"{', '.join(after.access)} access" if after else "no access"
    print(f"{args.slack_user_id} now has {left} to {args.district}.")
    return 0


def cmd_admin_list(args) -> int:
    admins = _store(args).admins(args.district)
    if args.json:
        _print_json({"district": args.district, "admins": [asdict(a) for a in admins]})
        return 0
    if not admins:
        print(
            f"No administrators in {args.district} yet; grant access with "
            f"`rosterbot admin grant {args.district} SLACK_USER_ID --system --enrollment`."
        )
    for a in admins:
        print(f"{a.slack_user_id}  {', '.join(a.access)}")
    return 0


def cmd_channel_link(args) -> int:
    _checked(slack_channel_id_problem(args.slack_channel_id))
    before = _store(args).link_channel(args.district, args.slack_channel_id, actor=cli_actor())
    taken = f" (it was linked to {before})" if before else ""
    print(f"Channel {args.slack_channel_id} is linked to {args.district}{taken}.")
    return 0


def cmd_channel_unlink(args) -> int:
    _checked(slack_channel_id_problem(args.slack_channel_id))
    _store(args).unlink_channel(args.district, args.slack_channel_id, actor=cli_actor())
    print(f"Channel {args.slack_channel_id} is no longer linked to {args.district}.")
    return 0


def cmd_channel_list(args) -> int:
    channels = _store(args).channels(args.district)
    if args.json:
        _print_json({"district": args.district, "channels": [{"channel_id": c} for c in channels]})
        return 0
    if not channels:
        print(f"No channels linked to {args.district}.")
    for channel in channels:
        print(channel)
    return 0


def cmd_history(args) -> int:
    from bot.changes_text import timeline_line
    from roster.undo import history

    changes = history(_store(args), args.district, user_id=args.user_id, class_id=args.class_id)
    if args.json:
        _print_json({"changes": changes})
        return 0
    what = f"userId {args.user_id}" if args.user_id else f"class {args.class_id}"
    if not changes:
        print(f"No recorded changes to {what} in {args.district}.")
    for change in changes:
        print(timeline_line(change))
    return 0


def cmd_undo(args) -> int:
    from bot.text import summary_text
    from roster.results import RunResult
    from roster.steps import write_report
    from roster.undo import undo

    result = undo(
        _store(args),
        args.district,
        args.upload_id,
        actor=cli_actor(),
        confirm_removals=args.confirm_removals,
    )
    write_report(result, Path(args.report_dir or "."))
    out = RunResult([result])
    if args.json:
        entry = result.to_json() | {"undo_of": result.undo_of}
        _print_json({"files": [entry]})
    else:
        print(summary_text(result, dry_run=False))
    return out.exit_code


def _progress_bar(enabled: bool):
    if not enabled:
        return None
    last = {"text": ""}

    def show(stage: str, fraction: float) -> None:
        filled = int(fraction * 30)
        text = f"\r[{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} {stage:<24}"
        if text != last["text"]:
            sys.stderr.write(text)
            sys.stderr.flush()
            last["text"] = text
        if fraction >= 1.0:
            sys.stderr.write("\r" + " " * len(text) + "\r")
            sys.stderr.flush()

    return show


def _run_files(args, apply: bool) -> int:
    from bot.text import summary_text
    from roster.pipeline import InputFile, run

    global _QUICK_EXIT
    _QUICK_EXIT = True
    store = _store(args)
    for name in args.files:
        if not Path(name).is_file():
            raise RosterError(f"no such file: {name}")
    show = _progress_bar(not args.json and sys.stderr.isatty())
    result = run(
        store,
        args.district,
        # no name holds the list: the pipeline lets go of each file's bytes once it is read
        [InputFile(Path(name).name, Path(name).read_bytes()) for name in args.files],
        apply=apply,
        actor=cli_actor(),
        report_dir=Path(args.report_dir or "."),
        confirm_removals=getattr(args, "confirm_removals", False),
        confirm_id_changes=getattr(args, "confirm_id_changes", False),
        progress=show,
        sync=args.sync,
    )
    if args.json:
        _print_json(result.to_json())
    else:
        info = store.district(args.district)
        where = f"{info.name} ({info.key})"
        print(
            "\n\n".join(
                summary_text(f, dry_run=not apply, district=where if n == 0 else "")
                for n, f in enumerate(result.files)
            )
        )
    return result.exit_code


def cmd_check(args) -> int:
    return _run_files(args, apply=False)


def cmd_upload(args) -> int:
    return _run_files(args, apply=True)


def cmd_ask(args) -> int:
    import faq

    question = " ".join(args.question)
    if args.json:
        _print_json(faq.ask_json(question))
    else:
        print(faq.answer_text(faq.lookup(question)))
    return 0


def cmd_status(args) -> int:
    """The audit trail: recent uploads of a district, or one upload's record and issues."""
    store = _store(args)
    district = store.district(args.district)
    if args.upload:
        record = store.upload(args.upload)
        if record is None or record.district_id != district.id:
            raise RosterError(f"no upload {args.upload} in '{args.district}'")
        records = [record]
    else:
        # failed checks are folded into one line: read more, so they never crowd out uploads
        records = store.recent_uploads(args.district, args.limit * 5)
    from bot import audit_text

    trail = [] if args.upload else store.audit_trail(args.district, args.limit)
    if args.json:
        listed = records if args.upload else records[: args.limit]
        out = {"uploads": [_upload_json(r, with_issues=bool(args.upload)) for r in listed]}
        if not args.upload:
            out["audit"] = [audit_text.to_json(e) for e in trail]
        _print_json(out)
        return 0
    from bot import text

    print(f"District: {district.name} ({district.key})")
    if not records:
        print(f"No uploads yet for {args.district}.")
    from bot.formatting import file_issue_codes

    shown, folded = (
        (records, []) if args.upload else text.collapse_failed_checks(records, args.limit)
    )
    for r in shown:
        codes = file_issue_codes(r.file_issues)
        when = r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else "?"
        v = text.verdict(r, dry_run=bool(r.dry_run))
        # a failed upload created nothing: its counts are what it would have done
        totals = [] if v == text.Verdict.FAILED else text.entity_totals(r.counts)
        print(
            f"#{r.id} {when} {r.file_name} by {r.actor or '?'} sha256:{(r.file_sha256 or '')[:12]} "
            f"{'check' if r.dry_run else 'upload'}: {text.LABELS[v]}"
            + f" — {text.outcome(r, dry_run=bool(r.dry_run))}"
            + f" (rows {(r.rows or {}).get('total', 0)}, issues {len(r.issues or [])})"
            + (f"; {'; '.join(totals)}" if totals else "")
            + (f"; file: {codes}" if codes else "")
        )
        if args.upload:
            for issue in r.file_issues or []:
                print(f"  file {issue.get('code')}: {issue.get('message', '')}")
            for issue in r.issues or []:
                print(f"  row {issue['row']} {issue['column']} {issue['code']}: {issue['message']}")
    if folded:
        print(text.folded_checks_line(folded))
    if not args.upload:
        print(f"\nSet-up changes of {args.district} (access, channels, schools), newest first:")
        for entry in trail:
            print("  " + audit_text.describe(entry))
        if not trail:
            print("  none yet")
    return 0


def _upload_json(r, with_issues: bool) -> dict:
    out = {
        "id": r.id,
        "file": r.file_name,
        "kind": r.kind,
        "actor": r.actor,
        "created_at": r.created_at.isoformat() if r.created_at else None,
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        "sha256": r.file_sha256,
        "dry_run": r.dry_run,
        "state": r.state,
        "status": r.status,
        "counts": r.counts,
        "rows": r.rows,
        "file_issues": r.file_issues,
        "issue_count": len(r.issues or []),
        "slack_channel": r.slack_channel or None,
        "slack_thread_ts": r.slack_thread_ts or None,
    }
    if with_issues:
        out["issues"] = r.issues
    return out


def cmd_purge(args) -> int:
    """Retention: remove old uploads' reports, issue values and file bytes (roster/retention.py)."""
    from roster.context import Settings
    from roster.retention import purge

    days = args.days if args.days is not None else Settings.from_env().retention_days
    if days < 1:
        raise RosterError("--days must be at least 1")
    done = purge(_store(args), days)
    if args.json:
        _print_json(done.to_json())
    else:
        print(
            f"Purged the error reports, issue values and file bytes of {done.uploads} upload(s) "
            f"created before {done.cutoff:%Y-%m-%d %H:%M} UTC ({days} days); their counts and "
            "audit lines are kept."
        )
    return 0


def cmd_serve(args) -> int:
    from bot.app import serve
    from bot.settings import Settings, SettingsError, job_queue_for

    try:
        settings = Settings.from_env()
        if args.db:
            settings.database_url = args.db
            settings.job_queue = job_queue_for(args.db, os.environ.get("ROSTERBOT_JOB_QUEUE"))
        serve(settings, http=args.http, port=args.port)
    except SettingsError as exc:  # a configuration problem, not a crash: say what to set
        raise RosterError(f"{exc} (see docs/slack.md)") from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rosterbot", description=__doc__.splitlines()[0])
    p.add_argument(
        "--db",
        help="database URL (default: ROSTERBOT_DATABASE_URL, else an "
        "embedded SQLite file var/rosterbot.sqlite3)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    district = sub.add_parser("district", help="districts").add_subparsers(
        dest="sub", required=True
    )
    c = district.add_parser("create", help="create a district")
    c.add_argument("district")
    c.add_argument("--name", required=True)
    c.add_argument("--enrollment-source", default="batch", choices=ENROLLMENT_SOURCES)
    c.add_argument(
        "--team",
        metavar="T...",
        help="the Slack workspace (team id) serving the district; default: the one "
        "workspace the bot token belongs to. Users of other workspaces are refused.",
    )
    c.set_defaults(func=cmd_district_create)
    c = district.add_parser("list", help="every district, with its schools, admins and channels")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=cmd_district_list)

    school = sub.add_parser("school", help="schools").add_subparsers(dest="sub", required=True)
    c = school.add_parser("add", help="set up a school of a district")
    c.add_argument("district")
    c.add_argument("org_sis_id", help="the ID files use in org_sis_id (letters, digits, - _ .)")
    c.add_argument("--name", required=True)
    c.set_defaults(func=cmd_school_add)
    c = school.add_parser("list", help="the schools of a district")
    c.add_argument("district")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=cmd_school_list)
    c = school.add_parser("rename", help="give a school a new name (its ID stays)")
    c.add_argument("district")
    c.add_argument("org_sis_id")
    c.add_argument("--name", required=True)
    c.set_defaults(func=cmd_school_rename)

    admin = sub.add_parser("admin", help="Slack administrators").add_subparsers(
        dest="sub", required=True
    )
    c = admin.add_parser("grant", help="give a Slack user access to a district (adds to theirs)")
    c.add_argument("district")
    c.add_argument("slack_user_id", help="a Slack member id, like U012AB3CD")
    for flag in ("--system", "--enrollment", "--support"):
        c.add_argument(flag, action="store_true")
    c.set_defaults(func=cmd_admin_grant)
    c = admin.add_parser("revoke", help="take access away (no flag: all of it)")
    c.add_argument("district")
    c.add_argument("slack_user_id", help="a Slack member id, like U012AB3CD")
    for flag in ("--system", "--enrollment", "--support"):
        c.add_argument(flag, action="store_true")
    c.set_defaults(func=cmd_admin_revoke)
    c = admin.add_parser("list", help="who has which access to a district")
    c.add_argument("district")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=cmd_admin_list)

    channel = sub.add_parser("channel", help="Slack channels").add_subparsers(
        dest="sub", required=True
    )
    c = channel.add_parser("link", help="link a Slack channel to a district")
    c.add_argument("district")
    c.add_argument("slack_channel_id", help="a Slack channel id, like C012AB3CD")
    c.set_defaults(func=cmd_channel_link)
    c = channel.add_parser("unlink", help="unlink a Slack channel from a district")
    c.add_argument("district")
    c.add_argument("slack_channel_id", help="a Slack channel id, like C012AB3CD")
    c.set_defaults(func=cmd_channel_unlink)
    c = channel.add_parser("list", help="the channels linked to a district")
    c.add_argument("district")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=cmd_channel_list)

    for name, func, text in (
        ("check", cmd_check, "validate files without applying (dry run)"),
        ("upload", cmd_upload, "validate files and apply what is valid"),
    ):
        c = sub.add_parser(name, help=text)
        c.add_argument("district")
        c.add_argument("files", nargs="+", metavar="FILE")
        c.add_argument("--json", action="store_true", help="print one JSON object")
        c.add_argument("--report-dir", help="where error reports go (default: current directory)")
        if name == "upload":
            c.add_argument(
                "--confirm-removals",
                action="store_true",
                help="apply even when the file removes a large share of the roster",
            )
            c.add_argument(
                "--confirm-id-changes",
                action="store_true",
                help="apply even when the file changes the userId of many people",
            )
        c.add_argument(
            "--sync",
            action="store_true",
            help="full sync: remove what the file does not mention, for the schools in it",
        )
        c.set_defaults(func=func)

    c = sub.add_parser("history", help="every change to one person or class, oldest first")
    c.add_argument("district")
    who = c.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", dest="user_id", metavar="USER_ID")
    who.add_argument("--class", dest="class_id", metavar="CLASS_ID")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=cmd_history)

    c = sub.add_parser("undo", help="reverse the changes one applied upload made")
    c.add_argument("district")
    c.add_argument("upload_id", type=int)
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--report-dir", help="where the changes file goes (default: current directory)")
    c.add_argument(
        "--confirm-removals",
        action="store_true",
        help="apply even when the undo removes a large share of the roster",
    )
    c.set_defaults(func=cmd_undo)

    c = sub.add_parser("status", help="the audit trail: recent uploads of a district")
    c.add_argument("district")
    c.add_argument("--upload", type=int, help="one upload's record with all its issues")
    c.add_argument("--limit", type=int, default=10)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_status)

    c = sub.add_parser(
        "purge", help="remove reports, issue values and file bytes of uploads past retention"
    )
    c.add_argument(
        "--days",
        type=int,
        help="keep this many days (default: ROSTERBOT_RETENTION_DAYS, else 90)",
    )
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=cmd_purge)

    c = sub.add_parser("ask", help="ask the knowledge base")
    c.add_argument("question", nargs="+")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_ask)

    c = sub.add_parser("serve", help="run the Slack bot (Socket Mode when SLACK_APP_TOKEN is set)")
    c.add_argument("--http", action="store_true", help="serve HTTP at POST /slack/events")
    c.add_argument("--port", type=int, default=3000)
    c.set_defaults(func=cmd_serve)

    cli_data.register(sub)  # download, template, dictionary
    cli_ops.register(sub)  # db upgrade, db current
    return p


def main(argv: list[str] | None = None) -> int:
    configure_memory()  # before anything allocates: the bot and workers run uploads too
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # codes in the log, never roster values
        handler.addFilter(RedactedErrors())
    args = build_parser().parse_args(argv)
    umask = os.umask(0o077)  # whatever else this process creates is owner-only too
    # everything printed passes through terminal_safe: file names, CSV values and school
    # names never reach the terminal as escape sequences (bot/terminal.py)
    stdout, sys.stdout = sys.stdout, SafeStream(sys.stdout)
    try:
        return _run(args)
    finally:
        sys.stdout = stdout
        os.umask(umask)
        if getattr(args, "store", None) is not None:
            args.store.dispose()


def _run(args) -> int:
    try:
        return args.func(args)
    except RosterError as exc:
        print(terminal_safe(f"rosterbot: {exc}"), file=sys.stderr)
        return 2
    except BrokenPipeError:  # `rosterbot status d1 | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 0
    except Exception:  # an internal error: exit 1 with the traceback for support
        logging.getLogger("rosterbot").exception("internal error")
        return 1


#: set by check and upload: the process may end without the interpreter's teardown
_QUICK_EXIT = False


def console() -> None:
    """The `rosterbot` command.  After a check or an upload the process ends at once once
    its output is flushed: the interpreter's teardown (freeing every module pandas, pyarrow
    and SQLAlchemy loaded, and what is left of the file) takes 0.2-0.6 s and does nothing
    the command needs (the store is disposed and every transaction is over by then)."""
    code = main()
    if not _QUICK_EXIT:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that left: nothing more to say to it
            pass
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    console()
