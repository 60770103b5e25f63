"""Run every benchmark scenario against the appliance and mosquitto, alternately, and report.

    python -m bench                       # everything, results in bench/results/<date>/
    python -m bench --only fanin_q0,lat_q1 --repeat 3
    python -m bench --brokers mosquitto   # validate the harness without the appliance
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import brokers, report
from bench.scenarios import STARTUP_METRICS, all_scenarios

HERE = Path(__file__).resolve().parent
WEBHOOK_SCENARIO = HERE / "webhook" / "__main__.py"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--only", help="comma-separated scenario names (fanin_q0,fanin_q1,fanout_q0,fanout_q1,"
                                  "lat_q0,lat_q1,idle10k,webhook)")
    p.add_argument("--brokers", default="appliance,mosquitto", help="which brokers to run (default both)")
    p.add_argument("--repeat", type=int, default=1, help="runs per scenario and broker; figures are medians")
    p.add_argument("--duration", type=float, default=5, help="measured seconds per throughput run")
    p.add_argument("--idle-conns", type=int, default=10000)
    p.add_argument("--port", type=int, default=18841, help="appliance port (mosquitto uses port+1)")
    p.add_argument("--broker-cpu", type=int, default=0)
    p.add_argument("--loadgen-cpu", type=int, default=1)
    p.add_argument("--no-pin", action="store_true", help="do not pin (numbers will not compare)")
    p.add_argument("--python", default=sys.executable, help="interpreter that runs the appliance")
    p.add_argument("--out", type=Path, help="results folder (default bench/results/<UTC date-time>)")
    return p.parse_args(argv)


def environment(args):
    def first(path, prefix):
        try:
            with open(path) as f:
                return next((line.split(":", 1)[1].strip() for line in f if line.startswith(prefix)), "?")
        except OSError:
            return "?"
    mem_kb = int(first("/proc/meminfo", "MemTotal").split()[0])
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "mem_gib": round(mem_kb / 1048576, 1),
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "mosquitto": brokers.mosquitto_version(),
        "broker_cpu": None if args.no_pin else args.broker_cpu,
        "loadgen_cpu": None if args.no_pin else args.loadgen_cpu,
        "repeat": args.repeat,
        "loadavg_before": loadavg(),
    }


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Runner:
    """Starts a fresh broker per run, drives the load generator against it, keeps every record."""

    def __init__(self, args, out):
        self.args, self.out = args, out
        self.records = []

    def broker(self, name):
        cpu = None if self.args.no_pin else self.args.broker_cpu
        if name == "mosquitto":
            return brokers.mosquitto(self.args.port + 1, cpu, self.out)
        return brokers.appliance(self.args.port, cpu, self.out, self.args.python)

    def loadgen(self, port, pid, loadgen_args, label):
        argv = [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--pid", str(pid),
                "--label", label, *loadgen_args]
        if not self.args.no_pin:
            argv = ["taskset", "-c", str(self.args.loadgen_cpu)] + argv
        with open(self.out / "loadgen.err", "ab") as err:
            proc = subprocess.run(argv, cwd=HERE.parent, stdout=subprocess.PIPE, stderr=err, timeout=300)
        lines = proc.stdout.decode().strip().splitlines()
        if not lines:
            return {"ok": False, "error": f"load generator printed nothing (exit {proc.returncode}); see loadgen.err"}
        return json.loads(lines[-1])

    def run(self, scenario, name):
        rec = {"scenario": scenario.name, "broker": name}
        try:
            with self.broker(name) as b:
                rec.update(startup_s=b.startup_s, rss_start_kb=b.rss_start_kb)
                rec.update(self.loadgen(b.port, b.pid, scenario.loadgen_args, scenario.name))
                if rec.get("recv_mps") and rec.get("broker_cpu"):
                    rec["msgs_per_cpu_s"] = rec["recv_mps"] / rec["broker_cpu"]
                rec["broker_alive"] = b.proc.poll() is None
        except (brokers.BrokerError, subprocess.TimeoutExpired, OSError) as e:
            rec.update(ok=False, error=str(e))
        self.records.append(rec)
        print(summary_line(rec), flush=True)
        return rec


def other_cpu(r):
    """Cores busy with neither the broker nor the load generator (loopback softirq, other users)."""
    if "host_cpu" not in r or "lg_cpu" not in r:
        return None
    return r["host_cpu"] - r.get("broker_cpu", 0) - r["lg_cpu"]


def summary_line(r):
    if not r.get("ok"):
        return f"  {r['broker']:<10} {r['scenario']:<10} FAILED: {r.get('error')}"
    if r.get("mode") == "idle":
        what = (f"{r['conn_ok']}/{r['idle']} conns, RSS {r['rss_base_kb']}->{r['rss_conn_kb']} KB, "
                f"{r['kb_per_conn'] or 0:.2f} KB/conn, {r['conn_per_s'] or 0:,.0f} conn/s")
    else:
        what = (f"{r['recv_mps']:,.0f} msg/s, lost {r['lost']}, dups {r['dups']}, "
                f"p50/p99 {r['lat_p50_us']}/{r['lat_p99_us']} us")
    cpu = ""
    if other_cpu(r) is not None:
        cpu = f"; CPU broker {r.get('broker_cpu', 0):.2f} loadgen {r['lg_cpu']:.2f} other {other_cpu(r):.2f}"
    return (f"  {r['broker']:<10} {r['scenario']:<10} {what}{cpu}; "
            f"start {r['startup_s']:.2f} s, {r['rss_start_kb'] / 1024:.1f} MB")


def rows_for(scenario, records):
    def runs(name):
        return [r for r in records if r["scenario"] == scenario.name and r["broker"] == name and r.get("ok")]
    ours, peer = runs("appliance"), runs("mosquitto")
    rows = [report.row(scenario.name, scenario.title, m,
                       report.median(r.get(m.key) for r in ours), report.median(r.get(m.key) for r in peer))
            for m in scenario.metrics]
    others = [other_cpu(r) for r in ours + peer if other_cpu(r) is not None]
    for r in rows:
        r["other_cpu"] = max(others) if others else None
    attempted = [r for r in records if r["scenario"] == scenario.name and r["broker"] == "appliance"]
    if attempted:
        failed = [r for r in attempted if not r.get("ok")]
        if failed:
            rows.append(report.check_row(scenario.name, scenario.title, "run completed", False,
                                         failed[0].get("error", "")[:80]))
        if scenario.qos1 and ours:
            lost = max(r["lost"] + (0 if r.get("drained") else 1) for r in ours)
            rows.append(report.check_row(scenario.name, scenario.title, "nothing lost at QoS 1", lost == 0,
                                         f"lost {max(r['lost'] for r in ours)}"
                                         + ("" if all(r.get("drained") for r in ours) else ", not drained")))
        if scenario.expect_conns and ours:
            held = min(r["conn_ok"] for r in ours)
            rows.append(report.check_row(scenario.name, scenario.title, "all connections held",
                                         held == scenario.expect_conns, f"{held:,}/{scenario.expect_conns:,}"))
    return rows


def startup_rows(records):
    def values(name, key):
        return [r.get(key) for r in records if r["broker"] == name and r.get("startup_s") is not None]
    return [report.row("startup", "start-up (every broker start)", m,
                       report.median(values("appliance", m.key)), report.median(values("mosquitto", m.key)))
            for m in STARTUP_METRICS]


def webhook_rows(args, out):
    """The webhook scenario is bench/webhook/'s (its owner's); it prints {"rows": [...], ...}."""
    argv = [sys.executable, "-m", "bench.webhook", "--results-dir", str(out), "--port", str(args.port),
            "--sink-port", str(args.port + 54),
            "--broker-cpu", str(args.broker_cpu), "--loadgen-cpu", str(args.loadgen_cpu),
            "--python", args.python]
    print("  webhook scenario: " + " ".join(argv[1:]), flush=True)
    try:
        proc = subprocess.run(argv, cwd=HERE.parent, stdout=subprocess.PIPE, timeout=600)
        result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as e:
        result = {"rows": [report.check_row("webhook", "webhook", "run completed", False, str(e)[:80])]}
    return result


def main(argv=None):
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))      # inherited by brokers and loadgen
    idle_conns = min(args.idle_conns, hard - 500)
    if idle_conns < args.idle_conns:
        print(f"warning: nofile hard limit is {hard}; idle scenario uses {idle_conns} connections", file=sys.stderr)
    names = [n.strip() for n in args.brokers.split(",") if n.strip()]
    scenarios = all_scenarios(idle_conns, args.duration)
    only = set(args.only.split(",")) if args.only else None
    if only:
        scenarios = [s for s in scenarios if s.name in only]
    for port in (args.port, args.port + 1):
        if brokers.listening(port):
            sys.exit(f"port {port} is already in use: pick another with --port (mosquitto uses --port + 1)")

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    out = args.out or HERE / "results" / stamp
    out.mkdir(parents=True, exist_ok=True)
    env = environment(args)
    print(f"bench: {len(scenarios)} scenarios x {names} x {args.repeat}; results in {out}", flush=True)
    runner = Runner(args, out)
    t0 = time.perf_counter()
    for scenario in scenarios:
        print(f"{scenario.name}: {scenario.title}", flush=True)
        for rep in range(args.repeat):
            order = names if rep % 2 == 0 else names[::-1]     # alternate who goes first
            for name in order:
                runner.run(scenario, name)
    rows = [row for s in scenarios for row in rows_for(s, runner.records)]
    if runner.records:
        rows += startup_rows(runner.records)
    webhook = None
    if WEBHOOK_SCENARIO.exists() and "appliance" in names and (only is None or "webhook" in only):
        webhook = webhook_rows(args, out)
        rows += webhook.get("rows", [])
    env["loadavg_after"] = loadavg()
    env["elapsed_s"] = round(time.perf_counter() - t0, 1)
    (out / "results.json").write_text(json.dumps(
        {"environment": env, "rows": rows, "runs": runner.records, "webhook": webhook}, indent=2) + "\n")
    table = report.markdown(rows, env)
    (out / "results.md").write_text(table)
    print()
    print(table)
    print(f"({env['elapsed_s']} s) results: {out / 'results.json'}, {out / 'results.md'}")
    return 1 if any(r["ok"] is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
