"""Persistence benchmark (issue 14): QoS 1 to persistent sessions with persistence on vs off,
mosquitto with `persistence true` as the peer, in the same run; and the start-up time with a
large store.

    .venv/bin/python -m bench.persistence [--seconds 5] [--repeat 1] [--only fanin_q1,fanout_q1,startup]

A. Throughput: fan-in 8->1 and fan-out 1->8, QoS 1, 64-byte payloads, every client with a
   persistent session (clean session = 0, bench/persistence/loadgen.py), for: the appliance
   without a persistence block, with `persistence { sync = fsync }` (every acknowledged
   message committed and fsync'd before its PUBACK) and with `sync = os`; mosquitto 2 with
   `persistence true` (it saves every `autosave_interval`, 1800 s by default, and at
   shutdown: it does not sync per acknowledgement). Floors: fsync >= 0.5x of off, and
   >= mosquitto with persistence.
B. Start-up: a store with 100,000 retained messages, 10,000 sessions (one subscription and
   a will each) and `--queued` (100,000) QoS 1 messages queued for the first tenth of them,
   written with the appliance's own schema and queue journal (appliance.persistence) so the
   rows are exactly what the broker writes; time from exec to the listening port (which
   includes reading the queue back; its rewrite is the first commit, after). Floor: under 5 s.

Broker on --broker-cpu, load on --loadgen-cpu; fresh broker and fresh store per run. Prints a
table on stderr and one JSON line on stdout. On a shared 2-core machine the absolute figures
move a lot from run to run: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import brokers

ROOT = Path(__file__).resolve().parents[2]
PORT = 18851
SCENARIOS = {
    "fanin_q1": ["--mode", "fanin", "--qos", "1"],
    "fanout_q1": ["--mode", "fanout", "--qos", "1"],
}
MOSQUITTO_PERSISTENT = brokers.MOSQUITTO_CONF.replace("persistence false", "persistence true\n"
                                                      "persistence_location {dir}/\n")


def appliance(workdir: Path, cpu, persistence: str | None, extra: str = "") -> brokers.Broker:
    block = "" if persistence is None else f'persistence {{ dir = "{workdir}/data", sync = {persistence} }}\n'
    return brokers.appliance(PORT, cpu, workdir, sys.executable, block + extra)


def mosquitto(workdir: Path, cpu) -> brokers.Broker:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    data = workdir / "mosq"
    data.mkdir(exist_ok=True)
    os.chmod(data, 0o777)  # mosquitto drops root privileges before it writes its database
    conf = workdir / "mosquitto.conf"
    conf.write_text(MOSQUITTO_PERSISTENT.format(port=PORT, dir=data))
    conf.chmod(0o644)
    return brokers.Broker("mosquitto", [exe, "-c", str(conf)], PORT, cpu, workdir / "mosquitto.log")


def run_load(args, broker: brokers.Broker, scenario: str) -> dict:
    argv = [sys.executable, "-m", "bench.persistence.loadgen", "--port", str(PORT), "--pid", str(broker.pid),
            "--duration", str(args.seconds), *SCENARIOS[scenario]]
    if args.loadgen_cpu is not None:
        argv = ["taskset", "-c", str(args.loadgen_cpu)] + argv
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=args.seconds + 120).stdout
    lines = out.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"ok": False}


def throughput(args) -> list[dict]:
    variants = [("off", lambda w: appliance(w, args.broker_cpu, None)),
                ("fsync", lambda w: appliance(w, args.broker_cpu, "fsync")),
                ("os", lambda w: appliance(w, args.broker_cpu, "os")),
                ("mosquitto", lambda w: mosquitto(w, args.broker_cpu))]
    results = []
    for repeat in range(args.repeat):
        for scenario in [s for s in SCENARIOS if s in args.only]:
            order = variants if repeat % 2 == 0 else variants[::-1]
            for name, make in order:
                with tempfile.TemporaryDirectory(prefix="bench-persist-") as tmp:
                    with make(Path(tmp)) as broker:
                        res = run_load(args, broker, scenario)
                res.update(variant=name, scenario=scenario, repeat=repeat)
                results.append(res)
                print(f"  {scenario:10} {name:9} recv {res.get('recv_mps', 0):>10,.0f}/s lost {res.get('lost')} "
                      f"broker cpu {res.get('broker_cpu', 0):.2f}", file=sys.stderr)
    return results


def build_store(path: Path, retained: int, sessions: int) -> None:
    sys.path.insert(0, str(ROOT))
    from appliance.persistence.journal import PUT_RETAINED, PUT_SESSION, PUT_SUBSCRIPTION, TABLES
    from appliance.store.store import APPLICATION_ID

    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA application_id={APPLICATION_ID}")
    for statement in TABLES:
        db.execute(statement)
    now = time.time()
    will = json.dumps({"topic": "wills/x", "payload": "6279", "qos": 1, "retain": False, "properties":
                       {"will_delay_interval": 600}, "client_id": "x", "username": "u", "protocol_version": 5,
                       "keepalive": 60, "peer": ["127.0.0.1", 1]})
    with db:
        db.executemany(PUT_RETAINED, ((f"site/{i // 1000}/sensor/{i}", b"x" * 64, 1, 1, "pub", None,
                                       int(now * 1000), None, None) for i in range(retained)))
        db.executemany(PUT_SESSION, ((f"client-{i}", "u", 86400, 0, now, will, now + 600) for i in range(sessions)))
        db.executemany(PUT_SUBSCRIPTION, ((f"client-{i}", f"cmd/{i}/#", 1, 0, 0, None) for i in range(sessions)))
    db.close()


def build_queue(path: Path, queued: int, sessions: int) -> None:
    """`queued` QoS 1 messages pending for `sessions` persistent sessions, in the batches the
    broker's own queue journal writes."""
    from appliance.broker.message import Message
    from appliance.broker.session import Delivery
    from appliance.persistence.journal import TABLES
    from appliance.persistence.queue import LoadedQueue, QueueJournal
    from appliance.store import Store

    class Session:
        def __init__(self, client_id: str) -> None:
            self.client_id = client_id

    store = Store(str(path), "bench", "os")
    store.define(*TABLES)
    queue = QueueJournal(store, LoadedQueue.read(store, set()))
    store.register(queue)
    store.start()
    owners = [Session(f"client-{i}") for i in range(sessions)]
    now_ms = int(time.time() * 1000)
    for n in range(queued):
        message = Message(f"cmd/{n % sessions}/x", b"q" * 64, 1, False, "pub", None, now_ms, {}, None)
        queue.queued(owners[n % sessions], Delivery(message, 1, False))
        if n % 1000 == 999:
            store.wait_durable()  # batches of a thousand, as a busy broker writes them
    store.close()


