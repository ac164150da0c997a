"""rosterbot benchmark (issues #6 and #18): one command, one generated file, one table.

    python bench/run.py                      # 1,000,000 rows, SQLite + PostgreSQL, frictionless
    python bench/run.py --rows 100000 --json-out bench/out/figures.json
    python bench/run.py --backends sqlite --no-frictionless
    python bench/run.py --backends sqlite --only check   # the floor, frictionless and check only
    python bench/run.py --rows 1000000 --profile   # + cProfile hot spots of check and upload

What it measures, on the same generated users.csv (bench/generate.py, seeded):

* the floor: a raw ``pandas.read_csv(path, dtype=str, keep_default_na=False)`` of the file
  (in a child process, timed inside it around the call only; median of --repeats);
* ``rosterbot check`` (dry run), ``rosterbot upload`` into an empty store and a re-upload of the
  same file (all no_change), each on SQLite (a fresh file database) and on PostgreSQL (a fresh
  database ``rosterbot_bench_<pid>`` created on ``ROSTERBOT_BENCH_POSTGRES_URL``'s server and
  dropped afterwards); every product run is a SUBPROCESS of the CLI with ``--json``: wall time
  and the child's peak resident memory (``os.wait4`` rusage ``ru_maxrss``);
* frictionless-py validating the SAME file with an equivalent column schema (required fields,
  id/email patterns, role/grade enums, lengths), as a new process like ``rosterbot check``;
  ``--slice-rows N`` adds the older comparison on the first N rows (and a warm-process check).

Ratios (run / pandas read; frictionless / rosterbot check) are printed next to the seconds with
the issue's targets and PASS / MISS. The counts the CLI reports are sanity-checked (the dry run
reports what the upload applies, the re-upload is only no_change with the same errors, the totals
match the generated file) and a WARNING is printed for anything that does not add up.

Everything is written under bench/out/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DISTRICT = "bench"
ENTITIES = ("school", "staff", "student", "class", "enrollment")
COUNT_KEYS = ("created", "updated", "no_change", "removed", "errors")

TARGETS = {  # issue 18's targets (1,000,000 rows, ratios in the same run)
    "check": ("ratio_max", 3.0, "check <= 3x pandas read"),
    "upload": ("ratio_max", 8.0, "upload <= 8x pandas read"),
    "reupload": ("ratio_max", 6.0, "no-change re-upload <= 6x pandas read"),
    "memory": ("rss_max_mb", 1024.0, "peak memory <= 1 GB (each run)"),
    "frictionless": ("speedup_min", 5.0, "check >= 5x faster than frictionless, same file"),
}
STAGES = ("check", "upload", "reupload")

WARNINGS: list[str] = []


def warn(msg: str) -> None:
    WARNINGS.append(msg)
    print(f"WARNING: {msg}", file=sys.stderr, flush=True)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- child processes
@dataclass
class Run:
    name: str
    backend: str = ""
    cmd: list[str] = field(default_factory=list)
    seconds: float | None = None  # the figure used in the table
    wall: float | None = None  # wall time of the child process
    rss_mb: float | None = None  # peak resident memory of the child
    cpu: float | None = None  # user + system CPU seconds of the child
    exit_code: int | None = None
    stdout_path: str | None = None
    stderr_tail: str = ""
    result: dict | None = None  # parsed --json output (or the helper's json)
    note: str = ""


# The child is started through this tiny launcher, which forks and execs the command and
# reports the grandchild's rusage. Linux carries the pre-exec memory's high-water mark into
# ru_maxrss, so a child forked straight from this (bigger) process would report at least our
# own peak; forked from a ~10 MB launcher it reports its own.
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
wall = time.perf_counter() - t0
with open(out, "w") as fh:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "wall": wall,
               "maxrss_kb": ru.ru_maxrss, "utime": ru.ru_utime, "stime": ru.ru_stime}, fh)
"""


def run_child(
    name: str,
    cmd: list[str],
    *,
    env=None,
    cwd=ROOT,
    timeout: float = 3600,
    backend: str = "",
    out_dir: Path,
    parse_json: bool = True,
) -> Run:
    """Run cmd as a child process: its wall time and its own peak RSS (wait4 rusage)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = f"{backend}-{name}".strip("-").replace(" ", "_").replace("/", "_")
    out_path = out_dir / f"{slug}.stdout"
    err_path = out_dir / f"{slug}.stderr"
    usage_path = out_dir / f"{slug}.rusage.json"
    usage_path.unlink(missing_ok=True)
    r = Run(name=name, backend=backend, cmd=cmd, stdout_path=str(out_path))
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", LAUNCHER, str(usage_path)] + cmd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            r.note = f"killed after {timeout:.0f}s timeout"
        outer_wall = time.perf_counter() - t0
    try:
        usage = json.loads(usage_path.read_text())
    except (OSError, ValueError):
        usage = {
            "exit": proc.returncode if proc.returncode else -9,
            "wall": outer_wall,
            "maxrss_kb": 0,
            "utime": None,
            "stime": None,
        }
    r.exit_code = usage["exit"]
    r.wall = usage["wall"]
    r.rss_mb = usage["maxrss_kb"] / 1024.0  # Linux: kilobytes
    r.cpu = (usage["utime"] or 0) + (usage["stime"] or 0) if usage["utime"] is not None else None
    r.seconds = r.wall
    r.stderr_tail = err_path.read_text(errors="replace")[-3000:]
    text = out_path.read_text(errors="replace") if parse_json else ""
    try:
        r.result = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        # a progress line or a log line before the JSON object: take the last {...} block
        start = text.find("{")
        try:
            r.result = json.loads(text[start:]) if start >= 0 else None
            warn(f"{slug}: stdout held more than the one JSON object --json promises")
        except json.JSONDecodeError:
            r.result = None
    return r


def cli_base() -> list[str]:
    script = Path(sys.executable).parent / "rosterbot"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "bot.cli"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ROSTERBOT_DATABASE_URL", None)  # every command gets --db explicitly
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # default limits, as a district gets them: a 1M-row users.csv (~180 MB) must fit the
    # default 250 MB size limit (users-csv.md section 1), so no limit is raised here
    for name in ("ROSTERBOT_MAX_FILE_BYTES", "ROSTERBOT_MAX_UPLOAD_BYTES", "ROSTERBOT_MAX_FILE_MB"):
        env.pop(name, None)
    env.setdefault("NO_COLOR", "1")
    return env


# --------------------------------------------------------------------------- baseline / slices
PANDAS_CODE = r"""
import json, sys, time, statistics
import pandas as pd
path, repeats = sys.argv[1], int(sys.argv[2])
times, cpus = [], []
for _ in range(repeats):
    t, c = time.perf_counter(), time.process_time()
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    times.append(time.perf_counter() - t)
    cpus.append(time.process_time() - c)
    rows = len(df)
    del df
