"""Check the load generator's counts against witnesses it does not control, on a fresh mosquitto.

    python -m bench.verify            # about 30 s; exit status 1 if any check fails

Witnesses: mosquitto's own `$SYS/broker/publish/messages/{received,sent,dropped}` counters
(published every second here) and a `mosquitto_sub` (QoS 1) subscribed beside the load
generator, counting every message it prints.  Checked for fan-in QoS 0 and QoS 1, fan-out
QoS 1, latency pacing (1,000 msg/s) and 2,000 idle connections.
"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import brokers

PORT = 18849


def sys_counters(port):
    """mosquitto's cumulative publish counters, read with mosquitto_sub."""
    out = subprocess.run(["mosquitto_sub", "-p", str(port), "-h", "127.0.0.1", "-v", "-W", "3",
                          "-t", "$SYS/broker/publish/messages/+", "-C", "3"],
                         capture_output=True, text=True, timeout=10).stdout
    return {line.split()[0].rsplit("/", 1)[1]: int(line.split()[1]) for line in out.splitlines()}


def main():
    work = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    broker = brokers.mosquitto(PORT, 0, work)
    conf = Path(broker.argv[-1])
    conf.write_text(conf.read_text() + "sys_interval 1\n")
    failures = []

    def check(what, ok, detail):
        print(f"  {'ok  ' if ok else 'FAIL'} {what}: {detail}", flush=True)
        if not ok:
            failures.append(what)

    cases = [
        ("fan-in QoS 0", ["--mode", "fanin", "--qos", "0", "--duration", "3"]),
        ("fan-in QoS 1", ["--mode", "fanin", "--qos", "1", "--duration", "3"]),
        ("fan-out QoS 1", ["--mode", "fanout", "--qos", "1", "--duration", "3"]),
        ("latency 1,000 msg/s", ["--mode", "latency", "--qos", "1", "--rate", "1000", "--duration", "3"]),
        ("2,000 idle connections", ["--mode", "idle", "--conns", "2000", "--duration", "1"]),
    ]
    with broker:
        for name, args in cases:
            before = sys_counters(PORT)
            seen_file = work / "witness.out"
            with open(seen_file, "wb") as f:
                witness = subprocess.Popen(["mosquitto_sub", "-p", str(PORT), "-h", "127.0.0.1", "-q", "1",
                                            "-t", "bench/#", "-F", "x"], stdout=f)
            time.sleep(0.3)
            out = subprocess.run(["taskset", "-c", "1", sys.executable, "-m", "bench.loadgen", "--port", str(PORT),
                                  "--pid", str(broker.pid), *args], capture_output=True, text=True, timeout=120)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            time.sleep(2.5)                      # two $SYS intervals, and the witness's tail
            witness.terminate()
            witness.wait()
            seen = seen_file.read_bytes().count(b"x")
            after = sys_counters(PORT)
            delta = {k: after.get(k, 0) - before.get(k, 0) for k in ("received", "sent", "dropped")}
            counts = {k: r.get(k) for k in ("sent", "received", "lost", "dups", "conn_ok", "recv_mps")}
            print(f"{name}: loadgen {json.dumps(counts)}; $SYS {delta}; mosquitto_sub saw {seen}")
            check(name + " ran", r.get("ok"), r.get("error", "ok"))
            if r.get("mode") == "idle":
                check(name + ": all connected", r["conn_ok"] == 2000, f"{r['conn_ok']}")
                continue
            check(name + ": $SYS received == loadgen sent", delta["received"] == r["sent"],
                  f"{delta['received']} vs {r['sent']}")
            # mosquitto counts every PUBLISH it sends: the loadgen's subscribers', the witness's, and
            # the few $SYS messages our own counter readings receive (3 per reading)
            extra = delta["sent"] - r["received"] - seen
            check(name + ": $SYS sent == loadgen received + witness (+ $SYS readings)", 0 <= extra <= 10,
                  f"{delta['sent']} vs {r['received']} + {seen} + {extra}")
            check(name + ": witness saw every publish", seen == r["sent"], f"{seen} vs {r['sent']}")
            check(name + ": nothing dropped, nothing lost", delta["dropped"] == 0 and r["lost"] == 0,
                  f"dropped {delta['dropped']}, lost {r['lost']}")
            if r.get("mode") == "latency":
                check(name + ": paced at 1,000 msg/s", 950 <= r["send_mps"] <= 1050, f"{r['send_mps']:.0f}")
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
