"""Malformed file shapes (issue #13 "Availability"): peak memory and time of `rosterbot check`.

Each shape is written to bench/out/shapes/ and checked by a real `rosterbot check` process with
default settings (no size-limit override).  The table gives the file issue it ended with, its
peak resident memory (ru_maxrss of the child, read with wait4 from a tiny fork/exec launcher
so this harness's own memory is not counted) and its wall time.  Product.md "Limits": none may
use more memory than the 1,000,000-row benchmark file (`--baseline FILE` checks that file too,
e.g. the one bench/run.py generated: bench/out/users-1000000.csv).

    .venv/bin/python bench/bench_shapes.py
    .venv/bin/python bench/bench_shapes.py --baseline bench/out/users-1000000.csv

On the 2-core development machine (Dec 2026): every shape peaked at 134-531 MB and ended in
1.4-8.6 s (FILE_EMPTY, FILE_TOO_WIDE, FILE_RAGGED, or row issues for the half-ragged file);
the 1,000,000-row file peaked at 2,114 MB.  Before: 300,000 commas took 4.5 GB, 1,000,000
crashed, 1,000,000 rows of `a` took 2.57 GB and wrote a 166 MB report.

This harness imports neither numpy nor pandas, so that it stays small.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out" / "shapes"
DISTRICT = "shapes"

# the dictionary's headers, spelled out (importing validation would pull in pandas)
USERS_HEADER = (
    "action,org_sis_id,userId,userFirstName,userLastName,userEmail,userRole,userGrade,"
    "userDistrictId,userStateId,classId,className,classGrade,primary_teacher,"
    "classDisplayName,classSubject"
).encode()


def shapes() -> dict[str, bytes]:
    """The shapes the attack used, and their neighbours."""
    good_row = b",0101,S1,Ava,Nguyen,s1@example.org,student,05,,,MATH5,Math 5,05,N,,"
    return {
        # one line of commas: 300 KB took 45 s and 4.5 GB; 1 MB crashed (std::bad_alloc)
        "300k-commas-line": b"," * 300_000,
        "1m-commas-line": b"," * 1_000_000,
        # a header of hundreds of thousands of columns
        "300k-column-header": b"a," * 300_000 + b"\n",
        "16k-column-header+row": b",".join(b"c%d" % i for i in range(16_000))
        + b"\n"
        + b"x," * 15_999
        + b"x\n",
        # header + 1,000,000 rows of `a` (2 MB): took 2.57 GB and wrote a 166 MB report
        "1m-rows-of-a": USERS_HEADER + b"\n" + b"a\n" * 1_000_000,
        # a good header, one valid row, then one row of a million commas
        "1m-commas-row": USERS_HEADER + b"\n" + good_row + b"\n" + b"," * 1_000_000 + b"x\n",
        # just under half of the rows ragged: row issues, not FILE_RAGGED
        "half-ragged-200k": USERS_HEADER + b"\n" + (good_row + b"\n") * 100_001 + b"a\n" * 100_000,
        # a million stray quotes: the exact parser's path
        "1m-stray-quotes": USERS_HEADER + b"\n" + b'a"\n' * 1_000_000,
        # a million blank lines above a header
        "1m-blank-lines-above": b",,,,\n" * 1_000_000 + USERS_HEADER + b"\n" + good_row + b"\n",
    }


SETUP = r"""
import sys
sys.path.insert(0, "bench")
from bot.cli import main
from generate import make_schools
db, district = sys.argv[1], sys.argv[2]
main(["--db", db, "district", "create", district, "--name", "Shapes"])
for school in make_schools(50):
    main(["--db", db, "school", "add", district, school["org_sis_id"], "--name", school["name"]])
"""

LAUNCHER = r"""
import json, os, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
with open(out, "w") as fh:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "wall": time.perf_counter() - t0,
               "maxrss_kb": ru.ru_maxrss}, fh)
"""


def cli(db: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli", "--db", db, *args]


def measure(cmd: list[str], env: dict, timeout: float) -> tuple[dict, str]:
    with tempfile.NamedTemporaryFile("r", suffix=".json") as usage:
        proc = subprocess.run(
            [sys.executable, "-S", "-c", LAUNCHER, usage.name, *cmd],
            capture_output=True,
            env=env,
            cwd=ROOT,
            timeout=timeout,
        )
        try:
            figures = json.loads(Path(usage.name).read_text())
        except ValueError:
            figures = {"exit": proc.returncode, "wall": 0.0, "maxrss_kb": 0}
    return figures, proc.stdout.decode("utf-8", "replace")


def outcome(stdout: str) -> str:
    """The file issues (or row-issue count) the check ended with."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        return "(no JSON output)"
    files = doc.get("files") or []
    if not files:
        return "(no file)"
    f = files[0]
    codes = [i["code"] for i in f.get("file_issues", [])]
    rows = len(f.get("issues") or [])
    return (", ".join(codes) or "-") + (f"; {rows:,} row issues" if rows else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="shape names to run (default: all)")
    ap.add_argument("--baseline", type=Path, help="the 1,000,000-row benchmark file, to compare")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.pop("ROSTERBOT_MAX_FILE_BYTES", None)  # defaults, as a district gets them
    env.pop("ROSTERBOT_DATABASE_URL", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    db_path = OUT / "shapes.sqlite3"
    db_path.unlink(missing_ok=True)
    db = f"sqlite:///{db_path}"
    # the district and the 50 schools of bench/generate.py (so that the baseline file is
    # checked as bench/run.py checks it), set up in one child process
    subprocess.run(
        [sys.executable, "-c", SETUP, db, DISTRICT],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
    )

    files: list[tuple[str, Path]] = []
    for name, data in shapes().items():
        if args.only and name not in args.only:
            continue
        path = OUT / f"{name}.csv"
        path.write_bytes(data)
        files.append((name, path))
    if args.baseline:
        files.append(("baseline (1M-row file)", args.baseline))

    print(f"{'shape':<26} {'size':>9} {'peak RSS':>9} {'time':>7} {'exit':>4}  ends with")
    worst = 0
    for name, path in files:
        report_dir = OUT / f"report-{path.stem}"
        t0 = time.perf_counter()
        figures, stdout = measure(
            cli(db, "check", DISTRICT, str(path), "--json", "--report-dir", str(report_dir)),
            env,
            args.timeout,
        )
        wall = figures.get("wall") or time.perf_counter() - t0
        mb = figures["maxrss_kb"] / 1024
        report = sum(p.stat().st_size for p in report_dir.glob("*")) if report_dir.exists() else 0
        size = path.stat().st_size
        ends = outcome(stdout) + (f"; report {report / 1e6:.1f} MB" if report else "")
        print(
            f"{name:<26} {size / 1e6:>7.1f}MB {mb:>7.0f}MB {wall:>6.1f}s {figures['exit']:>4}  {ends}"
        )
        if not name.startswith("baseline"):
            worst = max(worst, figures["maxrss_kb"])
        else:
            verdict = "under" if worst < figures["maxrss_kb"] else "OVER"
            print(f"every shape's peak is {verdict} the 1,000,000-row file's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
