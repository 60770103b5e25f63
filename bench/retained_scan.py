"""Issue 11 "Retained scan": one SUBSCRIBE with 300 filters `zz/+/<i>` against 100,000
retained topics, the appliance and mosquitto side by side.

    .venv/bin/python -m bench.retained_scan [--topics 100000] [--brokers appliance,mosquitto]

For each broker and each shape of retained topics: load them, then while a bystander
publishes to itself every 5 ms (publish-to-receive latency), one client sends the
SUBSCRIBE. Reported: time to SUBACK, time until every matching retained message has
arrived, and the bystander's worst and 99th-percentile latency in that window.

Shapes: `r/<n>` (nothing under zz: the filters match nothing), `zz/<a>/<b>` (333 x 300:
every retained topic matches one filter), `zz/<n>/x` (100,000 branches under zz that the
`+` must look into, none matching: the worst case for a topic tree).
"""
import argparse
import socket
import struct
import tempfile
import threading
import time

from bench import brokers
from bench.wire import _string, connect, split_packet, subscribe, varint

SHAPES = {
    "r/<n>": (lambda n: f"r/{n}", 0),
    "zz/<a>/<b>": (lambda n: f"zz/{n // 300}/{n % 300}", None),  # None: every topic matches
    "zz/<n>/x": (lambda n: f"zz/{n}/x", 0),
}
FILTERS = 300


def _publish_retained(topic):
    body = _string(topic) + b"r"
    return b"\x31" + varint(len(body)) + body


def _publish(topic, payload):
    body = _string(topic) + payload
    return b"\x30" + varint(len(body)) + body


def _subscribe_many(packet_id, filters):
    body = struct.pack(">H", packet_id) + b"".join(_string(f) + b"\x00" for f in filters)
    return b"\x82" + varint(len(body)) + body


class Conn:
    def __init__(self, port, client_id):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.sock.sendall(connect(client_id))
        assert self.next()[0] == 2, "no CONNACK"

    def next(self):
        """(type, body bytes) of the next packet."""
        while True:
            found = split_packet(self.buf, 0, len(self.buf))
            if found:
                kind, _flags, start, end = found
                body = bytes(self.buf[start:end])
                del self.buf[:end]
                return kind, body
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("closed by the broker")
            self.buf += data

    def ping(self):
        """Wait until the broker has handled everything sent so far; count PUBLISHes meanwhile."""
        self.sock.sendall(b"\xc0\x00")
        publishes = 0
        while True:
            kind, _ = self.next()
            if kind == 13:
                return publishes
            publishes += kind == 3


class Bystander(threading.Thread):
    """Publishes to itself every 5 ms and records publish-to-receive latency."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.conn = Conn(port, "bystander")
        self.conn.sock.sendall(subscribe(1, "by/ping", 0))
        assert self.conn.next()[0] == 9
        self.latencies = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            sent = time.perf_counter()
            self.conn.sock.sendall(_publish("by/ping", struct.pack(">d", sent)))
            kind, body = self.conn.next()
            if kind == 3:
                self.latencies.append(time.perf_counter() - sent)
            time.sleep(0.005)


def run_shape(port, shape, topics):
    make, matching = SHAPES[shape]
    loader = Conn(port, "loader")
    chunk = 5000
    for start in range(0, topics, chunk):
        loader.sock.sendall(b"".join(_publish_retained(make(n)) for n in range(start, min(topics, start + chunk))))
    loader.ping()
    bystander = Bystander(port)
    bystander.start()
    time.sleep(0.2)
    attacker = Conn(port, "attacker")
    filters = [f"zz/+/{i}" for i in range(FILTERS)]
    t0 = time.perf_counter()
    attacker.sock.sendall(_subscribe_many(1, filters))
    received = 0
    while True:
        kind, _ = attacker.next()
        if kind == 9:
            break
        received += kind == 3  # a broker may send retained messages before the SUBACK
    suback = time.perf_counter() - t0
    received += attacker.ping()
    done = time.perf_counter() - t0
    time.sleep(0.2)
    bystander.stop.set()
    bystander.join()
    expected = topics if matching is None else matching
    window = sorted(bystander.latencies)
    return {
        "suback_ms": suback * 1000, "all_retained_ms": done * 1000, "retained": received,
        "expected": expected, "bystander_max_ms": window[-1] * 1000 if window else None,
        "bystander_p99_ms": window[int(len(window) * 0.99) - 1] * 1000 if window else None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=100_000)
    parser.add_argument("--brokers", default="appliance,mosquitto")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--port", type=int, default=18851)
    parser.add_argument("--python", default=".venv/bin/python")
    args = parser.parse_args()
    print(f"{'broker':10} {'shape':12} {'SUBACK ms':>10} {'all retained ms':>16} {'retained':>9}"
          f" {'bystander max ms':>17} {'p99 ms':>7}")
    with tempfile.TemporaryDirectory() as workdir:
        for shape in args.shapes.split(","):
            for index, name in enumerate(args.brokers.split(",")):
                port = args.port + index
                if name == "appliance":
                    broker = brokers.appliance(port, None, workdir, args.python,
                                               "limits { max_retained_messages = 0, max_retained_bytes = 0 }\n")
                else:
                    broker = brokers.mosquitto(port, None, workdir)
                with broker:
                    r = run_shape(port, shape, args.topics)
                print(f"{name:10} {shape:12} {r['suback_ms']:10.1f} {r['all_retained_ms']:16.1f}"
                      f" {r['retained']:>9} {r['bystander_max_ms']:17.1f} {r['bystander_p99_ms']:7.1f}", flush=True)
                assert r["retained"] == r["expected"], r


if __name__ == "__main__":
    main()
