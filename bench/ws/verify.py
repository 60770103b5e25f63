"""Check the WebSocket load generator's counts against witnesses it does not control.

    python -m bench.ws.verify          # about 40 s; exit status 1 if any check fails

A fresh appliance with tcp, ws and its HTTP server. Witnesses: the appliance's own
counters from /metrics (appliance_messages_received_total, _sent_total, _dropped_total,
read with Prometheus' parser) and a `mosquitto_sub` (QoS 1, over TCP: another client
implementation on another transport) subscribed beside the load generator, counting every
message it prints. Checked for fan-in QoS 0 and 1 and fan-out QoS 0 and 1.
"""
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench import brokers

PORT = 18879  # tcp; ws on PORT + 1, HTTP on PORT + 2


def counters(http_port):
    """Sums over labels of the appliance's message counters."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    wanted = {"appliance_messages_received_total": "received", "appliance_messages_sent_total": "sent",
              "appliance_messages_dropped_total": "dropped"}
    out = dict.fromkeys(wanted.values(), 0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                out[wanted[sample.name]] += int(sample.value)
    return out


def main():
    if not shutil.which("mosquitto_sub"):
        sys.exit("mosquitto_sub is missing: apt-get install mosquitto-clients (bench/run.sh does it)")
    work = Path(tempfile.mkdtemp(prefix="bench-ws-verify-"))
    broker = brokers.appliance(PORT, 0, work, sys.executable, extra_conf=(
        f'listeners.ws {{ bind = "127.0.0.1:{PORT + 1}/mqtt" }}\n'
        f'http_server {{ bind = "127.0.0.1", port = {PORT + 2} }}\n'))
    failures = []

    def check(what, ok, detail):
        print(f"  {'ok  ' if ok else 'FAIL'} {what}: {detail}", flush=True)
        if not ok:
            failures.append(what)

    cases = [
        ("fan-in QoS 0", ["--mode", "fanin", "--qos", "0"]),
        ("fan-in QoS 1", ["--mode", "fanin", "--qos", "1"]),
        ("fan-out QoS 0", ["--mode", "fanout", "--qos", "0"]),
        ("fan-out QoS 1", ["--mode", "fanout", "--qos", "1"]),
    ]
    with broker:
        while not brokers.listening(PORT + 2):
            time.sleep(0.05)
        for name, args in cases:
            seen_file = work / "witness.out"
            with open(seen_file, "wb") as f:
                witness = subprocess.Popen(["mosquitto_sub", "-p", str(PORT), "-h", "127.0.0.1", "-q", "1",
                                            "-t", "bench/#", "-F", "x"], stdout=f)
            time.sleep(0.5)
            before = counters(PORT + 2)
            out = subprocess.run(["taskset", "-c", "1", sys.executable, "-m", "bench.ws.loadgen",
                                  "--port", str(PORT + 1), "--pid", str(broker.pid), "--duration", "2", *args],
                                 capture_output=True, text=True, timeout=120)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            deadline = time.monotonic() + 30  # the witness's tail (QoS 1, queued for it)
            while seen_file.read_bytes().count(b"x") < r.get("sent", 0) and time.monotonic() < deadline:
                time.sleep(0.2)
            witness.terminate()
            witness.wait()
            seen = seen_file.read_bytes().count(b"x")
            after = counters(PORT + 2)
            delta = {k: after[k] - before[k] for k in after}
            counts = {k: r.get(k) for k in ("sent", "received", "lost", "dups", "frames_in", "frames_out")}
            print(f"{name}: ws loadgen {json.dumps(counts)}; appliance {delta}; mosquitto_sub saw {seen}")
            check(name + " ran", r.get("ok"), r.get("error", "ok"))
            if not r.get("ok"):
                continue
            check(name + ": appliance received == loadgen sent", delta["received"] == r["sent"],
                  f"{delta['received']} vs {r['sent']}")
            check(name + ": appliance sent == loadgen received + witness", delta["sent"] == r["received"] + seen,
                  f"{delta['sent']} vs {r['received']} + {seen}")
            subs = 8 if "fan-out" in name else 1
            check(name + ": every subscriber got every publish", r["received"] == r["sent"] * subs,
                  f"{r['received']} vs {r['sent']} x {subs}")
            check(name + ": witness saw every publish", seen == r["sent"], f"{seen} vs {r['sent']}")
            check(name + ": nothing dropped, lost or doubled",
                  delta["dropped"] == 0 and r["lost"] == 0 and r["dups"] == 0,
                  f"dropped {delta['dropped']}, lost {r['lost']}, dups {r['dups']}")
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
