"""Bridged throughput: local publishers -> edge broker -> bridge -> upstream mosquitto -> subscriber.

    .venv/bin/python -m bench.bridge                    # QoS 0 and 1, appliance and mosquitto, once
    .venv/bin/python -m bench.bridge --repeat 3 --duration 10

The edge broker is the appliance (its `bridges.mqtt.up` block) or mosquitto (its own
`connection` bridge), on the same layout in the same run, alternating (the order swaps on
each repeat). The upstream is a fresh mosquitto each run. The load generator is
bench/loadgen.py's (epoll, raw sockets, pre-encoded packets, sequence-checked payloads)
with its publishers on the edge and its subscriber on the upstream. Pinning: the edge
broker on core 0, the upstream and the load generator on core 1.

Both bridges get the same QoS 1 window (1024 unacknowledged messages: the appliance's
default; mosquitto's `max_inflight_messages` raised from its 20 to match) and no queue
limit that could drop at QoS 1. Results: bench/results/bridge-<UTC time>/results.{json,md}.
Exit status 1 if a floor failed: bridged msgs/s at least 0.5x mosquitto's, 0 lost at QoS 1.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

from bench import loadgen, wire
from bench.brokers import REPO, Broker, BrokerError, listening
from bench.procstat import ProcSampler

FLOOR = 0.5
UPSTREAM_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
max_queued_messages 0
"""
MOSQUITTO_EDGE_CONF = UPSTREAM_CONF + """\
max_inflight_messages 1024
connection up
address 127.0.0.1:{upstream}
topic bench/# out {qos}
cleansession true
bridge_protocol_version mqttv311
try_private false
start_type automatic
restart_timeout 1
"""
APPLIANCE_EDGE_CONF = """\
listeners.tcp {{ bind = "127.0.0.1:{port}" }}
http_server.enable = false
log {{ level = warn }}
mqtt {{ max_mqueue_len = 100000, max_inflight_window = 1024 }}
bridges.mqtt.up {{
  server = "mqtt-tcp://127.0.0.1:{upstream}"
  proto_ver = 4
  clientid = "bench-edge"
  forwards = [ {{ local_topic = "bench/#", qos = {qos} }} ]
  max_send_queue_len = 1000000
  backoff_min = 100ms
  backoff_max = 1s
}}
"""


