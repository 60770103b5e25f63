"""WebHook benchmark: MQTT publishers -> appliance -> one POST per message -> nginx (204).

    python -m bench.webhook                          # steady rates, a burst, QoS 0 and 1
    python -m bench.webhook --rates 2000,8000 --qos 1 --burst 0
    python -m bench.webhook --profile                # also py-spy the broker at the top rate

For each scenario a fresh broker (pinned to --broker-cpu) gets a `webhook` block whose one
rule matches every message, POSTing base64 bodies to nginx (Debian's nginx-light, started
here, pinned with the load generator to --loadgen-cpu). The sink logs each body with its
arrival time; every payload carries (publisher, sequence, send time), so the script counts
lost and duplicated events and measures publish->POST latency. One subscriber on the same
topics keeps MQTT traffic flowing and gives the publish->deliver latency beside it.
Prints a table on stderr and one JSON line ({"rows": [...], "runs": [...]}) on stdout.
"""
import argparse
import base64
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import brokers, report, wire
from bench.loadgen import Publisher, Subscriber, open_session, percentile, subscribe
from bench.procstat import process_cpu_seconds

HERE = Path(__file__).resolve().parent
NGINX_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
PYSPY = Path("/tmp/bench-pyspy/bin/py-spy")

NGINX_CONF = """\
load_module {module};
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    log_format body escape=json '{{"t":$msec,"b":"$request_body"}}';
    client_body_temp_path {dir}/body;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location /hook {{
            client_body_buffer_size 64k;
            client_body_in_single_buffer on;
            access_log {dir}/bodies.jsonl body buffer=256k flush=1s;
            echo_read_request_body;
            echo_status 204;
        }}
    }}
}}
"""

HTTP_CONF = 'http_server { bind = "127.0.0.1", port = 0 }\n'
WEBHOOK_CONF = """\
webhook {{
    url = "http://127.0.0.1:{sink_port}/hook"
    body.encoding = base64
    pool_size = {pool_size}
    cancel_timeout = 5000
    queue {{ max_len = 200000 }}
    events = [ {{ event = "on_message_publish" }} ]
}}
"""


