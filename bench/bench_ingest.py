"""Ingest rate of one `veil serve` and latency from an agent's event to a supervisor's live view (issue 5).

    .venv/bin/python bench/bench_ingest.py [--postgres URL] [--agents 40] [--rate 40] [--duration 20]
                                           [--live-agents 100,1000] [--live-rate 0.5] [--markdown]

For each database (SQLite in the instance folder, and PostgreSQL when --postgres names one; the bench uses
a schema of its own, `bench_ingest`, dropped and made anew) it starts one `veil serve` process and:

- **ingest**: `veil simulate`'s devices (backend/simulation.py: real enrolment, real Socket.IO, event
  protocol v1 batches, one batch in flight per device like the extension) offer more events than the server
  can take; the rate is events acknowledged per second from the first send until every event is answered,
  and afterwards the server is asked how many it stored. Beside it, the ceiling: the same number of message
  rows written by one process with bare SQLAlchemy Core inserts of 100 rows per transaction, without
  Socket.IO, validation, conversations lookup or the server's re-check.
- **live latency**: an admin signed in to the panel (session cookie, /panel namespace, as the browser does)
  hears an `activity` push for the messages each batch stored; latency = the moment the push arrives minus
  its `since` (when the oldest of those events happened on the simulated device; same machine, same clock),
  for --live-agents devices each sending --live-rate events per second.

The simulated devices and the panel client run in this process, on the same 2 cores as the server; the
numbers are for the whole machine doing both.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import socketio  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from backend.simulation import Simulation  # noqa: E402
from tests.live_server import running_server  # noqa: E402

SCHEMA = "bench_ingest"
ADMIN = "bench-admin@demo.veil"
PASSWORD = "bench-password-123"


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def postgres_url(url: str) -> str:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    engine.dispose()
    sep = "&" if "?" in url else "?"
    return url + sep + "options=" + urllib.parse.quote(f"-csearch_path={SCHEMA}")


def admin_token(server) -> str:
    server.cli("user", "add", "--email", ADMIN, "--role", "admin", "--password", PASSWORD)
    return server.cli("token", "create", "--email", ADMIN)


def ingest(server, token: str, agents: int, rate: float, duration: float) -> dict:
    sim = Simulation(server.url, token, agents, rate, duration, seed=11, progress=log)
    try:
        sim.setup()
        report = sim.run()
    finally:
        sim.close()
    for line in report.lines():
        log("  " + line)
    return {"sent": report.totals.sent, "acked": report.totals.acked, "stored": report.stored.get("events", 0),
            "seconds": report.elapsed, "rate": report.totals.acked / report.elapsed,
            "refused_batches": dict(report.totals.batch_refusals)}


def bare_inserts(db_url: str, rows: int) -> float:
    """Rows per second for plain INSERTs of message-like rows, 100 per transaction: the storage ceiling."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_bare_message"))
        conn.execute(text("CREATE TABLE bench_bare_message (id INTEGER PRIMARY KEY, conversation_id INTEGER, "
                          "client_event_id VARCHAR(64) UNIQUE, direction VARCHAR(3), text TEXT, sent_at VARCHAR(40))"))
    started = time.perf_counter()
    for start in range(0, rows, 100):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO bench_bare_message (id, conversation_id, client_event_id, direction, text, "
                              "sent_at) VALUES (:id, 1, :eid, 'in', :text, '2026-11-23T12:00:00')"),
                         [{"id": n + 1, "eid": f"e{n:032d}", "text": "你好，我想问一下这个产品还有货吗？"}
                          for n in range(start, min(rows, start + 100))])
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE bench_bare_message"))
    engine.dispose()
    return rows / seconds


