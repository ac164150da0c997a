"""`rosterbot download`, `template` and `dictionary` (product.md "Download", issue 5).

Registered by bot/cli.py.  Refusals are RosterError, which bot.cli.main turns into the
reason on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from roster.private import write_private
from roster.store import RosterError, Store


def _write(data: bytes, output: str | None, what: str) -> None:
    if output:
        write_private(Path(output), data)  # owner-only: a roster holds student data
        print(f"Wrote {what} to {output}.")
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def cmd_download(args) -> int:
    from roster.export import download_csv

    data = download_csv(Store(args.db), args.district, args.kind, args.school)
    where = f", school {args.school}" if args.school else ""
    _write(data, args.output, f"{args.kind} of {args.district}{where}")
    return 0


def cmd_template(args) -> int:
    from validation.templates import template_csv

    _write(template_csv(args.kind), args.output, f"the {args.kind}.csv template")
    return 0


def cmd_dictionary(args) -> int:
    from validation.templates import UnknownColumn, dictionary_text

    try:
        print(dictionary_text(args.column))
    except UnknownColumn as err:
        raise RosterError(str(err)) from None
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    c = subparsers.add_parser("download", help="download the roster as a users.csv")
    c.add_argument("district")
    c.add_argument("kind", choices=("all", "students", "staff", "admins"))
    c.add_argument("--school", metavar="ORG_SIS_ID", help="only this school")
    c.add_argument("-o", "--output", metavar="FILE", help="write here (default: standard output)")
    c.set_defaults(func=cmd_download)

    c = subparsers.add_parser("template", help="a users.csv or demographics.csv template")
    c.add_argument("kind", choices=("users", "demographics"))
    c.add_argument("-o", "--output", metavar="FILE", help="write here (default: standard output)")
    c.set_defaults(func=cmd_template)

    c = subparsers.add_parser("dictionary", help="explain the columns of the data dictionary")
    c.add_argument("column", nargs="?", help="one column to explain (case-sensitive)")
    c.set_defaults(func=cmd_dictionary)