def startup(args) -> list[dict]:
    results = []
    for repeat in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-persist-") as tmp:
            workdir = Path(tmp)
            build_store(workdir / "data" / "persistence.db", 100_000, 10_000)
            if args.queued:
                build_queue(workdir / "data" / "persistence.db", args.queued, 1_000)
            size = sum(f.stat().st_size for f in (workdir / "data").iterdir())
            broker = appliance(workdir, args.broker_cpu, "fsync", "log.level = info\n")  # for the "loaded" line
            with broker:
                seconds = broker.startup_s
            line = next((l for l in (workdir / "appliance.log").read_text().splitlines() if "loaded" in l), "")
        results.append({"startup_s": seconds, "store_bytes": size, "log": line.split("persistence: ")[-1]})
        print(f"  startup {seconds:.2f} s ({size / 1e6:.0f} MB store): {results[-1]['log']}", file=sys.stderr)
    return results


def median(values):
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.persistence")
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--only", default="fanin_q1,fanout_q1,startup")
    p.add_argument("--broker-cpu", type=int, default=0)
    p.add_argument("--loadgen-cpu", type=int, default=1)
    p.add_argument("--queued", type=int, default=100_000, help="messages queued in the start-up store")
    args = p.parse_args(argv)
    args.only = args.only.split(",")
    runs = throughput(args)
    boot = startup(args) if "startup" in args.only else []
    rows, failed = [], False
    for scenario in [s for s in SCENARIOS if s in args.only]:
        rate = {v: median(r.get("recv_mps") for r in runs if r["scenario"] == scenario and r["variant"] == v)
                for v in ("off", "fsync", "os", "mosquitto")}
        lost = {v: sum(r.get("lost") or 0 for r in runs if r["scenario"] == scenario and r["variant"] == v)
                for v in rate}
        for name, ours, peer, floor in ((f"{scenario} fsync / off", rate["fsync"], rate["off"], 0.5),
                                        (f"{scenario} fsync / mosquitto persistence", rate["fsync"],
                                         rate["mosquitto"], 1.0),
                                        (f"{scenario} os / off", rate["os"], rate["off"], 0.5)):
            ratio = ours / peer if ours and peer else None
            ok = ratio is not None and ratio >= floor
            failed |= not ok
            rows.append({"row": name, "ours": ours, "peer": peer, "ratio": ratio, "floor": floor, "ok": ok})
        rows.append({"row": f"{scenario} lost", **lost})
    if boot:
        seconds = median(b["startup_s"] for b in boot)
        rows.append({"row": f"startup 100k retained + 10k sessions + {args.queued:,} queued, s", "ours": seconds,
                     "floor": 5.0,
                     "ok": seconds < 5.0})
        failed |= not seconds < 5.0
    print("\n| row | ours | peer | ratio | floor | ok |\n|---|---:|---:|---:|---:|---|", file=sys.stderr)
    for row in rows:
        if "ratio" in row:
            print(f"| {row['row']} | {row['ours'] or 0:,.0f}/s | {row['peer'] or 0:,.0f}/s | "
                  f"{(row['ratio'] or 0):.2f}x | {row['floor']}x | {'yes' if row['ok'] else 'NO'} |", file=sys.stderr)
        elif "ours" in row:
            print(f"| {row['row']} | {row['ours']:.2f} | | | < {row['floor']} | {'yes' if row['ok'] else 'NO'} |",
                  file=sys.stderr)
        else:
            print(f"| {row['row']} | " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "row") + " | | | | |",
                  file=sys.stderr)
    print(json.dumps({"rows": rows, "runs": runs, "startup": boot}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