class PanelListener:
    """An admin's panel page: signs in with the form, then listens on /panel like the browser."""

    def __init__(self, server_url: str):
        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(f"{server_url}/login").read().decode()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        form = {"email": ADMIN, "password": PASSWORD, **({"csrf_token": csrf.group(1)} if csrf else {})}
        opener.open(f"{server_url}/login", data=urllib.parse.urlencode(form).encode())
        cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.client = socketio.Client(reconnection=False)
        self.client.on("activity", self.on_activity, namespace="/panel")
        self.client.connect(server_url, namespaces=["/panel"], transports=["websocket"],
                            headers={"Cookie": cookie}, wait_timeout=30)

    def on_activity(self, data) -> None:
        at = data.get("since") if isinstance(data, dict) else None
        if isinstance(at, str):
            at = datetime.datetime.fromisoformat(at).timestamp() * 1000
        if isinstance(at, int | float):
            with self.lock:
                self.latencies.append(time.time() * 1000 - at)

    def close(self) -> None:
        self.client.disconnect()


def live_latency(server, token: str, agents: int, rate: float, duration: float) -> dict:
    listener = PanelListener(server.url)
    sim = Simulation(server.url, token, agents, rate, duration, seed=agents, progress=log)
    try:
        sim.setup()
        with listener.lock:
            listener.latencies.clear()  # only what the timed run sends
        report = sim.run()
        time.sleep(2)  # pushes still on their way
    finally:
        sim.close()
        listener.close()
    values = sorted(listener.latencies)
    if not values:
        return {"agents": agents, "events": report.totals.acked, "heard": 0}
    return {"agents": agents, "events": report.totals.acked, "heard": len(values),
            "p50": statistics.median(values), "p99": values[min(len(values) - 1, int(0.99 * len(values)))]}


def run(name: str, extra_env: dict, bare_url: str, args) -> dict:
    log(f"== {name}")
    result: dict = {"name": name}
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp), extra_env) as server:
        token = admin_token(server)
        log(f"ingest: {args.agents} devices x {args.rate} events/s for {args.duration} s")
        result["ingest"] = ingest(server, token, args.agents, args.rate, args.duration)
        log(f"  ingest result: {result['ingest']}")
        result["live"] = []
        for agents in args.live_agents:
            log(f"live: {agents} devices x {args.live_rate} events/s")
            result["live"].append(live_latency(server, token, agents, args.live_rate, args.live_duration))
            log(f"  live result: {result['live'][-1]}")
        bare = bare_url or "sqlite:///" + os.path.join(server.instance, "bare.db")
        result["bare"] = bare_inserts(bare, result["ingest"]["acked"])
    return result


def machine() -> str:
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True,
                         text=True).stdout.strip()
    return f"{os.cpu_count()} vCPU {cpu}, Python {platform.python_version()}"


def markdown(results: list[dict], args) -> str:
    out = [f"Measured {datetime.date.today().isoformat()} on {machine()}; `bench/bench_ingest.py "
           f"--agents {args.agents} --rate {args.rate} --duration {args.duration} --live-rate {args.live_rate}`.", "",
           "| database | acknowledged events/s | sent / acknowledged / stored | bare INSERT rows/s (ceiling) |",
           "| --- | ---: | --- | ---: |"]
    for r in results:
        i = r["ingest"]
        out.append(f"| {r['name']} | {i['rate']:.0f} | {i['sent']} / {i['acked']} / {i['stored']} | {r['bare']:.0f} |")
    out += ["", "| database | simulated agents | events | pushes heard | p50 | p99 |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        for live in r["live"]:
            p50 = f"{live['p50']:.0f} ms" if live.get("heard") else "-"
            p99 = f"{live['p99']:.0f} ms" if live.get("heard") else "-"
            out.append(f"| {r['name']} | {live['agents']} | {live['events']} | {live['heard']} | {p50} | {p99} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("VEIL_TEST_POSTGRES_URL"))
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--live-agents", type=lambda v: [int(x) for x in v.split(",")], default=[100, 1000])
    parser.add_argument("--live-rate", type=float, default=0.5)
    parser.add_argument("--live-duration", type=float, default=20.0)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    results = [run("SQLite", {}, "", args)]
    if args.postgres:
        url = postgres_url(args.postgres)
        bare_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        results.append(run("PostgreSQL", {"DATABASE_URL": url}, bare_url, args))
    print(markdown(results, args))


if __name__ == "__main__":
    main()
