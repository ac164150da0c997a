"""An Excel workbook shared in Slack is read like its CSV (users-csv.md revision 2 section 1)."""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import func, select

from roster.models import Person
from tests.conftest_slack import (  # noqa: F401 - fixtures
    CHANNEL,
    DM,
    GOOD_AND_BAD,
    TS,
    bot,
    file_share_event,
    slack,
    store,
)


def workbook_of(csv_bytes: bytes) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Roster export"
    for record in csv.reader(io.StringIO(csv_bytes.decode("utf-8-sig"))):
        book.active.append(record)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_xlsx_shared_in_the_channel_is_processed_naming_the_sheet(bot, slack, store):
    fo = slack.host_file(
        "roster.xlsx",
        workbook_of(GOOD_AND_BAD),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    fo.update(filetype="xlsx")
    assert bot.send_event(file_share_event([fo])) == 200
    finals = {"white_check_mark", "warning", "x", "no_entry", "raised_hand"}
    reaction = slack.wait_for(
        lambda: [r for r in slack.reactions(CHANNEL, TS) if r in finals], what="final reaction"
    )[0]
    assert reaction == "warning"  # as the CSV: one row has an unknown school
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Person)).scalar_one() == 2
    posts = slack.posts(CHANNEL, TS)
    text = " ".join(json.dumps(p.get("blocks") or []) + p.get("text", "") for p in posts)
    assert "Roster export" in text  # FILE_WORKBOOK names the sheet that was read


def test_a_pdf_in_a_dm_is_still_explained(bot, slack, store):
    pdf = slack.host_file("roster.pdf", b"%PDF-1.4", content_type="application/pdf")
    pdf.update(filetype="pdf", mimetype="application/pdf")
    assert bot.send_event(file_share_event([pdf], channel=DM, ts="1712000000.000300")) == 200
    reply = slack.wait_for(lambda: slack.posts(DM), what="the DM reply")
    assert "Excel .xlsx" in reply[0]["text"] and "roster.pdf" in reply[0]["text"]