class Sink:
    """nginx answering 204 to every POST under /hook and logging each body with its arrival time."""

    def __init__(self, port, cpu, workdir):
        self.port, self.cpu = port, cpu
        self.dir = Path(workdir) / "nginx"
        self.log = self.dir / "bodies.jsonl"
        self.offset = 0

    def start(self):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(nginx) or not os.path.exists(NGINX_MODULE):
            sys.exit("nginx with the echo module is needed: apt-get install -y nginx-light")
        if brokers.listening(self.port):
            sys.exit(f"port {self.port} is already in use: pick another with --sink-port")
        (self.dir / "body").mkdir(parents=True, exist_ok=True)
        shutil.chown(self.dir / "body", "www-data") if os.geteuid() == 0 else None
        conf = self.dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(module=NGINX_MODULE, dir=self.dir, port=self.port))
        self.log.write_bytes(b"")
        subprocess.run(["taskset", "-c", str(self.cpu), nginx, "-c", str(conf)], check=True)
        while not brokers.listening(self.port):
            time.sleep(0.01)

    def flush(self):
        os.kill(int((self.dir / "nginx.pid").read_text()), signal.SIGUSR1)  # reopen logs = flush buffers
        time.sleep(0.2)

    def new_lines(self):
        """Log lines written since the last call."""
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        complete = data[:data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return complete.splitlines()

    def stop(self):
        pid_file = self.dir / "nginx.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        while brokers.listening(self.port):  # gone before the next run binds the port
            time.sleep(0.05)


class Load:
    """Publishers at a fixed total rate (or as fast as allowed) and one subscriber, on one epoll."""

    def __init__(self, port, pubs, qos, run_id):
        base = f"bench/wh{run_id}"
        self.qos = qos
        self.ep = select.epoll()
        self.conns = {}
        sock = open_session(port, f"wh{run_id}-sub", 60, 10)
        subscribe(sock, f"{base}/p/#", qos)
        sock.setblocking(False)
        self.sub = Subscriber(sock, wire.PublishLayout(f"{base}/p/000", qos, 64), pubs, True)
        self._add(self.sub)
        self.pubs = []
        for i in range(pubs):
            sock = open_session(port, f"wh{run_id}-p{i}", 60, 10)
            sock.setblocking(False)
            pub = Publisher(sock, i, wire.PublishLayout(f"{base}/p/{i:03d}", qos, 64), 256)
            self.pubs.append(pub)
            self._add(pub)

    def _add(self, conn):
        self.conns[conn.fd] = conn
        self.ep.register(conn.fd, select.EPOLLIN)

    def sent(self):
        return sum(p.sent for p in self.pubs)

    def pump(self, timeout):
        now = time.perf_counter_ns()
        for fd, _ev in self.ep.poll(timeout):
            conn = self.conns[fd]
            conn.read()
            conn.consume(now)
        for conn in self.conns.values():
            if conn.out:
                conn.flush()

    def run(self, total, rate, inflight=1000):
        """Publish `total` messages (a multiple of the publisher count), each publisher its
        share at `rate / publishers` msg/s (rate 0: as fast as QoS 1 in-flight limits allow)."""
        share, start = total // len(self.pubs), time.perf_counter()
        while self.sent() < total:
            due = share if not rate else min(share, int((time.perf_counter() - start) * rate / len(self.pubs)) + 1)
            for pub in self.pubs:
                n = min(256, due - pub.sent)
                if self.qos:
                    n = min(n, inflight - (pub.sent - pub.acked))
                if n > 0:
                    pub.publish(n, time.perf_counter_ns())
                    pub.flush()
            self.pump(0.0005)
        return time.perf_counter() - start

    def drain(self, seconds):
        deadline = time.perf_counter() + seconds
        while self.sub.received < self.sent() and time.perf_counter() < deadline:
            self.pump(0.01)

    def close(self):
        for conn in self.conns.values():
            conn.sock.close()


def stamp_of(body):
    """(publisher, seq, send_ns) from a message_publish body with a base64 payload."""
    payload = base64.b64decode(json.loads(body)["payload"])
    return wire.STAMP.unpack_from(payload)


def collect(sink, sent, idle_limit=10.0):
    """Read the sink's log until `sent` bodies arrived or nothing new came for `idle_limit` s."""
    lines, last_growth = [], time.perf_counter()
    while len(lines) < sent and time.perf_counter() - last_growth < idle_limit:
        sink.flush()
        new = sink.new_lines()
        if new:
            lines += new
            last_growth = time.perf_counter()
    return lines


def analyse(lines, sent_per_pub, clock_offset_ms):
    seen, dups, latencies, arrivals = set(), 0, [], []
    for line in lines:
        record = json.loads(line)
        pub, seq, sent_ns = stamp_of(record["b"])
        if (pub, seq) in seen:
            dups += 1
            continue
        seen.add((pub, seq))
        arrivals.append(record["t"])
        latencies.append(record["t"] * 1000 - (sent_ns / 1e6 + clock_offset_ms))
    latencies.sort()
    expected = {(p, s) for p, sent in enumerate(sent_per_pub) for s in range(sent)}
    lost = len(expected - seen)
    span = (max(arrivals) - min(arrivals)) if len(arrivals) > 1 else None
    return {"posts": len(lines), "unique": len(seen), "lost": lost, "dups": dups,
            "post_p50_ms": percentile(latencies, 0.5), "post_p99_ms": percentile(latencies, 0.99),
            "posts_per_s": len(seen) / span if span else None}


def run_scenario(args, name, qos, rate, total, webhook, sink, workdir, run_no):
    extra = HTTP_CONF + (WEBHOOK_CONF.format(sink_port=args.sink_port, pool_size=args.pool_size) if webhook else "")
    broker = brokers.appliance(args.port, args.broker_cpu, workdir, args.python, extra)
    broker.start()
    result = {"scenario": name, "qos": qos, "rate": rate, "messages": total, "webhook": webhook}
    profile = None
    try:
        load = Load(args.port, args.pubs, qos, f"{os.getpid() % 10000}{run_no}")
        sink.new_lines()  # skip anything older
        if args.profile and webhook and rate == max(args.rate_list):
            profile = start_profile(broker.pid, total / rate + 5, workdir / f"pyspy-{name}.txt")
        clock_offset_ms = (time.time() - time.perf_counter()) * 1000
        cpu0, t0 = process_cpu_seconds(broker.pid), time.perf_counter()
        publish_s = load.run(total, rate)
        load.drain(10)
        lines = collect(sink, total) if webhook else []
        elapsed = time.perf_counter() - t0
        cpu1 = process_cpu_seconds(broker.pid)
        lat = sorted(load.sub.latencies)
        result.update(publish_s=round(publish_s, 2), offered_per_s=round(total / publish_s),
                      mqtt_received=load.sub.received, mqtt_p50_ms=percentile(lat, 0.5) / 1e6 if lat else None,
                      mqtt_p99_ms=percentile(lat, 0.99) / 1e6 if lat else None,
                      broker_cpu=round((cpu1 - cpu0) / elapsed, 2),
                      broker_us_per_event=round((cpu1 - cpu0) / total * 1e6, 1))
        if webhook:
            result.update(analyse(lines, [pub.sent for pub in load.pubs], clock_offset_ms))
        load.close()
    finally:
        if profile is not None:
            profile.wait(60)
        broker.stop()
    return result


def start_profile(pid, seconds, out):
    if not PYSPY.exists():
        print("py-spy not found at /tmp/bench-pyspy (python -m bench.profile installs it); no profile",
              file=sys.stderr)
        return None
    return subprocess.Popen([str(PYSPY), "record", "--pid", str(pid), "--duration", str(int(seconds)),
                             "--format", "raw", "--output", str(out), "--nonblocking", "--rate", "200"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def urlopen_ceiling(args):
    """POST/s of the obvious design (gevent pool over urlopen) on the broker's core, same sink."""
    argv = ["taskset", "-c", str(args.broker_cpu), args.python, "-m", "bench.webhook.urlopen_ceiling",
            "--url", f"http://127.0.0.1:{args.sink_port}/hook", "--greenlets", str(args.pool_size)]
    out = subprocess.run(argv, cwd=HERE.parent.parent, capture_output=True, text=True, timeout=60).stdout
    return json.loads(out.strip().splitlines()[-1])


def scenarios(args):
    for qos in args.qos_list:
        for rate in args.rate_list:
            yield f"steady_q{qos}_{rate}", qos, rate, int(rate * args.duration) // args.pubs * args.pubs
        if args.burst:
            yield f"burst_q{qos}_{args.burst}", qos, 0, args.burst // args.pubs * args.pubs


def rows_of(results):
    rows = []
    for r in results:
        if not r["webhook"]:
            continue
        title = f"webhook {r['scenario']} ({r['offered_per_s']:,} msg/s offered)"
        rows.append(report.check_row("webhook", title, "0 events lost", r["lost"] == 0 and r["dups"] == 0,
                                     f"lost {r['lost']}, dup {r['dups']} of {r['messages']}"))
        rows.append(report.check_row("webhook", title, "delivered POST/s, p50/p99 publish->POST ms", None,
                                     f"{r['posts_per_s'] or 0:,.0f}/s, {r['post_p50_ms']:.0f}/{r['post_p99_ms']:.0f}"
                                     f" ms, broker CPU {r['broker_cpu']:.2f} ({r['broker_us_per_event']:.0f} us/event), MQTT p50 {r['mqtt_p50_ms']:.1f} ms"))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.webhook", description=__doc__.split("\n")[0])
    p.add_argument("--rates", default="1000,2000,4000,8000", help="steady publish rates, msg/s")
    p.add_argument("--burst", type=int, default=50000, help="messages in the burst scenario (0: none)")
    p.add_argument("--qos", default="0,1")
    p.add_argument("--pubs", type=int, default=64,
                   help="publishers; each one's events are POSTed in order, so one at most 1/RTT")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per steady scenario")
    p.add_argument("--pool-size", type=int, default=32)
    p.add_argument("--baseline", action="store_true", help="also run each steady scenario without the webhook")
    p.add_argument("--profile", action="store_true", help="py-spy the broker in the top-rate scenarios")
    p.add_argument("--port", type=int, default=18841)
    p.add_argument("--sink-port", type=int, default=18895)
    p.add_argument("--broker-cpu", type=int, default=0)
    p.add_argument("--loadgen-cpu", type=int, default=1)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--results-dir", type=Path, default=HERE.parent / "results" / "webhook")
    args = p.parse_args(argv)
    args.rate_list = [int(r) for r in args.rates.split(",") if r]
    args.qos_list = [int(q) for q in args.qos.split(",") if q]
    workdir = args.results_dir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    os.sched_setaffinity(0, {args.loadgen_cpu})
    sink = Sink(args.sink_port, args.loadgen_cpu, workdir)
    sink.start()
    results = []
    try:
        reference = urlopen_ceiling(args)
        print(json.dumps({"urlopen_ceiling": reference}), file=sys.stderr, flush=True)
        for run_no, (name, qos, rate, total) in enumerate(scenarios(args)):
            for webhook in ([True, False] if args.baseline and rate else [True]):
                r = run_scenario(args, name, qos, rate, total, webhook, sink, workdir, run_no)
                results.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
    finally:
        sink.stop()
    rows = [report.check_row("webhook", "reference: gevent pool over urllib3 urlopen, same sink and core",
                             "POST/s", None, f"{reference['posts_per_s']:,}/s at {reference['cpu']:.2f} CPU")]
    out = {"rows": rows + rows_of(results), "runs": results, "urlopen_ceiling": reference}
    (workdir / "webhook.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
