"""WebHook durability and ordering benchmark (issue 13), ratios from one run.

    python -m bench.webhook.durability [--seconds 5] [--mqttblast /tmp/mqttblast]

A. Ordering scopes: one publishing client (paho, QoS 0), an endpoint answering in 20 ms
   (nginx echo_sleep), pool_size 32: POST/s at the sink for webhook.order = client (one
   topic), topic (64 topics, round robin) and none (one topic).
B. Durable vs in-memory: QoS 1 fan-in, 8 publishers (mqttblast, 64 in flight each) at fixed
   offered rates (--rates), a rule on every message, a fast endpoint (nginx, 204): events/s
   POSTed and events lost (sent minus POSTs the sink logged within 60 s), in memory, with a
   spool synced to the OS, with a spool fsync'd; mosquitto without any webhook at the same rate
   in the same run as the reference.

Needs nginx-light with the echo module (apt-get install nginx-light libnginx-mod-http-echo),
mosquitto, and mqttblast built from ../shared/bench (gcc -O2 -o /tmp/mqttblast mqttblast.c -lm).
Broker on --broker-cpu, nginx and the load on --loadgen-cpu. Prints a table on stderr and one
JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import brokers

ROOT = Path(__file__).resolve().parents[2]
NGINX_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
NGINX_CONF = """\
load_module {module};
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    log_format count '$msec';
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_temp_path {dir}/body;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location /fast {{
            access_log {dir}/access.log count buffer=256k flush=1s;
            echo_read_request_body;
            echo_status 204;
        }}
        location /slow {{
            access_log {dir}/access.log count buffer=256k flush=1s;
            echo_read_request_body;
            echo_sleep 0.02;
            echo_status 204;
        }}
    }}
}}
"""
WEBHOOK = """\
listeners.tcp {{ bind = "127.0.0.1:{port}" }}
log {{ level = warn }}
http_server {{ bind = "127.0.0.1", port = 0 }}
mqtt {{ max_mqueue_len = 100000, max_inflight_window = 1024 }}
limits {{ max_connections = 20000, max_connection_rate = 0 }}
webhook {{
    url = "http://127.0.0.1:{sink}/{path}"
    body.encoding = base64
    pool_size = 32
    order = {order}
    queue {{ max_len = 200000 {spool} }}
    drain_timeout = 30s
    events = [ {{ event = "on_message_publish" }} ]
}}
"""


class Sink:
    def __init__(self, port: int, cpu: int, workdir: Path) -> None:
        self.port, self.cpu, self.dir = port, cpu, workdir / "nginx"
        self.log = self.dir / "access.log"

    def start(self) -> None:
        (self.dir / "body").mkdir(parents=True, exist_ok=True)
        shutil.chown(self.dir / "body", "www-data") if os.geteuid() == 0 else None
        conf = self.dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(module=NGINX_MODULE, dir=self.dir, port=self.port))
        subprocess.run(["taskset", "-c", str(self.cpu), shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf)],
                       check=True)
        while not brokers.listening(self.port):
            time.sleep(0.01)

    def reset(self) -> None:
        self.flush()
        self.log.write_bytes(b"")
        self.flush()

    def flush(self) -> None:
        os.kill(int((self.dir / "nginx.pid").read_text()), signal.SIGUSR1)
        time.sleep(1.2)  # the access log flushes every second

    def arrivals(self) -> list[float]:
        self.flush()
        return [float(line) for line in self.log.read_text().split()]

    def wait_count(self, count: int, timeout: float) -> list[float]:
        deadline = time.monotonic() + timeout
        while True:
            times = self.arrivals()
            if len(times) >= count or time.monotonic() > deadline:
                return times

    def stop(self) -> None:
        os.kill(int((self.dir / "nginx.pid").read_text()), signal.SIGTERM)
        while brokers.listening(self.port):
            time.sleep(0.05)


def start_appliance(workdir: Path, name: str, conf: str, port: int, cpu: int, python: str) -> brokers.Broker:
    path = workdir / f"{name}.conf"
    path.write_text(conf)
    broker = brokers.Broker(name, [python, "-m", "appliance", "--conf", str(path)], port, cpu,
                            workdir / f"{name}.log", cwd=ROOT)
    broker.start()
    return broker


def one_client(port: int, topics: int, count: int) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="gateway")
    client.connect("127.0.0.1", port)
    client.loop_start()
    for n in range(count):
        client.publish(f"site/{n % topics}", b"x" * 64, qos=0)
    time.sleep(0.5)
    client.loop_stop()
    client.disconnect()


def ordering(args, sink: Sink, workdir: Path) -> list[dict]:
    rows = []
    for order, topics, count in (("client", 1, 300), ("topic", 64, 6000), ("none", 1, 6000)):
        sink.reset()
        broker = start_appliance(workdir, f"order-{order}", WEBHOOK.format(
            port=args.port, sink=sink.port, path="slow", order=order, spool=""), args.port, args.broker_cpu,
            args.python)
        one_client(args.port, topics, count)
        times = sink.wait_count(count, timeout=count / 40 + 30)
        broker.stop()
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        rows.append({"scenario": f"order={order}", "topics": topics, "events": count, "posted": len(times),
                     "post_per_s": round(rate)})
    return rows


def blast(args, port: int, pid: int, rate: int) -> dict:
    out = subprocess.run(["taskset", "-c", str(args.loadgen_cpu), args.mqttblast, "-p", str(port), "-m", "fanin",
                          "-q", "1", "-t", str(args.seconds), "-r", str(rate), "-K", "0", "--pid", str(pid)],
                         capture_output=True, text=True, timeout=args.seconds + 120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def durable(args, sink: Sink, workdir: Path) -> list[dict]:
    rows = []
    peer = brokers.Broker("mosquitto", ["mosquitto", "-c", str(workdir / "mosquitto.conf")], args.peer_port,
                          args.broker_cpu, workdir / "mosquitto.log")
    (workdir / "mosquitto.conf").write_text(brokers.MOSQUITTO_CONF.format(port=args.peer_port))
    for rate in args.rates:
        peer.start()
        result = blast(args, args.peer_port, peer.pid, rate)
        peer.stop()
        rows.append({"scenario": f"mosquitto, no webhook, {rate} msg/s offered", "sent": result["sent"],
                     "acked": result["acked"], "acked_per_s": round(result["acked"] / args.seconds),
                     "broker_cpu": result.get("broker_cpu")})
        rows += durable_at(args, sink, workdir, rate)
    return rows


def durable_at(args, sink: Sink, workdir: Path, rate: int) -> list[dict]:
    rows = []
    for mode, spool in (("in-memory", ""), ("spool sync=os", "spool_dir = \"{d}\", sync = os"),
                        ("spool sync=fsync", "spool_dir = \"{d}\", sync = fsync")):
        sink.reset()
        spool_dir = workdir / f"spool-{rate}-{len(rows)}"
        conf = WEBHOOK.format(port=args.port, sink=sink.port, path="fast", order="client",
                              spool=", " + spool.format(d=spool_dir) if spool else "")
        broker = start_appliance(workdir, f"durable-{rate}-{len(rows)}", conf, args.port, args.broker_cpu,
                                 args.python)
        started = time.monotonic()
        result = blast(args, args.port, broker.pid, rate)
        times = sink.wait_count(result["sent"], timeout=60)
        broker.stop()
        span = (times[-1] - times[0]) if len(times) > 1 else 1.0
        rows.append({"scenario": f"QoS 1 fan-in, webhook {mode}, {rate} msg/s offered",
                     "sent": result["sent"], "acked": result["acked"],
                     "posted": len(times), "lost": result["sent"] - len(times),
                     "events_per_s": round(len(times) / max(span, 1e-9)),
                     "acked_per_s": round(result["acked"] / args.seconds), "broker_cpu": result.get("broker_cpu"),
                     "wall": round(time.monotonic() - started, 1)})
    return rows


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rates", type=lambda text: [int(r) for r in text.split(",")], default=[5000, 8000],
                   help="QoS 1 fan-in publish rates offered (msg/s, all 8 publishers together)")
    p.add_argument("--mqttblast", default="/tmp/mqttblast")
    p.add_argument("--port", type=int, default=0, help="broker port (0: a free one)")
    p.add_argument("--peer-port", type=int, default=0, help="mosquitto's port (0: a free one)")
    p.add_argument("--sink-port", type=int, default=0, help="nginx's port (0: a free one)")
    p.add_argument("--broker-cpu", type=int, default=0)
    p.add_argument("--loadgen-cpu", type=int, default=1)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--only", choices=("ordering", "durable"))
    args = p.parse_args()
    args.port, args.peer_port, args.sink_port = (port or free_port() for port in
                                                 (args.port, args.peer_port, args.sink_port))
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhook-durability-"))
    sink = Sink(args.sink_port, args.loadgen_cpu, workdir)
    sink.start()
    rows = []
    try:
        if args.only in (None, "ordering"):
            rows += ordering(args, sink, workdir)
        if args.only in (None, "durable"):
            rows += durable(args, sink, workdir)
    finally:
        sink.stop()
    for row in rows:
        print(row, file=sys.stderr)
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