print(json.dumps({"times": times, "cpus": cpus, "median": statistics.median(times),
                  "min": min(times), "rows": rows, "pandas": pd.__version__}))
"""


def pandas_read(path: Path, repeats: int, out_dir: Path, label: str) -> Run:
    r = run_child(
        label, [sys.executable, "-c", PANDAS_CODE, str(path), str(repeats)], out_dir=out_dir
    )
    if r.exit_code != 0 or not r.result:
        raise SystemExit(f"pandas read failed: {r.stderr_tail}")
    r.seconds = r.result["median"]
    r.note = f"median of {repeats}: " + ", ".join(f"{t:.2f}" for t in r.result["times"])
    return r


def write_slice(src: Path, dst: Path, rows: int) -> None:
    """First `rows` records of src (the generator writes no embedded line breaks)."""
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        for i, line in enumerate(fi):
            if i > rows:
                break
            fo.write(line)


# --------------------------------------------------------------------------- frictionless
ID_PATTERN = r"[A-Za-z0-9._-]{1,64}"
EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[^@\s]+"
GRADES = "IT PR PK TK KG 01 02 03 04 05 06 07 08 09 10 11 12 13 PS UG Other".split()  # noqa: SIM905
GRADE_ALIASES = ["K", "k", "Kindergarten", "Pre-K", "PreK"] + [str(i) for i in range(1, 10)]
BOOLS = [
    "Y",
    "N",
    "YES",
    "NO",
    "TRUE",
    "FALSE",
    "1",
    "0",
    "y",
    "n",
    "yes",
    "no",
    "true",
    "false",
    "Yes",
    "No",
    "True",
    "False",
]


def frictionless_schema() -> dict:
    """users.csv as a Table Schema: what a general validator can express (no cross-row or
    stored-state rules)."""
    grade_alt = "|".join(GRADES + GRADE_ALIASES)

    def f(name, required=False, **c):
        cons = dict(c)
        if required:
            cons["required"] = True
        return {"name": name, "type": "string", "constraints": cons}

    return {
        "fields": [
            f("action", pattern="(?i:REMOVE-CLASS|REMOVE-ENROLLMENT|DEACTIVATE-USER)"),
            f("org_sis_id", True, pattern=ID_PATTERN),
            f("userId", True, pattern=ID_PATTERN),
            f("userFirstName", True, maxLength=100),
            f("userLastName", True, maxLength=100),
            f("userEmail", True, pattern=EMAIL_PATTERN, maxLength=254),
            f("userRole", True, enum=["student", "teacher", "administrator"]),
            f("userGrade", enum=GRADES + GRADE_ALIASES),
            f("userDistrictId", pattern=ID_PATTERN),
            f("userStateId", pattern=ID_PATTERN),
            f("classId", pattern=ID_PATTERN),
            f("className", maxLength=255),
            f("classGrade", pattern=f"(?:{grade_alt})(?:\\s*,\\s*(?:{grade_alt}))*"),
            f("primary_teacher", enum=BOOLS),
            f("classDisplayName", maxLength=255),
            f("classSubject"),
        ],
        "missingValues": [""],
    }


FRICTIONLESS_CODE = r"""
import json, os, sys, time, collections
t0 = time.perf_counter()
from frictionless import Resource, Schema
path, schema_path = sys.argv[1], sys.argv[2]
schema = Schema.from_descriptor(json.load(open(schema_path)))
# frictionless refuses absolute paths ("not safe"): give it a basepath and a relative name
resource = Resource(path=os.path.basename(path), basepath=os.path.dirname(path), schema=schema,
                    format="csv", encoding="utf-8")
t1 = time.perf_counter()
report = resource.validate(limit_errors=10**9)
t2 = time.perf_counter()
task = report.tasks[0]
types = collections.Counter(e.type for e in task.errors)
fatal = [e.message for e in task.errors if e.type in ("resource-error", "source-error",
                                                        "scheme-error", "format-error")]
print(json.dumps({"fatal": fatal[:3], "seconds": t2 - t1, "import_and_setup": t1 - t0,
                  "valid": report.valid, "rows": task.stats.get("rows"), "errors": len(task.errors),
                  "error_types": dict(types)}))
