"""`make demo`: the real pipeline on an embedded SQLite store with the bundled example.

Creates a demo district with two schools in var/demo.sqlite3 (fresh each run), uploads
examples/users.csv, prints what the bot would post in the file's thread and writes the
error report to var/demo/users-errors.csv and the changes file to var/demo/users-changes.csv.
"""

from __future__ import annotations

from pathlib import Path

from bot.formatting import upload_summary
from roster.pipeline import InputFile, run
from roster.private import private_dir
from roster.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "users.csv"
SCHOOLS = (("0101", "Lincoln Elementary"), ("0202", "Washington Middle"))


def blocks_as_text(blocks: list[dict]) -> str:
    """Block Kit blocks as the text a terminal can show."""
    out = []
    for block in blocks:
        if block.get("type") == "section":
            out.append(block["text"]["text"])
        elif block.get("type") == "context":
            out.append("  ".join(e.get("text", "") for e in block.get("elements", [])))
        elif block.get("type") == "divider":
            out.append("-" * 40)
        elif block.get("type") == "actions":
            out.append("[" + "] [".join(e["text"]["text"] for e in block.get("elements", [])) + "]")
    return "\n\n".join(out)


def main() -> None:
    var = ROOT / "var"
    private_dir(var)
    db = var / "demo.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    store = Store(f"sqlite:///{db}")
    store.create_district("demo", "Demo Unified School District")
    for org, name in SCHOOLS:
        store.add_school("demo", org, name)
    result = run(
        store,
        "demo",
        [InputFile(EXAMPLE.name, EXAMPLE.read_bytes())],
        apply=True,
        actor="demo",
        report_dir=var / "demo",
    )
    print(
        f"Uploaded {EXAMPLE.relative_to(ROOT)} to district 'demo' (store: {db.relative_to(ROOT)})"
    )
    reports = [f.report_name for f in result.files if f.report_bytes]
    message = upload_summary(
        [f.to_json() for f in result.files],
        dry_run=False,
        reports=reports,
        changes=[f.changes_name for f in result.files if f.changes_bytes],
        undo_uploads=[f.upload_id for f in result.files if f.applied and f.changes_bytes],
        district="Demo Unified School District (demo)",
    )
    print("\n--- what rosterbot posts in the file's thread (Slack mrkdwn) ------------------\n")
    print(blocks_as_text(message.blocks))
    for f in result.files:
        if f.error_report:
            print(f"\n[attached in the thread: {f.report_name}]  written to {f.error_report}")
        if f.changes_file:
            print(f"[attached in the thread: {f.changes_name}]  written to {f.changes_file}")
    print("\n-------------------------------------------------------------------------------")
    print("Fix the rows in the error report and upload it again as is:")
    print(
        f"  .venv/bin/rosterbot --db sqlite:///{db.relative_to(ROOT)} upload demo "
        "var/demo/users-errors.csv"
    )
    store.dispose()


if __name__ == "__main__":
    main()