class BridgedFlow(loadgen.Flow):
    """bench.loadgen's fan-in flow with the subscriber on another broker than the publishers."""

    def setup(self):
        a = self.args
        run = f"{os.getpid() % 100000:05d}"
        base = f"bench/{run}"
        for i in range(a.subs):
            sock = loadgen.open_session(a.sub_port, f"bench-{run}-s{i}", 60, a.connect_timeout)
            loadgen.subscribe(sock, f"{base}/p/#", a.qos)
            sock.setblocking(False)
            self._add(loadgen.Subscriber(sock, wire.PublishLayout(f"{base}/p/000", a.qos, a.size), a.pubs, False))
        self.batch = max(1, min(loadgen.BATCH_MAX, a.window // 4))
        for i in range(a.pubs):
            sock = loadgen.open_session(a.port, f"bench-{run}-p{i}", 60, a.connect_timeout)
            sock.setblocking(False)
            self._add(loadgen.Publisher(sock, i, wire.PublishLayout(f"{base}/p/{i:03d}", a.qos, a.size),
                                        loadgen.BATCH_MAX))


def wait_bridged(edge_port: int, upstream_port: int, timeout: float = 30.0) -> float:
    """Publish probes on the edge until one arrives upstream: the bridge is up. Returns seconds."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    arrived = []
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe-sub")
    sub.on_message = lambda c, u, m: arrived.append(m)
    sub.connect("127.0.0.1", upstream_port)
    sub.subscribe("bench/probe", 1)
    sub.loop_start()
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe-pub")
    pub.connect("127.0.0.1", edge_port)
    pub.loop_start()
    t0 = time.perf_counter()
    try:
        while not arrived:
            if time.perf_counter() - t0 > timeout:
                raise BrokerError("the bridge did not come up")
            pub.publish("bench/probe", b"p", qos=1)
            time.sleep(0.2)
        return time.perf_counter() - t0
    finally:
        for client in (pub, sub):
            client.loop_stop()
            client.disconnect()


def run_one(kind: str, qos: int, args, workdir: Path) -> dict:
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    upstream_conf = workdir / "upstream.conf"
    upstream_conf.write_text(UPSTREAM_CONF.format(port=args.upstream_port))
    edge_conf = workdir / f"edge-{kind}.conf"
    if kind == "mosquitto":
        edge_conf.write_text(MOSQUITTO_EDGE_CONF.format(port=args.port, upstream=args.upstream_port, qos=qos))
        edge_argv = [mosquitto, "-c", str(edge_conf)]
    else:
        edge_conf.write_text(APPLIANCE_EDGE_CONF.format(port=args.port, upstream=args.upstream_port, qos=qos))
        edge_argv = [args.python, "-m", "appliance", "--conf", str(edge_conf)]
    for path in (upstream_conf, edge_conf):
        path.chmod(0o644)  # mosquitto drops root privileges after reading it
    upstream = Broker("upstream", [mosquitto, "-c", str(upstream_conf)], args.upstream_port, args.loadgen_cpu,
                      workdir / "upstream.log")
    edge = Broker(kind, edge_argv, args.port, args.broker_cpu, workdir / f"edge-{kind}.log", cwd=REPO)
    with upstream, edge:
        wait_bridged(args.port, args.upstream_port)
        flow_args = loadgen.parse_args(["--port", str(args.port), "--mode", "fanin", "--pubs", str(args.pubs),
                                        "--subs", "1", "--qos", str(qos), "--duration", str(args.duration),
                                        "--warmup", "1", "--window", str(args.window), "--drain", "10"])
        flow_args.sub_port = args.upstream_port
        sampler = ProcSampler(edge.pid)
        flow = BridgedFlow(flow_args, sampler)
        try:
            flow.setup()
            start, stop, drained = flow.run()
            result = flow.summary(start, stop, drained)
        finally:
            flow.close()
    result.update(edge=kind, qos=qos)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bridge", description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=18851, help="edge broker port")
    p.add_argument("--upstream-port", type=int, default=18852)
    p.add_argument("--duration", type=float, default=8.0, help="measured seconds per run")
    p.add_argument("--pubs", type=int, default=4)
    p.add_argument("--window", type=int, default=2000, help="end-to-end window of the load generator")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--qos", default="0,1")
    p.add_argument("--broker-cpu", type=int, default=0)
    p.add_argument("--loadgen-cpu", type=int, default=1)
    p.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    args = p.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for port in (args.port, args.upstream_port):
        if listening(port):
            print(f"port {port} is in use", file=sys.stderr)
            return 2
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    workdir = REPO / "bench" / "results" / f"bridge-{stamp}"
    workdir.mkdir(parents=True)
    runs = []
    for repeat in range(args.repeat):
        order = ("appliance", "mosquitto") if repeat % 2 == 0 else ("mosquitto", "appliance")
        for qos in (int(q) for q in args.qos.split(",")):
            for kind in order:
                result = run_one(kind, qos, args, workdir)
                print(json.dumps(result), flush=True)
                runs.append(result)
    rows, failed = [], False
    for qos in sorted({r["qos"] for r in runs}):
        ours = statistics.median(r["recv_mps"] for r in runs if r["edge"] == "appliance" and r["qos"] == qos)
        peer = statistics.median(r["recv_mps"] for r in runs if r["edge"] == "mosquitto" and r["qos"] == qos)
        lost = sum(r["lost"] for r in runs if r["edge"] == "appliance" and r["qos"] == qos)
        peer_lost = sum(r["lost"] for r in runs if r["edge"] == "mosquitto" and r["qos"] == qos)
        ratio = ours / peer if peer else None
        ok = ratio is not None and ratio >= FLOOR and (qos == 0 or lost == 0)
        failed |= not ok
        rows.append({"qos": qos, "appliance_mps": ours, "mosquitto_mps": peer, "ratio": ratio,
                     "appliance_lost": lost, "mosquitto_lost": peer_lost, "ok": ok})
    load = os.getloadavg()
    lines = [f"# Bridged throughput, {stamp} (load average {load[0]:.1f} {load[1]:.1f})", "",
             f"{args.pubs} publishers on the edge -> bridge -> upstream mosquitto -> 1 subscriber; "
             f"{args.duration:g} s measured, {args.repeat} repeat(s), medians; edge on core {args.broker_cpu}.", "",
             "| QoS | appliance bridge, msgs/s | mosquitto bridge, msgs/s | ratio | lost (appliance / mosquitto) "
             f"| floor >= {FLOOR}x, 0 lost at QoS 1 |",
             "|---|---:|---:|---:|---:|---|"]
    for row in rows:
        lines.append(f"| {row['qos']} | {row['appliance_mps']:,.0f} | {row['mosquitto_mps']:,.0f} | "
                     f"{row['ratio']:.2f}x | {row['appliance_lost']} / {row['mosquitto_lost']} | "
                     f"{'ok' if row['ok'] else 'FAILED'} |")
    (workdir / "results.md").write_text("\n".join(lines) + "\n")
    (workdir / "results.json").write_text(json.dumps({"runs": runs, "rows": rows, "load": load}, indent=1))
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
