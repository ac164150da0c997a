"""What the change log costs an upload (issue 15): process CPU time, with and without it.

Each run is a fresh child process uploading the benchmark file into a fresh store (the district
and its schools only), through `bot.cli.main` as `rosterbot upload` runs it.  The child reports
its CPU time (user + system, resource.getrusage) for the upload call alone, and the CPU time
spent in the three parts of the change log: computing its lines (users_changes), the changes
file (changes_csv) and the log write (write_change_log).  `--mode off` replaces those three
with nothing, in the child only (this harness patches them; the product has no such switch):
what an upload cost before the change log.  CPU time is steadier than wall time on a loaded
machine.  On PostgreSQL the child also reads the CPU time of the server processes serving
its own connections (/proc/PID/stat of each backend, the server being on this machine), and
the summary gives client, server, client + server and wall.  `log rows` counts the rows of
the `changes` table (a run of created rows is one row: roster.models.Change).

    .venv/bin/python bench/generate.py --rows 100000 -o bench/out/u100k.csv
    .venv/bin/python bench/bench_changelog.py bench/out/u100k.csv --repeats 3
    .venv/bin/python bench/bench_changelog.py bench/out/u100k.csv --db postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = r"""
import contextlib, io, json, resource, sys, time
from sqlalchemy import create_engine, text
mode, db, csv_path, schools_path, report_dir = sys.argv[1:6]
from bot.cli import main
import roster.changes as changes
import roster.steps as steps
import roster.users as users

import gc
import roster.pipeline as pipeline
spent = {"lines": 0.0, "file": 0.0, "log": 0.0, "commit": 0.0, "gc": 0.0}
_gc_start = [0.0]

def _gc(phase, info):
    if phase == "start":
        _gc_start[0] = time.process_time()
    else:
        spent["gc"] += time.process_time() - _gc_start[0]

gc.callbacks.append(_gc)

def timed(name, fn):
    def wrapper(*a, **k):
        t0 = time.process_time()
        try:
            return fn(*a, **k)
        finally:
            spent[name] += time.process_time() - t0
    return wrapper

if mode == "off":
    users.users_changes = lambda *a, **k: changes.empty_changes()
    steps.changes_csv = lambda c: b""
    steps.write_change_log = lambda *a, **k: None
else:
    users.users_changes = timed("lines", users.users_changes)
    steps.changes_csv = timed("file", steps.changes_csv)
    steps.write_change_log = timed("log", steps.write_change_log)

pipeline.commit_upload = timed("commit", pipeline.commit_upload)

