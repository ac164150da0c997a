"""`make cluster`: two bot replicas and two workers against the local PostgreSQL, to see the
job queue work (docs/deploy.md).  Ctrl-C stops them all.

* Database: ROSTERBOT_DATABASE_URL when it is PostgreSQL, else the local server's `test`
  database, in a schema of its own (`rosterbot_cluster`); `rosterbot db upgrade` first.
* Slack: with SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN set, the real one (point Slack's
  request URLs, through your proxy, at the replicas).  Without them, the stand-in Slack of
  the tests (tests/slack_standin.py) runs in this process: a district `demo` is set up,
  examples/users.csv is shared in its channel and the same event is delivered to BOTH
  replicas, and the script prints the one job it became, which worker ran it, and the
  bot's reply.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
LOCAL_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA = "rosterbot_cluster"
FIRST_PORT = int(os.environ.get("CLUSTER_PORT", "") or 3001)


def database_url() -> str:
    url = os.environ.get("ROSTERBOT_DATABASE_URL", "")
    if url.startswith("postgresql"):
        return url
    engine = create_engine(LOCAL_PG)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
    engine.dispose()
    return f"{LOCAL_PG}?options=-csearch_path%3D{SCHEMA}"


def _pipe(name: str, proc: subprocess.Popen) -> None:
    for line in proc.stdout:
        sys.stdout.write(f"[{name}] {line}")
        sys.stdout.flush()


def start(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    threading.Thread(target=_pipe, args=(name, proc), daemon=True).start()
    return proc


def wait_for_port(port: int, proc: subprocess.Popen) -> None:
    import socket

    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"a replica stopped (exit {proc.returncode}); see its lines above")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"no replica listening on port {port}")


def set_up_demo(url: str) -> None:
    from roster.store import Store

    store = Store(url)
    if store.get_district("demo") is None:
        store.create_district("demo", "Demo Unified School District")
        for org, name in (("0101", "Lincoln Elementary"), ("0202", "Washington Middle")):
            store.add_school("demo", org, name)
        store.grant_admin("demo", "U0ADMIN", system=True, enrollment=True)
        store.link_channel("demo", "C0DEMO")
    store.dispose()


def share_example(slack, ports: list[int], secret: str) -> str:
    """Share examples/users.csv in the demo channel, delivered to every replica at once."""
    import urllib.request

    from slack_sdk.signature import SignatureVerifier

    from tests.slack_standin import TEAM_ID

    data = (ROOT / "examples" / "users.csv").read_bytes()
    ts = f"{int(time.time())}.000100"
    event = {
        "type": "message",
        "subtype": "file_share",
        "text": "",
        "user": "U0ADMIN",
        "channel": "C0DEMO",
        "channel_type": "channel",
        "ts": ts,
        "files": [slack.host_file("users.csv", data)],
    }
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM_ID,
            "api_app_id": "A0ROSTERBOT",
            "event_id": f"Ev{ts.replace('.', '')}",
            "event_time": int(time.time()),
            "event": event,
        }
    ).encode()

    def deliver(port: int) -> None:
        stamp = str(int(time.time()))
        signature = SignatureVerifier(secret).generate_signature(
            timestamp=stamp, body=body.decode()
        )
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/slack/events",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": signature,
            },
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            print(f"[cluster] replica on port {port} acknowledged with HTTP {answer.status}")

    threads = [threading.Thread(target=deliver, args=(p,)) for p in ports]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ts


def report(url: str, slack, ts: str) -> None:
    from bot.demo import blocks_as_text

    engine = create_engine(url)
    for _ in range(600):
        with engine.connect() as conn:
            state = conn.execute(
                text("SELECT state FROM uploads WHERE slack_message_ts = :ts"), {"ts": ts}
            ).scalar()
        if state not in (None, "received", "processing"):
            break
        time.sleep(0.1)
    with engine.connect() as conn:
        uploads = conn.execute(
            text("SELECT count(*) FROM uploads WHERE slack_message_ts = :ts"), {"ts": ts}
        ).scalar()
        jobs = conn.execute(
            text(
                "SELECT j.id, j.status, j.lock, w.id FROM procrastinate_jobs j "
                "LEFT JOIN procrastinate_workers w ON w.id = j.worker_id "
                "WHERE j.args->'job'->>'message_ts' = :ts"
            ),
            {"ts": ts},
        ).all()
    engine.dispose()
    print(f"\n[cluster] the event went to both replicas: {uploads} upload, {len(jobs)} job")
    for job_id, status, lock, _worker in jobs:
        print(f"[cluster]   job {job_id}: {status}, lock {lock}")
    time.sleep(1)
    for post in slack.posts("C0DEMO", ts):
        if post.get("blocks"):
            print("\n--- the bot's reply in the file's thread ---\n")
            print(blocks_as_text(post["blocks"]))
    print("--------------------------------------------")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the cluster as Ctrl-C does
    url = database_url()
    env = dict(os.environ, PYTHONPATH=str(ROOT), ROSTERBOT_DATABASE_URL=url)
    env["ROSTERBOT_JOB_QUEUE"] = "queue"
    env.setdefault("ROSTERBOT_AUTO_UPGRADE", "0")  # the release step below upgrades
    subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], env=env, check=True)
    slack = None
    if not (env.get("SLACK_SIGNING_SECRET") and env.get("SLACK_BOT_TOKEN")):
        from tests.slack_standin import BOT_TOKEN, SlackStandIn

        slack = SlackStandIn().__enter__()
        env.update(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET="cluster-demo-secret",
            ROSTERBOT_SLACK_API_URL=slack.api_url,
        )
        set_up_demo(url)
        print(f"[cluster] no Slack credentials: the stand-in Slack at {slack.api_url}")
    ports = [FIRST_PORT, FIRST_PORT + 1]
    procs = [
        start(f"replica-{i + 1}", ["serve", "--http", "--port", str(port)], env)
        for i, port in enumerate(ports)
    ]
    procs += [start(f"worker-{i + 1}", ["worker"], env) for i in range(2)]
    try:
        for port, proc in zip(ports, procs):
            wait_for_port(port, proc)
        print(
            "[cluster] replicas: "
            + ", ".join(f"http://127.0.0.1:{p}/slack/events" for p in ports)
            + "; 2 workers.  Ctrl-C stops them all."
        )
        if slack is not None:
            ts = share_example(slack, ports, env["SLACK_SIGNING_SECRET"])
            report(url, slack, ts)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("[cluster] a process stopped; stopping the others")
    except KeyboardInterrupt:
        print("\n[cluster] stopping")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if slack is not None:
            slack.__exit__(None, None, None)


if __name__ == "__main__":
    main()