"""


def frictionless_figures(
    path: Path, out_dir: Path, what: str, label: str = "frictionless validate"
) -> dict | None:
    """frictionless-py validating `path` in a child process; None when it is not installed.

    The time is the child's wall time, like rosterbot check's (interpreter start, imports,
    reading and validating); the validate() call alone is in the note."""
    import importlib.util

    if importlib.util.find_spec("frictionless") is None:
        warn("frictionless is not installed (pip install -e '.[bench]'): skipped")
        return None
    log(f"frictionless on {what}")
    fr = run_frictionless(path, out_dir, label)
    log(f"frictionless: {fr.wall:.2f}s wall; {fr.note}")
    return {
        "seconds": fr.wall if fr.result else None,
        "wall": fr.wall,
        "rss_mb": fr.rss_mb,
        "cpu": fr.cpu,
        "note": fr.note,
        "result": fr.result,
    }


def run_frictionless(slice_path: Path, out_dir: Path, label: str = "frictionless validate") -> Run:
    schema_path = out_dir / "frictionless_schema.json"
    schema_path.write_text(json.dumps(frictionless_schema(), indent=1))
    r = run_child(
        label,
        [sys.executable, "-c", FRICTIONLESS_CODE, str(slice_path), str(schema_path)],
        out_dir=out_dir,
    )
    if r.exit_code != 0 or not r.result:
        warn(f"frictionless failed (exit {r.exit_code}): {r.stderr_tail[-800:]}")
        return r
    if r.result.get("fatal"):
        warn(f"frictionless could not validate {slice_path.name}: {r.result['fatal']}")
    r.note = (
        f"validate() alone {r.result['seconds']:.2f}s; "
        f"{r.result['errors']} errors on {r.result['rows']} rows "
        f"({', '.join(f'{k} {v}' for k, v in r.result['error_types'].items())})"
    )
    return r


# --------------------------------------------------------------------------- stores
class Backend:
    name = ""
    url = ""

    def prepare(self) -> None: ...

    def cleanup(self) -> None: ...


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self, out_dir: Path, tag: str):
        self.path = out_dir / f"bench-{tag}.sqlite3"
        self.url = f"sqlite:///{self.path}"

    def prepare(self) -> None:
        for p in (
            self.path,
            Path(str(self.path) + "-wal"),
            Path(str(self.path) + "-shm"),
            Path(str(self.path) + "-journal"),
        ):
            p.unlink(missing_ok=True)

    def cleanup(self, keep: bool = False) -> None:
        if not keep:
            self.prepare()


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, base_url: str, tag: str):
        from sqlalchemy.engine import make_url

        self.base = make_url(base_url)
        self.dbname = f"rosterbot_bench_{tag}_{os.getpid()}"
        self.url = self.base.set(database=self.dbname).render_as_string(hide_password=False)

    def _admin(self):
        import psycopg

        u = self.base
        return psycopg.connect(
            host=u.host or "127.0.0.1",
            port=u.port or 5432,
            user=u.username,
            password=u.password,
            dbname=u.database or "postgres",
            autocommit=True,
        )

    def available(self) -> str | None:
        try:
            with self._admin():
                return None
        except Exception as exc:  # noqa: BLE001
            return f"{type(exc).__name__}: {exc}"

    def prepare(self) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.dbname}"')

    def cleanup(self, keep: bool = False) -> None:
        if keep:
            return
        try:
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001
            warn(f"could not drop {self.dbname}: {exc}")


SETUP_CODE = r"""
import inspect, json, sys
from bot.cli import main
cmds = json.loads(sys.argv[1])
takes_argv = bool(inspect.signature(main).parameters)
for argv in cmds:
    try:
        if takes_argv:
            rc = main(argv)
        else:
            sys.argv = ["rosterbot"] + argv
            rc = main()
    except SystemExit as e:
        rc = e.code
    if rc not in (0, None):
        print(f"setup command failed (exit {rc}): rosterbot {' '.join(argv)}", file=sys.stderr)
        sys.exit(1)
"""


def setup_district(
    backend: Backend, schools: list[tuple[str, str]], out_dir: Path, env: dict
) -> Run:
    """`district create` + `school add` per school, through the CLI. All commands in one child
    process (bot.cli.main(argv) per command, 50 interpreter start-ups saved); if that fails,
    one subprocess per command."""
    cmds = [
        [
            "--db",
            backend.url,
            "district",
            "create",
            DISTRICT,
            "--name",
            "Springfield Unified (benchmark)",
        ]
    ]
    cmds += [
        ["--db", backend.url, "school", "add", DISTRICT, org, "--name", name]
        for org, name in schools
    ]
    r = run_child(
        "setup",
        [sys.executable, "-c", SETUP_CODE, json.dumps(cmds)],
        env=env,
        backend=backend.name,
        out_dir=out_dir,
        parse_json=False,
    )
    if r.exit_code == 0:
        return r
    log(f"in-process setup failed ({r.stderr_tail.strip()[-300:]}); one subprocess per command")
    backend.prepare()
    t0 = time.perf_counter()
    for argv in cmds:
        rr = run_child(
            "setup-cmd",
            cli_base() + argv,
            env=env,
            backend=backend.name,
            out_dir=out_dir,
            parse_json=False,
        )
        if rr.exit_code != 0:
            raise SystemExit(f"setup failed: rosterbot {' '.join(argv)}\n{rr.stderr_tail}")
    r.exit_code, r.wall, r.seconds = 0, time.perf_counter() - t0, time.perf_counter() - t0
    return r


def product_run(
    stage: str,
    verb: str,
    backend: Backend,
    csv_path: Path,
    out_dir: Path,
    env: dict,
    timeout: float,
    extra: list[str] | None = None,
    prefix: list[str] | None = None,
) -> Run:
    report_dir = out_dir / "reports" / f"{backend.name}-{stage}"
    shutil.rmtree(report_dir, ignore_errors=True)
    report_dir.mkdir(parents=True, exist_ok=True)
    cmd = (
        (prefix or cli_base())
        + [
            "--db",
            backend.url,
            verb,
            DISTRICT,
            str(csv_path),
            "--json",
            "--report-dir",
            str(report_dir),
        ]
        + (extra or [])
    )
    log(f"{backend.name}: {stage}: {' '.join(cmd[-7:])}")
    r = run_child(stage, cmd, env=env, backend=backend.name, out_dir=out_dir, timeout=timeout)
    f = file_entry(r)
    if r.exit_code not in (0,) or f is None:
        warn(
            f"{backend.name} {stage}: exit {r.exit_code}"
            + (
                f", status {f.get('status')}, file_issues "
                f"{[(i.get('code'), i.get('message')) for i in f.get('file_issues', [])]}"
                if f
                else ""
            )
            + f"\n    command: {' '.join(cmd)}\n    stderr (end): {last_error(r.stderr_tail)}"
        )
    log(
        f"{backend.name}: {stage}: {r.wall:.1f}s, {r.rss_mb:.0f} MB, exit {r.exit_code}"
        + (f", status {f.get('status')}" if f else "")
    )
    return r


WARM_CODE = r"""
import contextlib, io, json, statistics, sys, time
from bot.cli import main
argv, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
times = []
for i in range(repeats + 1):  # the first run warms the process (imports, Arrow thread pool)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    times.append(time.perf_counter() - t0)
    if rc not in (0, None):
        sys.exit(f"rosterbot {' '.join(argv)} exited {rc}")