# PostgreSQL: the server's CPU for this upload's own connections (their backends' utime +
# stime in /proc, the server being on this machine), from connect to the last check-in
server = {}
measuring = [False]
if db.startswith("postgresql"):
    import os
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    def _ticks(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @event.listens_for(Pool, "connect")
    def _connect(dbapi_conn, rec):
        if measuring[0]:
            pid = dbapi_conn.info.backend_pid
            server[pid] = [_ticks(pid) or 0.0, 0.0]

    @event.listens_for(Pool, "checkin")
    def _checkin(dbapi_conn, rec):
        pid = dbapi_conn.info.backend_pid if dbapi_conn is not None else None
        if pid in server:
            now = _ticks(pid)
            if now is not None:
                server[pid][1] = now
quiet = contextlib.redirect_stdout(io.StringIO())
with quiet:
    assert main(["--db", db, "district", "create", "bench", "--name", "Bench"]) == 0
    for line in open(schools_path, encoding="utf-8").read().splitlines()[1:]:
        org, name = line.split(",", 1)
        assert main(["--db", db, "school", "add", "bench", org, "--name", name.strip('"')]) == 0

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

out = io.StringIO()
spent["gc"] = 0.0
r0 = resource.getrusage(resource.RUSAGE_SELF)
measuring[0] = True
c0, w0 = cpu(), time.perf_counter()
with contextlib.redirect_stdout(out):
    rc = main(["--db", db, "upload", "bench", csv_path, "--json", "--report-dir", report_dir])
c1, w1 = cpu(), time.perf_counter()
measuring[0] = False
r1 = resource.getrusage(resource.RUSAGE_SELF)
kernel = {"sys": r1.ru_stime - r0.ru_stime, "minflt": r1.ru_minflt - r0.ru_minflt}
server_cpu = sum(max(0.0, b - a) for a, b in server.values())
doc = json.loads(out.getvalue())
n = 0
if mode == "on":
    engine = create_engine(db)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM changes")).scalar()
print(json.dumps({"rc": rc, "cpu": c1 - c0, "wall": w1 - w0, "server": server_cpu,
                  "spent": spent, "kernel": kernel, "log_rows": n}))
"""


def one(mode: str, db: str | None, csv_path: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-changelog-") as tmp:
        url = db or f"sqlite:///{tmp}/store.sqlite3"
        if db:
            _reset_postgres(db)
        r = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                mode,
                url,
                str(csv_path),
                f"{csv_path}.schools.csv",
                str(Path(tmp) / "reports"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode != 0:
            raise SystemExit(r.stderr[-3000:])
        return json.loads(r.stdout.strip().splitlines()[-1])


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path)
    ap.add_argument("--db", help="a PostgreSQL URL (its public schema is dropped!); default SQLite")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--modes", default="off,on")
    args = ap.parse_args()
    os.environ.pop("ROSTERBOT_MAX_FILE_BYTES", None)
    results: dict[str, list[dict]] = {m: [] for m in args.modes.split(",")}
    for i in range(args.repeats):
        for mode in results:  # interleaved: load changes hit both modes alike
            r = one(mode, args.db, args.csv)
            results[mode].append(r)
            s = r["spent"]
            print(
                f"run {i + 1} {mode:>3}: cpu {r['cpu']:6.2f}s wall {r['wall']:6.2f}s "
                + (f"server {r['server']:6.2f}s " if args.db else "")
                + f"load {os.getloadavg()[0]:4.2f} "
                f"lines {s['lines']:5.2f} file {s['file']:5.2f} log {s['log']:5.2f} "
                f"commit {s['commit']:5.2f} gc {s['gc']:5.2f} "
                f"sys {r['kernel']['sys']:5.2f} faults {r['kernel']['minflt'] / 1e6:4.2f}M "
                f"(log rows {r['log_rows']:,})",
                flush=True,
            )
    med = {m: statistics.median(r["cpu"] for r in rs) for m, rs in results.items()}
    print("median CPU s: " + ", ".join(f"{m} {v:.2f}" for m, v in med.items()))
    if args.db:
        for what in ("server", "wall"):
            m = {k: statistics.median(r[what] for r in rs) for k, rs in results.items()}
            both = {
                k: statistics.median(r["cpu"] + r["server"] for r in rs)
                for k, rs in results.items()
            }
            if what == "server":
                print("median server CPU s: " + ", ".join(f"{k} {v:.2f}" for k, v in m.items()))
                print(
                    "median client + server CPU s: "
                    + ", ".join(f"{k} {v:.2f}" for k, v in both.items())
                )
                if "on" in both and "off" in both:
                    print(f"  client + server: +{(both['on'] / both['off'] - 1) * 100:.1f} %")
            else:
                print("median wall s: " + ", ".join(f"{k} {v:.2f}" for k, v in m.items()))
                if "on" in m and "off" in m:
                    print(f"  wall: +{(m['on'] / m['off'] - 1) * 100:.1f} %")
    if "on" in med and "off" in med:
        parts = {
            k: statistics.median(r["spent"][k] for r in results["on"])
            for k in ("lines", "file", "log")
        }
        print(
            f"change log: +{(med['on'] / med['off'] - 1) * 100:.1f} % of the upload without it; "
            + ", ".join(f"{k} {v:.2f}s" for k, v in parts.items())
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
