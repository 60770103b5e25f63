"""WebSocket against TCP on the same appliance, same run: fan-in and fan-out, QoS 0 and 1.

    python -m bench.ws                         # 4 scenarios x 3 repeats, about 3 minutes
    python -m bench.ws --only fanin_q1 --repeat 5
    bench/ws/run.sh                            # installs aedes and adds it: --peer aedes

Every run starts a fresh appliance with a tcp and a ws listener, pinned as bench/ does
(broker core 0, load generator core 1), and drives it with bench.loadgen (TCP) or
bench.ws.loadgen (WebSocket, same counting); the two alternate, the order swapping on each
repeat. With --peer aedes, aedes 1.2 (Node.js, WebSocket through the ws package; Debian's
mosquitto 2.0.11 has no websockets listener) is measured the same way over WebSocket.
Figures are medians. Floor: WebSocket at least 0.6x of our TCP in msgs/s; at QoS 1 nothing
lost. Results go to bench/ws/results/<UTC date-time>/ (results.json, results.md).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import brokers
from bench.__main__ import environment, loadavg

HERE = Path(__file__).resolve().parent
FLOOR = 0.6
SCENARIOS = {
    "fanin_q0": ("fan-in 8->1, QoS 0, 64 B", ("--mode", "fanin", "--qos", "0")),
    "fanin_q1": ("fan-in 8->1, QoS 1, 64 B", ("--mode", "fanin", "--qos", "1")),
    "fanout_q0": ("fan-out 1->8, QoS 0, 64 B", ("--mode", "fanout", "--qos", "0")),
    "fanout_q1": ("fan-out 1->8, QoS 1, 64 B", ("--mode", "fanout", "--qos", "1")),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.ws", description=__doc__.split("\n")[0])
    p.add_argument("--only", help="comma-separated: " + ",".join(SCENARIOS))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--duration", type=float, default=5)
    p.add_argument("--port", type=int, default=18861, help="tcp listener; ws listens on port+1")
    p.add_argument("--broker-cpu", type=int, default=0)
    p.add_argument("--loadgen-cpu", type=int, default=1)
    p.add_argument("--no-pin", action="store_true")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--out", type=Path)
    p.add_argument("--peer", choices=("aedes",), help="also measure this broker over WebSocket")
    p.add_argument("--aedes-modules", type=Path, default=HERE.parent.parent / "build" / "aedes" / "node_modules")
    return p.parse_args(argv)


def start_broker(args, out, name):
    ws_port = args.port + 1
    cpu = None if args.no_pin else args.broker_cpu
    if name == "aedes":
        os.environ["AEDES_MODULES"] = str(args.aedes_modules)
        return brokers.Broker("aedes", ["node", str(HERE / "aedes_peer.mjs"), str(args.port), str(ws_port)],
                              args.port, cpu, out / "aedes.log")
    return brokers.appliance(args.port, cpu, out, args.python,
                             extra_conf=f'listeners.ws {{ bind = "127.0.0.1:{ws_port}/mqtt" }}\n'
                                        "http_server { enable = false }\n")


def one_run(args, out, scenario, transport, broker_name="appliance"):
    ws_port = args.port + 1
    broker = start_broker(args, out, broker_name)
    rec = {"scenario": scenario, "transport": transport, "broker": broker_name}
    try:
        with broker as b:
            deadline = time.monotonic() + 10
            while not brokers.listening(ws_port):  # tcp listens first; ws a moment later
                if time.monotonic() > deadline:
                    raise brokers.BrokerError(f"the ws listener never listened on {ws_port}")
                time.sleep(0.01)
            tool = "bench.ws.loadgen" if transport == "ws" else "bench.loadgen"
            port = ws_port if transport == "ws" else args.port
            argv = [sys.executable, "-m", tool, "--port", str(port), "--pid", str(b.pid), "--label", scenario,
                    "--duration", str(args.duration), "--size", "64", *SCENARIOS[scenario][1]]
            if not args.no_pin:
                argv = ["taskset", "-c", str(args.loadgen_cpu)] + argv
            with open(out / "loadgen.err", "ab") as err:
                proc = subprocess.run(argv, cwd=HERE.parent.parent, stdout=subprocess.PIPE, stderr=err, timeout=300)
            lines = proc.stdout.decode().strip().splitlines()
            rec.update(json.loads(lines[-1]) if lines else {"ok": False, "error": "load generator printed nothing"})
            if rec.get("recv_mps") and rec.get("broker_cpu"):
                rec["msgs_per_cpu_s"] = rec["recv_mps"] / rec["broker_cpu"]
    except (brokers.BrokerError, subprocess.TimeoutExpired, OSError) as e:
        rec.update(ok=False, error=str(e))
    return rec


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rows(records, scenarios):
    out = []
    for name in scenarios:
        runs = {t: [r for r in records if r["scenario"] == name and r["transport"] == t and r.get("ok")
                    and r["broker"] == "appliance"] for t in ("tcp", "ws")}
        peer = median(r["recv_mps"] for r in records if r["scenario"] == name and r["broker"] != "appliance"
                      and r.get("ok"))
        tcp, ws = (median(r["recv_mps"] for r in runs[t]) for t in ("tcp", "ws"))
        tcp_cpu, ws_cpu = (median(r.get("msgs_per_cpu_s") for r in runs[t]) for t in ("tcp", "ws"))
        ratio = ws / tcp if ws and tcp else None
        lost = max((r["lost"] + (0 if r.get("drained") else 1) for t in runs for r in runs[t]), default=None)
        failed = [r for r in records if r["scenario"] == name and not r.get("ok") and r["broker"] == "appliance"]
        ok = ratio is not None and ratio >= FLOOR and not failed and (lost == 0 or not name.endswith("q1"))
        out.append({"scenario": name, "title": SCENARIOS[name][0], "tcp_mps": tcp, "ws_mps": ws, "ratio": ratio,
                    "tcp_per_cpu_s": tcp_cpu, "ws_per_cpu_s": ws_cpu,
                    "cpu_ratio": ws_cpu / tcp_cpu if ws_cpu and tcp_cpu else None,
                    "runs": {t: [round(r["recv_mps"]) for r in runs[t]] for t in runs},
                    "peer_ws_mps": peer, "vs_peer": ws / peer if ws and peer else None,
                    "lost": lost, "failed": len(failed), "floor": FLOOR, "ok": ok})
    return out


def markdown(table, env):
    def n(v):
        return "-" if v is None else f"{v:,.0f}"

    def x(v):
        return "-" if v is None else f"{v:.2f}x"
    lines = [f"WebSocket vs TCP, same appliance, same run ({env['date']}; load average {env['loadavg_before']}"
             f" -> {env['loadavg_after']}; {env['repeat']} repeats, medians; broker core {env['broker_cpu']},"
             f" load generator core {env['loadgen_cpu']})", "",
             "| scenario | TCP msgs/s | WebSocket msgs/s | ratio (floor 0.6x) | per broker CPU-s TCP / WS | ratio | "
             "aedes WebSocket msgs/s | ours / aedes | lost (QoS 1) | runs TCP / WS | verdict |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in table:
        lines.append(f"| {r['title']} | {n(r['tcp_mps'])} | {n(r['ws_mps'])} | {x(r['ratio'])} | "
                     f"{n(r['tcp_per_cpu_s'])} / {n(r['ws_per_cpu_s'])} | {x(r['cpu_ratio'])} | "
                     f"{n(r['peer_ws_mps'])} | {x(r['vs_peer'])} | "
                     f"{'-' if not r['scenario'].endswith('q1') else r['lost']} | "
                     f"{r['runs']['tcp']} / {r['runs']['ws']} | {'ok' if r['ok'] else 'FAIL'} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    scenarios = [s for s in SCENARIOS if not args.only or s in args.only.split(",")]
    for port in (args.port, args.port + 1):
        if brokers.listening(port):
            sys.exit(f"port {port} is already in use: pick another with --port")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    out = args.out or HERE / "results" / stamp
    out.mkdir(parents=True, exist_ok=True)
    env = environment(args)
    records = []
    print(f"bench.ws: {scenarios} x {args.repeat}; results in {out}", flush=True)
    for name in scenarios:
        for rep in range(args.repeat):
            combos = [("appliance", "tcp"), ("appliance", "ws")] + ([(args.peer, "ws")] if args.peer else [])
            for broker_name, transport in (combos if rep % 2 == 0 else combos[::-1]):
                rec = one_run(args, out, name, transport, broker_name)
                records.append(rec)
                what = (f"{rec['recv_mps']:,.0f} msg/s, lost {rec['lost']}, broker CPU {rec.get('broker_cpu', 0):.2f}"
                        if rec.get("ok") else f"FAILED: {rec.get('error')}")
                print(f"  {name:<10} {broker_name:<9} {transport:<4} {what}", flush=True)
    env["loadavg_after"] = loadavg()
    table = rows(records, scenarios)
    (out / "results.json").write_text(json.dumps({"environment": env, "rows": table, "runs": records}, indent=2) + "\n")
    text = markdown(table, env)
    (out / "results.md").write_text(text)
    print()
    print(text)
    return 0 if all(r["ok"] for r in table) else 1


if __name__ == "__main__":
    sys.exit(main())