print(json.dumps({"first": times[0], "runs": times[1:], "seconds": statistics.median(times[1:])}))
"""


def warm_check(backend: Backend, csv_path: Path, out_dir: Path, env: dict, repeats: int) -> Run:
    """`rosterbot check` of the slice in a process that already ran one (as the long-running
    bot does): the median of `repeats` calls of bot.cli.main, start-up and imports excluded."""
    report_dir = out_dir / "reports" / f"{backend.name}-check-warm"
    report_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        "--db",
        backend.url,
        "check",
        DISTRICT,
        str(csv_path),
        "--json",
        "--report-dir",
        str(report_dir),
    ]
    r = run_child(
        "check slice warm",
        [sys.executable, "-c", WARM_CODE, json.dumps(argv), str(repeats)],
        env=env,
        backend=backend.name,
        out_dir=out_dir,
    )
    if r.exit_code != 0 or not r.result:
        warn(f"{backend.name} warm check failed: {last_error(r.stderr_tail)}")
    else:
        log(
            f"{backend.name}: check slice, warm process: median {r.result['seconds']:.2f}s "
            f"(first call {r.result['first']:.2f}s)"
        )
    return r


def last_error(stderr: str, lines: int = 8) -> str:
    """The useful end of a traceback: from the last exception line on, at most `lines`."""
    ls = [x for x in stderr.strip().splitlines() if x.strip()]
    if not ls:
        return "(empty)"
    idx = max(
        (
            i
            for i, x in enumerate(ls)
            if not x.startswith((" ", "\t")) and ("Error" in x or "Exception" in x)
        ),
        default=max(0, len(ls) - lines),
    )
    return "\n      ".join(ls[idx : idx + lines])[:1500]


def file_entry(r: Run | None) -> dict | None:
    if r is None or not isinstance(r.result, dict):
        return None
    files = r.result.get("files") or []
    return files[0] if files else None


def counts_of(r: Run | None) -> dict | None:
    f = file_entry(r)
    return f.get("counts") if f else None


# --------------------------------------------------------------------------- sanity checks
def verify(backend: str, runs: dict[str, Run], meta: dict, rows: int, slice_rows: int) -> None:
    def ok(k):
        f = file_entry(runs.get(k))
        return (
            f if f is not None and f.get("status") != "failed" and runs[k].exit_code == 0 else None
        )

    check, up, re_up = (ok(k) for k in ("check", "upload", "reupload"))
    where = f"{backend}:"
    for k, r in runs.items():  # e.g. FILE_TOO_LARGE: the file must fit the default limits
        f = file_entry(r)
        if f is not None and f.get("status") == "failed":
            codes = [i.get("code") for i in f.get("file_issues") or []]
            warn(f"{where} {k} failed at file level: {', '.join(map(str, codes))}")
    for stage, f, total in (
        ("check", check, rows),
        ("upload", up, rows),
        ("reupload", re_up, rows),
        ("check slice", ok("check slice"), slice_rows),
    ):
        if f is None:
            continue
        got = (f.get("rows") or {}).get("total")
        if got != total:
            warn(f"{where} {stage} reports rows.total={got}, the file has {total} records")
        if f.get("file_issues"):
            warn(
                f"{where} {stage} file issues: "
                f"{[(i.get('code'), i.get('message')) for i in f['file_issues']]}"
            )
        if meta.get("error_rate", 0) > 0 and f.get("status") == "completed":
            warn(f"{where} {stage} status 'completed' although the file has injected errors")
        want_applied = stage in ("upload", "reupload")
        if f.get("applied") is not want_applied:
            warn(f"{where} {stage} applied={f.get('applied')!r}, expected {want_applied}")
    if check and up and check.get("counts") != up.get("counts"):
        warn(
            f"{where} the dry run's counts differ from the upload's: "
            f"{diff_counts(check.get('counts'), up.get('counts'))}"
        )
    if up:
        c = up.get("counts") or {}
        for ent in ("staff", "student", "class", "enrollment"):
            if not (c.get(ent) or {}).get("created"):
                warn(f"{where} upload into an empty store created no {ent}")
        for ent in ENTITIES:
            if (c.get(ent) or {}).get("removed"):
                warn(f"{where} upload into an empty store removed {ent}: {c[ent]}")
        sc = c.get("school") or {}
        if sc.get("created"):
            warn(f"{where} users.csv created schools ({sc}); schools are set up beforehand")
        if sc.get("no_change", 0) != meta.get("schools"):
            warn(
                f"{where} school.no_change={sc.get('no_change')}, {meta.get('schools')} "
                f"schools are referenced"
            )
        stu = c.get("student") or {}
        n = stu.get("created", 0) + stu.get("updated", 0) + stu.get("errors", 0)
        if meta.get("students") and not (0.9 * meta["students"] <= n <= 1.1 * meta["students"]):
            warn(f"{where} student created+updated+errors={n}, the file has ~{meta['students']}")
        enr = c.get("enrollment") or {}
        n = sum(enr.get(k, 0) for k in ("created", "errors"))
        if meta.get("enrollments") and not (
            0.9 * meta["enrollments"] <= n <= 1.05 * meta["enrollments"]
        ):
            warn(f"{where} enrollment created+errors={n}, the file has ~{meta['enrollments']}")
        if meta.get("classes"):
            cl = c.get("class") or {}
            n = cl.get("created", 0) + cl.get("errors", 0)
            if not 0.9 * meta["classes"] <= n <= 1.1 * meta["classes"]:
                warn(f"{where} class created+errors={n}, the file has ~{meta['classes']}")
    if re_up:
        c = re_up.get("counts") or {}
        changed = {
            f"{e}.{k}": (c.get(e) or {}).get(k)
            for e in ENTITIES
            for k in ("created", "updated", "removed")
            if (c.get(e) or {}).get(k)
        }
        if changed:
            warn(
                f"{where} the re-upload of the same file changed things (must be only "
                f"no_change): {changed}"
            )
        if up:
            e1 = {e: (up["counts"].get(e) or {}).get("errors") for e in ENTITIES}
            e2 = {e: (c.get(e) or {}).get("errors") for e in ENTITIES}
            if e1 != e2:
                warn(f"{where} the re-upload's errors differ from the upload's: {e1} vs {e2}")
            n1 = sum(
                (up["counts"].get(e) or {}).get(k, 0)
                for e in ENTITIES
                for k in ("created", "updated", "no_change")
            )
            n2 = sum((c.get(e) or {}).get("no_change", 0) for e in ENTITIES)
            if n1 != n2:
                warn(f"{where} re-upload no_change total {n2} != upload's applied total {n1}")
            if len(up.get("issues") or []) != len(re_up.get("issues") or []):
                warn(
                    f"{where} issue count upload {len(up.get('issues') or [])} vs re-upload "
                    f"{len(re_up.get('issues') or [])}"
                )


def diff_counts(a: dict | None, b: dict | None) -> dict:
    a, b = a or {}, b or {}
    out = {}
    for e in set(a) | set(b):
        for k in COUNT_KEYS:
            x, y = (a.get(e) or {}).get(k), (b.get(e) or {}).get(k)
            if x != y:
                out[f"{e}.{k}"] = (x, y)
    return out


# --------------------------------------------------------------------------- report
def fmt_s(x):
    return "—" if x is None else f"{x:.2f}"


def fmt_mb(x):
    return "—" if x is None else f"{x:,.0f}"


def cpu_ratio(cpu, base_cpu) -> str:
    return "—" if not cpu or not base_cpu else f"{cpu / base_cpu:.1f}"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("PASS" if ok else "MISS")


def build_table(fig: dict) -> str:
    base = fig["pandas_read"]["seconds"]
    base_cpu = fig["pandas_read"].get("cpu")
    lines = [
        (
            f"rosterbot benchmark — {fig['rows']:,} rows ({fig['file_mb']:.0f} MB, seed "
            f"{fig['seed']}, {fig['error_rate']:.1%} mistakes), {fig['machine']}"
        ),
        "",
        (
            "| run | store | seconds | × pandas read | peak RSS MB | CPU s | × pandas (CPU) | target "
            "| result |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---|---|",
        (
            f"| pandas.read_csv(dtype=str) | — | {fmt_s(base)} | 1.0 | "
            f"{fmt_mb(fig['pandas_read']['rss_mb'])} | {fmt_s(base_cpu)} | 1.0 | floor | |"
        ),
    ]
    labels = {
        "check": "rosterbot check (dry run)",
        "upload": "rosterbot upload (empty store)",
        "reupload": "rosterbot upload again (no change)",
    }
    fr = fig.get("frictionless")
    if fr:
        lines.append(
            f"| frictionless validate (same file) | — | {fmt_s(fr.get('seconds'))} | "
            f"{(fr['seconds'] or 0) / base:.1f} | {fmt_mb(fr.get('rss_mb'))} | "
            f"{fmt_s(fr.get('cpu'))} | {cpu_ratio(fr.get('cpu'), base_cpu)} | | "
            f"{fr.get('note', '')} |"
        )
    limit_mb = TARGETS["memory"][1]
    for be in fig["backends"]:
        runs = fig["runs"].get(be, {})
        if "skipped" in runs:
            lines.append(f"| (all runs) | {be} | — | — | — | | | | SKIPPED: {runs['skipped']} |")
            continue
        for stage in STAGES:
            r = runs.get(stage)
            if not r:
                continue
            ratio = r["seconds"] / base if r.get("seconds") and base else None
            _, limit, _ = TARGETS[stage]
            ok = None if ratio is None or not r.get("ok") else ratio <= limit
            res = verdict(ok) if r.get("ok") else f"FAILED (exit {r.get('exit_code')})"
            lines.append(
                f"| {labels[stage]} | {be} | {fmt_s(r.get('seconds'))} | "
                f"{'—' if ratio is None else f'{ratio:.1f}'} | {fmt_mb(r.get('rss_mb'))}"
                f" | {fmt_s(r.get('cpu'))} | {cpu_ratio(r.get('cpu'), base_cpu)}"
                f" | ≤ {limit:g}× | {res} |"
            )
            ok = None if not r.get("ok") or not r.get("rss_mb") else r["rss_mb"] <= limit_mb
            lines.append(
                f"| {stage} peak memory | {be} | | | {fmt_mb(r.get('rss_mb'))} | | | "
                f"≤ {limit_mb / 1024:g} GB | {verdict(ok)} |"
            )
            if stage == "check" and fr and fr.get("seconds"):
                sp = fr["seconds"] / r["seconds"] if r.get("ok") and r.get("seconds") else None
                ok = None if sp is None else sp >= TARGETS["frictionless"][1]
                cpu_sp = (
                    f" (CPU {fr['cpu'] / r['cpu']:.1f}×)"
                    if sp and fr.get("cpu") and r.get("cpu")
                    else ""
                )
                lines.append(
                    f"| check vs frictionless (frictionless s / check s) | {be} | | "
                    f"{'—' if sp is None else f'{sp:.1f}'}{cpu_sp} | | | | "
                    f"≥ {TARGETS['frictionless'][1]:g}× | {verdict(ok)} |"
                )
        if runs.get("setup"):
            lines.append(
                f"| (setup: district + {fig['schools']} schools via CLI) | {be} | "
                f"{fmt_s(runs['setup'].get('seconds'))} | | | | | | |"
            )
    lines += [
        "",
        (
            f"pandas read times (s): {fig['pandas_read'].get('note', '')}. Product runs: "
            "wall time of the CLI child process (interpreter start and imports included); "
            "peak RSS = the child's ru_maxrss; CPU s = its user + system time (the database "
            "server's work not included; the pandas CPU is the read_csv call's process time) "
            "— on a busy machine the CPU ratio is the steadier figure. Load average at the "
            "start / end: "
            f"{fig.get('loadavg_start', '?')} / {fig.get('loadavg', '?')}."
        ),
    ]
    sl = fig.get("slice")
    if sl:
        lines += [
            "",
            f"{sl['rows']:,}-row slice (first rows of the same file):",
            "",
            (
                "| run | store | seconds | × pandas read | peak RSS MB | CPU s | frictionless / "
                "check | target | result |"
            ),
            "|---|---|---:|---:|---:|---:|---:|---|---|",
        ]
        sb = sl["pandas_read"]["seconds"]
        lines.append(
            f"| pandas.read_csv(dtype=str) | — | {fmt_s(sb)} | 1.0 | "
            f"{fmt_mb(sl['pandas_read']['rss_mb'])} | | | | |"
        )
        fr = sl.get("frictionless")
        for be in fig["backends"]:
            r = (fig["runs"].get(be) or {}).get("check slice")
            if not r:
                continue
            sp = fr["seconds"] / r["seconds"] if fr and fr.get("seconds") and r.get("ok") else None
            ok = None if sp is None else sp >= TARGETS["frictionless"][1]
            cpu_sp = (
                f" (CPU {fr['cpu'] / r['cpu']:.1f})"
                if sp and fr.get("cpu") and r.get("cpu")
                else ""
            )
            lines.append(
                f"| rosterbot check | {be} | {fmt_s(r['seconds'])} | "
                f"{r['seconds'] / sb:.1f} | {fmt_mb(r['rss_mb'])} | "
                f"{fmt_s(r.get('cpu'))} | {'—' if sp is None else f'{sp:.1f}'}"
                f"{cpu_sp} | ≥ 5× | "
                f"{verdict(ok) if r.get('ok') else 'FAILED'} |"
            )
        alone = ((fr or {}).get("result") or {}).get("seconds")
        for be in fig["backends"]:
            w = (fig["runs"].get(be) or {}).get("check slice warm")
            if not w:
                continue
            ratio = f"{alone / w['seconds']:.1f} (validate() alone)" if alone else "—"
            lines.append(
                f"| rosterbot check, warm process (as the bot runs it) | {be} | "
                f"{fmt_s(w['seconds'])} | {w['seconds'] / sb:.1f} | | | {ratio} | | "
                f"median of {len(w['runs'])} calls after a first one |"
            )
        if fr:
            lines.append(
                f"| frictionless validate | — | {fmt_s(fr.get('seconds'))} | "
                f"{(fr['seconds'] or 0) / sb:.1f} | {fmt_mb(fr.get('rss_mb'))} | "
                f"{fmt_s(fr.get('cpu'))} | | | {fr.get('note', '')} |"
            )
    # counts
    lines += [
        "",
        "Counts reported by the CLI (created / updated / no_change / removed / errors):",
        "",
        (
            "| store | run | status | school | staff | student | class | enrollment | "
            "rows rejected | issues |"
        ),
        "|---|---|---|---|---|---|---|---|---:|---:|",
    ]
    for be in fig["backends"]:
        for stage, r in (fig["runs"].get(be) or {}).items():
            if not isinstance(r, dict) or not r.get("file"):
                continue
            f = r["file"]
            cells = []
            for e in ENTITIES:
                c = (f.get("counts") or {}).get(e) or {}
                cells.append("/".join(str(c.get(k, "?")) for k in COUNT_KEYS))
            lines.append(
                f"| {be} | {stage} | {f.get('status')} | "
                + " | ".join(cells)
                + f" | {(f.get('rows') or {}).get('rejected', '?')} | "
                f"{f.get('n_issues', '?')} |"
            )
    return "\n".join(lines)


def run_summary(r: Run, timing: str = "wall") -> dict:
    f = file_entry(r)
    d = {
        "seconds": r.seconds,
        "wall": r.wall,
        "rss_mb": r.rss_mb,
        "cpu": r.cpu,
        "exit_code": r.exit_code,
        "cmd": " ".join(r.cmd),
        "note": r.note,
        "ok": r.exit_code == 0 and f is not None and f.get("status") != "failed",
    }
    if f is not None:
        d["file"] = {
            k: f.get(k)
            for k in ("status", "applied", "counts", "rows", "file_issues", "error_report")
        }
        d["file"]["n_issues"] = len(f.get("issues") or [])
        codes: dict[str, int] = {}
        for i in f.get("issues") or []:
            codes[i.get("code")] = codes.get(i.get("code"), 0) + 1
        d["file"]["issue_codes"] = dict(sorted(codes.items(), key=lambda kv: -kv[1]))
    elif r.exit_code not in (0, None):
        d["stderr_tail"] = r.stderr_tail[-1500:]
    return d


# --------------------------------------------------------------------------- profiling
PROFILE_CODE = r"""
import cProfile, pstats, sys, runpy
out = sys.argv[1]
sys.argv = ["rosterbot"] + sys.argv[2:]
prof = cProfile.Profile()
try:
    prof.enable()
    runpy.run_module("bot.cli", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    prof.disable()
    prof.dump_stats(out)
"""


def profile_runs(
    backend: Backend, csv_path: Path, schools, out_dir: Path, env: dict, timeout: float, top: int
) -> dict:
    res = {}
    backend.prepare()
    setup_district(backend, schools, out_dir, env)
    for stage, verb in (("check", "check"), ("upload", "upload"), ("reupload", "upload")):
        prof_path = out_dir / f"profile-{backend.name}-{stage}.prof"
        r = product_run(
            f"profile-{stage}",
            verb,
            backend,
            csv_path,
            out_dir,
            env,
            timeout,
            prefix=[sys.executable, "-c", PROFILE_CODE, str(prof_path)],
        )
        if not prof_path.exists():
            warn(f"no profile written for {stage}: {r.stderr_tail[-500:]}")
            continue
        summary = summarize_profile(prof_path, top)
        summary["wall"] = r.wall
        res[stage] = summary
        print(
            f"\n### cProfile: rosterbot {verb} ({stage}, {backend.name}), wall {r.wall:.1f}s "
            f"under the profiler — {prof_path}\n"
        )
        print(profile_markdown(summary))
    backend.cleanup()
    return res


def _is_project(fn: str) -> bool:
    return fn.startswith(str(ROOT)) and "/.venv/" not in fn and "/bench/" not in fn


def summarize_profile(prof_path: Path, top: int = 25) -> dict:
    """Project functions by cumulative time, with their own time plus the time of the library
    calls they make directly (pandas / pyarrow / SQLAlchemy inline) - where to optimise - and
    the library functions with the most own time, each with its heaviest project caller."""
    import pstats

    st = pstats.Stats(str(prof_path))
    stats = st.stats
    total = max(v[3] for v in stats.values())
    lib_time: dict = {}
    for func, (cc, nc, tt, ct, callers) in stats.items():
        if _is_project(func[0]):
            continue
        for caller, cstat in callers.items():
            if _is_project(caller[0]):
                lib_time[caller] = lib_time.get(caller, 0.0) + cstat[3]

    def name(func):
        fn, line, fname = func
        return f"{short(fn)}:{line}({fname})"

    project = []
    for func, (cc, nc, tt, ct, callers) in stats.items():
        if _is_project(func[0]):
            project.append(
                {
                    "function": name(func),
                    "ncalls": nc,
                    "cumtime": ct,
                    "tottime": tt,
                    "own_plus_lib": tt + lib_time.get(func, 0.0),
                }
            )

    def heaviest_project_caller(func, depth=0, seen=None):
        seen = seen or set()
        callers = stats[func][4]
        best = None
        for caller, cstat in sorted(callers.items(), key=lambda kv: -kv[1][3]):
            if caller in seen:
                continue
            if _is_project(caller[0]):
                return name(caller)
            if depth < 12 and caller in stats:
                best = heaviest_project_caller(caller, depth + 1, seen | {func})
                if best:
                    return best
        return best

    libs = []
    for func, (cc, nc, tt, ct, callers) in sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]:
        libs.append(
            {
                "function": name(func),
                "ncalls": nc,
                "tottime": tt,
                "cumtime": ct,
                "project_caller": None if _is_project(func[0]) else heaviest_project_caller(func),
            }
        )
    return {
        "total": total,
        "prof": str(prof_path),
        "project_by_cumtime": sorted(project, key=lambda x: -x["cumtime"])[:top],
        "project_by_own_plus_lib": sorted(project, key=lambda x: -x["own_plus_lib"])[:top],
        "by_tottime": libs,
    }


def profile_markdown(summary: dict) -> str:
    out = [
        f"total {summary['total']:.1f}s (cProfile)",
        "",
        "Project functions by cumulative time:",
        "",
        "| cumulative s | own + direct library calls s | calls | function |",
        "|---:|---:|---:|---|",
    ]
    out += [
        f"| {x['cumtime']:.2f} | {x['own_plus_lib']:.2f} | {x['ncalls']} | `{x['function']}` |"
        for x in summary["project_by_cumtime"]
    ]
    out += [
        "",
        (
            "Where the time is spent (project function incl. the pandas/pyarrow/SQLAlchemy "
            "calls it makes itself):"
        ),
        "",
        "| own + direct library calls s | cumulative s | calls | function |",
        "|---:|---:|---:|---|",
    ]
    out += [
        f"| {x['own_plus_lib']:.2f} | {x['cumtime']:.2f} | {x['ncalls']} | `{x['function']}` |"
        for x in summary["project_by_own_plus_lib"]
    ]
    out += [
        "",
        "Top own time (any function) and the project function that calls it:",
        "",
        "| own s | cumulative s | calls | function | called from |",
        "|---:|---:|---:|---|---|",
    ]
    out += [
        f"| {x['tottime']:.2f} | {x['cumtime']:.2f} | {x['ncalls']} | `{x['function']}` | "
        f"{'`' + x['project_caller'] + '`' if x['project_caller'] else ''} |"
        for x in summary["by_tottime"]
    ]
    return "\n".join(out)


def short(fn: str) -> str:
    for marker in (str(ROOT) + "/", "site-packages/", "lib/python3"):
        i = fn.find(marker)
        if i >= 0:
            return (
                fn[i + len(marker) :] if marker != "lib/python3" else "py3" + fn[i + len(marker) :]
            )
    return fn


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="rosterbot benchmark (issues #6 and #18)")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--errors", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument(
        "--slice-rows",
        type=int,
        default=0,
        help="also compare with frictionless on the first N rows, with a warm-process check "
        "(0 = no slice; the main comparison is always on the whole file)",
    )
    ap.add_argument(
        "--only",
        default=",".join(STAGES),
        help="product runs to time, comma-separated among check,upload,reupload "
        "(e.g. --only check: the floor, frictionless and check)",
    )
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument(
        "--postgres-url", default=os.environ.get("ROSTERBOT_BENCH_POSTGRES_URL", DEFAULT_PG_URL)
    )
    ap.add_argument("--out-dir", default=str(HERE / "out"))
    ap.add_argument("--repeats", type=int, default=3, help="pandas read repeats (median)")
    ap.add_argument("--no-frictionless", action="store_true")
    ap.add_argument("--regen", action="store_true", help="regenerate even if the file exists")
    ap.add_argument("--keep-db", action="store_true", help="keep the benchmark databases")
    ap.add_argument("--timeout", type=float, default=3600, help="per product run (s)")
    ap.add_argument("--json-out", help="save the figures as JSON")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="after the timed runs, profile check, upload and the no-change "
        "re-upload with cProfile",
    )
    ap.add_argument(
        "--profile-only",
        action="store_true",
        help="only the cProfile runs (no timed runs, no table)",
    )
    ap.add_argument("--profile-backend", default="sqlite")
    ap.add_argument(
        "--show-profile",
        nargs="+",
        metavar="PROF",
        help="print the summary of existing .prof files and exit",
    )
    ap.add_argument("--profile-top", type=int, default=25)
    args = ap.parse_args(argv)
    stages = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = [x for x in stages if x not in STAGES]
    if unknown:
        ap.error(f"--only: unknown stage(s) {', '.join(unknown)} (choose among {STAGES})")
    if "reupload" in stages and "upload" not in stages:
        ap.error("--only: reupload needs upload (it uploads the same file again)")

    if args.show_profile:
        for prof in args.show_profile:
            print(f"\n### {prof}\n")
            print(profile_markdown(summarize_profile(Path(prof), args.profile_top)))
        return 0

    out_dir = Path(args.out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dir = out_dir / f"run-{args.rows}"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = child_env()

    # 1. the file
    csv_path = out_dir / f"users-{args.rows}-s{args.seed}-e{args.errors:g}.csv"
    schools_path = Path(str(csv_path) + ".schools.csv")
    meta_path = Path(str(csv_path) + ".meta.json")
    if args.regen or not (csv_path.exists() and schools_path.exists() and meta_path.exists()):
        log(f"generating {args.rows:,} rows -> {csv_path}")
        t0 = time.perf_counter()
        # in a child: this process stays small (its memory would leak into the children's
        # ru_maxrss otherwise, see LAUNCHER) and does not import numpy/pandas at all
        subprocess.run(
            [
                sys.executable,
                str(HERE / "generate.py"),
                "--rows",
                str(args.rows),
                "-o",
                str(csv_path),
                "--errors",
                str(args.errors),
                "--seed",
                str(args.seed),
            ],
            check=True,
        )
        log(f"generated in {time.perf_counter() - t0:.1f}s")
    import csv as _csv

    with open(schools_path, encoding="utf-8") as fh:
        schools = [(r["org_sis_id"], r["name"]) for r in _csv.DictReader(fh)]
    meta = json.loads(meta_path.read_text())
    file_mb = csv_path.stat().st_size / 1e6

    machine = f"{platform.machine()}, {os.cpu_count()} CPU, Python {platform.python_version()}"
    fig: dict = {
        "rows": args.rows,
        "seed": args.seed,
        "error_rate": args.errors,
        "file": str(csv_path),
        "file_mb": file_mb,
        "schools": len(schools),
        "machine": machine,
        "meta": meta,
        "backends": [],
        "runs": {},
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }

    if args.profile_only:
        backend = (
            SQLiteBackend(out_dir, f"{args.rows}-profile")
            if args.profile_backend == "sqlite"
            else PostgresBackend(args.postgres_url, f"{args.rows}p")
        )
        prof = profile_runs(
            backend, csv_path, schools, run_dir, env, args.timeout, args.profile_top
        )
        if args.json_out:
            Path(args.json_out).write_text(json.dumps({"profile": prof}, indent=2))
        return 0

    load = os.getloadavg()[0]
    fig["loadavg_start"] = f"{load:.1f}"
    if load > 0.75 * (os.cpu_count() or 1):
        warn(
            f"the machine is busy (load average {load:.1f} on {os.cpu_count()} CPUs): "
            "the seconds will be noisy; compare the ratios and the CPU column"
        )

    # 2. the floor
    log("pandas.read_csv baseline")
    pr = pandas_read(csv_path, args.repeats, run_dir, "pandas read")
    fig["pandas_read"] = {
        "seconds": pr.seconds,
        "rss_mb": pr.rss_mb,
        "note": pr.note,
        "times": pr.result["times"],
        "cpus": pr.result["cpus"],
        "cpu": statistics.median(pr.result["cpus"]),
    }
    log(f"pandas read: {pr.note}; {pr.rss_mb:.0f} MB")

    if not args.no_frictionless:
        fr = frictionless_figures(csv_path, run_dir, f"the whole file ({args.rows:,} rows)")
        if fr:
            fig["frictionless"] = fr

    slice_path = None
    if args.slice_rows and args.slice_rows < args.rows:
        slice_path = (
            out_dir / f"users-{args.rows}-s{args.seed}-e{args.errors:g}.slice{args.slice_rows}.csv"
        )
        write_slice(csv_path, slice_path, args.slice_rows)
        sp = pandas_read(slice_path, args.repeats, run_dir, "pandas read slice")
        fig["slice"] = {
            "rows": args.slice_rows,
            "file": str(slice_path),
            "pandas_read": {
                "seconds": sp.seconds,
                "rss_mb": sp.rss_mb,
                "cpu": statistics.median(sp.result["cpus"]),
            },
        }
        if not args.no_frictionless:
            fr = frictionless_figures(
                slice_path,
                run_dir,
                f"the {args.slice_rows:,}-row slice",
                "frictionless validate slice",
            )
            if fr:
                fig["slice"]["frictionless"] = fr

    # 3. the product, per store
    if not (ROOT / "bot" / "cli.py").exists():
        warn("bot/cli.py does not exist yet: product runs skipped")
        backends_wanted = []
    else:
        backends_wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    tag = f"{args.rows}"
    for be_name in backends_wanted:
        fig["backends"].append(be_name)
        runs: dict = {}
        fig["runs"][be_name] = runs
        if be_name == "sqlite":
            backend: Backend = SQLiteBackend(out_dir, tag)
        elif be_name == "postgres":
            backend = PostgresBackend(args.postgres_url, tag)
            why = backend.available()
            if why:
                warn(f"PostgreSQL at {args.postgres_url} unavailable: {why}")
                runs["skipped"] = why
                continue
        else:
            raise SystemExit(f"unknown backend {be_name}")
        try:
            backend.prepare()
            log(f"{be_name}: setup district + {len(schools)} schools via the CLI")
            s = setup_district(backend, schools, run_dir, env)
            runs["setup"] = {"seconds": s.seconds, "exit_code": s.exit_code}
            raw: dict[str, Run] = {}
            if slice_path is not None:
                raw["check slice"] = product_run(
                    "check slice", "check", backend, slice_path, run_dir, env, args.timeout
                )
                warm = warm_check(backend, slice_path, run_dir, env, max(5, args.repeats))
                if warm.result:
                    runs["check slice warm"] = {
                        "seconds": warm.result["seconds"],
                        "runs": warm.result["runs"],
                        "first": warm.result["first"],
                    }
            if "check" in stages:
                raw["check"] = product_run(
                    "check", "check", backend, csv_path, run_dir, env, args.timeout
                )
            if "upload" in stages:
                raw["upload"] = product_run(
                    "upload", "upload", backend, csv_path, run_dir, env, args.timeout
                )
            if "reupload" in stages and raw["upload"].exit_code == 0:
                raw["reupload"] = product_run(
                    "reupload", "upload", backend, csv_path, run_dir, env, args.timeout
                )
            for k, r in raw.items():
                runs[k] = run_summary(r)
            verify(be_name, raw, meta, args.rows, args.slice_rows)
        finally:
            backend.cleanup(keep=args.keep_db)

    if args.profile and backends_wanted:
        be = args.profile_backend
        backend = (
            SQLiteBackend(out_dir, tag + "-profile")
            if be == "sqlite"
            else PostgresBackend(args.postgres_url, tag + "p")
        )
        fig["profile"] = profile_runs(
            backend, csv_path, schools, run_dir, env, args.timeout, args.profile_top
        )

    # the floor again, after the product runs: the machine's load drifts, the median of all
    # the reads (start and end) is the baseline the ratios use
    if backends_wanted:
        log("pandas.read_csv baseline again (end)")
        pr2 = pandas_read(csv_path, args.repeats, run_dir, "pandas read end")
        times = fig["pandas_read"]["times"] + pr2.result["times"]
        cpus = fig["pandas_read"]["cpus"] + pr2.result["cpus"]
        fig["pandas_read"].update(
            {
                "times": times,
                "seconds": statistics.median(times),
                "cpus": cpus,
                "cpu": statistics.median(cpus),
                "rss_mb": max(pr.rss_mb, pr2.rss_mb),
                "note": f"median of {len(times)} (start and end): "
                + ", ".join(f"{t:.2f}" for t in times),
            }
        )
        log(f"pandas read: {fig['pandas_read']['note']}")

    fig["warnings"] = WARNINGS
    fig["loadavg"] = f"{os.getloadavg()[0]:.1f}"
    table = build_table(fig)
    fig["table"] = table
    print()
    print(table)
    if WARNINGS:
        print("\nWarnings:")
        for w in WARNINGS:
            print(f"- {w}")
    print(
        f"\nReproduce: python bench/run.py --rows {args.rows} --seed {args.seed} "
        f"--errors {args.errors:g}"
    )
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(fig, indent=2, default=str))
        log(f"figures saved to {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
